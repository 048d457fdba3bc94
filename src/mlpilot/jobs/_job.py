"""The AutoML job: its life from start to end, over one problem type's phases.

:class:`AutoMLJob` runs one job in the calling process, with candidates on an
:class:`~mlpilot.runtime.Executor`. What is trained and how is the problem type's business
(:class:`~mlpilot.problems.Problem`: analyse → define candidates → train → package); the job
owns the statuses, the records (DescribeAutoMLJobV2's shape, rewritten atomically at every
change in ``job.json``), the budget and the executor, and tells its observers (the CLI's
progress display, the service's store, the white box) of each change.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, Protocol

import pandas as pd

from mlpilot._crash import crash_point
from mlpilot._layout import JobLayout, job_candidates, read_job_record, write_json_atomic
from mlpilot._types import CandidateStatus, JobStatus, Mode, SecondaryStatus
from mlpilot.config import MAX_CANDIDATES_LIMIT, JobConfig
from mlpilot.errors import ConfigError, JobNotFoundError, MlpilotError, storage_failure
from mlpilot.jobs._card import write_card
from mlpilot.jobs._leaderboard import leaderboard_frame
from mlpilot.jobs._records import (
    CandidateRecord,
    JobRecord,
    arn,
    echo_request,
    inference_container,
)
from mlpilot.jobs._recover import finalize_interrupted
from mlpilot.metrics import get_metric
from mlpilot.package import ARCHIVE, MANIFEST, load_model, package_bytes, seal_files
from mlpilot.problems import Analysis, CandidateReport, EarlierRun, Problem, get_problem
from mlpilot.runtime import Budget, Executor, LocalProcessExecutor, import_beside

__all__ = ["AutoMLJob", "JobHooks", "JobObserver"]

#: Held (``flock``) by the process running the job: a job folder whose lock is free and whose
#: record says InProgress was left by a process that died.
LOCK_FILE = ".job.lock"
#: The analysis facts a resumed job must find again (same data, same seed, same splits).
_SAME_ANALYSIS = ("Rows", "Mode", "Validation", "ValidationReason")

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
        starts: training ends that much earlier (the budget's ``end_extra``, which the phases
        read each time they plan: the white box raises it once it has timed drawing a figure).
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
        #: A resumed job: its earlier candidates and what this run may add (see :meth:`resume`).
        self.earlier: EarlierRun | None = None
        self._resume: dict[str, Any] | None = None
        self._lock_file: IO[str] | None = None
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

    @classmethod
    def resume(
        cls,
        root: str | Path,
        seconds: float,
        *,
        max_candidates: int | None = None,
        executor: Executor | None = None,
        observers: list[JobObserver] | None = None,
        started: float | None = None,
        parallelism: int | None = None,
    ) -> AutoMLJob:
        """The job in folder ``root`` (ended, or left running by a process that died), to be
        continued by :meth:`run` for ``seconds`` more.

        The resumed job analyses the same data again with the same seed (the same profile,
        splits and folds: a change is refused), keeps every candidate it trained (records and
        model files as they are) and trains more: HYPERPARAMETER_TUNING continues the same
        Optuna study, ENSEMBLING adds base models and redoes stacking, selection and the final
        model over the old and new ones. ``max_candidates`` bounds the candidates this run adds
        (default: the job's MaxCandidates). The best candidate and the model change only for a
        better one; ``Mlpilot.Resumes`` in the record lists each resume.
        """
        root = Path(root)
        config = cls.resumable(root, seconds, max_candidates=max_candidates)
        config = replace(
            config, output_path=str(root), parallelism=parallelism or config.parallelism
        )
        job = cls(config, executor=executor, observers=observers, started=started)
        job.budget = Budget(
            float(seconds),
            started=job.budget.started,
            per_task=config.max_runtime_per_candidate,
            stop=job._stop,
        )
        job._resume = {
            "seconds": float(seconds),
            "max_new": max_candidates or config.effective_max_candidates,
        }
        return job

    @staticmethod
    def resumable(
        root: str | Path, seconds: float, *, max_candidates: int | None = None
    ) -> JobConfig:
        """The spec of the job in folder ``root`` if :meth:`resume` can continue it for
        ``seconds`` more (a tabular job with its spec, not candidates-only); else a
        :class:`ConfigError` saying why. Whether it is still running shows only when the
        resumed job runs (the folder's lock)."""
        root = Path(root)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ConfigError(
                f"The time to add must be a positive number of seconds; got {seconds}"
            )
        if max_candidates is not None and not 1 <= max_candidates <= MAX_CANDIDATES_LIMIT:
            raise ConfigError(
                f"MaxCandidates must be between 1 and {MAX_CANDIDATES_LIMIT}; got {max_candidates}"
            )
        try:
            record = read_job_record(root)
        except JobNotFoundError as exc:
            raise ConfigError(f"Cannot resume: {exc}") from None
        name = record.get("AutoMLJobName", root.name)
        layout = JobLayout(root, name)
        if not layout.spec.exists():
            raise ConfigError(f"Cannot resume job {name}: {layout.spec} is missing")
        try:
            spec = json.loads(layout.spec.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"Cannot resume job {name}: {layout.spec} is unreadable: {exc}"
            ) from None
        config = JobConfig.from_dict(spec)
        if config.problem.config_name != "Tabular":
            raise ConfigError(
                f"Cannot resume job {name}: resuming is for tabular jobs; this one is "
                f"{config.problem.config_name}"
            )
        if getattr(config.problem, "candidates_only", False):
            raise ConfigError(
                f"Cannot resume job {name}: it only generated candidate definitions; train them "
                "with mlpilot train"
            )
        return config

    @property
    def earlier_limit(self) -> int:
        """Candidates this run may add (a resumed job: at most its ``max_candidates``)."""
        if self._resume is not None:
            return int(self._resume["max_new"])
        return self.config.effective_max_candidates

    @property
    def resuming(self) -> bool:
        """Whether this run continues an earlier one (:meth:`resume`)."""
        return self._resume is not None

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

    def wait_for_workers(self) -> bool:
        """Block until the job's workers have started (imported what they train with), for
        :meth:`Budget.ready_wait` seconds at most; True if they have. Side work that would slow
        their start-up, and whose results are needed later (imports, the white box's notebook
        run), waits for this: on 2 cores it slowed a 60 s job's start-up from about 5 s to 13 s,
        time the first candidates' limits count."""
        if self._executor is None:
            return False
        return self._executor.wait_ready(self.budget.ready_wait())

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
        if self._resume is None and self.layout.record.exists():
            # Its records, logs and models would mix with this job's (candidates.jsonl appends).
            raise ConfigError(
                f"{self.layout.root} already holds a job; choose another output folder or remove it"
            )
        try:
            self.layout.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the output folder {self.layout.root}: {exc.strerror or exc}"
            ) from None
        self._hold_lock()
        try:
            return self._run_held()
        finally:
            self._release_lock()

    def _run_held(self) -> dict[str, Any]:
        earlier_record: dict[str, Any] | None = None
        try:
            if self._resume is not None:
                earlier_record = self._load_earlier()
            else:
                write_json_atomic(self.layout.spec, self.config.to_dict())
            self.budget.end_extra = self._observer_reserve()
            self._save()
            self._run()
        except MlpilotError as exc:
            if earlier_record is not None and len(self._candidates) == self._resume_count():
                # Nothing was added: the job stays as it was (e.g. its data changed since).
                write_json_atomic(self.layout.record, earlier_record)
                self.state = JobRecord.from_shape(earlier_record, objective=self.objective or "F1")
                raise
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
            self._executor.warm_up(*problem.worker_imports(cfg))
        # Packaging's imports wait for the workers' start-up, which they would slow.
        import_beside(*problem.package_imports(cfg), after=self.wait_for_workers)

        self.set_status(SecondaryStatus.ANALYZING_DATA)
        self.analysis = analysis = problem.analyse(self)
        self._check_same_analysis(analysis)
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
        if not self._packaged_already():
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
        if self._resume is None:  # a resumed job keeps its notebooks' locations
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
            before = None if self._resume is None else self._resume.get("best")
            if before is not None and self._better(before, candidate):
                self.state.best = before  # a resumed job's model changes only for a better one
        self._save()

    def _better(self, one: CandidateRecord, other: CandidateRecord) -> bool:
        """Whether ``one`` scores strictly better than ``other`` on the objective."""
        if one.objective_value is None:
            return False
        if other.objective_value is None:
            return True
        return get_metric(self.objective or "F1").is_better(
            one.objective_value, other.objective_value
        )

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
        archive = packaged.location / ARCHIVE
        if not archive.exists() and (packaged.location / MANIFEST).is_file():
            # No card (it failed): the archive alone, which sealing the card would have built.
            seal_files(packaged.location, {}, archive=True)
        crash_point("packaging")  # the model is published, the record does not say so yet
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
        elapsed = self.elapsed()
        if self._resume is not None:
            self._note_resume(now, elapsed)
            elapsed += self._resume["elapsed_before"]
        self.note("ElapsedSeconds", round(elapsed, 3))
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

    # -- resuming -------------------------------------------------------------------------
    def _hold_lock(self) -> None:
        """Hold the job folder's lock while the job runs (released by the kernel if the
        process dies); a second process running or resuming the same job is refused."""
        handle = open(self.layout.root / LOCK_FILE, "a")  # noqa: SIM115 - held while running
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(
                f"Job {self.config.name} in {self.layout.root} is still running; wait for it to "
                "end or stop it first"
            ) from None
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _resume_count(self) -> int:
        return 0 if self._resume is None else int(self._resume["count"])

    def _load_earlier(self) -> dict[str, Any]:
        """Read the job this run continues; end it first if its process died mid-way.
        Returns its record as it was."""
        assert self._resume is not None
        root = self.layout.root
        record = read_job_record(root)
        if record["AutoMLJobStatus"] not in ("Completed", "Failed", "Stopped"):
            # The lock was free, so the process that ran it is gone: end it honestly first
            # (its finished candidates kept, what it was writing discarded).
            record = finalize_interrupted(root, "its process ended before the job did")
        before = record.get("Mlpilot", {}).get("ElapsedSeconds")
        if before is None:  # ended without the engine: its time ran until its last write
            before = max(0.0, record["LastModifiedTime"] - record["CreationTime"])
        # Working files of the run before, and what unrecorded (killed) trials left behind.
        shutil.rmtree(self.layout.work, ignore_errors=True)
        for staging in root.rglob(".staging-*"):
            shutil.rmtree(staging, ignore_errors=True)
        objective = (
            (record.get("ResolvedAttributes", {}).get("AutoMLJobObjective", {}).get("MetricName"))
            or self.config.objective
            or "F1"
        )
        shapes = {c["CandidateName"]: c for c in job_candidates(self.layout)}
        tuning = self.layout.candidate_model("x").parents[2]
        if tuning.is_dir():
            for folder in tuning.iterdir():
                if folder.name not in shapes:
                    shutil.rmtree(folder, ignore_errors=True)
        self.state = JobRecord.from_shape(record, objective=objective)
        earlier = [CandidateRecord.from_shape(c, objective=objective) for c in shapes.values()]
        earlier.sort(key=lambda c: (c.details.get("TrialNumber", 1 << 30), c.ended or 0.0))
        self._candidates = {c.name: c for c in earlier}
        best = self.state.best
        if best is not None:
            # The same object as the candidate's (the job updates the best through it).
            best = self._candidates.get(best.name, best)
            self._candidates[best.name] = best
            self.state.best = best
            location = best.details.get("FinalModel") or best.details.get("ModelLocation")
            self.best_package_bytes = package_bytes(location or "")
        interrupted = self.state.notes.pop("Interrupted", None)
        self.state.notes.pop("StopReason", None)
        self.state.status = JobStatus.IN_PROGRESS
        self.state.secondary = SecondaryStatus.STARTING
        self.state.ended = None
        self.state.failure_reason = ""
        self._resume.update(
            count=len(earlier),
            best=best,
            elapsed_before=float(before),
            started_at=time.time(),
        )
        self.earlier = EarlierRun(candidates=list(earlier), max_new=self._resume["max_new"])
        # What this run is, shown while it runs (DescribeAutoMLJobV2, job.json); completed
        # into a ``Resumes`` entry when it ends (or by finalize_interrupted if it is killed).
        pending: dict[str, Any] = {
            "StartTime": self._resume["started_at"],
            "AddedSeconds": self._resume["seconds"],
            "MaxNewCandidates": self._resume["max_new"],
            "ElapsedBefore": round(float(before), 3),
            "StatusBefore": record["AutoMLJobStatus"],
            "CandidatesBefore": len(earlier),
            "BestBefore": _named(best),
        }
        if interrupted:
            pending["Interrupted"] = interrupted
        self.state.notes["Resuming"] = pending
        return record

    def _check_same_analysis(self, analysis: Analysis) -> None:
        """A resumed job must find the data as it was: the same rows, mode and splits."""
        if self._resume is None:
            return
        profile = self.state.notes.get("Profile") or {}
        changed = [
            f"{key} {profile[key]!r} then, {analysis.summary.get(key)!r} now"
            for key in _SAME_ANALYSIS
            if key in profile and profile[key] != analysis.summary.get(key)
        ]
        if changed:
            raise ConfigError(
                f"Cannot resume job {self.config.name}: its training data changed since it ran "
                f"({'; '.join(changed)}); resuming needs the same data"
            )

    def _packaged_already(self) -> bool:
        """A resumed job whose best is still the one packaged before keeps that package."""
        best = self.state.best
        before: CandidateRecord | None = None if self._resume is None else self._resume["best"]
        if best is None or before is None or best is not before:
            return False
        final = best.details.get("FinalModel")
        return bool(final) and (Path(str(final)) / "model.tar.gz").exists()

    def _note_resume(self, now: float, elapsed: float) -> None:
        """Turn this run's ``Resuming`` note into an entry of the record's ``Resumes`` list."""
        pending = self.state.notes.pop("Resuming", None)
        if pending is None:
            return  # refused before it began
        entry: dict[str, Any] = {
            **pending,
            "EndTime": now,
            "ElapsedSeconds": round(elapsed, 3),
            "CandidatesAfter": len(self._candidates),
            "BestAfter": _named(self.state.best),
        }
        self.state.notes["Resumes"] = [*self.state.notes.get("Resumes", []), entry]

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


def _named(candidate: CandidateRecord | None) -> dict[str, Any] | None:
    """A candidate as a ``Resumes`` entry names it."""
    if candidate is None:
        return None
    return {"CandidateName": candidate.name, "Value": candidate.objective_value}
