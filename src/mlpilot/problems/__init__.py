"""Problem types: one implementation of the :class:`Problem` protocol each.

The registry maps ``AutoMLProblemTypeConfigName`` to the implementing class's import path, so a
job imports only its own problem type's code. Adding a problem type: a package beside
``tabular/`` implementing :class:`Problem`, and one line here.
"""

from __future__ import annotations

import importlib

from mlpilot.errors import ConfigError
from mlpilot.problems._protocol import (
    Analysis,
    CandidateReport,
    CandidateView,
    EarlierRun,
    JobSession,
    PackagedModel,
    Problem,
    StopReason,
)

__all__ = [
    "PROBLEM_TYPES",
    "Analysis",
    "CandidateReport",
    "CandidateView",
    "EarlierRun",
    "JobSession",
    "PackagedModel",
    "Problem",
    "StopReason",
    "get_problem",
]

#: AutoMLProblemTypeConfigName -> "module:Class" of its implementation.
PROBLEM_TYPES = {
    "Tabular": "mlpilot.problems.tabular:TabularProblem",
    "TimeSeriesForecasting": "mlpilot.problems.forecasting:ForecastingProblem",
    "TextClassification": "mlpilot.problems.text:TextClassificationProblem",
}


def get_problem(config_name: str) -> Problem:
    """A new instance of the problem type ``config_name`` (one serves one job)."""
    path = PROBLEM_TYPES.get(config_name)
    if path is None:
        raise ConfigError(
            f"Problem type {config_name!r} is not supported; supported: {', '.join(PROBLEM_TYPES)}"
        )
    module, _, name = path.partition(":")
    problem: Problem = getattr(importlib.import_module(module), name)()
    return problem
