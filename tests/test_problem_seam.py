"""The problem seam: the job orchestrator drives any :class:`~mlpilot.problems.Problem`.

A scripted problem (no data, no models) reports candidates through the job's session, so these
tests check what the orchestrator alone owns, in milliseconds: the phases in order, the
statuses, the candidate records and the best candidate, the package's record, the observers'
events, failures, stopping, and the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from mlpilot._types import Mode, SecondaryStatus
from mlpilot.config import JobConfig
from mlpilot.errors import ConfigError, MlpilotError
from mlpilot.jobs import AutoMLJob
from mlpilot.problems import (
    PROBLEM_TYPES,
    Analysis,
    CandidateReport,
    CandidateView,
    JobSession,
    PackagedModel,
    get_problem,
)
from mlpilot.problems.tabular import TabularProblem
from mlpilot.runtime import Executor, TaskOutcome


class IdleExecutor(Executor):
    """An executor nothing is submitted to (the scripted problem trains nothing)."""

    capacity = 2

    def submit(self, function: str, argument: Any, *, hard_limit: float | None = None) -> int:
        raise AssertionError("the scripted problem submits nothing")

    def wait(self, timeout: float) -> list[TaskOutcome]:
        return []

    def cancel(self, task_id: int) -> None:
        pass

    def running(self) -> int:
        return 0

    def shutdown(self) -> None:
        pass


class ScriptedProblem:
    """Reports the candidates it is given (name, status, F1), best last but one."""

    config_name: ClassVar[str] = "Scripted"
    trial_function: ClassVar[str] = "helpers_tasks:double"

    def __init__(self, candidates: list[tuple[str, str, float | None]], fail: str = "") -> None:
        self.script = candidates
        self.fail = fail
        self.calls: list[str] = []
        self.packaged: CandidateView | None = None

    def package_imports(self, config: Any) -> list[str]:
        return []

    def analyse(self, session: JobSession) -> Analysis:
        self.calls.append("analyse")
        if self.fail == "analyse":
            raise ConfigError("the data is not usable (scripted)")
        session.note("Sample", "no sample")
        return Analysis(
            problem_type="BinaryClassification",
            objective="F1",
            mode=Mode.HYPERPARAMETER_TUNING,
            mode_reason="set by the test",
            classification=True,
            resolved={"ProblemType": "BinaryClassification"},
            summary={"Rows": 10},
        )

    def define_candidates(self, session: JobSession) -> list[str]:
        self.calls.append("define_candidates")
        return [name for name, _, _ in self.script]

    def train(self, session: JobSession) -> str:
        self.calls.append("train")
        session.set_status(SecondaryStatus.MODEL_TUNING)
        for number, (name, status, value) in enumerate(self.script):
            details = {"TrialNumber": number, "Algorithm": "scripted", "ModelLocation": None}
            session.candidate_started(CandidateReport(name, "InProgress", details=details))
            if status == "Stop":
                session.budget.stop.set()
                return "Stopped"
            session.candidate_finished(
                CandidateReport(
                    name,
                    status,
                    objective_value=value,
                    metrics={} if value is None else {"F1": value},
                    failure_reason="" if status == "Completed" else "failed: scripted",
                    details=details,
                )
            )
        return "MaxCandidatesReached"

    def package(self, session: JobSession, best: CandidateView) -> PackagedModel:
        self.calls.append("package")
        self.packaged = best
        where = session.layout.final_model(best.name)
        where.mkdir(parents=True)
        (where / "model.tar.gz").write_bytes(b"scripted")
        return PackagedModel(where, refit=True, note="refit (scripted)", details={"Extra": 1})


class EventLog:
    """An observer that notes every event (only on_status and on_candidate are required)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.statuses: list[str] = []

    def on_status(self, job: AutoMLJob) -> None:
        status = job.secondary_status
        if not self.statuses or self.statuses[-1] != status:
            self.statuses.append(status)

    def on_candidate(self, job: AutoMLJob, candidate: dict[str, Any]) -> None:
        self.events.append(f"candidate {candidate['CandidateName']}")

    def time_reserve(self, job: AutoMLJob) -> float:
        return 4.0

    def on_candidates_defined(self, job: AutoMLJob, plan: Any) -> None:
        self.events.append(f"defined {plan}")

    def on_packaged(self, job: AutoMLJob) -> None:
        self.events.append("packaged")

    def on_finishing(self, job: AutoMLJob) -> None:
        self.events.append("finishing")


def make_job(
    tmp_path: Path, problem: ScriptedProblem, observer: EventLog, **config: Any
) -> AutoMLJob:
    cfg = JobConfig.tabular(
        name="seam",
        training_data="unused.csv",
        target="y",
        output_path=str(tmp_path / "job"),
        **config,
    )
    return AutoMLJob(cfg, executor=IdleExecutor(), observers=[observer], problem=problem)


def test_the_job_runs_a_problems_phases_and_records_what_it_reports(tmp_path: Path) -> None:
    problem = ScriptedProblem(
        [("a", "Completed", 0.5), ("b", "Failed", None), ("c", "Completed", 0.7)]
    )
    log = EventLog()
    job = make_job(tmp_path, problem, log, max_runtime=60)
    record = job.run()

    assert problem.calls == ["analyse", "define_candidates", "train", "package"]
    assert record["AutoMLJobStatus"] == "Completed"
    assert record["AutoMLProblemTypeConfigName"] == "Scripted"
    assert record["ResolvedAttributes"]["AutoMLProblemTypeResolvedAttributes"] == {
        "ScriptedResolvedAttributes": {"ProblemType": "BinaryClassification"}
    }
    assert record["Mlpilot"]["Profile"] == {"Rows": 10}
    assert record["Mlpilot"]["Sample"] == "no sample"
    assert log.statuses == [
        "Starting",
        "AnalyzingData",
        "FeatureEngineering",
        "ModelTuning",
        "MaxCandidatesReached",
        "Completed",
    ]
    assert log.events == [
        "defined ['a', 'b', 'c']",
        "candidate a",
        "candidate b",
        "candidate c",
        "packaged",
        "finishing",
    ]
    # The observers' reserve is kept back at the end of the budget.
    assert job.budget.end_extra == 4.0
    assert job.budget.end_reserve() == pytest.approx(1.5 + 0.03 * 60 + 4.0)

    # Records: the best is the one with the higher F1, packaged with its container.
    best = record["BestCandidate"]
    assert best["CandidateName"] == "c" and problem.packaged is not None
    assert problem.packaged.name == "c" and problem.packaged.objective_value == 0.7
    assert best["FinalAutoMLJobObjectiveMetric"]["Value"] == 0.7
    assert best["InferenceContainers"][0]["ModelDataUrl"].endswith("/c/model.tar.gz")
    supported = best["InferenceContainers"][0]["Environment"]["SAGEMAKER_INFERENCE_SUPPORTED"]
    assert "probabilities" in supported  # a classification model
    assert best["Mlpilot"]["Refit"] is True and best["Mlpilot"]["Extra"] == 1
    assert best["Mlpilot"]["RefitNote"] == "refit (scripted)"
    assert record["PartialFailureReasons"] == [{"PartialFailureMessage": "b: failed: scripted"}]
    assert [c["CandidateStatus"] for c in job.candidates.values()] == [
        "Completed",
        "Failed",
        "Completed",
    ]
    assert job.layout.candidates_log.read_text().count("\n") == 3
    assert list(job.leaderboard()["candidate"])[:2] == ["c", "a"]
    assert job.problem_type == "BinaryClassification"
    assert job.objective == "F1" and job.mode is Mode.HYPERPARAMETER_TUNING


def test_a_standalone_flag_keeps_an_unassembled_candidate_from_being_best(
    tmp_path: Path,
) -> None:
    class Stacking(ScriptedProblem):
        def train(self, session: JobSession) -> str:
            details = {"TrialNumber": 0, "Algorithm": "scripted"}
            for name, value, standalone in (("base", 0.5, True), ("stacker", 0.9, False)):
                session.candidate_finished(
                    CandidateReport(
                        name,
                        "Completed",
                        value,
                        {"F1": value},
                        details=details,
                        standalone=standalone,
                    )
                )
            return "MaxCandidatesReached"

    job = make_job(tmp_path, Stacking([]), EventLog())
    job.run()
    assert job.record["BestCandidate"]["CandidateName"] == "base"


def test_no_completed_candidate_fails_the_job_with_the_first_reasons(tmp_path: Path) -> None:
    problem = ScriptedProblem([("a", "Failed", None), ("b", "Failed", None)])
    log = EventLog()
    record = make_job(tmp_path, problem, log).run()
    assert record["AutoMLJobStatus"] == "Failed"
    assert record["FailureReason"].startswith("No candidate completed: a: failed: scripted; b:")
    assert "package" not in problem.calls and "packaged" not in log.events
    assert log.events[-1] == "finishing"


def test_a_problem_error_fails_the_job_and_is_raised(tmp_path: Path) -> None:
    problem = ScriptedProblem([], fail="analyse")
    log = EventLog()
    job = make_job(tmp_path, problem, log)
    with pytest.raises(MlpilotError, match="not usable"):
        job.run()
    assert job.record["AutoMLJobStatus"] == "Failed"
    assert job.record["FailureReason"] == "the data is not usable (scripted)"
    assert log.events == ["finishing"]


def test_a_stop_during_training_ends_the_job_stopped_and_closes_open_candidates(
    tmp_path: Path,
) -> None:
    problem = ScriptedProblem([("a", "Completed", 0.5), ("b", "Stop", None)])
    job = make_job(tmp_path, problem, EventLog())
    record = job.run()
    assert record["AutoMLJobStatus"] == "Stopped"
    assert job.best is not None and job.best.name == "a"
    assert "package" in problem.calls  # the best so far is still packaged
    b = job.candidates["b"]
    assert b["CandidateStatus"] == "Stopped"
    assert b["FailureReason"] == "the job ended before the candidate finished"


def test_candidates_only_stops_after_the_definitions(tmp_path: Path) -> None:
    problem = ScriptedProblem([("a", "Completed", 0.5)])
    log = EventLog()
    record = make_job(tmp_path, problem, log, candidates_only=True).run()
    assert problem.calls == ["analyse", "define_candidates"]
    assert record["AutoMLJobSecondaryStatus"] == "CandidateDefinitionsGenerated"
    assert log.events == ["defined ['a']", "finishing"]


def test_the_registry_builds_each_problem_type_and_names_the_supported_ones() -> None:
    assert PROBLEM_TYPES["Tabular"].endswith(":TabularProblem")
    first, second = get_problem("Tabular"), get_problem("Tabular")
    assert isinstance(first, TabularProblem) and first is not second  # one per job
    assert first.config_name == "Tabular"
    with pytest.raises(ConfigError, match="'Forecasting' is not supported; supported: Tabular"):
        get_problem("Forecasting")
