"""NPTS, the non-parametric time-series forecaster: a step's forecast distribution is the
series' own past values, weighted by how recent they are. Autopilot's ``npts``; suited to
sparse and intermittent series, where it forecasts zeros and spikes as often as they occur.

This form is deterministic: the weighted empirical distribution is used as it is (its
weighted mean and weighted quantiles) instead of being sampled. With ``seasonal`` (the
default, for series at least two seasons long) a step draws only on past values at the same
position in the season; the weight of a value ``k`` seasons (or steps) back is
``exp(-decay * k)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlpilot.problems.forecasting.models._base import Forecast, LocalForecaster

__all__ = ["NPTS", "weighted_quantile"]


class NPTS(LocalForecaster):
    name = "npts"
    description = "Non-parametric forecaster (recency-weighted past values, seasonal)"

    def forecast_one(self, y: np.ndarray, horizon: int, quantiles: Sequence[float]) -> Forecast:
        decay = float(self.params.get("decay", 0.1))
        seasonal = bool(self.params.get("seasonal", True))
        m = self.season_length if seasonal and len(y) >= 2 * self.season_length else 1
        n = len(y)
        mean = np.empty(horizon)
        bands = {q: np.empty(horizon) for q in quantiles}
        for h in range(horizon):
            # Past values at the step's place in the season (position n + h), the most recent
            # first.
            index = np.arange(n - 1 - ((n - 1 - (n + h)) % m), -1, -m)
            values = y[index]
            weights = np.exp(-decay * np.arange(len(index)))
            mean[h] = float(np.dot(weights, values) / weights.sum())
            for q in quantiles:
                bands[q][h] = weighted_quantile(values, weights, q)
        return Forecast(mean[None, :], {q: v[None, :] for q, v in bands.items()})


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` quantile of the distribution putting ``weights`` on ``values``: the smallest
    value whose cumulative weight reaches ``q`` of the total."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    position = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
    return float(values[order][min(position, len(order) - 1)])
