"""``mlpilot retrain`` for forecasting endpoints: the holdout of series scored as the job's
backtests score (the numbers against :func:`mlpilot.metrics.score_forecasts` called directly),
its errors and the new data's schema check at the seam; and one round through a real
``mlpilot serve`` where a challenger trained on clean series replaces a champion trained on
scrambled ones."""

from __future__ import annotations

import json
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlpilot
from helpers_data import TOURISM
from helpers_forecast import TOURISM_SETTINGS, fit_predictor, save_package, table
from helpers_service import ROLE, ServiceProcess, client_env, wait_for
from mlpilot.metrics import score_forecasts
from mlpilot.package import SeriesModel
from mlpilot.service import (
    RetrainError,
    SeriesHoldout,
    check_holdout_columns,
    check_schema,
    decide,
    score_package,
    score_series_package,
)

ARN = "arn:aws:sagemaker:us-east-1:000000000000"
HORIZON = TOURISM_SETTINGS["horizon"]
METRICS = ["RMSE", "AverageWeightedQuantileLoss", "MASE", "MAPE", "WAPE"]


def _package(tmp_path_factory: pytest.TempPathFactory, model: str) -> SeriesModel:
    predictor = fit_predictor(table(TOURISM), {model: 1.0}, **TOURISM_SETTINGS)
    loaded = mlpilot.load_model(save_package(predictor, tmp_path_factory.mktemp(model)))
    assert isinstance(loaded, SeriesModel)
    return loaded


@pytest.fixture(scope="module")
def naive(tmp_path_factory: pytest.TempPathFactory) -> SeriesModel:
    return _package(tmp_path_factory, "seasonal-naive")


@pytest.fixture(scope="module")
def npts(tmp_path_factory: pytest.TempPathFactory) -> SeriesModel:
    return _package(tmp_path_factory, "npts")


def _direct(model: SeriesModel, holdout: pd.DataFrame) -> dict[str, float]:
    """Every metric of ``model``'s forecasts of each item's last HORIZON points from the
    points before them, scored by the backtests' own function."""
    rows = holdout.sort_values(["item_id", "timestamp"])
    last = rows.groupby("item_id").cumcount(ascending=False) < HORIZON
    history, truth = rows[~last], rows[last]
    forecast = model.forecast(history)
    forecast["timestamp"] = forecast["timestamp"].dt.strftime("%Y-%m-%d")
    joined = truth.merge(forecast, on=["item_id", "timestamp"], how="left")
    assert len(joined) == len(truth) and joined["mean"].notna().all()
    past: dict[Hashable, np.ndarray] = {
        (item,): pd.to_numeric(values).to_numpy(dtype=float)
        for item, values in history.groupby("item_id")["Trips"]
    }
    return score_forecasts(
        pd.to_numeric(joined["Trips"]).to_numpy(),
        joined["mean"].to_numpy(),
        {q: joined[q].to_numpy() for q in ("p10", "p50", "p90")},
        item_ids=[(item,) for item in joined["item_id"]],
        history=past,
        season=4,
    )


def test_the_holdouts_last_points_are_scored_as_the_backtests_score(
    naive: SeriesModel, npts: SeriesModel
) -> None:
    holdout = table(TOURISM)
    split = SeriesHoldout.of(naive, holdout.sample(frac=1.0, random_state=0))  # any row order
    assert (split.items, split.points) == (9, 9 * HORIZON)
    # The truth rows go with the history, their target emptied.
    assert len(split.inputs) == len(holdout)
    assert split.inputs["Trips"].isna().sum() == 9 * HORIZON
    scores = {
        name: {metric: split.score(model, metric) for metric in METRICS}
        for name, model in (("champion", naive), ("challenger", npts))
    }
    for name, model in (("champion", naive), ("challenger", npts)):
        direct = _direct(model, holdout)
        assert scores[name] == pytest.approx({m: direct[m] for m in METRICS}, rel=1e-12)
    assert scores["champion"] != scores["challenger"]
    metric = "AverageWeightedQuantileLoss"
    champion, challenger = scores["champion"][metric], scores["challenger"][metric]
    won, _ = decide(False, champion, challenger, 0.0)  # lower is better
    assert won is (challenger < champion)
    assert score_series_package(npts, holdout, metric) == challenger
    assert score_package(npts, holdout, metric) == challenger


def _items(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    return frame[frame["item_id"].isin(frame["item_id"].unique()[:count])]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.drop(columns=["timestamp", "Trips"]),
            "forecasting column(s) timestamp, Trips",
        ),
        (
            lambda f: f.groupby("item_id").tail(HORIZON + 3),
            "has 11 point(s): each item needs at least 12 (ForecastHorizon 8 to score, after at "
            "least 4 of history); 2 more item(s) too short",
        ),
        (lambda f: f.assign(Trips="many"), "target Trips has value(s) that are not numbers"),
        (lambda f: f.assign(timestamp="someday"), "timestamp has value(s) that are not timestamps"),
        (lambda f: f.assign(Trips=np.where(f.index % 80 >= 72, np.nan, 0.0)), "nothing to score"),
    ],
    ids=["columns", "short", "target", "timestamp", "no-truth"],
)
def test_a_bad_holdout_is_one_line_naming_the_problem(
    naive: SeriesModel, change: Any, message: str
) -> None:
    holdout = change(_items(table(TOURISM), 3).reset_index(drop=True))
    with pytest.raises(RetrainError) as caught:
        SeriesHoldout.of(naive, holdout)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_truth_off_the_grid_and_unknown_objectives_are_refused(naive: SeriesModel) -> None:
    holdout = _items(table(TOURISM), 2).reset_index(drop=True)
    split = SeriesHoldout.of(naive, holdout)
    with pytest.raises(RetrainError, match="cannot be scored on a forecasting holdout"):
        split.score(naive, "F1")
    # A quarter missing among the last points: the last 8 rows span 9 quarters.
    gap = holdout.drop(index=holdout.index[-4])
    with pytest.raises(RetrainError, match="its last 8 timestamps are not the 8 steps of the"):
        SeriesHoldout.of(naive, gap).score(naive, "RMSE")
    shifted = holdout.copy()
    shifted.loc[shifted.index[-1], "timestamp"] = "2017-11-15"  # not a quarter's start
    with pytest.raises(RetrainError, match="cannot be forecast: Irregular timestamps"):
        SeriesHoldout.of(naive, shifted).score(naive, "RMSE")


def test_policies_and_new_data_are_checked_against_the_series_columns(
    naive: SeriesModel,
) -> None:
    from mlpilot.service._retrain_series import series_columns

    expected = series_columns(naive)
    assert expected == ["item_id", "timestamp", "Region", "State", "Purpose"]
    check_schema([*expected, "Trips"], expected, "Trips", "The new data")
    with pytest.raises(RetrainError) as caught:
        columns = ["item_id", "timestamp", "Region", "State", "Trips", "Price"]
        check_schema(columns, expected, "Trips", "The new data s3://b/new/part.csv")
    assert "lacks column(s) Purpose" in str(caught.value)
    assert "not trained on: Price" in str(caught.value)
    check_holdout_columns(naive, ["item_id", "timestamp", "Trips"], "h.csv")
    with pytest.raises(RetrainError, match=r"h\.csv lacks the forecasting column\(s\) item_id"):
        check_holdout_columns(naive, ["timestamp", "Trips", "Region"], "h.csv")


# -- one round through a real service --------------------------------------------------------
def _job_request(name: str, data: Path, output: Path) -> dict[str, Any]:
    return {
        "AutoMLJobName": name,
        "AutoMLJobInputDataConfig": [
            {
                "ChannelType": "training",
                "ContentType": "text/csv;header=present",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(data)}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": str(output)},
        "AutoMLProblemTypeConfig": {
            "TimeSeriesForecastingJobConfig": {
                "ForecastFrequency": "3M",
                "ForecastHorizon": 4,
                "ForecastQuantiles": ["p10", "p50", "p90"],
                "TimeSeriesConfig": {
                    "TargetAttributeName": "Trips",
                    "TimestampAttributeName": "timestamp",
                    "ItemIdentifierAttributeName": "item_id",
                },
                "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["npts"]}]},
                "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": 60},
            }
        },
        "RoleArn": ROLE,
        "Tags": [{"Key": "mlpilot:GenerateReports", "Value": "false"}],
    }


def _retrain(server: ServiceProcess, *args: str) -> tuple[int, str]:
    """``mlpilot retrain`` here, a client of ``server``: its exit code and its output (the
    JSON line last; an error's one line)."""
    from typer.testing import CliRunner

    from mlpilot.cli.main import app

    result = CliRunner(env=client_env()).invoke(
        app, ["retrain", *args, "--endpoint-url", server.url]
    )
    return result.exit_code, result.output.strip()


@pytest.mark.slow
def test_a_forecasting_challenger_on_clean_series_takes_the_endpoint(tmp_path: Path) -> None:
    """The champion (version 1 of a group) was trained on series whose values were shuffled in
    time, the challenger on the same series as they were: scored on each item's last 4
    quarters, which neither saw, the challenger wins, bakes as a canary and takes the traffic,
    and the endpoint forecasts with it. Bad input before that leaves the endpoint alone."""
    data = table(TOURISM)
    data = data[data["item_id"].isin(data["item_id"].unique()[:3])]
    seen = data.groupby("item_id").head(76)  # the last 4 quarters are the holdout's truth
    scrambled = seen.copy()
    scrambled["Trips"] = seen.groupby("item_id")["Trips"].transform(
        lambda s: s.sample(frac=1.0, random_state=3).to_numpy()
    )
    for name, frame in (("weak", scrambled), ("clean", seen)):
        (tmp_path / name).mkdir()
        frame.to_csv(tmp_path / name / "train.csv", index=False)
    (tmp_path / "other").mkdir()
    seen.drop(columns=["Purpose"]).to_csv(tmp_path / "other" / "train.csv", index=False)
    data.to_csv(holdout := tmp_path / "holdout.csv", index=False)
    data.groupby("item_id").tail(6).to_csv(short := tmp_path / "short.csv", index=False)

    server = ServiceProcess(tmp_path / "data").start()
    try:
        sm = server.boto()
        sm.create_auto_ml_job_v2(**_job_request("tourism", tmp_path / "weak", tmp_path / "out"))
        best = wait_for(sm, "tourism", ("Completed", "Failed"))["BestCandidate"]
        container = {k: best["InferenceContainers"][0][k] for k in ("Image", "ModelDataUrl")}
        sm.create_model_package_group(ModelPackageGroupName="tourism")
        first = sm.create_model_package(
            ModelPackageGroupName="tourism",
            InferenceSpecification={"Containers": [container]},
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"AutoMLJobName": "tourism"},
        )["ModelPackageArn"]
        sm.create_model(ModelName="tourism-v1", PrimaryContainer={"ModelPackageName": first})
        variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": "tourism-v1"}
        variant.update(InitialInstanceCount=1, InstanceType="ml.m5.large")
        sm.create_endpoint_config(EndpointConfigName="tourism-v1", ProductionVariants=[variant])
        sm.create_endpoint(EndpointName="tourism", EndpointConfigName="tourism-v1")

        # Bad input: one line each, no job started, the endpoint as it was.
        for new, rows, message in (
            (tmp_path / "other", holdout, "lacks column(s) Purpose"),
            (tmp_path / "clean", short, "has 6 point(s): each item needs at least 8"),
        ):
            code, said = _retrain(server, "tourism", "--data", str(new), "--holdout", str(rows))
            assert code == 2 and message in " ".join(said.split()), said
        assert [j["AutoMLJobName"] for j in sm.list_auto_ml_jobs()["AutoMLJobSummaries"]] == [
            "tourism"
        ]

        code, line = _retrain(
            server,
            "tourism",
            "--data",
            str(tmp_path / "clean"),
            "--holdout",
            str(holdout),
            "--ground-truth",
            str(tmp_path / "labels"),
            "--canary-seconds",
            "1",
        )
        assert code == 0, line
        outcome = json.loads(line.splitlines()[-1])
        assert outcome["decision"] == "promoted", outcome
        assert outcome["metric"] == "AverageWeightedQuantileLoss"
        assert outcome["challenger_score"] < outcome["champion_score"]
        assert (outcome["holdout_rows"], outcome["captured_rows"]) == (12, 0)
        assert "12 forecast points of 3 holdout item(s), the last 4 of each" in outcome["reason"]
        assert "captured traffic is scored for tabular models only" in outcome["reason"]

        # The challenger serves alone, as version 2, under the champion's variant name.
        described = sm.describe_endpoint(EndpointName="tourism")
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        assert [(v["VariantName"], v["ModelName"]) for v in config["ProductionVariants"]] == [
            ("AllTraffic", outcome["challenger"])
        ]
        model = sm.describe_model(ModelName=outcome["challenger"])["PrimaryContainer"]
        assert model["ModelPackageName"] == f"{ARN}:model-package/tourism/2"
        version = sm.describe_model_package(ModelPackageName=model["ModelPackageName"])
        spec = version["InferenceSpecification"]
        assert "application/jsonlines" in spec["SupportedContentTypes"]
        assert version["ModelApprovalStatus"] == "Approved"

        # It answers a forecasting request with the challenger's own forecast.
        challenger = mlpilot.load_model(spec["Containers"][0]["ModelDataUrl"])
        history = data[data["item_id"] == data["item_id"].iloc[0]]
        answer = server.boto("sagemaker-runtime").invoke_endpoint(
            EndpointName="tourism",
            ContentType="text/csv",
            Accept="application/json",
            Body=history.to_csv(index=False),
        )
        got = json.loads(answer["Body"].read())["predictions"]
        expected = challenger.forecast(history)
        assert [round(p["mean"], 6) for p in got] == [round(v, 6) for v in expected["mean"]]
    finally:
        server.stop()
