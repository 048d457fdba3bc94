"""The Theta method, its variant chosen per series (statsforecast's AutoTheta)."""

from __future__ import annotations

from typing import Any

from mlpilot.problems.forecasting.models._statistical import StatsForecaster

__all__ = ["Theta"]


class Theta(StatsForecaster):
    name = "theta"
    description = "Theta method (AutoTheta: standard, optimized or dynamic, per series)"

    def _model(self, season_length: int) -> Any:
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=season_length)
