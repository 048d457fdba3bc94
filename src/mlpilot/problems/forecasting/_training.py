"""Training a forecasting job: every model backtested in the executor's workers within the
budget, then the forward-selection ensemble of their backtest forecasts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpilot.metrics import (
    ObjectiveSpread,
    average_over_windows,
    forecast_metric_names,
    rmse,
    wape,
    weighted_quantile_loss,
)
from mlpilot.problems._protocol import CandidateReport, JobSession
from mlpilot.problems.forecasting._backtest import BacktestPlan, WindowForecast
from mlpilot.problems.forecasting._ensemble import (
    QuantileSpread,
    blend_forecasts,
    select_ensemble,
)
from mlpilot.problems.forecasting._trial import (
    ForecastTask,
    ForecastTrialResult,
    load_backtests,
    score_windows,
)
from mlpilot.problems.forecasting.models import Forecast, get_forecaster
from mlpilot.runtime import TaskOutcome, TaskQueue

if TYPE_CHECKING:
    from mlpilot.problems.forecasting._problem import ForecastingProblem

__all__ = ["ENSEMBLE", "candidate_name", "train_models"]

ENSEMBLE = "weighted-ensemble"
#: Largest share of the job's runtime budget one model's backtest may take.
MAX_TRIAL_SHARE = 0.4


def candidate_name(job_name: str, number: int, model: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps([model, params], sort_keys=True).encode()).hexdigest()[:8]
    return f"{job_name[:24]}-{model[:16]}-{number:03d}-{digest}"


def _reported(
    result: ForecastTrialResult,
    objective: str,
    details: dict[str, Any],
    artifacts: dict[str, str] | None = None,
) -> CandidateReport:
    """A trial's result as the job records it: the objective, and the metrics AutoMLCandidate
    lists (the per-quantile wQL stay in the details: they have no metric name of their own)."""
    named = set(forecast_metric_names())
    metrics = {k: v for k, v in result.metrics.items() if k in named and np.isfinite(v)}
    value = result.metrics.get(objective)
    ok = result.status == "Completed" and value is not None and np.isfinite(value)
    # How much the objective moves from one backtest window to the next.
    spread = ObjectiveSpread.of(
        [w.get(objective, np.nan) for w in result.window_metrics],
        lambda count: f"{count} backtest windows",
    )
    if ok and spread is not None:
        details = {**details, **spread.details()}
    return CandidateReport(
        name=result.candidate_name,
        status="Completed" if ok else "Failed",
        objective_value=float(value) if ok and value is not None else None,
        metrics=metrics,
        failure_reason=result.failure_reason
        or ("" if ok else f"the objective {objective} could not be computed on the backtests"),
        details={
            **details,
            "BacktestMetrics": result.metrics,
            "BacktestWindowMetrics": result.window_metrics,
            "TrainSeconds": round(result.seconds, 3),
        },
        artifacts=dict(artifacts or {}) if ok else {},
    )


def train_models(problem: ForecastingProblem, session: JobSession) -> str:
    """Backtest each planned model (cheapest first), then ensemble the completed ones."""
    cfg = session.config
    assert problem.analysis is not None and problem.plan is not None
    objective = problem.analysis.objective
    budget = session.budget
    queue = TaskQueue(session.executor, budget)
    pending = list(enumerate(problem.models, start=1))[: cfg.effective_max_candidates]
    completed: dict[str, str] = {}  # model → candidate name
    out_of_time: list[str] = []  # models skipped because the budget ran out

    def fill() -> None:
        while pending and queue.free > 0:
            number, model = pending.pop(0)
            left = budget.left(budget.end_reserve() + problem.tail_seconds())
            limit = budget.task_limit(left, MAX_TRIAL_SHARE)
            needs = problem.minimum_seconds(session, model)
            if limit is not None and limit < max(1.0, needs):
                why = "no time left in the job's budget to backtest it"
                if needs >= 1.0:
                    why = f"its backtest needs about {needs:.0f} s; {max(0.0, limit):.0f} s left"
                out_of_time.append(model)
                name = candidate_name(cfg.name, number, model, {})
                session.candidate_started(CandidateReport(name, "InProgress"))
                session.candidate_finished(
                    CandidateReport(
                        name,
                        "Failed",
                        failure_reason=f"skipped: {why}",
                        details={"Algorithm": model},
                    )
                )
                continue
            task = problem.task(session, number, model, limit)
            session.candidate_started(
                CandidateReport(task.candidate_name, "InProgress", details={"Algorithm": model})
            )
            queue.submit(problem.trial_function, task, limit=limit, key=task)

    def handle(task: ForecastTask, outcome: TaskOutcome) -> None:
        if outcome.state == "ok":
            result: ForecastTrialResult = outcome.value
        else:
            why = {
                "timeout": "stopped at its time limit",
                "cancelled": "the job was stopped",
            }.get(outcome.state, outcome.error or outcome.state)
            result = ForecastTrialResult(
                task.number, task.candidate_name, "Failed", failure_reason=why
            )
        details = {
            "Algorithm": task.model,
            "TrialNumber": task.number,
            "Hyperparameters": task.params,
            "BacktestForecasts": result.backtest_path,
        }
        artifacts = None
        if result.status == "Completed" and result.backtest_path:
            windows = load_backtests(result.backtest_path, problem.quantile_levels)
            artifacts = problem.save_backtest_results(
                session, task.candidate_name, windows, result.window_metrics
            )
        report = _reported(result, objective, details, artifacts)
        if not get_forecaster(task.model).local:
            problem.global_seconds[task.model] = result.seconds or outcome.seconds
        if report.status == "Completed":
            completed[task.model] = task.candidate_name
            problem.backtests[task.model] = result.backtest_path or ""
        session.candidate_finished(report)

    queue.run(fill, handle)
    if budget.stop_requested():
        return "Stopped"
    if completed:
        _ensemble(problem, session, completed)
    left = budget.left(budget.end_reserve())
    ran_out = out_of_time or (left is not None and left <= 0)
    return "MaxAutoMLJobRuntimeReached" if ran_out else "MaxCandidatesReached"


def _ensemble(problem: ForecastingProblem, session: JobSession, completed: dict[str, str]) -> None:
    """Forward selection over the completed models' backtests, its bands rescaled to the
    backtests (:class:`QuantileSpread`); recorded as a candidate (the job's best if it beats
    every single model on the objective). One completed model makes an ensemble of itself with
    rescaled bands."""
    assert problem.analysis is not None and problem.plan is not None
    objective = problem.analysis.objective
    quantiles = problem.quantile_levels
    backtests = {m: load_backtests(problem.backtests[m], quantiles) for m in completed}
    series, plan, season = problem.values, problem.plan, problem.season

    def loss(window: WindowForecast, blended: Forecast) -> float:
        return window_objective(objective, window, blended, series, plan, season)

    selection = select_ensemble(backtests, loss)
    number = len(problem.models) + 1
    name = candidate_name(session.config.name, number, ENSEMBLE, selection.weights)
    session.candidate_started(CandidateReport(name, "InProgress", details={"Algorithm": ENSEMBLE}))
    blended = _blended_windows(backtests, selection.weights)
    spread = QuantileSpread.fit(blended)
    windows = [
        WindowForecast(w.window, w.series, w.actual, spread.apply(w.forecast)) for w in blended
    ]
    window_metrics = score_windows(windows, series, plan, season)
    result = ForecastTrialResult(
        number,
        name,
        "Completed",
        metrics=average_over_windows(window_metrics),
        window_metrics=window_metrics,
    )
    problem.ensemble_weights = selection.weights
    details = {
        "Algorithm": ENSEMBLE,
        "Weights": selection.weights,
        "QuantileSpread": {str(q): f for q, f in spread.factors.items()},
        "Members": {m: completed[m] for m in selection.weights},
        "BestSingleModel": selection.best_single,
    }
    artifacts = problem.save_backtest_results(session, name, windows, window_metrics)
    session.candidate_finished(_reported(result, objective, details, artifacts))


def window_objective(
    objective: str,
    window: WindowForecast,
    forecast: Forecast,
    series: list[np.ndarray],
    plan: BacktestPlan,
    season: int,
) -> float:
    """The objective of ``forecast`` in ``window``. Selection asks this hundreds of times, so
    the pooled metrics are computed alone; MASE and MAPE, per series, go through
    :func:`score_windows`."""
    actual = window.actual.ravel()
    if objective == "AverageWeightedQuantileLoss":
        losses = [
            weighted_quantile_loss(actual, b.ravel(), q) for q, b in forecast.quantiles.items()
        ]
        return float(np.mean(losses))
    if objective == "RMSE":
        return rmse(actual, forecast.mean.ravel())
    if objective == "WAPE":
        return wape(actual, forecast.mean.ravel())
    scored = WindowForecast(window.window, window.series, window.actual, forecast)
    return float(score_windows([scored], series, plan, season)[0][objective])


def _blended_windows(
    backtests: dict[str, list[WindowForecast]], weights: dict[str, float]
) -> list[WindowForecast]:
    first = backtests[next(iter(weights))]
    out = []
    for i, window in enumerate(first):
        blended = blend_forecasts({m: backtests[m][i].forecast for m in weights}, weights)
        out.append(WindowForecast(window.window, window.series, window.actual, blended))
    return out


def model_order(names: Sequence[str]) -> list[str]:
    """Models cheapest first, so the job has forecasts early whatever its budget."""
    cost = {
        "seasonal-naive": 0,
        "npts": 1,
        "theta": 2,
        "ets": 3,
        "gbm": 4,
        "arima": 5,
        "quantile-net": 6,
        "prophet": 7,
    }
    return sorted(names, key=lambda n: (cost.get(n, 9), n))
