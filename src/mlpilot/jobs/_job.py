"""The AutoML job: its life from start to end, over one problem type's phases.

:class:`AutoMLJob` runs one job in the calling process, with candidates on an
:class:`~mlpilot.runtime.Executor`. What is trained and how is the problem type's business
(:class:`~mlpilot.problems.Problem`: analyse → define candidates → train → package); the job
owns the statuses, the records (DescribeAutoMLJobV2's shape, rewritten atomically at every
change in ``job.json``), the budget and the executor, and tells its observers (the CLI's
progress display, the service's store, the white box) of each change.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from typing import Any, Protocol

import pandas as pd

from mlpilot._crash import crash_point
from mlpilot._layout import JobLayout, write_json_atomic
from mlpilot._types import CandidateStatus, JobStatus, Mode, SecondaryStatus
from mlpilot.config import JobConfig
from mlpilot.errors import ConfigError, MlpilotError, storage_failure
from mlpilot.jobs._card import write_card
from mlpilot.jobs._leaderboard import leaderboard_frame
from mlpilot.jobs._records import (
    CandidateRecord,
    JobRecord,
    arn,
    echo_request,
    inference_container,
)
from mlpilot.metrics import get_metric
from mlpilot.package import load_model, package_bytes
from mlpilot.problems import Analysis, CandidateReport, Problem, get_problem
from mlpilot.runtime import Budget, Executor, LocalProcessExecutor

__all__ = ["AutoMLJob", "JobHooks", "JobObserver"]

#: How each way training ends shows in the secondary status.
_ENDED_BY = {
    "MaxCandidatesReached": SecondaryStatus.MAX_CANDIDATES_REACHED,
    "MaxAutoMLJobRuntimeReached": SecondaryStatus.MAX_AUTOML_JOB_RUNTIME_REACHED,
    "Stopped": SecondaryStatus.STOPPING,
}


class JobObserver(Protocol):
    """What watches a job: told of every change of its record and of every candidate.

    The job also calls these methods where an observer has them (subclass :class:`JobHooks` to
    get all of them as no-ops); the white box (:class:`mlpilot.reports.WhiteBox`) uses them:

    ``time_reserve(job) -> float``
        Seconds the observer needs at the end of the runtime budget, asked once as the job
        starts: training ends that much earlier (the budget's ``end_extra``).
    ``on_candidates_defined(job, space)``
        The candidate definitions (the problem's candidate plan, for tabular jobs a
        :class:`~mlpilot.search.SearchSpace`) are written; nothing is trained yet.
    ``on_packaged(job)``
        The best candidate is packaged (``job.best``); the leaderboard is written next.
    ``on_finishing(job)``
        The job is ending, whatever the outcome; its final record is written next.
    """

    def on_status(self, job: AutoMLJob) -> None: ...

    def on_candidate(self, job: AutoMLJob, candidate: dict[str, Any]) -> None: ...


class JobHooks:
    """Every event of :class:`JobObserver`, as no-ops: a base for observers."""

    def on_status(self, job: AutoMLJob) -> None:
        pass

    def on_candidate(self, job: AutoMLJob, candidate: dict[str, Any]) -> None:
        pass

    def time_reserve(self, job: AutoMLJob) -> float:
        return 0.0

    def on_candidates_defined(self, job: AutoMLJob, space: Any) -> None:
        pass

    def on_packaged(self, job: AutoMLJob) -> None:
        pass

    def on_finishing(self, job: AutoMLJob) -> None:
        pass


class AutoMLJob:
    """One AutoML job.

    Parameters
    ----------
    config:
        What to do (:class:`~mlpilot.config.JobConfig`).
    executor:
        Where candidates run; a local process pool by default.
    observers:
        Told of the job's progress (:class:`JobObserver`). The notebooks and reports are such
        an observer, attached by :func:`mlpilot.run_job`, the CLI and the service; a job built
        here makes them only when given one: ``observers=[WhiteBox()]``
        (``from mlpilot.reports import WhiteBox``).
    started:
        ``time.monotonic()`` when the job's clock started (the CLI passes its own start, so the
        runtime limit covers start-up too).
    problem:
        The problem type's implementation (default: the registry's for the config's problem
        type, :func:`mlpilot.problems.get_problem`).

    Examples
    --------
    >>> job = AutoMLJob(JobConfig(name="churn", training_data="examples/churn.csv",
    ...                           target="Churn", output_path="runs/churn", max_runtime=60))
    >>> job.run()                                     # doctest: +SKIP
    >>> job.leaderboard().head()                      # doctest: +SKIP
    """

    def __init__(
        self,
        config: JobConfig,
        *,
        executor: Executor | None = None,
        observers: list[JobObserver] | None = None,
        started: float | None = None,
        problem: Problem | None = None,
    ) -> None:
        self.config = config
        self.layout = JobLayout(config.output_dir, config.name)
        #: What is trained and how (one problem type's implementation).
        self.problem: Problem = problem or get_problem(config.problem.config_name)
        self._executor = executor
        self._owns_executor = executor is None
        self.observers = list(observers or [])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: The job's time: every phase asks it how long it has.
        self.budget = Budget(
            None if config.max_runtime is None else float(config.max_runtime),
            started=started if started is not None else time.monotonic(),
            per_task=config.max_runtime_per_candidate,
            stop=self._stop,
        )
        self.analysis: Analysis | None = None
        self._candidates: dict[str, CandidateRecord] = {}
        self.best_package_bytes = 0
        self.failures: list[str] = []
        now = time.time()
        #: The job's state; :attr:`record` renders it as DescribeAutoMLJobV2.
        self.state = JobRecord(
            request=echo_request(config.to_request()),
            arn=arn(config.region, config.account_id, "automl-job", config.name),
            config_name=self.problem.config_name,
            created=now,
            modified=now,
        )

    # -- public ---------------------------------------------------------------------------
    @property
    def record(self) -> dict[str, Any]:
        """The job's record in DescribeAutoMLJobV2's shape (a copy: change the job through its
        methods)."""
        return self.state.shape()

    @property
    def candidates(self) -> dict[str, dict[str, Any]]:
        """Every candidate's AutoMLCandidate record, by name (copies)."""
        return {name: c.shape() for name, c in self._candidates.items()}

    def candidate(self, name: str) -> CandidateRecord:
        """One candidate's record (:class:`~mlpilot.jobs.CandidateRecord`)."""
        return self._candidates[name]

    @property
    def best(self) -> CandidateRecord | None:
        """The best candidate so far."""
        return self.state.best

    @property
    def status(self) -> str:
        return self.state.status.value

    @property
    def secondary_status(self) -> str:
        return self.state.secondary.value

    def stop(self) -> None:
        """Ask the job to stop: no new candidates; running ones are cancelled; the best
        candidate so far is kept and packaged."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self.state.status is JobStatus.IN_PROGRESS:
            self.state.status = JobStatus.STOPPING
            self.state.secondary = SecondaryStatus.STOPPING
            self._save()

    @property
    def deadline(self) -> float | None:
        """Monotonic time by which the job must end (None: no runtime limit)."""
        return self.budget.deadline()

    def elapsed(self) -> float:
        return self.budget.elapsed()

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    @property
    def executor(self) -> Executor:
        assert self._executor is not None, "the job's executor starts with run()"
        return self._executor

    @property
    def parallelism(self) -> int | None:
        """How many candidates run at once; None until the job's executor exists."""
        return None if self._executor is None else int(self._executor.capacity)

    # What the analysis resolved (None before it ran).
    @property
    def problem_type(self) -> str | None:
        """The resolved problem type (``BinaryClassification``… or ``TimeSeriesForecasting``)."""
        return None if self.analysis is None else self.analysis.problem_type

    @property
    def objective(self) -> str | None:
        return self.config.objective if self.analysis is None else self.analysis.objective

    @property
    def mode(self) -> Mode | None:
        return None if self.analysis is None else self.analysis.mode

    @property
    def mode_reason(self) -> str:
        return "" if self.analysis is None else self.analysis.mode_reason

    # The tabular problem's profile and validation plan, for the white box.
    @property
    def profile(self) -> Any:
        return getattr(self.problem, "profile", None)

    @property
    def validation(self) -> Any:
        return getattr(self.problem, "validation", None)

    # The forecasting problem's prepared series (a SeriesSet), for the white box.
    @property
    def series(self) -> Any:
        return getattr(self.problem, "series", None)

    def set_phase(self, secondary: SecondaryStatus) -> None:
        """Set the secondary status (an observer's phase, e.g. writing reports) and save."""
        self.set_status(secondary)

    # What observers add to the record (the white box's notebooks and reports).
    def add_artifacts(self, **locations: str) -> None:
        """Add ``AutoMLJobArtifacts`` members (e.g. ``DataExplorationNotebookLocation``)."""
        self.state.artifacts = {**(self.state.artifacts or {}), **locations}

    def add_partial_failure(self, message: str) -> None:
        """Add a ``PartialFailureReasons`` entry (SageMaker keeps five)."""
        self.state.add_partial_failure(message)

    def set_candidate_artifacts(self, name: str, **locations: str) -> None:
        """Add ``CandidateArtifactLocations`` members to candidate ``name``."""
        candidate = self._candidates[name]
        candidate.artifacts = {**candidate.artifacts, **locations}

    def leaderboard(self) -> pd.DataFrame:
        return leaderboard_frame(list(self.candidates.values()), self.objective or "F1")

    def best_model(self) -> Any:
        return load_model(self.layout.root)

    def run(self) -> dict[str, Any]:
        """Run to the end; returns the final job record. Never raises for candidate failures;
        raises :class:`MlpilotError` only for a bad configuration or unusable data, after
        recording the job as Failed."""
        if self.layout.record.exists():
            # Its records, logs and models would mix with this job's (candidates.jsonl appends).
            raise ConfigError(
                f"{self.layout.root} already holds a job; choose another output folder or remove it"
            )
        try:
            self.layout.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.layout.spec, self.config.to_dict())
            self.budget.end_extra = self._observer_reserve()
            self._save()
            self._run()
        except MlpilotError as exc:
            self._finish(JobStatus.FAILED, SecondaryStatus.FAILED, failure=str(exc))
            raise
        except Exception as exc:
            full = storage_failure(exc, self.layout.root)
            if full is None:
                self._finish(
                    JobStatus.FAILED,
                    SecondaryStatus.FAILED,
                    failure=f"Internal error: {type(exc).__name__}: {exc}",
                )
                raise
            self._finish(JobStatus.FAILED, SecondaryStatus.FAILED, failure=str(full))
            raise full from None
        finally:
            if self._owns_executor and self._executor is not None:
                self._executor.shutdown()
            shutil.rmtree(self.layout.work, ignore_errors=True)
        return self.record

    # -- phases ---------------------------------------------------------------------------
    def _run(self) -> None:
        cfg = self.config
        problem = self.problem
        if self._executor is None:
            self._executor = LocalProcessExecutor(cfg.parallelism)
            self._executor.warm_up(problem.trial_function)

        self.set_status(SecondaryStatus.ANALYZING_DATA)
        self.analysis = analysis = problem.analyse(self)
        self._record_analysis(analysis)
        if self._stop.is_set():
            return self._finish(JobStatus.STOPPED, SecondaryStatus.STOPPED)

        # ENSEMBLING goes straight from AnalyzingData to TrainingModels, as Autopilot's does.
        self.set_status(
            SecondaryStatus.TRAINING_MODELS
            if analysis.mode is Mode.ENSEMBLING
            else SecondaryStatus.FEATURE_ENGINEERING
        )
        plan = problem.define_candidates(self)
        self._save()
        self._tell("on_candidates_defined", plan)
        if cfg.problem.candidates_only:
            return self._finish(
                JobStatus.COMPLETED, SecondaryStatus.CANDIDATE_DEFINITIONS_GENERATED
            )

        reason = problem.train(self)
        self.set_status(_ENDED_BY[reason])
        if self.best is None:
            if self._stop.is_set():
                return self._finish(JobStatus.STOPPED, SecondaryStatus.STOPPED)
            first = "; ".join(self.failures[:3]) or "no candidate was trained in the time given"
            return self._finish(
                JobStatus.FAILED, SecondaryStatus.FAILED, failure=f"No candidate completed: {first}"
            )
        self._package_best()
        self._tell("on_packaged")
        self._write_leaderboard()
        if self._stop.is_set():
            return self._finish(JobStatus.STOPPED, SecondaryStatus.STOPPED)
        return self._finish(JobStatus.COMPLETED, SecondaryStatus.COMPLETED)

    def _record_analysis(self, analysis: Analysis) -> None:
        resolved: dict[str, Any] = {
            "AutoMLJobObjective": {"MetricName": analysis.objective},
            "CompletionCriteria": {
                "MaxCandidates": self.config.effective_max_candidates,
                **self.config.completion_criteria(),
            },
        }
        if analysis.resolved:
            resolved["AutoMLProblemTypeResolvedAttributes"] = {
                f"{self.problem.config_name}ResolvedAttributes": analysis.resolved
            }
        self.state.resolved = resolved
        self.state.artifacts = {}
        self.note("Profile", analysis.summary)
        self._save()

    # -- what the problem reports (its JobSession) ---------------------------------------------
    def set_status(self, secondary: SecondaryStatus) -> None:
        if self._stop.is_set():  # once stopping, the record says so until the job ends
            secondary = SecondaryStatus.STOPPING
        self.state.secondary = secondary
        self._save()

    def note(self, key: str, value: Any) -> None:
        """Record ``value`` under ``key`` in the record's ``Mlpilot`` block."""
        self.state.notes[key] = value

    def candidate_started(self, report: CandidateReport) -> None:
        self._candidates[report.name] = self._new_candidate(report)

    def candidate_finished(self, report: CandidateReport) -> None:
        previous = self._candidates.get(report.name)
        candidate = self._new_candidate(report, None if previous is None else previous.created)
        self._candidates[report.name] = candidate
        shape = candidate.shape()
        with open(self.layout.candidates_log, "a") as fh:
            fh.write(json.dumps(shape, default=str) + "\n")
        if candidate.status is CandidateStatus.FAILED:
            self.failures.append(f"{report.name}: {report.failure_reason}")
            self.state.add_partial_failure(f"{report.name}: {report.failure_reason}")
        metric = get_metric(self.objective or "F1")
        value = candidate.objective_value
        best = self.state.best
        if (
            report.standalone
            and candidate.completed
            and value is not None
            and (
                best is None
                or best.objective_value is None
                or metric.is_better(value, best.objective_value)
            )
        ):
            self.state.best = candidate
            self.best_package_bytes = package_bytes(report.package_dir or "")
        self._save()
        for observer in self.observers:
            observer.on_candidate(self, shape)

    def choose_best(self, name: str) -> None:
        candidate = self._candidates.get(name)
        if candidate is not None and candidate.completed:
            self.state.best = candidate
        self._save()

    def _new_candidate(
        self, report: CandidateReport, created: float | None = None
    ) -> CandidateRecord:
        """The candidate's record as the problem reports it."""
        assert self.objective is not None
        now = time.time()
        return CandidateRecord(
            name=report.name,
            status=CandidateStatus(report.status),
            objective=self.objective,
            region=self.config.region,
            account=self.config.account_id,
            processing_job=self.layout.processing_job,
            created=created or now,
            modified=now,
            ended=None if report.status == CandidateStatus.IN_PROGRESS.value else now,
            objective_value=report.objective_value,
            metrics=dict(report.metrics),
            failure_reason=report.failure_reason,
            artifacts=dict(report.artifacts),
            details=dict(report.details),
        )

    # -- final model ----------------------------------------------------------------------
    def _package_best(self) -> None:
        """Package the best candidate (the problem decides how) and record where it is."""
        best = self.state.best
        assert best is not None and self.analysis is not None
        packaged = self.problem.package(self, best)
        try:
            # Sealed into the package before anything points at it: it never changes after.
            write_card(self, best, packaged)
        except Exception as exc:
            if storage_failure(exc) is not None:
                raise
            self.add_partial_failure(f"The model card was not written: {exc}")
        crash_point("packaging")  # the model is published, the record does not say so yet
        archive = packaged.location / "model.tar.gz"
        best.containers = [
            inference_container(str(archive), self.analysis.classification, best.name)
        ]
        best.artifacts = {
            **best.artifacts,
            "Explainability": str(self.layout.explainability),
            "ModelInsights": str(self.layout.model_insights),
        }
        best.details = {
            **best.details,
            **packaged.details,
            "FinalModel": str(packaged.location),
            "Refit": packaged.refit,
            "RefitNote": packaged.note,
        }
        best.modified = time.time()
        self._save()

    def _write_leaderboard(self) -> None:
        shapes = self.candidates  # rendered once for both files
        frame = leaderboard_frame(list(shapes.values()), self.objective or "F1")
        frame.to_csv(self.layout.leaderboard_csv, index=False)
        write_json_atomic(self.layout.leaderboard_json, [shapes[n] for n in frame["candidate"]])
        self.note("Leaderboard", str(self.layout.leaderboard_csv))

    # -- state ----------------------------------------------------------------------------
    def _finish(self, status: JobStatus, secondary: SecondaryStatus, failure: str = "") -> None:
        try:
            self._tell("on_finishing")
        except Exception as exc:
            if not failure or storage_failure(exc) is None:
                raise
            # Already failing for want of space: the reports' locations are lost, not the reason.
        now = time.time()
        self.state.status = status
        self.state.secondary = secondary
        self.state.ended = now
        if failure:
            self.state.failure_reason = failure[:1024]
        self.note("ElapsedSeconds", round(self.elapsed(), 3))
        self.note("Seed", self.config.seed)
        for candidate in self._candidates.values():
            if candidate.status is CandidateStatus.IN_PROGRESS:
                candidate.status = CandidateStatus.STOPPED
                candidate.failure_reason = "the job ended before the candidate finished"
                candidate.ended = candidate.modified = now
        try:
            self._save()
        except Exception as exc:
            if not failure or storage_failure(exc) is None:
                raise
            # The record cannot be written: it stays in memory, where the CLI and the service's
            # runner read it; job.json keeps its last state, never Completed.

    def _tell(self, event: str, *args: Any) -> None:
        """Call ``event`` on the observers that have it (only on_status and on_candidate are
        required of an observer)."""
        for observer in self.observers:
            hook = getattr(observer, event, None)
            if hook is not None:
                hook(self, *args)

    def _observer_reserve(self) -> float:
        """Seconds the observers want kept back at the end of the runtime budget."""
        total = 0.0
        for observer in self.observers:
            reserve = getattr(observer, "time_reserve", None)
            if reserve is not None:
                total += float(reserve(self))
        return total

    def _save(self) -> None:
        with self._lock:
            self.state.modified = time.time()
            write_json_atomic(self.layout.record, self.state.shape())
        for observer in self.observers:
            observer.on_status(self)
