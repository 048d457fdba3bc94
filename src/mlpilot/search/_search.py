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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.trial import FixedTrial, FrozenTrial, TrialState, create_trial

from mlpilot._crash import crash_point
from mlpilot.algorithms import short_name
from mlpilot.metrics import Metric
from mlpilot.runtime import MIN_TASK_SECONDS, Budget, Executor, TaskOutcome, TaskQueue
from mlpilot.search._space import CandidateSpec, SearchSpace
from mlpilot.search._tasks import PriorTrial, TrialResult, TrialTask, trial_result

__all__ = ["EarlierTrial", "run_search"]

TRIAL_FUNCTION = "mlpilot.search._trial:run_trial"
#: Largest share of the job's runtime budget one candidate may use.
MAX_TRIAL_SHARE = 0.4


def candidate_name(job_name: str, number: int, spec: CandidateSpec) -> str:
    digest = hashlib.sha1(
        json.dumps(
            [spec.algorithm, spec.params, spec.preprocessing], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:8]
    algo = short_name(spec.algorithm).replace(":", "-").replace(".", "-")[:16]
    return f"{job_name[:24]}-{algo}-{number + 1:03d}-{digest}"


@dataclass(frozen=True)
class EarlierTrial:
    """A trial of the search this one continues (a resumed job's recorded candidate)."""

    number: int
    state: str  # "COMPLETE" | "PRUNED" | "FAIL"
    value: float | None
    #: Optuna's ``trial.params`` as recorded (empty: unknown, told as a failure).
    params: dict[str, Any] = field(default_factory=dict)
    intermediate_values: dict[int, float] = field(default_factory=dict)


def _frozen(space: SearchSpace, earlier: EarlierTrial | None) -> FrozenTrial:
    """``earlier`` as a finished trial of the study (a number asked but never recorded, e.g.
    running when its job was killed, is a failure: the sampler learns nothing from it)."""
    if earlier is None or not earlier.params:
        return create_trial(state=TrialState.FAIL)
    fixed = FixedTrial(earlier.params, number=earlier.number)
    try:
        space.suggest(fixed)  # the space names each parameter's distribution
    except Exception:
        return create_trial(state=TrialState.FAIL)
    distributions = fixed.distributions
    params = {k: v for k, v in earlier.params.items() if k in distributions}
    distributions = {k: d for k, d in distributions.items() if k in params}
    state = TrialState[earlier.state]
    if state is TrialState.COMPLETE and earlier.value is None:
        state = TrialState.FAIL
    return create_trial(
        state=state,
        value=earlier.value if state is TrialState.COMPLETE else None,
        params=params,
        distributions=distributions,
        intermediate_values=dict(earlier.intermediate_values),
    )


def continued_seed(seed: int, asked: int) -> int:
    """The sampler's seed for a search continued after ``asked`` trials: its own stream, so
    the random start-up trials do not repeat the first ones."""
    if asked == 0:
        return seed
    digest = hashlib.sha1(f"{seed}:{asked}".encode()).hexdigest()
    return int(digest[:8], 16)


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
    budget: Budget,
    max_candidates: int,
    make_task: Callable[..., TrialTask],
    seed: int,
    prune: bool,
    on_start: Callable[[TrialTask], None],
    on_result: Callable[[TrialTask, TrialResult], None],
    earlier: Sequence[EarlierTrial] = (),
) -> str:
    """Run trials until a limit is reached; return why it stopped.

    ``budget`` is the search's view of the job's budget (its deadline leaves the final model's
    time). The reason is ``"MaxCandidatesReached"``, ``"MaxAutoMLJobRuntimeReached"`` or
    ``"Stopped"``. ``earlier`` continues a search (a resumed job): its trials are told to the
    study first, new trials are numbered after them, and ``max_candidates`` counts them too.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    asked_before = max((t.number for t in earlier), default=-1) + 1
    sampler = optuna.samplers.TPESampler(
        seed=continued_seed(seed, asked_before),
        n_startup_trials=max(10, len(space.algorithms) + 3),
        multivariate=True,
        group=True,
    )
    study = optuna.create_study(
        direction="maximize" if objective.maximize else "minimize", sampler=sampler
    )
    by_number = {t.number: t for t in earlier}
    for number in range(asked_before):
        study.add_trial(_frozen(space, by_number.get(number)))
    # The first trials of a search are the defaults, in order: those asked before are done.
    for start in space.warm_starts()[asked_before:]:
        study.enqueue_trial(start, skip_if_exists=True)

    queue = TaskQueue(executor, budget)
    parallel = queue.capacity
    asked: dict[int, tuple[optuna.Trial, TrialTask]] = {}
    finished: dict[int, TrialResult] = {}
    next_number = asked_before
    told = asked_before
    reason = "MaxCandidatesReached"
    stop_asking = False

    def ask_one() -> bool:
        nonlocal next_number, reason, stop_asking
        if stop_asking:
            return False
        if next_number >= max_candidates:
            reason, stop_asking = "MaxCandidatesReached", True
            return False
        if budget.stop_requested():
            reason, stop_asking = "Stopped", True
            return False
        job_left = budget.left()
        if job_left is not None and job_left < MIN_TASK_SECONDS:
            reason, stop_asking = "MaxAutoMLJobRuntimeReached", True
            return False
        trial = study.ask()
        spec = space.suggest(trial)
        # One candidate may not take the whole budget: leave room for others and the refit.
        limit = budget.task_limit(job_left, MAX_TRIAL_SHARE)
        task = make_task(
            number=trial.number,
            name=candidate_name(job_name, trial.number, spec),
            spec=spec,
            time_limit=limit,
            prior=_prior(study) if prune else (),
        )
        task = replace(task, search_params=dict(trial.params))
        if job_left is not None:
            task = replace(task, deadline_at=time.time() + job_left)
        queue.submit(TRIAL_FUNCTION, task, limit=limit, key=trial.number)
        asked[trial.number] = (trial, task)
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
        crash_point("search")

    def fill() -> None:
        # Trial n is asked only once trials 0 .. n-P have been told (see the module's doc).
        while next_number - told < parallel and ask_one():
            pass

    def handle(number: int, outcome: TaskOutcome) -> None:
        nonlocal told
        finished[number] = trial_result(outcome, asked[number][1])
        while told in finished:
            tell(finished.pop(told))
            told += 1
            ask_one()

    queue.run(fill, handle)
    if budget.stop_requested():
        reason = "Stopped"
    elif not stop_asking:
        left = budget.left()
        if left is not None and left < MIN_TASK_SECONDS:
            reason = "MaxAutoMLJobRuntimeReached"
    return reason
