"""Forecasting models: one module each, behind :class:`Forecaster`.

The registry maps each model's name to its class's import path, so a job imports only the
models it runs; :data:`AUTOPILOT_ALGORITHMS` says which model stands for each of Autopilot's
time-series algorithm names (``AutoMLAlgorithms``) that mlpilot implements.
"""

from __future__ import annotations

import importlib

from mlpilot.errors import ConfigError
from mlpilot.problems.forecasting.models._base import (
    Forecast,
    Forecaster,
    ForecastTimeout,
    LocalForecaster,
    quantile_levels,
)
from mlpilot.problems.forecasting.models._features import SeriesFeatures

__all__ = [
    "AUTOPILOT_ALGORITHMS",
    "FORECASTERS",
    "Forecast",
    "ForecastTimeout",
    "Forecaster",
    "LocalForecaster",
    "SeriesFeatures",
    "get_forecaster",
    "quantile_levels",
]

_PACKAGE = "mlpilot.problems.forecasting.models"
FORECASTERS: dict[str, str] = {
    "seasonal-naive": f"{_PACKAGE}.seasonal_naive:SeasonalNaive",
    "ets": f"{_PACKAGE}.ets:ETS",
    "arima": f"{_PACKAGE}.arima:ARIMA",
    "theta": f"{_PACKAGE}.theta:Theta",
    "npts": f"{_PACKAGE}.npts:NPTS",
    "gbm": f"{_PACKAGE}.gbm:GlobalGBM",
    "quantile-net": f"{_PACKAGE}.quantile_net:QuantileNet",
    "prophet": f"{_PACKAGE}.prophet:Prophet",
}
#: Autopilot's algorithm name → the model that implements it here.
#: Autopilot's ``cnn-qr`` and ``deepar`` (its two global networks) are both the quantile
#: network here: a direct multi-horizon quantile network, as CNN-QR is.
AUTOPILOT_ALGORITHMS: dict[str, str] = {
    "ets": "ets",
    "arima": "arima",
    "npts": "npts",
    "prophet": "prophet",
    "cnn-qr": "quantile-net",
    "deepar": "quantile-net",
}


def get_forecaster(name: str) -> type[Forecaster]:
    """The model class registered as ``name``."""
    path = FORECASTERS.get(name)
    if path is None:
        raise ConfigError(f"Unknown forecasting model {name!r}; known: {', '.join(FORECASTERS)}")
    module, _, attribute = path.partition(":")
    cls: type[Forecaster] = getattr(importlib.import_module(module), attribute)
    return cls
