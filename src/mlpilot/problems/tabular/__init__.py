"""The tabular problem type: binary, multiclass and regression on one table."""

from mlpilot.problems.tabular._problem import TabularProblem
from mlpilot.problems.tabular._training import trial_report

__all__ = ["TabularProblem", "trial_report"]
