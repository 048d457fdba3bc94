"""Seasonal naive: each step repeats the value one season earlier; the baseline every other
model must beat."""

from __future__ import annotations

from typing import Any

from mlpilot.problems.forecasting.models._statistical import StatsForecaster

__all__ = ["SeasonalNaive"]


class SeasonalNaive(StatsForecaster):
    name = "seasonal-naive"
    description = "Seasonal naive (the value one season earlier; intervals from its residuals)"

    def _model(self, season_length: int) -> Any:
        from statsforecast.models import SeasonalNaive as Model

        return Model(season_length=season_length)
