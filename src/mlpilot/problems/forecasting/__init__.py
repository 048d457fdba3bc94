"""Time-series forecasting (``TimeSeriesForecastingJobConfig``): :class:`ForecastingProblem`
prepares the series (a long table into regular series on the frequency's grid,
:func:`prepare_series`), backtests the models (:mod:`.models`), ensembles their backtest
forecasts and ships the best as a :class:`ForecastPredictor` in a
:class:`mlpilot.package.SeriesModel`. The settings are :class:`mlpilot.config.ForecastingConfig`'s;
frequencies are :mod:`mlpilot.data`'s."""

from mlpilot.problems.forecasting._predictor import MIN_HISTORY, ForecastPredictor, SeriesSettings
from mlpilot.problems.forecasting._problem import ForecastingProblem
from mlpilot.problems.forecasting._series import SERIES, SeriesSet, prepare_series

__all__ = [
    "MIN_HISTORY",
    "SERIES",
    "ForecastPredictor",
    "ForecastingProblem",
    "SeriesSet",
    "SeriesSettings",
    "prepare_series",
]
