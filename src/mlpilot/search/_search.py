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
from dataclasses import replace

import optuna
from optuna.trial import TrialState

from mlpilot._crash import crash_point
from mlpilot.algorithms import short_name
from mlpilot.metrics import Metric
from mlpilot.runtime import MIN_TASK_SECONDS, Budget, Executor, TaskOutcome, TaskQueue
from mlpilot.search._space import CandidateSpec, SearchSpace
from mlpilot.search._tasks import PriorTrial, TrialResult, TrialTask, trial_result

__all__ = ["run_search"]

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
) -> str:
    """Run trials until a limit is reached; return why it stopped.

    ``budget`` is the search's view of the job's budget (its deadline leaves the final model's
    time). The reason is ``"MaxCandidatesReached"``, ``"MaxAutoMLJobRuntimeReached"`` or
    ``"Stopped"``.
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

    queue = TaskQueue(executor, budget)
    parallel = queue.capacity
    asked: dict[int, tuple[optuna.Trial, TrialTask]] = {}
    finished: dict[int, TrialResult] = {}
    next_number = 0
    told = 0
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
