"""Objective metrics with SageMaker Autopilot's names, directions and defaults."""

from mlpilot.metrics._registry import (
    THRESHOLD_METRICS,
    Metric,
    best_threshold,
    decision_matrix,
    default_objective,
    get_metric,
    metric_names,
    metrics_for,
    score_all,
)

__all__ = [
    "THRESHOLD_METRICS",
    "Metric",
    "best_threshold",
    "decision_matrix",
    "default_objective",
    "get_metric",
    "metric_names",
    "metrics_for",
    "score_all",
]
