"""One forecasting candidate's trial, run in a worker process: backtest one model on the
prepared series, score every window, and keep the backtest forecasts for the ensemble and the
BacktestResults artifact."""

from __future__ import annotations

import time
import traceback
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpilot.errors import storage_failure
from mlpilot.metrics import average_over_windows, quantile_name, score_forecasts
from mlpilot.problems.forecasting._backtest import BacktestPlan, WindowForecast, run_backtest
from mlpilot.problems.forecasting.models import (
    Forecast,
    ForecastTimeout,
    SeriesFeatures,
    get_forecaster,
)

__all__ = [
    "BacktestData",
    "ForecastTask",
    "ForecastTrialResult",
    "load_backtests",
    "load_series",
    "run_forecast_trial",
    "save_series",
    "score_windows",
]


@dataclass(frozen=True)
class BacktestData:
    """What every trial of a job backtests on (paths, not data: tasks are pickled)."""

    #: The prepared series (:func:`save_series`).
    series_path: str
    plan: BacktestPlan
    quantiles: tuple[float, ...]
    season_length: int
    #: Where each trial writes its backtest forecasts (``<candidate>.npz``).
    output_dir: str
    seed: int = 0
    #: The series' covariates, static attributes, timestamps and holidays
    #: (:meth:`SeriesFeatures.save`), for the models that read them.
    features_path: str | None = None


@dataclass(frozen=True)
class ForecastTask:
    """One model to backtest."""

    number: int
    candidate_name: str
    model: str
    params: dict[str, Any]
    data: BacktestData
    time_limit: float | None = None

    @property
    def output_path(self) -> str:
        return str(Path(self.data.output_dir) / f"{self.candidate_name}.npz")


@dataclass
class ForecastTrialResult:
    number: int
    candidate_name: str
    status: str
    #: Every metric averaged over the windows (:func:`mlpilot.metrics.average_over_windows`).
    metrics: dict[str, float] = field(default_factory=dict)
    window_metrics: list[dict[str, float]] = field(default_factory=list)
    failure_reason: str = ""
    seconds: float = 0.0
    backtest_path: str | None = None


def save_series(path: Path, series: list[np.ndarray]) -> None:
    """Every series' values in one file: concatenated, with their lengths."""
    lengths = np.array([len(y) for y in series], dtype="int64")
    values = np.concatenate(series) if series else np.empty(0)
    np.savez(path, values=values, lengths=lengths)


def load_series(path: str | Path) -> list[np.ndarray]:
    with np.load(path) as data:
        values, lengths = data["values"], data["lengths"]
    return np.split(values, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _save_backtests(path: Path, windows: list[WindowForecast]) -> None:
    arrays: dict[str, np.ndarray] = {"windows": np.array([w.window for w in windows])}
    for i, w in enumerate(windows):
        arrays[f"{i}.series"] = np.array(w.series)
        arrays[f"{i}.actual"] = w.actual
        arrays[f"{i}.mean"] = w.forecast.mean
        for q, band in w.forecast.quantiles.items():
            arrays[f"{i}.q{q!r}"] = band
    np.savez(path, **arrays)  # type: ignore[arg-type]


def load_backtests(path: str | Path, quantiles: tuple[float, ...]) -> list[WindowForecast]:
    """A trial's backtest forecasts, as :func:`run_backtest` returned them."""
    out = []
    with np.load(path) as data:
        for i, window in enumerate(data["windows"]):
            forecast = Forecast(data[f"{i}.mean"], {q: data[f"{i}.q{q!r}"] for q in quantiles})
            out.append(
                WindowForecast(
                    int(window),
                    tuple(int(s) for s in data[f"{i}.series"]),
                    data[f"{i}.actual"],
                    forecast,
                )
            )
    return out


def score_windows(
    windows: list[WindowForecast], series: list[np.ndarray], plan: BacktestPlan, season: int
) -> list[dict[str, float]]:
    """Every metric of every window (MASE scaled by each series' history before it)."""
    scores = []
    for w in windows:
        n = len(w.series)
        items = np.repeat(np.array(w.series), plan.horizon)
        history: dict[Hashable, np.ndarray] = {}
        for s in w.series:
            cutoff = plan.cutoff(len(series[s]), w.window)
            history[s] = series[s][:cutoff]
        scores.append(
            score_forecasts(
                w.actual.reshape(-1),
                w.forecast.mean.reshape(-1),
                {quantile_name(q): band.reshape(-1) for q, band in w.forecast.quantiles.items()},
                item_ids=items.tolist() if n else None,
                history=history,
                season=season,
            )
        )
    return scores


def run_forecast_trial(task: ForecastTask) -> ForecastTrialResult:
    """Backtest ``task.model``; a model that cannot finish within its time limit, or fails,
    gives a Failed result saying why (the job goes on without it)."""
    started = time.monotonic()
    result = ForecastTrialResult(task.number, task.candidate_name, "Failed")
    deadline = None if task.time_limit is None else started + task.time_limit
    try:
        data = task.data
        series = load_series(data.series_path)
        model = get_forecaster(task.model)(data.season_length, task.params, data.seed)
        features = None
        if data.features_path is not None and model.uses_features:
            features = SeriesFeatures.load(data.features_path)
        windows = run_backtest(model, series, data.plan, data.quantiles, deadline, features)
        if not windows:
            raise ValueError("no series is long enough for a backtest window")
        result.window_metrics = score_windows(windows, series, data.plan, data.season_length)
        result.metrics = average_over_windows(result.window_metrics)
        _save_backtests(Path(task.output_path), windows)
        result.backtest_path = task.output_path
        result.status = "Completed"
    except ForecastTimeout as exc:
        result.failure_reason = f"stopped at its time limit: {exc}"
    except Exception as exc:
        full = storage_failure(exc, task.output_path)
        result.failure_reason = str(full) if full else f"{type(exc).__name__}: {exc}"[:900]
        traceback.print_exc()
    result.seconds = time.monotonic() - started
    return result
