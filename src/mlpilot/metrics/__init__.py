"""Objective metrics with SageMaker Autopilot's names, directions and defaults."""

from mlpilot.metrics._registry import (
    Metric,
    default_objective,
    get_metric,
    metric_names,
    metrics_for,
    score_all,
)

__all__ = ["Metric", "default_objective", "get_metric", "metric_names", "metrics_for", "score_all"]
