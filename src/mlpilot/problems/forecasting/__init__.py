"""Time-series forecasting: forecast frequencies and the preparation of series (a long table into
regular series on the frequency's grid). The problem type builds on these."""

from mlpilot.problems.forecasting._frequency import Frequency, infer_frequency, parse_frequency
from mlpilot.problems.forecasting._series import (
    AGGREGATIONS,
    FILL_METHODS,
    MAX_HORIZON,
    SERIES,
    ColumnFilling,
    Fill,
    SeriesSet,
    Transformations,
    parse_transformations,
    prepare_series,
)

__all__ = [
    "AGGREGATIONS",
    "FILL_METHODS",
    "MAX_HORIZON",
    "SERIES",
    "ColumnFilling",
    "Fill",
    "Frequency",
    "SeriesSet",
    "Transformations",
    "infer_frequency",
    "parse_frequency",
    "parse_transformations",
    "prepare_series",
]
