"""Time-series forecasting (``TimeSeriesForecastingJobConfig``): :class:`ForecastingProblem`
prepares the series (a long table into regular series on the frequency's grid,
:func:`prepare_series`), backtests the models (:mod:`.models`), ensembles their backtest
forecasts and ships the best as a :class:`ForecastPredictor` in a
:class:`mlpilot.package.SeriesModel`. The settings are :class:`mlpilot.config.ForecastingConfig`'s;
frequencies are :mod:`mlpilot.data`'s."""

from mlpilot.problems.forecasting._backtest import BacktestPlan, WindowForecast
from mlpilot.problems.forecasting._predictor import MIN_HISTORY, ForecastPredictor, SeriesSettings
from mlpilot.problems.forecasting._problem import ForecastingProblem
from mlpilot.problems.forecasting._results import (
    ACCURACY_METRICS,
    AVERAGE,
    FORECASTED_VALUES,
    WINDOW,
    WINDOW_END,
    WINDOW_START,
    read_backtest_results,
    write_backtest_results,
)
from mlpilot.problems.forecasting._series import SERIES, SeriesSet, prepare_series

__all__ = [
    "ACCURACY_METRICS",
    "AVERAGE",
    "FORECASTED_VALUES",
    "MIN_HISTORY",
    "SERIES",
    "WINDOW",
    "WINDOW_END",
    "WINDOW_START",
    "BacktestPlan",
    "ForecastPredictor",
    "ForecastingProblem",
    "SeriesSet",
    "SeriesSettings",
    "WindowForecast",
    "prepare_series",
    "read_backtest_results",
    "write_backtest_results",
]
