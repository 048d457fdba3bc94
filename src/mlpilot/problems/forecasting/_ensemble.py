"""Ensembles of forecasting models: greedy forward selection (with replacement) of the models'
backtest forecasts, the mean and every quantile averaged with the same weights, scored by the
job's objective over all backtest windows; then each quantile's distance from the median
rescaled so the bands are as wide as the backtests say they should be (:class:`QuantileSpread`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mlpilot.problems.forecasting._backtest import WindowForecast
from mlpilot.problems.forecasting.models import Forecast

__all__ = ["EnsembleSelection", "QuantileSpread", "blend_forecasts", "select_ensemble"]

#: Loss of a window's blended forecast (smaller is better): ``(window, forecast)``, the window
#: giving what happened, which series and where (for losses scaled by each series' history).
Loss = Callable[[WindowForecast, Forecast], float]
#: Selection rounds: each adds one model (again, if it helps most), so weights are multiples
#: of 1/ROUNDS.
ROUNDS = 25
#: The spread factors :class:`QuantileSpread` tries, 1/4 to 4 evenly on a log scale (1 keeps
#: a band as the models gave it).
SPREAD_FACTORS = tuple(
    float(f) for f in np.round(np.exp(np.linspace(-np.log(4.0), np.log(4.0), 41)), 4)
)
#: Relative gain in a quantile's backtest loss below which its band is left as it was (a few
#: windows should not move a band for a rounding error's worth).
MIN_SPREAD_GAIN = 0.01


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


@dataclass(frozen=True)
class QuantileSpread:
    """A factor per quantile level by which its distance from the median (the 0.5 quantile,
    or the mean without one) is multiplied.

    Models' bands are often too narrow (a conformal band from few errors, a local model's
    interval over a long horizon) or too wide; each quantile's factor is the one with the
    smallest weighted quantile loss on the backtest forecasts, so p10 and p90 can move apart
    by different amounts (a skewed error). Factors of 1 change nothing.
    """

    factors: dict[float, float]

    def apply(self, forecast: Forecast) -> Forecast:
        if all(f == 1.0 for f in self.factors.values()):
            return forecast
        centre = forecast.quantiles.get(0.5, forecast.mean)
        bands = {
            q: centre + self.factors.get(q, 1.0) * (band - centre)
            for q, band in forecast.quantiles.items()
        }
        return Forecast(forecast.mean, bands).ordered()

    @classmethod
    def fit(cls, windows: Sequence[WindowForecast]) -> QuantileSpread:
        """The factors that fit the backtest ``windows`` best (each quantile's loss averaged
        over the windows, as the objective averages it)."""
        if not windows:
            return cls({})
        levels = sorted(windows[0].forecast.quantiles)
        factors: dict[float, float] = {}
        for q in levels:
            if abs(q - 0.5) < 1e-12:
                factors[q] = 1.0
                continue
            losses = np.zeros(len(SPREAD_FACTORS))
            for window in windows:
                actual = window.actual
                centre = window.forecast.quantiles.get(0.5, window.forecast.mean)
                offset = window.forecast.quantiles[q] - centre
                denominator = float(np.abs(actual).sum()) or 1.0
                for i, factor in enumerate(SPREAD_FACTORS):
                    error = actual - (centre + factor * offset)
                    pinball = np.maximum(q * error, (q - 1) * error).sum()
                    losses[i] += 2 * pinball / denominator
            best = int(np.argmin(losses))
            unchanged = losses[SPREAD_FACTORS.index(1.0)]
            gain = (unchanged - losses[best]) / unchanged if unchanged > 0 else 0.0
            factors[q] = SPREAD_FACTORS[best] if gain >= MIN_SPREAD_GAIN else 1.0
        return cls(factors)
