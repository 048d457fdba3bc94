"""Whole forecasting jobs: the Python API, the CLI the benchmark harness drives, and
CreateAutoMLJobV2 with TimeSeriesForecastingJobConfig through boto3 against ``mlpilot serve``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers_data import AIR_PASSENGERS, TOURISM, VICTORIA
from helpers_service import ROLE, ServiceProcess
from mlpilot.cli.main import app
from mlpilot.config import ForecastingConfig, JobConfig
from mlpilot.jobs import AutoMLJob, JobHooks
from mlpilot.package import SeriesModel, load_model
from mlpilot.reports import WhiteBox, execute_notebook

pytestmark = pytest.mark.slow

FAST = ("ets", "npts", "arima")  # Autopilot's names: ETS, NPTS and ARIMA


def tourism_config(output: Path, **settings: Any) -> JobConfig:
    return JobConfig(
        name="tourism",
        training_data=str(TOURISM),
        output_path=str(output),
        problem=ForecastingConfig(
            target="Trips",
            timestamp="timestamp",
            item_id="item_id",
            frequency="QS-JAN",
            horizon=4,
            algorithms=settings.pop("algorithms", None),
        ),
        max_runtime=settings.pop("max_runtime", 60),
        parallelism=settings.pop("parallelism", 2),
        **settings,
    )


def test_a_forecasting_job_backtests_ensembles_and_ships_the_best(tmp_path: Path) -> None:
    job = AutoMLJob(tourism_config(tmp_path / "job", max_runtime=40), observers=[WhiteBox()])
    record = job.run()
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    assert record["AutoMLProblemTypeConfigName"] == "TimeSeriesForecasting"
    resolved = record["ResolvedAttributes"]
    assert resolved["AutoMLJobObjective"]["MetricName"] == "AverageWeightedQuantileLoss"
    assert "backtest window" in record["Mlpilot"]["Profile"]["Backtest"]
    board = job.leaderboard()
    completed = board[board["status"] == "Completed"]
    algorithms = {c["Mlpilot"]["Algorithm"] for c in job.candidates.values()}
    assert {"seasonal-naive", "ets", "npts", "theta", "weighted-ensemble"} <= algorithms
    # Ranked by the objective (smaller is better); the best is the job's best candidate.
    assert list(completed["objective"]) == sorted(completed["objective"])
    best = record["BestCandidate"]
    assert best["CandidateName"] == completed.iloc[0]["candidate"]
    assert best["FinalAutoMLJobObjectiveMetric"]["Type"] == "Minimize"
    metrics = {m["MetricName"] for m in best["CandidateProperties"]["CandidateMetrics"]}
    assert {"AverageWeightedQuantileLoss", "RMSE", "WAPE", "MASE", "MAPE"} <= metrics
    # The ensemble is never worse on the backtests than the best single model.
    ensemble = next(
        c for c in job.candidates.values() if c["Mlpilot"]["Algorithm"] == "weighted-ensemble"
    )
    singles = [
        c["FinalAutoMLJobObjectiveMetric"]["Value"]
        for c in job.candidates.values()
        if c["CandidateStatus"] == "Completed" and c["Mlpilot"]["Algorithm"] != "weighted-ensemble"
    ]
    assert ensemble["FinalAutoMLJobObjectiveMetric"]["Value"] <= min(singles) + 1e-12
    assert sum(ensemble["Mlpilot"]["Weights"].values()) == pytest.approx(1.0)
    windows = len(ensemble["Mlpilot"]["BacktestWindowMetrics"])
    assert ensemble["Mlpilot"]["ObjectiveStdOver"] == f"{windows} backtest windows"
    assert ensemble["Mlpilot"]["ObjectiveStd"] > 0
    # The spec and the package: the forecast continues each series on its quarter grid.
    spec = json.loads((tmp_path / "job" / "spec.json").read_text())
    assert spec["problem"]["ConfigName"] == "TimeSeriesForecasting"
    model = load_model(tmp_path / "job")
    assert isinstance(model, SeriesModel)
    forecast = model.forecast()
    assert list(forecast.columns) == ["item_id", "timestamp", "mean", "p10", "p50", "p90"]
    assert len(forecast) == 9 * 4
    assert set(pd.to_datetime(forecast["timestamp"]).dt.strftime("%m-%d")) == {
        "01-01",
        "04-01",
        "07-01",
        "10-01",
    }
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()
    # The white box (as the CLI and the service attach it): the series notebook, executed; the
    # model-quality report from the backtests; the other two skipped, each with its reason.
    reports = record["Mlpilot"]["Reports"]
    assert reports["DataExplorationNotebook"]["Status"] == "Completed", reports
    assert reports["ModelInsights"]["Status"] == "Completed", reports
    assert reports["CandidateDefinitionNotebook"]["Status"] == "Skipped"
    assert "HPO jobs only" in reports["CandidateDefinitionNotebook"]["Reason"]
    assert reports["Explainability"]["Status"] == "Skipped"
    assert "CNN-QR or DeepAR+" in reports["Explainability"]["Reason"]
    notebook = Path(record["AutoMLJobArtifacts"]["DataExplorationNotebookLocation"])
    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    images = {
        c.metadata["tags"][0]
        for c in code
        if any("image/png" in o.get("data", {}) for o in c.outputs)
    }
    assert {"lengths-plot", "series-plot", "seasonality-plot"} <= images
    assert "Intermittent series" in notebook.with_suffix(".html").read_text()
    # It reads only what the job kept (its working data are gone): it runs again as it is.
    assert not job.layout.work.exists()
    execute_notebook(notebook, html=False)
    insights = Path(reports["ModelInsights"]["Location"])
    stats = json.loads((insights / "statistics.json").read_text())
    # The three worst and three best of 9, as many as the job's time allows (a busy machine
    # leaves less), the rest named in a note.
    drawn = len(stats["mlpilot"]["items_drawn"])
    assert 1 <= drawn <= 6
    if drawn < 6:
        assert f"{6 - drawn} of 6 items not drawn: no time left" in stats["mlpilot"]["notes"]
    html = (insights / "report.html").read_text()
    assert html.count("data:image/png;base64") == 1 + drawn
    # BacktestResults: every completed candidate (the ensemble too), in the record and the
    # candidates (ListCandidatesForAutoMLJob's members).
    locations = best["CandidateProperties"]["CandidateArtifactLocations"]
    assert locations["ModelInsights"] == str(insights)
    for candidate in job.candidates.values():
        if candidate["CandidateStatus"] != "Completed":
            continue
        name = candidate["CandidateName"]
        where = candidate["CandidateProperties"]["CandidateArtifactLocations"]
        assert set(where) >= {"Explainability", "BacktestResults"}
        folder = Path(where["BacktestResults"])
        forecasts = pd.read_csv(folder / "forecasted-values" / f"{name}_part0.csv")
        accuracy = pd.read_csv(folder / "accuracy-metrics-values" / f"{name}_part0.csv")
        windows = int(forecasts["backtest_window"].max())
        assert len(forecasts) == windows * 9 * 4  # every series in every window
        average = accuracy.set_index("backtest_window").loc["Average"]
        recorded = {
            m["MetricName"]: m["Value"]
            for m in candidate["CandidateProperties"]["CandidateMetrics"]
        }
        for metric in ("RMSE", "WAPE", "AverageWeightedQuantileLoss"):
            assert average[metric] == pytest.approx(recorded[metric])
    assert best["CandidateProperties"]["CandidateArtifactLocations"]["BacktestResults"]


def test_the_benchmark_harness_commands_run_and_forecast(tmp_path: Path) -> None:
    """`mlpilot run … --problem-type TimeSeriesForecasting` then `mlpilot predict JOB DATA`."""
    table = pd.read_csv(AIR_PASSENGERS)
    train = pd.DataFrame(
        {"item_id": "air", "timestamp": table["Month"] + "-01", "target": table["Passengers"]}
    ).iloc[:-12]
    train.to_csv(tmp_path / "train.csv", index=False)
    runner = CliRunner()
    missing = runner.invoke(
        app, ["run", str(tmp_path / "train.csv"), "--target", "target", "--problem-type",
              "TimeSeriesForecasting", "--timestamp", "timestamp"],
    )  # fmt: skip
    assert missing.exit_code != 0
    assert "needs --item-id, --frequency, --horizon" in missing.output
    result = runner.invoke(
        app,
        ["run", str(tmp_path / "train.csv"), "--problem-type", "TimeSeriesForecasting",
         "--target", "target", "--timestamp", "timestamp", "--item-id", "item_id",
         "--frequency", "MS", "--horizon", "12", "--quantiles", "p10,p50,p90",
         "--max-runtime", "30", "--output", str(tmp_path / "job"), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "forecast.csv"
    predicted = runner.invoke(
        app, ["predict", str(tmp_path / "job"), str(tmp_path / "train.csv"), "--output", str(out)]
    )
    assert predicted.exit_code == 0, predicted.output
    forecast = pd.read_csv(out)
    assert list(forecast.columns) == ["item_id", "timestamp", "mean", "p10", "p50", "p90"]
    expected = pd.date_range("1960-01-01", periods=12, freq="MS").strftime("%Y-%m-%d").tolist()
    assert forecast["timestamp"].tolist() == expected
    actual = table["Passengers"].iloc[-12:].to_numpy()
    # Better than repeating last year's values (seasonal naive).
    naive = table["Passengers"].iloc[-24:-12].to_numpy()
    error = abs(forecast["mean"].to_numpy() - actual).mean()
    assert error < abs(naive - actual).mean()


def test_create_automl_job_v2_runs_a_forecasting_job(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path / "svc").start()
    try:
        sm = service.boto()
        request = {
            "AutoMLJobName": "tourism-fc",
            "AutoMLJobInputDataConfig": [
                {
                    "ChannelType": "training",
                    "ContentType": "text/csv;header=present",
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(TOURISM)}
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
            "AutoMLProblemTypeConfig": {
                "TimeSeriesForecastingJobConfig": {
                    "ForecastFrequency": "3M",
                    "ForecastHorizon": 4,
                    "ForecastQuantiles": ["p10", "p50", "p90"],
                    "TimeSeriesConfig": {
                        "TargetAttributeName": "Trips",
                        "TimestampAttributeName": "timestamp",
                        "ItemIdentifierAttributeName": "Region",
                        "GroupingAttributeNames": ["Purpose"],
                    },
                    "CandidateGenerationConfig": {
                        "AlgorithmsConfig": [{"AutoMLAlgorithms": ["ets", "npts"]}]
                    },
                    "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": 60},
                }
            },
            "RoleArn": ROLE,
        }
        split = {
            **request,
            "AutoMLJobName": "tourism-split",
            "DataSplitConfig": {"ValidationFraction": 0.2},
        }
        with pytest.raises(Exception, match="DataSplitConfig and a validation channel"):
            sm.create_auto_ml_job_v2(**split)
        sm.create_auto_ml_job_v2(**request)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            record = sm.describe_auto_ml_job_v2(AutoMLJobName="tourism-fc")
            if record["AutoMLJobStatus"] not in ("InProgress", "Stopping"):
                break
            time.sleep(0.5)
        assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
        assert record["AutoMLProblemTypeConfigName"] == "TimeSeriesForecasting"
        config = record["AutoMLProblemTypeConfig"]["TimeSeriesForecastingJobConfig"]
        assert config["TimeSeriesConfig"]["GroupingAttributeNames"] == ["Purpose"]
        best = record["BestCandidate"]
        assert best["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "AverageWeightedQuantileLoss"
        listed = sm.list_candidates_for_auto_ml_job(
            AutoMLJobName="tourism-fc", SortBy="FinalObjectiveMetricValue"
        )["Candidates"]
        assert {c["CandidateName"] for c in listed} >= {best["CandidateName"]}
        locations = best["CandidateProperties"]["CandidateArtifactLocations"]
        assert Path(locations["BacktestResults"], "accuracy-metrics-values").is_dir()
        for candidate in listed:
            if candidate["CandidateStatus"] == "Completed":
                where = candidate["CandidateProperties"]["CandidateArtifactLocations"]
                assert Path(where["BacktestResults"], "forecasted-values").is_dir()
    finally:
        service.stop()


class _HoldsTheJobPastItsDeadline(JobHooks):
    """When the first model's backtest completes, keeps the job busy until its training time is
    over: the deadline arrives with models still to backtest."""

    def __init__(self) -> None:
        self.held = False
        self.statuses: list[str] = []

    def on_status(self, job: AutoMLJob) -> None:
        status = job.record["AutoMLJobSecondaryStatus"]
        if not self.statuses or self.statuses[-1] != status:
            self.statuses.append(status)

    def on_candidate(self, job: AutoMLJob, candidate: dict[str, Any]) -> None:
        if self.held or candidate["CandidateStatus"] != "Completed":
            return
        self.held = True
        left = job.budget.left(job.budget.end_reserve())
        time.sleep(max(0.0, left or 0.0) + 0.5)


def test_the_deadline_stops_the_work_and_the_best_so_far_ships(tmp_path: Path) -> None:
    holder = _HoldsTheJobPastItsDeadline()
    config = tourism_config(tmp_path / "job", algorithms=FAST, max_runtime=30, parallelism=1)
    job = AutoMLJob(config, observers=[holder])
    record = job.run()
    assert holder.held
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    assert holder.statuses[-2:] == ["MaxAutoMLJobRuntimeReached", "Completed"]
    by_algorithm = {c["Mlpilot"]["Algorithm"]: c for c in job.candidates.values()}
    # Only the algorithms asked for (and their ensemble) are candidates.
    assert set(by_algorithm) == {"npts", "ets", "arima", "weighted-ensemble"}
    # NPTS (the cheapest) was backtested; the models after it were not started.
    assert by_algorithm["npts"]["CandidateStatus"] == "Completed"
    for later in ("ets", "arima"):
        assert by_algorithm[later]["CandidateStatus"] == "Failed"
        assert "no time left" in by_algorithm[later]["FailureReason"]
    # What was done ships: the ensemble of the completed model, and it forecasts.
    best = record["BestCandidate"]
    assert best["CandidateName"] == by_algorithm["weighted-ensemble"]["CandidateName"]
    assert by_algorithm["weighted-ensemble"]["Mlpilot"]["Weights"] == {"npts": 1.0}
    forecast = load_model(tmp_path / "job").forecast()
    assert len(forecast) == 9 * 4 and forecast["mean"].notna().all()


def test_a_job_with_covariates_and_holidays(tmp_path: Path) -> None:
    """Victoria's half-hours with Temperature over the horizon (future-dated rows) and the
    Australian holiday calendar: recorded in the job, read by the global model, shipped."""
    frame = pd.read_csv(VICTORIA)[["Time", "Demand", "Temperature"]]
    frame.insert(0, "site", "vic")
    frame["Demand"] = frame["Demand"].astype(object)
    frame.loc[frame.index[-96:], "Demand"] = ""
    frame.to_csv(tmp_path / "train.csv", index=False)
    config = JobConfig(
        name="victoria",
        training_data=str(tmp_path / "train.csv"),
        output_path=str(tmp_path / "job"),
        problem=ForecastingConfig(
            target="Demand",
            timestamp="Time",
            item_id="site",
            frequency="30min",
            horizon=96,
            holiday_country="AU",
        ),
        max_runtime=60,
        parallelism=2,
    )
    job = AutoMLJob(config)
    record = job.run()
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    profile = record["Mlpilot"]["Profile"]
    assert profile["HolidayCalendar"].startswith("Australia (AU) national holidays")
    assert profile["Covariates"] == {"Temperature": "numeric"}
    assert profile["FutureCovariatesGiven"] == {"Temperature": 1.0}
    gbm = next(c for c in job.candidates.values() if c["Mlpilot"]["Algorithm"] == "gbm")
    assert gbm["CandidateStatus"] == "Completed", gbm.get("FailureReason")
    model = load_model(tmp_path / "job")
    assert isinstance(model, SeriesModel)
    assert model.info["holiday_country"] == "AU"
    forecast = model.forecast(pd.read_csv(tmp_path / "train.csv"))
    assert len(forecast) == 96
    assert pd.Timestamp(forecast["Time"].iloc[0]) == pd.Timestamp("2012-01-26 13:00", tz="UTC")
