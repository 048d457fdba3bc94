"""Backtests: each model forecasts the last ``horizon`` steps of every series from the history
before them, in one or more windows back from the end, so models are compared (and ensembled)
on forecasts of data they did not see."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlpilot.problems.forecasting.models import Forecast, Forecaster, SeriesFeatures

__all__ = ["BacktestPlan", "WindowForecast", "plan_backtests", "run_backtest"]

#: The most windows a job backtests on (Amazon Forecast's limit).
MAX_WINDOWS = 5
#: A series takes part in a window when the history before the window is at least this many
#: horizons long (Forecast's rule: the backtest offset stays under half the series).
MIN_HISTORY_HORIZONS = 1
#: A local model's window may take this many times its equal share of the time left.
LOCAL_WINDOW_SLACK = 1.5


@dataclass(frozen=True)
class BacktestPlan:
    """``windows`` windows of ``horizon`` steps; window ``k`` (0 is the latest) ends ``k *
    horizon`` steps before each series' end."""

    horizon: int
    windows: int
    reason: str

    def cutoff(self, length: int, window: int) -> int | None:
        """Where the history of a series of ``length`` steps ends in ``window`` (the window
        is ``[cutoff, cutoff + horizon)``); None when the series is too short for it."""
        cutoff = length - (window + 1) * self.horizon
        return cutoff if cutoff >= MIN_HISTORY_HORIZONS * self.horizon else None


@dataclass(frozen=True)
class WindowForecast:
    """One model's forecasts in one backtest window: the series that took part (their
    indices), what happened and what was forecast."""

    window: int
    series: tuple[int, ...]
    actual: np.ndarray  # (len(series), horizon)
    forecast: Forecast


def plan_backtests(
    lengths: Sequence[int], horizon: int, max_windows: int = MAX_WINDOWS
) -> BacktestPlan:
    """As many windows as the typical (median) series affords while every window keeps at
    least as much history before it as it holds, up to ``max_windows``; at least one."""
    typical = int(np.median(lengths))
    affordable = typical // horizon - MIN_HISTORY_HORIZONS
    windows = max(1, min(max_windows, affordable))
    reason = (
        f"{windows} backtest window(s) of {horizon} steps from the end of each series "
        f"(typical series: {typical} steps; at most {max_windows} windows, each with at "
        "least one horizon of history before it)"
    )
    return BacktestPlan(horizon, windows, reason)


def run_backtest(
    model: Forecaster,
    series: Sequence[np.ndarray],
    plan: BacktestPlan,
    quantiles: Sequence[float],
    deadline: float | None = None,
    features: SeriesFeatures | None = None,
) -> list[WindowForecast]:
    """``model``'s forecasts in every window of ``plan``, the latest window first. A global
    model is fit on each window's history before forecasting it. ``features`` (of every whole
    series) are cut to each window: its history's, and the window's own covariates as the
    future ones, known in advance."""
    out = []
    for window in range(plan.windows):
        taking_part, cutoffs, histories, actuals = [], [], [], []
        for index, y in enumerate(series):
            cutoff = plan.cutoff(len(y), window)
            if cutoff is None:
                continue
            taking_part.append(index)
            cutoffs.append(cutoff)
            histories.append(y[:cutoff])
            actuals.append(y[cutoff : cutoff + plan.horizon])
        if not taking_part:
            continue
        cut = None
        if features is not None and model.uses_features:
            cut = features.cut(taking_part, cutoffs, plan.horizon)
        if not model.local:
            fit_by = deadline
            if model.anytime and deadline is not None:
                # An equal share of the time left for this window and each after it (a tenth
                # kept back for forecasting).
                left = 0.9 * (deadline - time.monotonic())
                fit_by = time.monotonic() + left / (plan.windows - window)
            model.fit(histories, fit_by, features=cut)
        by = deadline
        if model.local and deadline is not None:
            # A local model fits as it forecasts: each window (about equal work) gets its
            # share of the time left, with some slack, so that a model too slow for the whole
            # backtest gives up in the first window, not at the end of its time.
            left = deadline - time.monotonic()
            by = time.monotonic() + min(left, LOCAL_WINDOW_SLACK * left / (plan.windows - window))
        forecast = model.forecast(histories, plan.horizon, quantiles, by, features=cut)
        out.append(WindowForecast(window, tuple(taking_part), np.array(actuals), forecast))
    return out
