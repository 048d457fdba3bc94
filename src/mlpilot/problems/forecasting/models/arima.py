"""ARIMA with orders chosen by a stepwise AICc search (statsforecast's AutoARIMA). Autopilot's
``arima``."""

from __future__ import annotations

from typing import Any

from mlpilot.problems.forecasting.models._statistical import StatsForecaster

__all__ = ["ARIMA"]


class ARIMA(StatsForecaster):
    name = "arima"
    description = "Seasonal ARIMA (AutoARIMA: orders chosen by a stepwise AICc search)"

    def _model(self, season_length: int) -> Any:
        from statsforecast.models import AutoARIMA

        return AutoARIMA(season_length=season_length)
