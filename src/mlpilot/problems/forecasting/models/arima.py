"""ARIMA with orders chosen by a stepwise AICc search (statsforecast's AutoARIMA). Autopilot's
``arima``."""

from mlpilot.problems.forecasting.models._statistical import StatsForecaster


class ARIMA(StatsForecaster):
    name = "arima"
    description = "Seasonal ARIMA (AutoARIMA: orders chosen by a stepwise AICc search)"
    model_class = "AutoARIMA"
