"""Time-series forecasting: the preparation of series (a long table into regular series on the
frequency's grid, :func:`prepare_series`), the models (:mod:`.models`), backtests, ensembles,
and the job's final model (:class:`ForecastPredictor`, shipped in a
:class:`mlpilot.package.SeriesModel`). The problem type builds on these (issue 12, in
progress). The settings they apply are :class:`mlpilot.config.ForecastingConfig`'s;
frequencies are :mod:`mlpilot.data`'s."""

from mlpilot.problems.forecasting._predictor import MIN_HISTORY, ForecastPredictor, SeriesSettings
from mlpilot.problems.forecasting._series import SERIES, SeriesSet, prepare_series

__all__ = [
    "MIN_HISTORY",
    "SERIES",
    "ForecastPredictor",
    "SeriesSet",
    "SeriesSettings",
    "prepare_series",
]
