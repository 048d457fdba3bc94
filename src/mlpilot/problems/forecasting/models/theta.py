"""The Theta method, its variant chosen per series (statsforecast's AutoTheta)."""

from mlpilot.problems.forecasting.models._statistical import StatsForecaster


class Theta(StatsForecaster):
    name = "theta"
    description = "Theta method (AutoTheta: standard, optimized or dynamic, per series)"
    model_class = "AutoTheta"
