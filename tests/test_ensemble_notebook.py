"""An ENSEMBLING job's candidate-definition notebook: the ensemble as literal Python that,
re-run unedited, rebuilds the job's best objective value; members a time limit cut short are
recorded and replayed."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlpilot
from helpers_data import PENGUINS, TELCO
from helpers_whitebox import output_text, read_notebook, tagged
from mlpilot.algorithms import FitContext, get_algorithm
from mlpilot.ensemble import EnsembleReplay
from mlpilot.features import FeaturePipeline
from mlpilot.metrics import get_metric
from mlpilot.notebooks import execute_notebook
from mlpilot.profile import build_profile
from mlpilot.search import (
    TrialTask,
    load_prepared,
    load_validation_predictions,
    run_trial,
    write_prepared,
)


def _forest_task(data: Path, out: Path, **changes: object) -> TrialTask:
    task = TrialTask(
        number=0,
        candidate_name="forest",
        algorithm="randomforest",
        algorithm_path="randomforest",
        params={
            "n_estimators": 10**6,
            "max_features": "sqrt",
            "min_samples_leaf": 1,
            "criterion": "gini",
        },
        preprocessing={"categorical": "ordinal", "impute": True},
        data_dir=str(data),
        objective="LogLoss",
        eval_folds=(0, 1),
        seed=3,
        time_limit=None,
        model_dir=str(out),
        keep_all_folds=True,
    )
    return replace(task, **changes)  # type: ignore[arg-type]


def test_members_cut_by_time_are_recorded_and_replayed(tmp_path: Path) -> None:
    raw = pd.read_csv(TELCO).head(300)
    profile = build_profile(raw, "Churn")
    write_prepared(tmp_path / "data", raw, profile, np.arange(300) % 2)
    # A million trees in a second: the clock stops each fold's forest.
    cut = run_trial(_forest_task(tmp_path / "data", tmp_path / "cut", time_limit=1.0))
    assert cut.status == "Completed", cut.failure_reason
    assert set(cut.time_cuts) == {0, 1}
    # Replayed without a clock: stopped at the same looks, the same out-of-fold predictions.
    again = run_trial(_forest_task(tmp_path / "data", tmp_path / "again", stop_at=cut.time_cuts))
    assert again.status == "Completed"
    assert again.time_cuts == cut.time_cuts
    _, _, before = load_validation_predictions(str(tmp_path / "cut"))
    _, _, after = load_validation_predictions(str(tmp_path / "again"))
    np.testing.assert_array_equal(before, after)
    assert again.objective_value == cut.objective_value


@pytest.mark.parametrize("algorithm", ["catboost", "lightgbm"])
def test_a_boosting_fit_stopped_at_a_look_is_the_fit_the_clock_stopped(algorithm: str) -> None:
    # CatBoost's trees depend on the rounds asked for, not only on those trained: a replay
    # must stop the same fit at the same point, not ask for fewer rounds.
    raw = pd.read_csv(TELCO).head(300)
    profile = build_profile(raw, "Churn")
    cls = get_algorithm(algorithm)
    pipeline = FeaturePipeline.from_profile(profile, cls.preprocessing)
    y = profile.target.encode(raw["Churn"])
    X = pipeline.fit_transform(raw, y)
    params = {cls.iteration_param: 500}

    def fit(context: FitContext) -> np.ndarray:
        model = cls(profile.problem_type, 2, params, seed=0)
        model.fit(X[:200], y[:200], eval_set=(X[200:], y[200:], None), context=context)
        return np.asarray(model.predict_proba(X[200:]))

    stopped = FitContext(stop_at=7)
    first = fit(stopped)
    assert stopped.cut_at == 7
    np.testing.assert_array_equal(first, fit(FitContext(stop_at=7)))
    assert not np.array_equal(first, fit(FitContext()))  # without the stop it trains on


def test_replay_digest_tells_edits() -> None:
    base = {"m": {"algorithm": "lightgbm", "params": {"num_leaves": 9}, "time_cuts": {0: {}}}}
    same = {"m": {"algorithm": "lightgbm", "params": {"num_leaves": 9}, "time_cuts": {0: {}}}}
    assert EnsembleReplay.digest(base, {}, {"m": 1.0}, None) == EnsembleReplay.digest(
        same, {}, {"m": 1.0}, None
    )
    same["m"]["params"] = {"num_leaves": 10}
    assert EnsembleReplay.digest(base, {}, {"m": 1.0}, None) != EnsembleReplay.digest(
        same, {}, {"m": 1.0}, None
    )


@pytest.mark.slow
def test_ensembling_notebook_reproduces_the_objective(tmp_path: Path) -> None:
    data = tmp_path / "telco.csv"
    pd.read_csv(TELCO).sample(n=600, random_state=1).to_csv(data, index=False)
    job = mlpilot.run_job(
        str(data),
        target="Churn",
        output=tmp_path / "job",
        name="ensnb",
        mode="ENSEMBLING",
        algorithms=("lightgbm", "linear-learner", "extra-trees"),
        objective="F1",  # a decision threshold is replayed too
        problem_type="BinaryClassification",
        max_candidates=3,
        parallelism=2,
        generate_reports=False,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    best = job.record["BestCandidate"]
    assert best["Mlpilot"]["Layer"] == 3  # the weighted ensemble, stackers among its inputs
    assert job.record["Mlpilot"]["Reports"]["CandidateDefinitionNotebook"]["Status"] == "Completed"
    path = Path(job.record["AutoMLJobArtifacts"]["CandidateDefinitionNotebookLocation"])
    nb = read_notebook(path)
    sources = "\n".join(c.source for c in nb.cells)
    for name in best["Mlpilot"]["Weights"]:
        assert f'["{name}"] = {{' in sources  # every model of the blend, as literal Python
    assert "WEIGHTS = {" in tagged(nb, "weights").source
    execute_notebook(path, html=False)  # raises on a failed cell (the assertion included)
    nb = read_notebook(path)
    printed = output_text(tagged(nb, "compare"))
    match = re.search(r"F1: rebuilt (\S+), the job (\S+)", printed)
    assert match, printed
    value = best["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert float(match.group(2)) == value
    assert abs(float(match.group(1)) - value) <= 1e-9
    assert "unedited" in printed


@pytest.mark.slow
def test_log_loss_ensemble_is_calibrated_and_its_notebook_reproduces_it(tmp_path: Path) -> None:
    """A LogLoss ENSEMBLING job fits a temperature and a floor on the ensemble's out-of-fold
    predictions: the record keeps both log losses, the leaderboard value is the calibrated one,
    the package and its saved validation predictions carry it, the notebook rebuilds it."""
    job = mlpilot.run_job(
        str(PENGUINS),
        target="species",
        output=tmp_path / "job",
        name="calnb",
        mode="ENSEMBLING",
        algorithms=("linear-learner",),  # its probabilities are too soft on penguins
        objective="LogLoss",
        problem_type="MulticlassClassification",
        max_candidates=1,
        parallelism=2,
        generate_reports=False,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    best = job.record["BestCandidate"]
    # One model, calibrated: it ships as an ensemble of one, the candidate carrying the
    # calibration (the model's own candidate stays as trained).
    assert best["Mlpilot"]["Layer"] == 3 and len(best["Mlpilot"]["Weights"]) == 1
    calibration = best["Mlpilot"]["Calibration"]
    (single,) = [c for c in job.candidates.values() if c["Mlpilot"].get("Layer") == 1]
    before = single["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert before == pytest.approx(calibration["BeforeLogLoss"], rel=1e-9)
    value = best["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert calibration["AfterLogLoss"] == value
    assert calibration["AfterLogLoss"] < calibration["BeforeLogLoss"]
    folder = Path(best["Mlpilot"]["ModelLocation"])
    rows, _, saved = load_validation_predictions(str(folder))
    y = load_prepared(str(job.layout.data_sample / "ensemble-data")).y  # the notebook's copy
    log_loss = get_metric("LogLoss").fn(y[rows], saved, None, 0, 3)  # type: ignore[misc]
    assert log_loss == pytest.approx(value, abs=1e-12)  # the calibrated predictions
    model = mlpilot.load_model(job.layout.root)
    kept = {"Temperature": calibration["Temperature"], "Floor": calibration["Floor"]}
    assert model.info["candidate"]["Calibration"] == kept
    path = Path(job.record["AutoMLJobArtifacts"]["CandidateDefinitionNotebookLocation"])
    execute_notebook(path, html=False)
    printed = output_text(tagged(read_notebook(path), "compare"))
    match = re.search(r"LogLoss: rebuilt (\S+), the job (\S+)", printed)
    assert match, printed
    assert abs(float(match.group(1)) - value) <= 1e-9
    assert "unedited" in printed
