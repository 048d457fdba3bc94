"""The tabular problem type: binary, multiclass and regression on one table."""

from mlpilot.problems.tabular._latency import LatencyChoice, TimedCandidate, choose_within_latency
from mlpilot.problems.tabular._problem import TabularProblem
from mlpilot.problems.tabular._training import trial_report

__all__ = [
    "LatencyChoice",
    "TabularProblem",
    "TimedCandidate",
    "choose_within_latency",
    "trial_report",
]
