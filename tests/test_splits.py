"""Time and group splits: validation that matches deployment.

On tables built to leak under a random split (a target drifting with time; a target constant
per entity), the time and group splits give a clearly worse, honest score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import accuracy_score, r2_score

from mlpilot.config import JobConfig, TabularConfig
from mlpilot.ensemble import plan_bagging
from mlpilot.errors import ConfigError, DataError
from mlpilot.problems.tabular._analysis import row_split
from mlpilot.search import ValidationPlan, plan_validation


def drifting_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A target that drifts with time: the past says little about the future's level."""
    rng = np.random.default_rng(seed)
    day = rng.permutation(n)
    x = rng.normal(size=n)
    y = x + 0.02 * day + np.sin(day / 15) * 3 + rng.normal(scale=0.3, size=n)
    dates = pd.Timestamp("2023-01-01") + pd.to_timedelta(day, unit="D")
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "day": day, "x": x, "y": y})


def entity_table(n_entities: int = 60, per: int = 10, seed: int = 0) -> pd.DataFrame:
    """A label fixed per customer, and features that identify the customer but not the label."""
    rng = np.random.default_rng(seed)
    traits = rng.normal(size=(n_entities, 3))
    label = rng.integers(0, 2, n_entities)
    who = np.repeat(np.arange(n_entities), per)
    features = traits[who] + rng.normal(scale=0.05, size=(len(who), 3))
    table = pd.DataFrame(features, columns=["a", "b", "c"])
    table["customer_id"] = [f"C{i:03d}" for i in who]
    table["y"] = label[who]
    return table.sample(frac=1, random_state=seed).reset_index(drop=True)


def score(plan: ValidationPlan, X: np.ndarray, y: np.ndarray, classification: bool) -> float:
    """The plan's validation score for a small forest, the way the trial runner trains."""
    truth, predicted = [], []
    for fold in plan.eval_folds:
        before = plan.folds < fold if plan.forward else plan.folds != fold
        train = np.flatnonzero((plan.folds >= 0) & before)
        valid = np.flatnonzero(plan.folds == fold)
        model = (RandomForestClassifier if classification else RandomForestRegressor)(
            n_estimators=30, random_state=0, n_jobs=1
        ).fit(X[train], y[train])
        truth.append(y[valid])
        predicted.append(model.predict(X[valid]))
    t, p = np.concatenate(truth), np.concatenate(predicted)
    return float(accuracy_score(t, p) if classification else r2_score(t, p))


def job(**settings: object) -> JobConfig:
    return JobConfig.tabular(
        name="splits", training_data="data.csv", output_path="runs/x", target="y", **settings
    )


@pytest.mark.parametrize("fraction", [None, 0.25])
def test_time_split_scores_the_future_honestly(fraction: float | None) -> None:
    table = drifting_table()
    y = table["y"].to_numpy()
    X = table[["day", "x"]].to_numpy()
    split = row_split(job(split_by_time="date"), table)
    assert split is not None
    timed = plan_validation(
        len(table), y, classification=False, seed=0, fraction=fraction, split=split
    )
    random = plan_validation(len(table), y, classification=False, seed=0, fraction=fraction)
    # Every validation row is later than every row its model trained on.
    for fold in timed.eval_folds:
        before = (timed.folds < fold) if timed.forward else (timed.folds != fold)
        assert table["day"][before].max() < table["day"][timed.folds == fold].min()
    assert timed.method == ("time-series cross-validation" if fraction is None else "time holdout")
    assert "'date'" in timed.reason
    honest, leaky = score(timed, X, y, False), score(random, X, y, False)
    assert leaky > 0.9
    assert honest < leaky - 0.3, (honest, leaky)


@pytest.mark.parametrize("fraction", [None, 0.2])
def test_group_split_keeps_entities_apart(fraction: float | None) -> None:
    table = entity_table()
    y = table["y"].to_numpy()
    X = table[["a", "b", "c"]].to_numpy()
    split = row_split(job(split_by_group="customer_id"), table)
    assert split is not None
    grouped = plan_validation(
        len(table), y, classification=True, seed=0, fraction=fraction, split=split
    )
    random = plan_validation(len(table), y, classification=True, seed=0, fraction=fraction)
    for fold in grouped.eval_folds:
        inside = set(table["customer_id"][grouped.folds == fold])
        outside = set(table["customer_id"][grouped.folds != fold])
        assert inside and not inside & outside
    honest, leaky = score(grouped, X, y, True), score(random, X, y, True)
    assert leaky > 0.95
    assert honest < 0.75, (honest, leaky)


def test_ensembling_splits() -> None:
    table = entity_table()
    y = table["y"].to_numpy()
    common = dict(
        classification=True, seed=0, fraction=None, n_validation_rows=0, budget=None, row_cap=200
    )
    split = row_split(job(split_by_group="customer_id"), table)
    plan = plan_bagging(len(table), y, cap_reason="test", split=split, **common)
    assert plan.bagged and plan.grouped and plan.sample is not None
    ids = table["customer_id"].to_numpy()[plan.sample]
    folds = plan.validation.folds
    assert all(len(set(folds[ids == c])) == 1 for c in set(ids))
    # A time split is a time holdout: no fold of the past alone covers every row.
    drift = drifting_table()
    timed = plan_bagging(
        len(drift),
        drift["y"].to_numpy(),
        cap_reason="",
        split=row_split(job(split_by_time="day"), drift),
        **{**common, "classification": False, "row_cap": None},
    )
    assert not timed.bagged and timed.validation.method == "time holdout"
    valid = timed.validation.folds == 1
    assert drift["day"][valid].min() > drift["day"][~valid].max()


def test_time_ties_stay_on_one_side() -> None:
    day = np.repeat(np.arange(10), 10).astype(float)
    split = row_split(job(split_by_time="d"), pd.DataFrame({"d": day, "y": 0}))
    assert split is not None
    plan = plan_validation(
        100, np.zeros(100), classification=False, seed=0, fraction=0.25, split=split
    )
    assert day[plan.folds == 1].min() > day[plan.folds == 0].max()
    same = row_split(job(split_by_time="d"), pd.DataFrame({"d": np.ones(20), "y": 0}))
    assert same is not None
    with pytest.raises(ConfigError, match="too few distinct"):
        plan_validation(20, np.zeros(20), classification=False, seed=0, fraction=0.2, split=same)


def test_split_config_and_errors() -> None:
    with pytest.raises(ConfigError, match="not both"):
        job(split_by_time="d", split_by_group="g")
    with pytest.raises(ConfigError, match="validation channel"):
        job(split_by_group="g", validation_data="v.csv")
    with pytest.raises(DataError, match="'nope' is not in the data"):
        row_split(job(split_by_group="nope"), entity_table())
    with pytest.raises(ConfigError, match="cannot be the target"):
        row_split(job(split_by_group="y"), entity_table())
    with pytest.raises(DataError, match="neither dates"):
        row_split(job(split_by_time="customer_id"), entity_table())
    config = job(split_by_time="date", validation_fraction=0.3)
    request = config.to_request()
    assert {"Key": "mlpilot:SplitByTime", "Value": "date"} in request["Tags"]
    back = JobConfig.from_request(request, output_path="runs/x")
    assert back.split_by_time == "date" and back.split_by_group is None
    assert back.to_request()["Tags"] == request["Tags"]
    assert JobConfig.from_dict(config.to_dict()).split_by_time == "date"
    assert isinstance(back.problem, TabularConfig)


@pytest.mark.slow  # builds the exploration notebook twice (~18 s)
def test_profile_suggests_splits_and_the_notebook_measures_the_gap() -> None:
    from mlpilot.notebooks._exploration import DataExploration
    from mlpilot.profile import build_profile

    for table, kind, column, flag in (
        (drifting_table().drop(columns="day"), "Time", "date", "--split-by-time date"),
        (entity_table(), "Group", "customer_id", "--split-by-group customer_id"),
    ):
        profile = build_profile(table, "y")
        assert [(s["Type"], s["Column"]) for s in profile.split_suggestions] == [(kind, column)]
        exploration = DataExploration(profile, table)
        found = [i for i in exploration.insights() if flag in i.fix]
        assert len(found) == 1 and found[0].severity == "high" and found[0].columns == (column,)
        random_score, split_score, _ = exploration.split_gaps[column]
        assert random_score - split_score > 0.3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flag", "column", "mode", "method"),
    [
        ("--split-by-time", "date", "HYPERPARAMETER_TUNING", "time holdout"),
        ("--split-by-group", "customer_id", "ENSEMBLING", "group"),
    ],
    ids=["time-hpo", "group-ensembling"],
)
def test_a_job_validates_with_the_split_it_was_given(
    tmp_path: Path, flag: str, column: str, mode: str, method: str
) -> None:
    """The flag reaches the job: its record names the scheme, it completes and ships a model."""
    from typer.testing import CliRunner

    from mlpilot.cli.main import app
    from mlpilot.package import load_model

    table = drifting_table(300) if column == "date" else entity_table(40, 8)
    table.to_csv(tmp_path / "data.csv", index=False)
    args = ["run", str(tmp_path / "data.csv"), "--target", "y", flag, column, "--mode", mode]
    args += ["--max-runtime", "25", "--output", str(tmp_path / "job"), "--quiet", "--no-reports"]
    if mode == "HYPERPARAMETER_TUNING":
        args += ["--algorithms", "linear-learner", "--max-candidates", "2"]
        args += ["--validation-fraction", "0.25"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "job" / "job.json").read_text())
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    profile = record["Mlpilot"]["Profile"]
    assert method in profile["Validation"] and f"'{column}'" in profile["ValidationReason"]
    model = load_model(tmp_path / "job")
    assert len(model.predict(table.drop(columns="y").head(5))) == 5
