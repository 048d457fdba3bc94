"""Models from statsforecast, fit one series at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mlpilot.problems.forecasting.models._base import Forecast, LocalForecaster, quantile_levels

__all__ = ["StatsForecaster"]

#: Shortest history a seasonal model is fit on, in seasons (below it the model's
#: non-seasonal form is fit).
MIN_SEASONS = 2


class StatsForecaster(LocalForecaster):
    """A statsforecast model per series (``model_class``, a class of ``statsforecast.models``
    taking the season length); its prediction intervals give the quantiles. A series too short
    for the model (or on which it fails to fit) gets the seasonal naive forecast, so every
    series is forecast."""

    model_class: ClassVar[str]
    fit_imports = ("statsforecast.models",)  # 2 s of imports (numba and its caches)

    def _model(self, season_length: int) -> Any:
        from statsforecast import models

        return getattr(models, self.model_class)(season_length=season_length)

    def forecast_one(self, y: np.ndarray, horizon: int, quantiles: Sequence[float]) -> Forecast:
        season = self.season_length if len(y) >= MIN_SEASONS * self.season_length else 1
        try:
            return self._predict(self._model(season), y, horizon, quantiles)
        except Exception:  # statsforecast raises plain exceptions for unfit-able series
            from statsforecast.models import SeasonalNaive

            fallback = min(self.season_length, len(y)) if len(y) > 1 else 1
            return self._predict(SeasonalNaive(season_length=fallback), y, horizon, quantiles)

    @staticmethod
    def _predict(model: Any, y: np.ndarray, horizon: int, quantiles: Sequence[float]) -> Forecast:
        sides = quantile_levels(quantiles)
        levels = sorted({level for side, level in sides.values() if side != "mean"})
        model.fit(y)
        out = model.predict(h=horizon, level=levels) if levels else model.predict(h=horizon)
        mean = np.asarray(out["mean"], dtype="float64")
        bands = {}
        for q, (side, level) in sides.items():
            bands[q] = mean if side == "mean" else np.asarray(out[f"{side}-{level}"], "float64")
        return Forecast(mean[None, :], {q: v[None, :] for q, v in bands.items()})
