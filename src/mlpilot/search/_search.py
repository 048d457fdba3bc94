"""The hyperparameter search: Optuna's TPE over the candidate space, run through an executor.

Determinism with parallel workers: trial ``n`` is asked exactly when trials ``0 .. n-P`` (P =
parallelism) have been told, and results are told in trial order. What the sampler knows when it
proposes trial ``n`` therefore never depends on which worker finished first, so the same data,
seed and MaxCandidates give the same leaderboard.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import optuna
from optuna.trial import TrialState

from mlpilot.algorithms import short_name
from mlpilot.metrics import Metric
from mlpilot.runtime import Executor, TaskOutcome
from mlpilot.search._space import CandidateSpec, SearchSpace
from mlpilot.search._tasks import PriorTrial, TrialResult, TrialTask

__all__ = ["SearchLimits", "run_search"]

TRIAL_FUNCTION = "mlpilot.search._trial:run_trial"
#: Seconds a killed-for-time trial is given beyond its own limit before the executor kills it.
HARD_LIMIT_GRACE = 2.0
#: A trial is not started with less time than this left.
MIN_TRIAL_SECONDS = 1.0
#: Largest share of the job's runtime budget one candidate may use.
MAX_TRIAL_SHARE = 0.4


@dataclass
class SearchLimits:
    """When the search stops starting candidates."""

    max_candidates: int
    per_candidate_seconds: float | None
    #: The job's whole runtime budget in seconds (None: unlimited).
    budget: float | None = None
    #: Monotonic time after which no trial may run (the job's deadline minus its final tail).
    deadline: Callable[[], float | None] = field(default=lambda: None)
    stop_requested: Callable[[], bool] = field(default=lambda: False)


def candidate_name(job_name: str, number: int, spec: CandidateSpec) -> str:
    digest = hashlib.sha1(
        json.dumps(
            [spec.algorithm, spec.params, spec.preprocessing], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:8]
    algo = short_name(spec.algorithm).replace(":", "-").replace(".", "-")[:16]
    return f"{job_name[:24]}-{algo}-{number + 1:03d}-{digest}"


def _prior(study: optuna.Study) -> tuple[PriorTrial, ...]:
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            out.append(PriorTrial(t.state.name, t.value, dict(t.intermediate_values)))
    return tuple(out)


def run_search(
    *,
    job_name: str,
    space: SearchSpace,
    executor: Executor,
    objective: Metric,
    limits: SearchLimits,
    make_task: Callable[..., TrialTask],
    seed: int,
    prune: bool,
    on_start: Callable[[TrialTask], None],
    on_result: Callable[[TrialTask, TrialResult], None],
) -> str:
    """Run trials until a limit is reached; return why it stopped.

    The reason is ``"MaxCandidatesReached"``, ``"MaxAutoMLJobRuntimeReached"`` or ``"Stopped"``.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=max(10, len(space.algorithms) + 3),
        multivariate=True,
        group=True,
    )
    study = optuna.create_study(
        direction="maximize" if objective.maximize else "minimize", sampler=sampler
    )
    for start in space.warm_starts():
        study.enqueue_trial(start, skip_if_exists=True)

    parallel = executor.capacity
    asked: dict[int, tuple[optuna.Trial, TrialTask]] = {}
    running: dict[int, int] = {}  # executor task id -> trial number
    finished: dict[int, TrialResult] = {}
    next_number = 0
    told = 0
    reason = "MaxCandidatesReached"
    stop_asking = False

    def time_left() -> float | None:
        end = limits.deadline()
        return None if end is None else end - time.monotonic()

    def ask_one() -> bool:
        nonlocal next_number, reason, stop_asking
        if next_number >= limits.max_candidates:
            reason, stop_asking = "MaxCandidatesReached", True
            return False
        if limits.stop_requested():
            reason, stop_asking = "Stopped", True
            return False
        left = job_left = time_left()
        if left is not None and left < MIN_TRIAL_SECONDS:
            reason, stop_asking = "MaxAutoMLJobRuntimeReached", True
            return False
        trial = study.ask()
        spec = space.suggest(trial)
        limit = limits.per_candidate_seconds
        if left is not None:
            # One candidate may not take the whole budget: leave room for others and the refit.
            if limits.budget:
                left = min(left, max(MAX_TRIAL_SHARE * limits.budget, MIN_TRIAL_SECONDS))
            limit = left if limit is None else min(limit, left)
        task = make_task(
            number=trial.number,
            name=candidate_name(job_name, trial.number, spec),
            spec=spec,
            time_limit=limit,
            prior=_prior(study) if prune else (),
        )
        if job_left is not None:
            task = replace(task, deadline_at=time.time() + job_left)
        hard = None if limit is None else limit + HARD_LIMIT_GRACE
        task_id = executor.submit(TRIAL_FUNCTION, task, hard_limit=hard)
        asked[trial.number] = (trial, task)
        running[task_id] = trial.number
        next_number += 1
        on_start(task)
        return True

    def tell(result: TrialResult) -> None:
        trial, task = asked[result.number]
        for step, value in result.intermediate_values.items():
            trial.report(value, step)
        if result.status == "Completed" and result.objective_value is not None:
            study.tell(trial, result.objective_value)
        elif result.pruned:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
        on_result(task, result)

    while next_number < parallel and ask_one():
        pass
    while running:
        if limits.stop_requested() and reason != "Stopped":
            reason, stop_asking = "Stopped", True
            for task_id in list(running):
                executor.cancel(task_id)
        outcomes = executor.wait(timeout=0.5)
        for outcome in outcomes:
            number = running.pop(outcome.task_id)
            finished[number] = _to_result(outcome, asked[number][1])
        while told in finished:
            tell(finished.pop(told))
            told += 1
            if not stop_asking:
                ask_one()
    if not stop_asking:
        left = time_left()
        if left is not None and left < MIN_TRIAL_SECONDS:
            reason = "MaxAutoMLJobRuntimeReached"
    return reason


def _to_result(outcome: TaskOutcome, task: TrialTask) -> TrialResult:
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
