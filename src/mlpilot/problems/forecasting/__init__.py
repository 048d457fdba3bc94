"""Time-series forecasting: the preparation of series (a long table into regular series on the
frequency's grid, :func:`prepare_series`), the models (:mod:`.models`), backtests and
ensembles. The problem type builds on these (issue 12, in progress). The settings they apply
are :class:`mlpilot.config.ForecastingConfig`'s; frequencies are :mod:`mlpilot.data`'s."""

from mlpilot.problems.forecasting._series import SERIES, SeriesSet, prepare_series

__all__ = ["SERIES", "SeriesSet", "prepare_series"]
