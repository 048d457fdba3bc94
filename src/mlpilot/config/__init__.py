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
from mlpilot.config._job import (
    COST_MATRIX_TAG,
    MAX_CANDIDATES_LIMIT,
    OBJECTIVE_DIRECTION_TAG,
    OBJECTIVE_INPUT_TAG,
    OBJECTIVE_TAG,
    PORTFOLIO_TAG,
    JobConfig,
    ProblemConfig,
    cost_matrix_location,
    problem_configs,
)
from mlpilot.config._tabular import TabularConfig
from mlpilot.config._text import TextClassificationConfig
from mlpilot.config._v1 import v2_request

__all__ = [
    "AGGREGATIONS",
    "COST_MATRIX_TAG",
    "FILL_METHODS",
    "MAX_CANDIDATES_LIMIT",
    "MAX_HORIZON",
    "OBJECTIVE_DIRECTION_TAG",
    "OBJECTIVE_INPUT_TAG",
    "OBJECTIVE_TAG",
    "PORTFOLIO_TAG",
    "ColumnFilling",
    "Fill",
    "ForecastingConfig",
    "JobConfig",
    "ProblemConfig",
    "TabularConfig",
    "TextClassificationConfig",
    "Transformations",
    "check_holiday_country",
    "cost_matrix_location",
    "fill_number",
    "parse_transformations",
    "problem_configs",
    "v2_request",
]
