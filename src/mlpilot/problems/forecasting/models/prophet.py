"""Prophet (Meta's), fit to each series on its own: a piecewise-linear trend with automatic
changepoints plus a Fourier season, its MAP estimate fit by Stan. Autopilot's ``prophet``.

A series here is a sequence of regular steps, so each step is given to Prophet as one day and
the season (``season_length`` steps) as a custom seasonality of that many days; Prophet's
calendar seasonalities are off. The mean is Prophet's forecast; the quantiles are those of its
predictive samples (trend changes and noise), drawn from a generator seeded by the model's
seed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.problems.forecasting.models._base import Forecast, LocalForecaster

__all__ = ["Prophet"]

#: Seconds one Prophet fit and forecast takes at the least (Stan's optimizer, a process each).
SECONDS_PER_SERIES = 0.1


class Prophet(LocalForecaster):
    name = "prophet"
    description = "Prophet per series (piecewise-linear trend, Fourier season; sampled quantiles)"

    def minimum_seconds(self, n_series: int, windows: int) -> float:
        return windows * n_series * SECONDS_PER_SERIES

    def forecast_one(self, y: np.ndarray, horizon: int, quantiles: Sequence[float]) -> Forecast:
        if len(y) < 3:  # too short to fit a trend: the last value carries on
            last = np.full((1, horizon), float(y[-1]) if len(y) else 0.0)
            return Forecast(last, {q: last.copy() for q in quantiles})
        model = self._model(len(y))
        steps = pd.date_range("2000-01-01", periods=len(y) + horizon, freq="D")
        model.fit(pd.DataFrame({"ds": steps[: len(y)], "y": y}))
        future = pd.DataFrame({"ds": steps[len(y) :]})
        # Prophet samples from NumPy's global generator: seed it, and leave it as it was.
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            samples = model.predictive_samples(future)["yhat"]  # (horizon, samples)
            mean = model.predict(future)["yhat"].to_numpy()
        finally:
            np.random.set_state(state)
        return Forecast(
            mean[None, :], {q: np.quantile(samples, q, axis=1)[None, :] for q in quantiles}
        )

    def _model(self, n: int) -> Any:
        # Stan and Prophet report every fit at INFO.
        for logger in ("cmdstanpy", "prophet"):
            logging.getLogger(logger).setLevel(logging.WARNING)
        from prophet import Prophet as ProphetModel

        model = ProphetModel(
            yearly_seasonality=False,
            weekly_seasonality=False,
            daily_seasonality=False,
            uncertainty_samples=int(self.params.get("samples", 200)),
            changepoint_prior_scale=float(self.params.get("changepoint_prior_scale", 0.05)),
        )
        m = self.season_length
        if m > 1 and n >= 2 * m:
            model.add_seasonality("season", period=m, fourier_order=max(1, min(10, m // 2)))
        return model
