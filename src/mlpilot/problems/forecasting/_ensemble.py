"""Ensembles of forecasting models: greedy forward selection (with replacement) of the models'
backtest forecasts, the mean and every quantile averaged with the same weights, scored by the
job's objective over all backtest windows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mlpilot.problems.forecasting._backtest import WindowForecast
from mlpilot.problems.forecasting.models import Forecast

__all__ = ["EnsembleSelection", "blend_forecasts", "select_ensemble"]

#: Loss of a window's blended forecast (smaller is better): ``(window, forecast)``, the window
#: giving what happened, which series and where (for losses scaled by each series' history).
Loss = Callable[[WindowForecast, Forecast], float]
#: Selection rounds: each adds one model (again, if it helps most), so weights are multiples
#: of 1/ROUNDS.
ROUNDS = 25


@dataclass(frozen=True)
class EnsembleSelection:
    """The chosen weights (summing to 1), the ensemble's loss per backtest window and on
    average, and the best single model's average for comparison."""

    weights: dict[str, float]
    window_losses: tuple[float, ...]
    loss: float
    best_single: str
    best_single_loss: float


def blend_forecasts(forecasts: Mapping[str, Forecast], weights: Mapping[str, float]) -> Forecast:
    """The weighted average of forecasts of the same series (mean and each quantile)."""
    names = [n for n, w in weights.items() if w > 0]
    total = sum(weights[n] for n in names)
    first = forecasts[names[0]]
    mean = sum(forecasts[n].mean * (weights[n] / total) for n in names)
    bands = {
        q: sum(forecasts[n].quantiles[q] * (weights[n] / total) for n in names)
        for q in first.quantiles
    }
    return Forecast(np.asarray(mean), {q: np.asarray(v) for q, v in bands.items()}).ordered()


def select_ensemble(
    backtests: Mapping[str, Sequence[WindowForecast]], loss: Loss, rounds: int = ROUNDS
) -> EnsembleSelection:
    """Forward selection over the models whose backtests cover the same windows and series.

    Each round adds the model that lowers the average loss over the windows most (a model may
    be added again); the ensemble after the best round is kept, so it is never worse on the
    backtests than the best single model.
    """
    names = sorted(backtests)
    if not names:
        raise ValueError("no model has backtest forecasts to ensemble")
    windows = [w.window for w in backtests[names[0]]]
    for name in names:
        if [w.window for w in backtests[name]] != windows:
            raise ValueError(f"{name}'s backtest windows differ from {names[0]}'s")

    def average_loss(weights: Mapping[str, float]) -> tuple[float, tuple[float, ...]]:
        per_window = []
        for i in range(len(windows)):
            blended = blend_forecasts({n: backtests[n][i].forecast for n in weights}, weights)
            per_window.append(loss(backtests[names[0]][i], blended))
        return float(np.mean(per_window)), tuple(per_window)

    singles = {name: average_loss({name: 1.0})[0] for name in names}
    best_single = min(names, key=lambda n: (singles[n], n))
    counts: Counter[str] = Counter()
    best_weights: dict[str, float] = {best_single: 1.0}
    best_loss = singles[best_single]
    for _ in range(rounds):
        trial = {}
        for name in names:
            candidate = counts + Counter({name: 1})
            total = sum(candidate.values())
            weights = {n: c / total for n, c in candidate.items()}
            trial[name] = (average_loss(weights)[0], weights)
        chosen = min(names, key=lambda n: (trial[n][0], n))
        counts[chosen] += 1
        value, weights = trial[chosen]
        if value < best_loss - 1e-12:
            best_loss, best_weights = value, weights
    final_loss, per_window = average_loss(best_weights)
    return EnsembleSelection(
        dict(sorted(best_weights.items())),
        per_window,
        final_loss,
        best_single,
        singles[best_single],
    )
