"""Seasonal naive: each step repeats the value one season earlier; the baseline every other
model must beat."""

from mlpilot.problems.forecasting.models._statistical import StatsForecaster


class SeasonalNaive(StatsForecaster):
    name = "seasonal-naive"
    description = "Seasonal naive (the value one season earlier; intervals from its residuals)"
    model_class = "SeasonalNaive"
