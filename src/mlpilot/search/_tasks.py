"""The messages between the search (parent) and the trial runner (worker): plain dataclasses,
picklable, with no reference to processes, so any executor can carry them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlpilot.metrics import ObjectiveSpread
from mlpilot.runtime import TaskOutcome

__all__ = ["PriorTrial", "TrialResult", "TrialTask", "trial_result"]


@dataclass(frozen=True)
class PriorTrial:
    """A finished trial as the pruner needs it: its state, value and per-fold values."""

    state: str  # "COMPLETE" | "PRUNED" | "FAIL"
    value: float | None
    intermediate_values: dict[int, float]


@dataclass(frozen=True)
class TrialTask:
    """Train and evaluate one candidate (``refit=False``) or train it on all rows (``refit``)."""

    number: int
    candidate_name: str
    algorithm: str
    algorithm_path: str
    params: dict[str, Any]
    preprocessing: dict[str, Any]
    data_dir: str
    objective: str
    eval_folds: tuple[int, ...]
    seed: int
    time_limit: float | None
    model_dir: str | None = None
    refit: bool = False
    maximize: bool = True
    prior_trials: tuple[PriorTrial, ...] = ()
    prune: bool = False
    #: Wall-clock time (``time.time()``) by which the trial must end whatever its own limit:
    #: the job's deadline, which a slow worker start must not push back.
    deadline_at: float | None = None
    #: Keep every fold's model in the package (ENSEMBLING's bags); by default forests and
    #: linear models keep one, since the search refits them if they win.
    keep_all_folds: bool = False
    #: Forests: fit once on every row and score out of bag instead of fold by fold.
    out_of_bag: bool = False
    #: Write ``model.tar.gz`` beside the package (default: only for refits).
    archive: bool | None = None
    #: Time-series folds: each fold is scored by a model trained on the folds before it.
    forward_folds: bool = False
    #: A replay of bag members a time limit cut short (:attr:`TrialResult.time_cuts`): by fold
    #: step, the look at the clock at which the member stops, the clock not consulted.
    stop_at: dict[int, int] | None = None
    #: The search's own parameters of this trial (Optuna's ``trial.params``), recorded so that
    #: a resumed search can tell its study what was tried (the worker does not read them).
    search_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrialResult:
    """What a trial produced. ``status`` uses SageMaker's CandidateStatus values, plus
    ``pruned`` (reported as ``Stopped`` with a reason)."""

    number: int
    candidate_name: str
    status: str
    failure_reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    objective_value: float | None = None
    intermediate_values: dict[int, float] = field(default_factory=dict)
    refit_params: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    latency_seconds: float | None = None
    model_dir: str | None = None
    n_train_rows: int = 0
    pruned: bool = False
    #: The traceback of a Failed trial, for the record (not shown on the leaderboard).
    detail: str = ""
    #: Bag members (by fold step) whose fit found its time spent, and the look at the clock
    #: (counted from 0) that found it so (see :attr:`TrialTask.stop_at`).
    time_cuts: dict[int, int] = field(default_factory=dict)
    #: How much the objective moves over the folds (or resamples of the holdout) it was
    #: scored on.
    spread: ObjectiveSpread | None = None
    #: Seconds writing its package took (0: not written, or not measured): what assembling an
    #: ensemble from it costs scales with it, whatever the package's size.
    save_seconds: float = 0.0


def trial_result(outcome: TaskOutcome, task: TrialTask) -> TrialResult:
    """The trial's result, also when its worker did not return one (killed for time,
    cancelled, crashed or raised)."""
    if outcome.state == "ok":
        result: TrialResult = outcome.value
        return result
    status = "Stopped" if outcome.state in ("timeout", "cancelled") else "Failed"
    reasons = {
        "timeout": f"stopped: exceeded its time limit of {task.time_limit or 0:g} s",
        "cancelled": "stopped: the job was stopped",
        "crashed": f"failed: {outcome.error}",
        "error": f"failed: {outcome.error}",
    }
    return TrialResult(
        task.number,
        task.candidate_name,
        status,
        failure_reason=reasons[outcome.state],
        train_seconds=outcome.seconds,
    )
