"""What a job is asked to do: :class:`JobConfig` (what every problem type shares) with one
problem type's settings (:class:`TabularConfig`), built from the Python API, the CLI or a
CreateAutoMLJob[V2] request and validated once."""

from mlpilot.config._forecasting import (
    AGGREGATIONS,
    FILL_METHODS,
    MAX_HORIZON,
    ColumnFilling,
    Fill,
    ForecastingConfig,
    Transformations,
    check_holiday_country,
    fill_number,
    parse_transformations,
)
from mlpilot.config._job import MAX_CANDIDATES_LIMIT, JobConfig, ProblemConfig, problem_configs
from mlpilot.config._tabular import TabularConfig
from mlpilot.config._v1 import v2_request

__all__ = [
    "AGGREGATIONS",
    "FILL_METHODS",
    "MAX_CANDIDATES_LIMIT",
    "MAX_HORIZON",
    "ColumnFilling",
    "Fill",
    "ForecastingConfig",
    "JobConfig",
    "ProblemConfig",
    "TabularConfig",
    "Transformations",
    "check_holiday_country",
    "fill_number",
    "parse_transformations",
    "problem_configs",
    "v2_request",
]
