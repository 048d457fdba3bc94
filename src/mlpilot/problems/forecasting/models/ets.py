"""ETS: exponential smoothing with error, trend and season chosen by AICc (statsforecast's
AutoETS). Autopilot's ``ets``."""

from __future__ import annotations

from typing import Any

from mlpilot.problems.forecasting.models._statistical import StatsForecaster

__all__ = ["ETS"]


class ETS(StatsForecaster):
    name = "ets"
    description = "Exponential smoothing (AutoETS: error, trend and season chosen by AICc)"

    def _model(self, season_length: int) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season_length)
