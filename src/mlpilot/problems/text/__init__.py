"""The text classification problem type (``TextClassificationJobConfig``)."""

from mlpilot.problems.text._problem import TextClassificationProblem

__all__ = ["TextClassificationProblem"]
