"""Tabular training: the Optuna search (HYPERPARAMETER_TUNING) and the ensemble builder
(ENSEMBLING), each reporting its candidates to the job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlpilot._types import Mode
from mlpilot.algorithms import algorithm_path, algorithm_tags
from mlpilot.config import TabularConfig
from mlpilot.ensemble import EnsembleBuilder, EnsembleLimits
from mlpilot.features import PreprocessingOptions
from mlpilot.metrics import get_metric
from mlpilot.problems._protocol import CandidateReport, CandidateView, JobSession
from mlpilot.problems.tabular._fairness import candidate_disparity, ship_within_disparity
from mlpilot.problems.tabular._latency import TimedCandidate, choose_within_latency
from mlpilot.search import (
    CandidateSpec,
    EarlierTrial,
    SearchSpace,
    TrialResult,
    TrialTask,
    run_search,
)

if TYPE_CHECKING:
    from mlpilot.problems.tabular._problem import TabularProblem

__all__ = ["earlier_trials", "final_tail", "refits", "train_ensemble", "trial_report", "tune"]

#: Share of the runtime budget kept back for the final refit (at most).
FINAL_TAIL_SHARE = 0.25


def trial_report(
    task: TrialTask, result: TrialResult, more: dict[str, Any] | None = None
) -> CandidateReport:
    """A trial's candidate report (``more`` adds to its ``Mlpilot`` details)."""
    details: dict[str, Any] = {
        "TrialNumber": task.number,
        "Algorithm": task.algorithm,
        "Hyperparameters": task.params,
        "Preprocessing": task.preprocessing,
        "PreprocessingSteps": PreprocessingOptions(**task.preprocessing).describe(),
        "TrainSeconds": round(result.train_seconds, 3),
        "Fits": len(task.eval_folds),
        "PredictSecondsPerRow": result.latency_seconds,
        "ModelLocation": result.model_dir,
        "RefitParameters": result.refit_params,
    }
    if task.out_of_bag:
        details["OutOfBag"] = True
    if task.search_params:
        # What the search's study needs to continue from this trial (a resumed job).
        details["SearchParameters"] = dict(task.search_params)
        if result.intermediate_values:
            details["IntermediateValues"] = {
                str(k): v for k, v in sorted(result.intermediate_values.items())
            }
    if result.spread is not None:
        details.update(result.spread.details())
    if result.pruned:
        details["Pruned"] = True
    if result.time_cuts:
        # Bag members the time limit cut short, and where (a replay stops them there).
        details["TimeCuts"] = {str(k): v for k, v in result.time_cuts.items()}
    if result.status == "Failed" and result.detail:
        details["Traceback"] = result.detail
    details.update(more or {})
    # A stacker's package stands alone only once assembled (its update carries it).
    standalone = (more or {}).get("Layer") != 2 or "PredictSecondsPerRow" in (more or {})
    return CandidateReport(
        name=task.candidate_name,
        status=result.status,
        objective_value=result.objective_value if result.status == "Completed" else None,
        metrics=result.metrics,
        failure_reason=result.failure_reason,
        details=details,
        package_dir=result.model_dir,
        standalone=standalone,
    )


def refits(problem: TabularProblem, best: CandidateView | None) -> bool:
    """Whether the final model is a refit on all rows.

    A cross-validated candidate of an iterative algorithm (boosting, MLP) is packaged as its
    bag of fold models instead: a refit would have to guess the stopping point, every row
    already trains 4 of the 5 members, and the bag is the model the validation score
    measured (on the shared benchmark's cross-validated datasets it beat a refit on 6 of 7;
    a refit MLP scored LogLoss 0.37 on penguins, its bag 0.06). Forests and linear models
    have no stopping point to guess, and a bag of five forests is five times the size
    (681 MB on wine quality), so they are refit. ENSEMBLING's builder refits what its final
    model needs itself.
    """
    assert problem.analysis is not None
    if problem.analysis.mode is Mode.ENSEMBLING:
        return False
    if problem.validation is None or len(problem.validation.eval_folds) == 1:
        return True
    if problem.validation.forward:
        return True  # time-series folds' models saw only the past of each fold

    if best is None:
        return False
    return not algorithm_tags(best.details["Algorithm"]).early_stopping


def final_tail(problem: TabularProblem, session: JobSession) -> float:
    """Seconds the search leaves for the end: the refit of the best so far, packaging, and the
    job's own end."""
    budget = session.budget
    tail = budget.end_reserve()
    best = session.best
    if best is None:
        return tail
    details = best.details
    if refits(problem, best):
        per_fit = details.get("TrainSeconds", 0.0) / max(1, details.get("Fits", 1))
        tail += min(1.3 * per_fit, FINAL_TAIL_SHARE * (budget.total or 0))
    # Shipping the package: copied, loaded for the model card, compressed.
    return tail + budget.shipping_seconds(session.best_package_bytes)


def earlier_trials(candidates: list[CandidateView]) -> list[EarlierTrial]:
    """A resumed job's recorded search candidates as trials of its study."""
    trials = []
    for c in candidates:
        details = c.details
        if "TrialNumber" not in details:
            continue
        if c.objective_value is not None:
            state = "COMPLETE"
        elif details.get("Pruned"):
            state = "PRUNED"
        else:
            state = "FAIL"
        steps = details.get("IntermediateValues") or {}
        trials.append(
            EarlierTrial(
                number=int(details["TrialNumber"]),
                state=state,
                value=c.objective_value,
                params=dict(details.get("SearchParameters") or {}),
                intermediate_values={int(k): float(v) for k, v in steps.items()},
            )
        )
    return trials


def tune(problem: TabularProblem, session: JobSession, space: SearchSpace) -> str:
    """HYPERPARAMETER_TUNING: Optuna's search over the candidate space."""
    cfg = session.config
    assert problem.validation is not None and problem.analysis is not None
    metric = get_metric(problem.analysis.objective)
    validation = problem.validation
    layout = session.layout

    def make_task(
        *, number: int, name: str, spec: CandidateSpec, time_limit: float | None, prior: Any
    ) -> TrialTask:
        return TrialTask(
            number=number,
            candidate_name=name,
            algorithm=spec.algorithm,
            algorithm_path=algorithm_path(spec.algorithm),
            params=spec.params,
            preprocessing=spec.preprocessing,
            data_dir=str(layout.prepared_data),
            objective=metric.name,
            eval_folds=validation.eval_folds,
            seed=cfg.seed,
            time_limit=time_limit,
            model_dir=str(layout.candidate_model(name)),
            maximize=metric.maximize,
            prior_trials=prior,
            prune=len(validation.eval_folds) > 1,
            forward_folds=validation.forward,
        )

    def started(task: TrialTask) -> None:
        session.candidate_started(
            trial_report(task, TrialResult(task.number, task.candidate_name, "InProgress"))
        )

    trained: list[TimedCandidate] = (
        [] if session.earlier is None else list(session.earlier.candidates)
    )

    def finished(task: TrialTask, result: TrialResult) -> None:
        report = trial_report(task, result, disparity_detail(problem, result, None))
        session.candidate_finished(report)
        if report.status == "Completed":
            trained.append(report)

    earlier = [] if session.earlier is None else earlier_trials(session.earlier.candidates)
    max_candidates = cfg.effective_max_candidates
    if session.earlier is not None:
        # A resumed search adds up to max_new trials after every number asked before.
        asked = max((t.number for t in earlier), default=-1) + 1
        max_candidates = asked + session.earlier.max_new
    reason = run_search(
        job_name=cfg.name,
        space=space,
        executor=session.executor,
        objective=metric,
        # The search ends in time for the final refit and packaging of the best so far.
        budget=session.budget.reserving(lambda: final_tail(problem, session)),
        max_candidates=max_candidates,
        make_task=make_task,
        seed=cfg.seed,
        prune=len(validation.eval_folds) > 1,
        on_start=started,
        on_result=finished,
        earlier=earlier,
    )
    latency_ms = cfg.problem_as(TabularConfig).max_latency_ms
    slow: tuple[str, ...] = ()
    if latency_ms is not None:
        slow = ship_within_latency(session, trained, metric.name, latency_ms)
    if problem.fairness is not None and problem.fairness.max_disparity is not None:
        ship_within_disparity(session, trained, metric.name, problem.fairness, exclude=slow)
    return reason


def disparity_detail(
    problem: TabularProblem, result: TrialResult, threshold: float | None
) -> dict[str, Any]:
    """``{"Disparity": value}`` for a completed candidate of a job with a sensitive attribute
    (measured on the validation predictions it saved), else nothing."""
    if problem.fairness is None or result.status != "Completed":
        return {}
    value = candidate_disparity(problem.fairness, result.model_dir, threshold)
    return {} if value is None else {"Disparity": value}


def ship_within_latency(
    session: JobSession, trained: list[TimedCandidate], objective: str, latency_ms: float
) -> tuple[str, ...]:
    """Make the best candidate within the latency limit (else the fastest) the job's model,
    and record what the limit changed; returns the candidates left out for their latency when
    some are within it."""
    choice = choose_within_latency(trained, get_metric(objective), latency_ms / 1000)
    if choice is None:
        return ()
    if session.best is None or session.best.name != choice.name:
        session.choose_best(choice.name)
    session.note("LatencyNote", choice.note)
    if choice.skipped:
        session.note("LatencySkipped", list(choice.skipped))
    within = {
        c.name
        for c in trained
        if isinstance(c.details.get("PredictSecondsPerRow"), int | float)
        and c.details["PredictSecondsPerRow"] * 1000 <= latency_ms
    }
    return tuple(c.name for c in trained if within and c.name not in within)


def train_ensemble(problem: TabularProblem, session: JobSession) -> str:
    """ENSEMBLING: bagged base models, stackers, ensemble selection, refit (see
    :mod:`mlpilot.ensemble`)."""
    cfg = session.config
    profile, analysis = problem.profile, problem.analysis
    assert profile is not None and analysis is not None
    assert problem.y is not None and problem.bagging is not None
    target = profile.target
    layout = session.layout
    latency_ms = cfg.problem_as(TabularConfig).max_latency_ms
    limits = EnsembleLimits(
        max_candidates=(
            cfg.effective_max_candidates if session.earlier is None else session.earlier.max_new
        ),
        latency_limit=None if latency_ms is None else latency_ms / 1000,
        disparity=problem.fairness,
        stack_features=problem.stack_features,
    )

    def started(task: TrialTask, more: dict[str, Any]) -> None:
        result = TrialResult(task.number, task.candidate_name, "InProgress")
        session.candidate_started(trial_report(task, result, more))

    def finished(task: TrialTask, result: TrialResult, more: dict[str, Any]) -> None:
        more = dict(more)
        if more.pop("Update", False):
            more["PredictSecondsPerRow"] = result.latency_seconds
        if more.get("Layer") == 3:
            more["PreprocessingSteps"] = ["each base model's own (see Weights)"]
        more.update(disparity_detail(problem, result, more.get("DecisionThreshold")))
        session.candidate_finished(trial_report(task, result, more))

    builder = EnsembleBuilder(
        job_name=cfg.name,
        executor=session.executor,
        data_dir=layout.prepared_data,
        work_dir=layout.work / "ensemble",
        candidate_dir=layout.candidate_model,
        final_dir=layout.final_model,
        problem_type=profile.problem_type,
        n_classes=len(target.labels) if profile.problem_type.is_classification else 0,
        positive_index=target.positive_index,
        y=problem.y,
        weight=problem.weight,
        plan=problem.bagging,
        objective=analysis.objective,
        portfolio=problem.portfolio,
        seed=cfg.seed,
        budget=session.budget,
        limits=limits,
        on_start=started,
        on_result=finished,
    )
    problem.ensemble = builder
    if session.earlier is not None:
        builder.adopt([(c.name, c.objective_value, c.details) for c in session.earlier.candidates])
    reason = builder.run()
    final = builder.final
    if final is not None:
        session.choose_best(final.candidate)
    if builder.notes:
        session.note("EnsembleNotes", list(builder.notes))
    if latency_ms is not None:
        # What the limit did: to selection, then to the choice of package.
        done = [builder.latency_note] if builder.latency_note else []
        if final is not None:
            done.append(final.note)
        if done:
            session.note("LatencyNote", "; ".join(done))
    if builder.fairness is not None:
        session.note("FairnessNote", builder.fairness.note)
        if builder.fairness.skipped:
            session.note("FairnessSkipped", list(builder.fairness.skipped))
    return reason
