"""End-to-end tests of the AutoML job (``mlpilot.run_job`` / ``mlpilot.jobs.AutoMLJob``) on small
slices of the test data sets: records, leaderboards, limits, failures, inputs, stopping.

Jobs are shared between tests through module-scoped fixtures; budgets are small (a few candidates
of the fast algorithms, two workers).
"""

from __future__ import annotations

import gzip
import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

import mlpilot
from helpers_algorithms import CRASH_MESSAGE
from helpers_data import ABALONE, ADULT, TELCO, WINE
from mlpilot.config import JobConfig
from mlpilot.data import read_table
from mlpilot.errors import ConfigError, DataError, MlpilotError
from mlpilot.jobs import AutoMLJob
from mlpilot.reports import WhiteBox

if TYPE_CHECKING:
    from conftest import S3Server

# Left out of `make test-fast`: whole jobs.
pytestmark = pytest.mark.slow


FAST = ("lightgbm", "linear-learner", "xgboost")
BINARY_METRICS = {
    "Accuracy",
    "AUC",
    "BalancedAccuracy",
    "F1",
    "InferenceLatency",
    "LogLoss",
    "Precision",
    "Recall",
}
MULTICLASS_METRICS = {
    "Accuracy",
    "BalancedAccuracy",
    "F1macro",
    "InferenceLatency",
    "LogLoss",
    "PrecisionMacro",
    "RecallMacro",
}
REGRESSION_METRICS = {"InferenceLatency", "MAE", "MSE", "R2", "RMSE"}
#: Metrics only in SageMaker's extended enum: StandardMetricName without MetricName.
EXTENDED_ONLY = {"LogLoss", "InferenceLatency"}


# -- helpers ---------------------------------------------------------------------------------
def telco_lines(start: int, stop: int) -> str:
    """The Telco header plus data lines ``start`` (1-based) to ``stop`` inclusive, as written."""
    with TELCO.open(encoding="utf-8") as handle:
        lines = handle.readlines()
    return lines[0] + "".join(lines[start : stop + 1])


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


class Recorder:
    """A job observer keeping every secondary status (in order, without repeats) and every
    finished candidate."""

    def __init__(self) -> None:
        self.statuses: list[str] = []
        self.finished: list[dict[str, Any]] = []

    def on_status(self, job: AutoMLJob) -> None:
        if not self.statuses or self.statuses[-1] != job.secondary_status:
            self.statuses.append(job.secondary_status)

    def on_candidate(self, job: AutoMLJob, candidate: dict[str, Any]) -> None:
        self.finished.append(candidate)


def run(data: str | Path | pd.DataFrame, output: Path, name: str, **settings: Any) -> AutoMLJob:
    """``mlpilot.run_job`` with the tests' defaults: two workers, Mode HYPERPARAMETER_TUNING
    whenever algorithms are named (AUTO refuses AlgorithmsConfig), and no explainability or
    model-quality report (tests/test_reports.py covers them; SHAP on a forest alone took
    25 s of this file's time)."""
    settings.setdefault("parallelism", 2)
    settings.setdefault("generate_reports", False)
    if "algorithms" in settings:
        settings.setdefault("mode", "HYPERPARAMETER_TUNING")
    target = settings.pop("target", "Churn")
    return mlpilot.run_job(
        data if isinstance(data, pd.DataFrame) else str(data),
        target=target,
        output=output,
        name=name,
        **settings,
    )


def metrics_of(candidate: dict[str, Any]) -> dict[str, float]:
    return {
        d["StandardMetricName"]: d["Value"]
        for d in candidate.get("CandidateProperties", {}).get("CandidateMetrics", [])
    }


def by_algorithm(job: AutoMLJob, algorithm: str) -> dict[str, Any]:
    (candidate,) = [c for c in job.candidates.values() if c["Mlpilot"]["Algorithm"] == algorithm]
    return candidate


def on_disk(job: AutoMLJob) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((job.layout.root / "job.json").read_text())
    return record


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Slices of the Telco table, written once for the module."""
    root = tmp_path_factory.mktemp("job-data")
    write(root / "telco2000.csv", telco_lines(1, 2000))
    write(root / "telco1000.csv", telco_lines(1, 1000))
    write(root / "telco-holdout.csv", telco_lines(2001, 2600))
    return root


# -- a binary job (Telco, 2,000 rows): record, metrics, model, leaderboard, determinism ----------
BINARY_SETTINGS: dict[str, Any] = {"algorithms": FAST, "max_candidates": 5, "seed": 0}


@pytest.fixture(scope="module")
def binary(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[AutoMLJob, Recorder]:
    recorder = Recorder()
    job = run(
        data_dir / "telco2000.csv",
        tmp_path_factory.mktemp("binary") / "job",
        "telco",
        observers=[recorder],
        generate_reports=True,  # the record's report phases are checked below
        **BINARY_SETTINGS,
    )
    return job, recorder


def test_binary_job_completes_after_max_candidates(binary: tuple[AutoMLJob, Recorder]) -> None:
    job, recorder = binary
    assert job.status == "Completed", job.record.get("FailureReason")
    assert job.secondary_status == "Completed"
    assert recorder.statuses[-4:] == [
        "MaxCandidatesReached",
        "GeneratingModelInsightsReport",
        "GeneratingExplainabilityReport",
        "Completed",
    ]
    for phase in ("AnalyzingData", "FeatureEngineering", "ModelTuning"):
        assert phase in recorder.statuses
    assert len(job.candidates) == 5
    assert len(recorder.finished) == 5
    assert job.record["EndTime"] >= job.record["CreationTime"]
    assert "FailureReason" not in job.record
    assert "PartialFailureReasons" not in job.record
    # The record on disk is the record in memory.
    assert on_disk(job) == json.loads(json.dumps(job.record, default=str))


def test_binary_every_candidate_scored_on_every_metric(binary: tuple[AutoMLJob, Recorder]) -> None:
    job, _ = binary
    for candidate in job.candidates.values():
        assert candidate["CandidateStatus"] == "Completed", candidate.get("FailureReason")
        assert candidate["ObjectiveStatus"] == "Succeeded"
        data = candidate["CandidateProperties"]["CandidateMetrics"]
        assert {d["StandardMetricName"] for d in data} == BINARY_METRICS
        for datum in data:
            name, value = datum["StandardMetricName"], datum["Value"]
            assert datum["Set"] == "Validation"
            assert ("MetricName" in datum) == (name not in EXTENDED_ONLY), datum
            assert math.isfinite(value), datum
            if name == "InferenceLatency":
                assert 0 < value < 1.0  # seconds per row
            elif name == "LogLoss":
                assert 0 < value < 1.0
            else:
                assert 0 <= value <= 1, datum
        values = metrics_of(candidate)
        # Metrics come from the same pooled validation predictions: F1 is the harmonic mean of
        # that precision and recall.
        p, r = values["Precision"], values["Recall"]
        assert values["F1"] == pytest.approx(2 * p * r / (p + r), rel=1e-9)
        assert candidate["FinalAutoMLJobObjectiveMetric"]["Value"] == values["F1"]


def test_binary_objective_and_resolved_attributes(binary: tuple[AutoMLJob, Recorder]) -> None:
    job, _ = binary
    resolved = job.record["ResolvedAttributes"]
    assert resolved["AutoMLJobObjective"] == {"MetricName": "F1"}
    problem = resolved["AutoMLProblemTypeResolvedAttributes"]["TabularResolvedAttributes"]
    assert problem == {"ProblemType": "BinaryClassification"}
    assert resolved["CompletionCriteria"]["MaxCandidates"] == 5
    profile = job.record["Mlpilot"]["Profile"]
    assert profile["Rows"] == 2000
    assert profile["Validation"] == "cross-validation"

    best = job.record["BestCandidate"]
    final = best["FinalAutoMLJobObjectiveMetric"]
    assert final["Type"] == "Maximize"
    assert final["MetricName"] == final["StandardMetricName"] == "F1"
    f1s = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in job.candidates.values()]
    assert final["Value"] == max(f1s)
    # The best beats a constant predictor by a margin.
    assert metrics_of(best)["AUC"] > 0.75
    assert final["Value"] > 0.5


def test_binary_best_model_package_loads_and_predicts(
    binary: tuple[AutoMLJob, Recorder], data_dir: Path
) -> None:
    job, _ = binary
    best = job.record["BestCandidate"]
    (container,) = best["InferenceContainers"]
    archive = Path(container["ModelDataUrl"])
    assert archive.name == "model.tar.gz"
    assert archive.is_file()
    assert archive.parent == Path(best["Mlpilot"]["FinalModel"])
    assert archive.parent == job.layout.final_model(best["CandidateName"])
    assert container["Environment"]["MODEL_NAME"] == best["CandidateName"]

    model = mlpilot.load_model(archive)
    assert model.candidate_name == best["CandidateName"]
    assert sorted(model.labels) == ["No", "Yes"]
    assert "Churn" not in model.input_columns
    holdout = pd.read_csv(data_dir / "telco-holdout.csv")  # rows the job never saw
    predictions = model.predict(holdout.drop(columns=["Churn"]), probabilities=True)
    assert len(predictions) == len(holdout)
    assert set(predictions["predicted_label"]) <= {"No", "Yes"}
    truth = (holdout["Churn"] == "Yes").astype(int)
    assert roc_auc_score(truth, predictions["probability_Yes"]) > 0.75
    assert (predictions["predicted_label"] == holdout["Churn"]).mean() > 0.7


def test_binary_results_read_back(binary: tuple[AutoMLJob, Recorder]) -> None:
    job, _ = binary
    results = mlpilot.load_job(job.layout.root)
    assert results.status == "Completed"
    best_name = job.record["BestCandidate"]["CandidateName"]
    assert results.record["BestCandidate"]["CandidateName"] == best_name
    assert list(results.leaderboard()["candidate"]) == list(job.leaderboard()["candidate"])
    on_file = pd.read_csv(job.layout.leaderboard_csv)
    assert list(on_file["candidate"]) == list(job.leaderboard()["candidate"])
    lines = job.layout.candidates_log.read_text().splitlines()
    assert len(lines) == 5
    # Every candidate kept its model package.
    for candidate in job.candidates.values():
        assert (Path(candidate["Mlpilot"]["ModelLocation"]) / "mlpilot-model.json").is_file()


def test_binary_leaderboard(binary: tuple[AutoMLJob, Recorder]) -> None:
    job, _ = binary
    board = job.leaderboard()
    for column in (
        "rank",
        "candidate",
        "algorithm",
        "status",
        "objective",
        *BINARY_METRICS,
        "train_seconds",
        "predict_ms_per_row",
        "steps",
        "hyperparameters",
        "failure_reason",
    ):
        assert column in board.columns, column
    assert list(board["rank"]) == [1, 2, 3, 4, 5]
    assert board.loc[0, "candidate"] == job.record["BestCandidate"]["CandidateName"]
    objective = board["objective"].astype(float)
    assert objective.is_monotonic_decreasing  # F1: larger is better, best first
    assert (board["objective_std"] > 0).all()  # over the folds (or holdout resamples)
    assert (objective == board["F1"]).all()
    assert np.allclose(board["predict_ms_per_row"], board["InferenceLatency"] * 1000)
    assert set(board["algorithm"]) <= set(FAST)
    # The first trials are each algorithm's defaults, in the configured order.
    first = board.sort_values("trial").head(3)
    assert list(first["algorithm"]) == list(FAST)
    for text in board["hyperparameters"]:
        assert isinstance(json.loads(text), dict)
    assert (board["train_seconds"] > 0).all()
    assert board["steps"].str.endswith(tuple(FAST)).all()


def test_output_folder_holding_a_job_is_refused(
    binary: tuple[AutoMLJob, Recorder], data_dir: Path
) -> None:
    job, _ = binary
    before = (job.layout.root / "job.json").read_bytes()
    log = job.layout.candidates_log.read_bytes()
    with pytest.raises(ConfigError, match="already holds a job"):
        run(data_dir / "telco1000.csv", job.layout.root, "other", algorithms=FAST, max_candidates=1)
    assert (job.layout.root / "job.json").read_bytes() == before
    assert job.layout.candidates_log.read_bytes() == log


def leaderboard_signature(job: AutoMLJob) -> list[tuple[str, str, float]]:
    board = job.leaderboard()
    return list(
        zip(
            board["candidate"],
            board["hyperparameters"],
            board["objective"].astype(float),
            strict=True,
        )
    )


def test_same_seed_gives_the_same_leaderboard(
    binary: tuple[AutoMLJob, Recorder], data_dir: Path, tmp_path: Path
) -> None:
    first, _ = binary
    again = run(data_dir / "telco2000.csv", tmp_path / "again", "telco", **BINARY_SETTINGS)
    assert again.status == "Completed"
    assert leaderboard_signature(again) == leaderboard_signature(first)
    best_name = first.record["BestCandidate"]["CandidateName"]
    assert again.record["BestCandidate"]["CandidateName"] == best_name


def test_other_seed_gives_other_candidates(
    binary: tuple[AutoMLJob, Recorder], data_dir: Path, tmp_path: Path
) -> None:
    first, _ = binary
    other = run(
        data_dir / "telco2000.csv", tmp_path / "other", "telco", **{**BINARY_SETTINGS, "seed": 1}
    )
    assert other.status == "Completed"
    assert other.record["Mlpilot"]["Seed"] == 1
    assert sorted(other.candidates) != sorted(first.candidates)
    assert leaderboard_signature(other) != leaderboard_signature(first)


# -- multiclass and regression ----------------------------------------------------------------
def test_multiclass_job_from_a_dataframe(tmp_path: Path) -> None:
    wine = pd.read_csv(WINE).sample(2000, random_state=0).reset_index(drop=True)
    job = run(wine, tmp_path / "wine", "wine", target="quality", algorithms=FAST, max_candidates=3)
    assert job.status == "Completed", job.record.get("FailureReason")
    resolved = job.record["ResolvedAttributes"]
    problem = resolved["AutoMLProblemTypeResolvedAttributes"]["TabularResolvedAttributes"]
    assert problem["ProblemType"] == "MulticlassClassification"
    assert resolved["AutoMLJobObjective"]["MetricName"] == "Accuracy"
    uri = job.record["AutoMLJobInputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert uri == "dataframe://in-memory"
    completed = [c for c in job.candidates.values() if c["CandidateStatus"] == "Completed"]
    assert completed
    for candidate in completed:
        assert set(metrics_of(candidate)) == MULTICLASS_METRICS
    best = job.record["BestCandidate"]
    majority = wine["quality"].value_counts(normalize=True).max()
    assert best["FinalAutoMLJobObjectiveMetric"]["Value"] > majority + 0.02
    model = mlpilot.load_model(job.layout.root)
    assert sorted(model.labels) == sorted(wine["quality"].unique().tolist())
    proba = model.predict_proba(wine.drop(columns=["quality"]).head(50))
    assert proba.shape == (50, wine["quality"].nunique())
    assert np.allclose(proba.sum(axis=1), 1.0)


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> AutoMLJob:
    return run(
        ABALONE,
        tmp_path_factory.mktemp("abalone") / "job",
        "abalone",
        target="Rings",
        algorithms=FAST,
        max_candidates=3,
    )


def test_regression_job(regression: AutoMLJob) -> None:
    job = regression
    assert job.status == "Completed", job.record.get("FailureReason")
    resolved = job.record["ResolvedAttributes"]
    problem = resolved["AutoMLProblemTypeResolvedAttributes"]["TabularResolvedAttributes"]
    assert problem["ProblemType"] == "Regression"
    best = job.record["BestCandidate"]
    final = best["FinalAutoMLJobObjectiveMetric"]
    assert final["StandardMetricName"] == "MSE"
    assert final["Type"] == "Minimize"
    assert final["Value"] == min(
        c["FinalAutoMLJobObjectiveMetric"]["Value"]
        for c in job.candidates.values()
        if c["CandidateStatus"] == "Completed"
    )
    assert metrics_of(best)["R2"] > 0.3
    board = job.leaderboard()
    assert board["objective"].astype(float).is_monotonic_increasing  # MSE: smaller first
    model = mlpilot.load_model(job.layout.root)
    rows = pd.read_csv(ABALONE).head(20).drop(columns=["Rings"])
    predicted = model.predict(rows)["predicted_label"]
    assert predicted.dtype.kind == "f"
    assert predicted.between(1, 30).all()


def test_regression_metrics_are_consistent(regression: AutoMLJob) -> None:
    for candidate in regression.candidates.values():
        if candidate["CandidateStatus"] != "Completed":
            continue
        values = metrics_of(candidate)
        assert set(values) == REGRESSION_METRICS
        assert values["RMSE"] == pytest.approx(math.sqrt(values["MSE"]), rel=1e-9)
        assert values["MAE"] <= values["RMSE"] + 1e-12
        assert values["R2"] < 1
        assert candidate["FinalAutoMLJobObjectiveMetric"]["Value"] == values["MSE"]


# -- the runtime limit ---------------------------------------------------------------------
def test_runtime_limit_is_kept(tmp_path: Path) -> None:
    adult = pd.read_csv(ADULT).sample(10_000, random_state=0)
    data = tmp_path / "adult.csv"
    adult.to_csv(data, index=False)
    recorder = Recorder()
    started = time.monotonic()
    job = run(
        data, tmp_path / "job", "adult", target="income", max_runtime=20, observers=[recorder]
    )
    wall = time.monotonic() - started
    assert job.status == "Completed", job.record.get("FailureReason")
    # The clock ended the search (how close the job keeps to its budget is a benchmark figure:
    # a loaded machine misses any fixed margin).
    phases = [s for s in recorder.statuses if not s.startswith("Generating")]  # the reports'
    assert phases[-2:] == ["MaxAutoMLJobRuntimeReached", "Completed"]
    elapsed = job.record["Mlpilot"]["ElapsedSeconds"]
    assert elapsed <= wall  # the job's clock runs within the call
    assert elapsed >= 10.0  # the budget was used, not abandoned
    # No model started training after the deadline (the job's clock starts before CreationTime):
    # the search's (layer 1) and the stackers (layer 2). The weighted ensemble (layer 3) is
    # assembled from them in the final phase, which a loaded machine can push past the deadline.
    deadline = job.record["CreationTime"] + 20
    trained = [c for c in job.candidates.values() if c["Mlpilot"].get("Layer", 1) in (1, 2)]
    assert trained and all(c["CreationTime"] < deadline for c in trained)
    assert job.record["ResolvedAttributes"]["CompletionCriteria"] == {
        "MaxCandidates": 100,
        "MaxAutoMLJobRuntimeInSeconds": 20,
    }
    statuses = [c["CandidateStatus"] for c in job.candidates.values()]
    assert "InProgress" not in statuses
    # How many finish in 20 s depends on the machine's load (three on a quiet 2-core machine,
    # one at a load of 7): that the clock ended the search is what the phases above show.
    assert statuses.count("Completed") >= 1
    assert Path(job.record["BestCandidate"]["InferenceContainers"][0]["ModelDataUrl"]).is_file()


# -- failing candidates ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def failures(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AutoMLJob:
    """One job whose trials are, in order: LightGBM, an algorithm whose fit raises, and one that
    kills its worker process."""
    return run(
        data_dir / "telco1000.csv",
        tmp_path_factory.mktemp("failures") / "job",
        "failures",
        algorithms=("lightgbm", "helpers_algorithms:Crashing", "helpers_algorithms:Dying"),
        max_candidates=3,
    )


def test_failing_candidates_leave_the_job_completed(failures: AutoMLJob) -> None:
    job = failures
    assert job.status == "Completed", job.record.get("FailureReason")
    assert job.secondary_status == "Completed"
    best = job.record["BestCandidate"]
    assert best["Mlpilot"]["Algorithm"] == "lightgbm"
    assert Path(best["InferenceContainers"][0]["ModelDataUrl"]).is_file()
    board = job.leaderboard()
    assert list(board["status"]) == ["Completed", "Failed", "Failed"]
    assert board.loc[0, "candidate"] == best["CandidateName"]
    assert (board["failure_reason"].iloc[1:] != "").all()


def test_crashing_candidate_is_failed_with_its_reason(failures: AutoMLJob) -> None:
    crashed = by_algorithm(failures, "helpers_algorithms:Crashing")
    assert crashed["CandidateStatus"] == "Failed"
    assert crashed["ObjectiveStatus"] == "Failed"
    assert crashed["FailureReason"] == f"RuntimeError: {CRASH_MESSAGE}"
    assert "FinalAutoMLJobObjectiveMetric" not in crashed
    assert "misbehave" in crashed["Mlpilot"]["Traceback"]
    messages = [r["PartialFailureMessage"] for r in failures.record["PartialFailureReasons"]]
    assert f"{crashed['CandidateName']}: RuntimeError: {CRASH_MESSAGE}" in messages


def test_dead_worker_fails_only_its_candidate(failures: AutoMLJob) -> None:
    dead = by_algorithm(failures, "helpers_algorithms:Dying")
    assert dead["CandidateStatus"] == "Failed"
    assert "worker process died" in dead["FailureReason"]
    messages = [r["PartialFailureMessage"] for r in failures.record["PartialFailureReasons"]]
    assert len(messages) == 2
    assert any(m.startswith(f"{dead['CandidateName']}: ") for m in messages)


def test_candidate_over_its_time_limit_is_stopped_and_the_job_goes_on(
    data_dir: Path, tmp_path: Path
) -> None:
    recorder = Recorder()
    job = run(
        data_dir / "telco1000.csv",
        tmp_path / "job",
        "slow",
        algorithms=("helpers_algorithms:Sleeping", "helpers_algorithms:Constant"),
        max_candidates=3,
        max_runtime_per_candidate=2,
        observers=[recorder],
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    criteria = job.record["ResolvedAttributes"]["CompletionCriteria"]
    assert criteria["MaxRuntimePerTrainingJobInSeconds"] == 2
    first = recorder.finished[0]
    assert first["Mlpilot"]["Algorithm"] == "helpers_algorithms:Sleeping"
    assert first["Mlpilot"]["TrialNumber"] == 0
    assert first["CandidateStatus"] == "Stopped"
    assert "time limit of 2 s" in first["FailureReason"]
    # Sleeping never returns on its own: an end recorded at all means its worker was killed.
    assert first["EndTime"] >= first["CreationTime"]
    assert "PartialFailureReasons" not in job.record  # stopped is not failed
    # The job went on: the constant model completed and is the best; the third trial was
    # started after the first was stopped, and finished too.
    best = job.record["BestCandidate"]
    assert best["Mlpilot"]["Algorithm"] == "helpers_algorithms:Constant"
    third = [c for c in recorder.finished if c["Mlpilot"]["TrialNumber"] == 2]
    assert len(third) == 1
    assert third[0]["CreationTime"] >= first["EndTime"]
    assert third[0]["CandidateStatus"] in ("Completed", "Stopped")
    assert len(job.candidates) == 3


def test_job_fails_when_no_candidate_completes(data_dir: Path, tmp_path: Path) -> None:
    job = run(
        data_dir / "telco1000.csv",
        tmp_path / "job",
        "all-fail",
        algorithms=("helpers_algorithms:Crashing",),
        max_candidates=2,
    )
    assert job.status == "Failed"
    assert job.secondary_status == "Failed"
    reason = job.record["FailureReason"]
    assert reason.startswith("No candidate completed")
    assert CRASH_MESSAGE in reason
    assert "BestCandidate" not in job.record
    assert on_disk(job)["AutoMLJobStatus"] == "Failed"
    assert len(job.record["PartialFailureReasons"]) == 2
    with pytest.raises(MlpilotError, match="no packaged best model"):
        mlpilot.load_model(job.layout.root)


# -- validation, weights, candidate definitions --------------------------------------------
def test_validation_channel(data_dir: Path, tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", telco_lines(1, 1500))
    valid = write(tmp_path / "valid.csv", telco_lines(1501, 2000))
    job = run(
        train,
        tmp_path / "job",
        "channel",
        validation_data=str(valid),
        algorithms=("lightgbm",),
        max_candidates=1,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    profile = job.record["Mlpilot"]["Profile"]
    assert profile["Validation"] == "validation channel"
    assert profile["Rows"] == 2000
    channels = job.record["AutoMLJobInputDataConfig"]
    assert [c["ChannelType"] for c in channels] == ["training", "validation"]
    best = job.record["BestCandidate"]
    assert best["Mlpilot"]["Fits"] == 1
    # The search's model was trained on the training channel alone: its predictions on the
    # validation channel give back the recorded metrics, as scikit-learn computes them.
    searched = mlpilot.load_model(best["Mlpilot"]["ModelLocation"])
    rows = read_table(str(valid))
    truth = rows["Churn"].to_numpy()
    out = searched.predict(rows.drop(columns=["Churn"]), probabilities=True)
    proba = out[["probability_No", "probability_Yes"]].to_numpy()
    expected = {
        "Accuracy": accuracy_score(truth, out["predicted_label"]),
        "AUC": roc_auc_score(truth == "Yes", out["probability_Yes"]),
        "BalancedAccuracy": balanced_accuracy_score(truth, out["predicted_label"]),
        "F1": f1_score(truth, out["predicted_label"], pos_label="Yes"),
        "LogLoss": log_loss(truth, proba, labels=["No", "Yes"]),
        "Precision": precision_score(truth, out["predicted_label"], pos_label="Yes"),
        "Recall": recall_score(truth, out["predicted_label"], pos_label="Yes"),
    }
    recorded = metrics_of(best)
    for name, value in expected.items():
        assert recorded[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def test_validation_fraction_gives_a_holdout(data_dir: Path, tmp_path: Path) -> None:
    job = run(
        data_dir / "telco1000.csv",
        tmp_path / "job",
        "holdout",
        validation_fraction=0.3,
        algorithms=("lightgbm",),
        max_candidates=1,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    profile = job.record["Mlpilot"]["Profile"]
    assert profile["Validation"] == "holdout"
    assert "30%" in profile["ValidationReason"]
    assert job.record["DataSplitConfig"] == {"ValidationFraction": 0.3}
    assert job.record["BestCandidate"]["Mlpilot"]["Fits"] == 1
    # A holdout candidate saw 70% of the rows: the packaged model is refit on all of them.
    best = job.record["BestCandidate"]["Mlpilot"]
    assert best["Refit"] is True
    assert "refit on all 1,000 rows" in best["RefitNote"]
    package = mlpilot.load_model(job.layout.root)
    assert len(package.members) == 1
    assert package.info["candidate"]["Refit"] is True


def test_cross_validated_boosting_candidate_is_packaged_as_its_fold_bag(
    data_dir: Path, tmp_path: Path
) -> None:
    job = run(
        data_dir / "telco1000.csv",
        tmp_path / "job",
        "bag",
        algorithms=("lightgbm",),
        max_candidates=1,
    )
    assert job.record["Mlpilot"]["Profile"]["Validation"] == "cross-validation"
    best = job.record["BestCandidate"]["Mlpilot"]
    assert best["Refit"] is False
    assert "cross-validated bag of 5 fold models" in best["RefitNote"]
    package = mlpilot.load_model(job.layout.root)
    assert len(package.members) == 5
    # The bag is the model the validation score measured: the search's package, as saved.
    searched = mlpilot.load_job(job.layout.root).model(job.record["BestCandidate"]["CandidateName"])
    rows = pd.read_csv(TELCO, dtype=str, keep_default_na=False, na_values=[""]).iloc[3000:3050]
    pd.testing.assert_frame_equal(package.predict(rows), searched.predict(rows))


def test_cross_validated_forest_candidate_is_refit(data_dir: Path, tmp_path: Path) -> None:
    # No stopping point to guess, and a bag of five forests would be five times the size.
    job = run(
        data_dir / "telco1000.csv",
        tmp_path / "job",
        "forest",
        algorithms=("extra-trees",),
        max_candidates=1,
    )
    assert job.record["Mlpilot"]["Profile"]["Validation"] == "cross-validation"
    best = job.record["BestCandidate"]["Mlpilot"]
    assert best["Refit"] is True
    assert len(mlpilot.load_model(job.layout.root).members) == 1


def test_sample_weight_column_is_not_a_feature(data_dir: Path, tmp_path: Path) -> None:
    table = pd.read_csv(data_dir / "telco1000.csv", dtype=str, keep_default_na=False)
    table["row_weight"] = np.where(table["Churn"] == "Yes", "2.5", "1")
    data = tmp_path / "weighted.csv"
    table.to_csv(data, index=False)
    job = run(
        data,
        tmp_path / "job",
        "weighted",
        sample_weight="row_weight",
        algorithms=("lightgbm",),
        max_candidates=1,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    tabular = job.record["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    assert tabular["SampleWeightAttributeName"] == "row_weight"
    profile = json.loads(job.layout.profile.read_text())
    assert profile["sample_weight"] == "row_weight"
    names = [c["name"] for c in profile["columns"]]
    assert "row_weight" not in names
    assert "Churn" not in names
    assert "tenure" in names
    model = mlpilot.load_model(job.layout.root)
    assert "row_weight" not in model.input_columns
    assert "row_weight" not in model.feature_columns
    rows = table.drop(columns=["Churn", "row_weight"]).head(10)
    assert len(model.predict(rows)) == 10  # no weight needed to predict


def test_candidate_definitions_only(data_dir: Path, tmp_path: Path) -> None:
    job = run(
        data_dir / "telco1000.csv",
        tmp_path / "job",
        "defs-only",
        algorithms=FAST,
        candidates_only=True,
    )
    assert job.status == "Completed"
    assert job.secondary_status == "CandidateDefinitionsGenerated"
    assert "BestCandidate" not in job.record
    assert job.candidates == {}
    assert not job.layout.candidates_log.exists()
    definitions_path = Path(job.record["Mlpilot"]["CandidateDefinitions"])
    assert definitions_path == job.layout.candidate_definitions
    definitions = json.loads(definitions_path.read_text())
    assert definitions["ProblemType"] == "BinaryClassification"
    assert definitions["Objective"] == "F1"
    assert set(definitions["Algorithms"]) == set(FAST)
    for name, spec in definitions["Algorithms"].items():
        assert spec["ranges"], name
        assert spec["defaults"], name
        assert spec["preprocessing_steps"], name
        for text in spec["ranges"].values():
            assert json.loads(text)["name"].endswith("Distribution")
    assert job.layout.profile.is_file()


# -- S3 input --------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["two-csv-parts", "gzip"])
def test_training_data_from_s3(layout: str, s3: S3Server, tmp_path: Path) -> None:
    if layout == "two-csv-parts":
        s3.put("churn/train/part-0001.csv", telco_lines(1, 500))
        s3.put("churn/train/part-0002.csv", telco_lines(501, 1000))
        settings: dict[str, Any] = {}
    else:
        s3.put("churn/train/data.csv.gz", gzip.compress(telco_lines(1, 1000).encode()))
        settings = {"compression": "Gzip"}
    uri = s3.uri("churn/train/")
    job = run(
        uri, tmp_path / "job", "from-s3", algorithms=("lightgbm",), max_candidates=1, **settings
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    assert job.record["Mlpilot"]["Profile"]["Rows"] == 1000
    channel = job.record["AutoMLJobInputDataConfig"][0]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == uri
    assert channel["CompressionType"] == ("Gzip" if layout == "gzip" else "None")
    assert Path(job.record["BestCandidate"]["InferenceContainers"][0]["ModelDataUrl"]).is_file()


def test_missing_s3_prefix_fails_the_job(s3: S3Server, tmp_path: Path) -> None:
    output = tmp_path / "job"
    with pytest.raises(DataError, match=r"s3://mlpilot-test/nothing/here does not exist"):
        run(s3.uri("nothing/here/"), output, "s3-missing")
    record = json.loads((output / "job.json").read_text())
    assert record["AutoMLJobStatus"] == "Failed"
    assert "does not exist" in record["FailureReason"]


# -- bad inputs ------------------------------------------------------------------------------
def _missing_target(root: Path) -> tuple[Path, dict[str, Any]]:
    return write(root / "d.csv", telco_lines(1, 200)), {"target": "Nope"}


def _single_value_target(root: Path) -> tuple[Path, dict[str, Any]]:
    rows = "".join(f"{i},{i % 7},yes\n" for i in range(50))
    return write(root / "d.csv", "a,b,label\n" + rows), {"target": "label"}


def _empty_file(root: Path) -> tuple[Path, dict[str, Any]]:
    return write(root / "d.csv", ""), {}


def _header_mismatch(root: Path) -> tuple[Path, dict[str, Any]]:
    write(root / "folder" / "part-1.csv", telco_lines(1, 100))
    renamed = telco_lines(101, 200).replace("customerID,gender,", "customerID,sex,", 1)
    write(root / "folder" / "part-2.csv", renamed)
    return root / "folder", {}


def _unreadable_file(root: Path) -> tuple[Path, dict[str, Any]]:
    garbage = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))
    return write(root / "d.csv", b"\xff\xfe" + garbage), {}


def _missing_file(root: Path) -> tuple[Path, dict[str, Any]]:
    return root / "nowhere.csv", {}


def _objective_for_regression(root: Path) -> tuple[Path, dict[str, Any]]:
    return write(root / "d.csv", telco_lines(1, 200)), {"objective": "MSE"}


def _validation_columns_differ(root: Path) -> tuple[Path, dict[str, Any]]:
    valid = telco_lines(201, 300).replace("customerID,gender,", "customerID,sex,", 1)
    return write(root / "d.csv", telco_lines(1, 200)), {
        "validation_data": str(write(root / "v.csv", valid))
    }


BAD_INPUTS: dict[str, tuple[Callable[[Path], tuple[Path, dict[str, Any]]], type, str]] = {
    "missing-target": (_missing_target, DataError, r"Target column 'Nope' is not in the data"),
    "single-value-target": (_single_value_target, DataError, r"single distinct value"),
    "empty-file": (_empty_file, DataError, r"empty"),
    "header-mismatch": (_header_mismatch, DataError, r"part-2\.csv: header differs"),
    "unreadable-file": (_unreadable_file, DataError, r"not a CSV file"),
    "missing-file": (_missing_file, DataError, r"nowhere\.csv does not exist"),
    "objective-not-for-problem": (
        _objective_for_regression,
        ConfigError,
        r"'MSE' does not apply to BinaryClassification",
    ),
    "validation-columns": (_validation_columns_differ, DataError, r"validation channel"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_the_job_with_a_clear_reason(case: str, tmp_path: Path) -> None:
    build, error, message = BAD_INPUTS[case]
    data, settings = build(tmp_path / "data")
    settings.setdefault("target", "Churn")
    output = tmp_path / "job"
    with pytest.raises(error, match=message) as caught:
        run(data, output, "bad-input", **settings)
    text = str(caught.value)
    assert "\n" not in text and len(text) < 1024
    record = json.loads((output / "job.json").read_text())
    assert record["AutoMLJobStatus"] == "Failed"
    assert record["AutoMLJobSecondaryStatus"] == "Failed"
    assert record["FailureReason"] == text
    assert "EndTime" in record
    assert "BestCandidate" not in record


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "bad_name!"}, r"Job name 'bad_name!' must be 1-32 letters"),
        ({"name": "a" * 33}, r"must be 1-32 letters"),
        ({"name": "a" + "-b" * 20}, r"must be 1-32 letters"),  # 41 characters
        ({"name": "churn\n"}, r"must be 1-32 letters"),
        ({"mode": "AUTO", "algorithms": ("lightgbm",)}, r"AlgorithmsConfig cannot be set"),
        ({"mode": "SOMETIMES"}, r"Unknown mode 'SOMETIMES'"),
        ({"problem_type": "BinaryClassification", "objective": "RMSE"}, r"does not apply"),
        ({"objective": "Happiness"}, r"Unknown objective metric 'Happiness'"),
        ({"objective": "MASE"}, r"'MASE' is a time-series forecasting metric"),
        (
            {"mode": "HYPERPARAMETER_TUNING", "algorithms": ("lightgbm", "gradient-magic")},
            r"Unknown algorithm 'gradient-magic'",
        ),
        ({"max_candidates": 0}, r"MaxCandidates must be between 1 and 750"),
        ({"max_runtime": 0}, r"MaxAutoMLJobRuntimeInSeconds must be at least 1"),
        ({"validation_fraction": 1.5}, r"ValidationFraction must be between 0 and 1"),
    ],
)
def test_bad_settings_are_refused_before_the_job_starts(
    settings: dict[str, Any], message: str, data_dir: Path, tmp_path: Path
) -> None:
    settings = dict(settings)
    name = settings.pop("name", "bad-settings")
    output = tmp_path / "job"
    with pytest.raises(ConfigError, match=message):
        mlpilot.run_job(
            str(data_dir / "telco1000.csv"), target="Churn", output=output, name=name, **settings
        )
    assert not output.exists()


# -- stopping --------------------------------------------------------------------------------
class StopAfterFirstCandidate(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.first_done = threading.Event()

    def on_candidate(self, job: AutoMLJob, candidate: dict[str, Any]) -> None:
        super().on_candidate(job, candidate)
        if candidate["CandidateStatus"] == "Completed":
            self.first_done.set()


def test_stop_keeps_and_packages_the_best_candidate(data_dir: Path, tmp_path: Path) -> None:
    config = JobConfig.tabular(
        name="stopped",
        training_data=str(data_dir / "telco2000.csv"),
        target="Churn",
        output_path=str(tmp_path / "job"),
        mode="HYPERPARAMETER_TUNING",  # type: ignore[arg-type]
        algorithms=FAST,
        max_runtime=600,
        parallelism=2,
    )
    observer = StopAfterFirstCandidate()
    # With the white box, as the CLI and the service run a job: stopping must end it as fast.
    job = AutoMLJob(config, observers=[observer, WhiteBox()])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            job.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        assert observer.first_done.wait(timeout=90), "no candidate finished"
        job.stop()
        # Generous for a loaded machine, and far short of the 600 s budget: the job ended
        # because it was asked to.
        thread.join(timeout=60)
    finally:
        job.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert not errors
    assert job.status == "Stopped"
    assert job.secondary_status == "Stopped"
    assert "Stopping" in observer.statuses
    assert on_disk(job)["AutoMLJobStatus"] == "Stopped"
    best = job.record["BestCandidate"]
    assert best["CandidateStatus"] == "Completed"
    # Nothing is refit after a stop: the candidate is packaged as trained in the search.
    assert best["Mlpilot"]["Refit"] is False
    note = best["Mlpilot"]["RefitNote"]
    assert "stopped" in note or "cross-validated bag" in note
    archive = Path(best["InferenceContainers"][0]["ModelDataUrl"])
    assert archive.is_file()
    model = mlpilot.load_model(archive)
    rows = pd.read_csv(data_dir / "telco1000.csv").head(5).drop(columns=["Churn"])
    assert len(model.predict(rows)) == 5
    statuses = {c["CandidateStatus"] for c in job.candidates.values()}
    assert "InProgress" not in statuses
    assert len(job.candidates) < 100
    for candidate in job.candidates.values():
        if candidate["CandidateStatus"] == "Stopped":
            assert "stopped" in candidate["FailureReason"]


def test_infinite_float_targets_are_left_out_like_missing_ones(tmp_path: Path) -> None:
    # A typed float target (DataFrame/Parquet) with inf: those rows cannot be learned from.
    table = pd.read_csv(ABALONE).head(400)
    table["Rings"] = table["Rings"].astype(float)
    table.loc[table.index[:3], "Rings"] = np.inf
    job = run(
        table,
        tmp_path / "job",
        "inf",
        target="Rings",
        algorithms=("linear-learner",),
        max_candidates=1,
        problem_type="Regression",
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    assert job.profile is not None and job.profile.target.missing_rows == 3
    assert np.isfinite(job.record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["Value"])
