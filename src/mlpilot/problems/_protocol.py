"""The problem seam: what every problem type (Tabular, TimeSeriesForecasting, text, image…)
implements, and what the job offers it.

The job orchestrator (:class:`mlpilot.jobs.AutoMLJob`) owns the job's life: its statuses, its
records and their AWS shapes, its observers, its budget and executor. It knows nothing of
tables, folds or algorithms: it calls one :class:`Problem` through four phases, in order,

1. :meth:`Problem.analyse` reads the data and profiles it, resolves the problem type, objective
   and mode, plans the validation (row folds, backtest windows…) and writes the prepared data;
2. :meth:`Problem.define_candidates` writes the candidate definitions (the search space or the
   ensemble's portfolio);
3. :meth:`Problem.train` trains candidates within the budget (a search, an ensemble…),
   reporting each through :meth:`JobSession.candidate_started` / ``candidate_finished``;
4. :meth:`Problem.package` packages the best candidate as the job's model,

and each problem reports back through the :class:`JobSession` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mlpilot._types import Mode, SecondaryStatus

if TYPE_CHECKING:
    from mlpilot.config import JobConfig
    from mlpilot.runtime import Budget, Executor

#: Why training ended: ``"MaxCandidatesReached"``, ``"MaxAutoMLJobRuntimeReached"`` or
#: ``"Stopped"`` (the job's secondary statuses of the same names follow).
StopReason = str


@dataclass
class Analysis:
    """What :meth:`Problem.analyse` resolved, in the terms the job records."""

    #: The resolved problem type (e.g. ``BinaryClassification``).
    problem_type: str
    #: The objective metric's name (SageMaker's spelling).
    objective: str
    mode: Mode
    mode_reason: str
    #: Whether the model answers with labels and probabilities (else a value).
    classification: bool
    #: The problem type's own resolved attributes (``TabularResolvedAttributes``'s members…).
    resolved: dict[str, Any] = field(default_factory=dict)
    #: What the job records about the analysis (the record's ``Mlpilot.Profile`` block).
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CandidateReport:
    """One candidate's state as a problem reports it; the job renders its AutoMLCandidate."""

    name: str
    #: SageMaker's CandidateStatus value (``InProgress``, ``Completed``, ``Failed``, ``Stopped``).
    status: str
    objective_value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    failure_reason: str = ""
    #: The details SageMaker has no field for (the record's ``Mlpilot`` block).
    details: dict[str, Any] = field(default_factory=dict)
    #: Where its package is (None while it trains or when it failed).
    package_dir: str | None = None
    #: Whether it can be packaged on its own as it is (a stacker becomes so once assembled).
    standalone: bool = True
    #: ``CandidateProperties.CandidateArtifactLocations`` members the problem wrote (a
    #: forecasting candidate's ``BacktestResults``).
    artifacts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PackagedModel:
    """The job's model: where its package is and how it was made."""

    location: Path
    refit: bool
    note: str
    #: Added to the best candidate's ``Mlpilot`` block (e.g. the shipped model's latency).
    details: dict[str, Any] = field(default_factory=dict)


class CandidateView(Protocol):
    """What a problem reads of a candidate the job recorded (the job's ``CandidateRecord``)."""

    name: str
    objective_value: float | None
    #: The ``Mlpilot`` block the problem reported (:attr:`CandidateReport.details`), with what
    #: the job added.
    details: dict[str, Any]


@dataclass
class EarlierRun:
    """What a resumed job trained before this run (``mlpilot run --resume``): the problem
    continues from it rather than starting over."""

    #: Every candidate recorded before, in the order they finished; their records and model
    #: artifacts stay as they are.
    candidates: list[CandidateView]
    #: How many candidates this run may add at most.
    max_new: int


class JobSession(Protocol):
    """What a problem's phases see of the running job."""

    @property
    def earlier(self) -> EarlierRun | None:
        """A resumed job's earlier candidates (None: a new job)."""

    @property
    def config(self) -> JobConfig: ...

    @property
    def layout(self) -> Any: ...

    @property
    def budget(self) -> Budget: ...

    @property
    def executor(self) -> Executor: ...

    @property
    def best(self) -> CandidateView | None:
        """The best candidate so far."""

    @property
    def best_package_bytes(self) -> int:
        """Size of the best candidate's package so far."""

    def set_status(self, secondary: SecondaryStatus) -> None: ...

    def note(self, key: str, value: Any) -> None:
        """Record ``value`` under ``key`` in the job record's ``Mlpilot`` block."""

    def candidate_started(self, report: CandidateReport) -> None: ...

    def candidate_finished(self, report: CandidateReport) -> None: ...

    def choose_best(self, name: str) -> None:
        """Make the completed candidate ``name`` the job's best (e.g. the ensemble chose it)."""


class Problem(Protocol):
    """One problem type's implementation. A new instance serves one job."""

    #: ``AutoMLProblemTypeConfigName`` (``Tabular``, ``TimeSeriesForecasting``…).
    config_name: ClassVar[str]
    #: The worker function a trial runs (``"module:function"``), for warming workers up.
    trial_function: ClassVar[str]

    def worker_imports(self, config: Any) -> list[str]:
        """What each worker imports as it starts (``"module:name"``): the trial function and
        the slow libraries of the algorithms the job ``config`` may train, so that no trial's
        time limit pays for them."""
        ...

    def package_imports(self, config: Any) -> list[str]:
        """What the job's own process imports beside the search (same form): the slow
        libraries its :meth:`package` step needs in that process, so that packaging, at the end
        of the budget, does not pay for them."""
        ...

    def analyse(self, session: JobSession) -> Analysis: ...

    def define_candidates(self, session: JobSession) -> Any:
        """Write the candidate definitions; return the problem's candidate plan (the white-box
        writers, which are per problem type, read it)."""

    def train(self, session: JobSession) -> StopReason: ...

    def package(self, session: JobSession, best: CandidateView) -> PackagedModel: ...
