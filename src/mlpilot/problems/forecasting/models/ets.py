"""ETS: exponential smoothing with error, trend and season chosen by AICc (statsforecast's
AutoETS). Autopilot's ``ets``."""

from mlpilot.problems.forecasting.models._statistical import StatsForecaster


class ETS(StatsForecaster):
    name = "ets"
    description = "Exponential smoothing (AutoETS: error, trend and season chosen by AICc)"
    model_class = "AutoETS"
