"""Group fairness of a classifier's predictions, by a sensitive attribute, with fairlearn.

Per group: the row count, the selection rate (share predicted positive), the true- and
false-positive rates and the accuracy; across groups: the demographic-parity difference
(largest gap in selection rate) and the equalized-odds difference (the larger of the largest
gaps in TPR and in FPR). Selection rate, TPR, FPR and both differences are defined for binary
classification; for multiclass only the count and accuracy per group are given.

``choose_within_disparity`` is the constrained choice: the best option on the objective whose
disparity is within the limit, else the one with the least disparity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.metrics._constrained import pick_within
from mlpilot.metrics._registry import Metric

__all__ = [
    "DISPARITY_METRICS",
    "MISSING_GROUP",
    "DisparityChoice",
    "DisparityMeasure",
    "DisparityOption",
    "choose_within_disparity",
    "disparity",
    "group_metrics",
    "predicted_labels",
    "sensitive_groups",
]

#: The disparity a limit applies to (``mlpilot:DisparityMetric``): the first is the default.
DISPARITY_METRICS = ("demographic_parity", "equalized_odds")
#: The group of rows whose sensitive attribute is missing.
MISSING_GROUP = "(missing)"


def sensitive_groups(values: Any) -> np.ndarray:
    """A column's values as group names (strings; missing values form their own group)."""
    series = pd.Series(values)
    missing = series.isna().to_numpy()
    names = series.astype(str).str.strip().to_numpy(dtype=object)
    names[missing] = MISSING_GROUP
    return names


def _binary(y: np.ndarray, positive_index: int) -> np.ndarray:
    return (np.asarray(y) == positive_index).astype(np.int8)


def group_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    *,
    binary: bool,
    positive_index: int = 1,
    sample_weight: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per-group metrics and the disparities of label predictions ``y_pred`` against
    ``y_true`` (both encoded class indices), as a JSON-ready dict.

    ``by_group`` maps each group to its ``count`` and ``accuracy`` (binary: also
    ``selection_rate``, ``true_positive_rate``, ``false_positive_rate``); binary jobs also get
    ``demographic_parity_difference`` and ``equalized_odds_difference``. Rates are weighted by
    ``sample_weight`` when given (the count is rows).
    """
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    groups = np.asarray(groups, dtype=object)
    if binary:
        y_true, y_pred = _binary(y_true, positive_index), _binary(y_pred, positive_index)
        metrics: dict[str, Any] = {
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
        }
    else:
        metrics = {"accuracy": accuracy_score}
    weighted = {name: {"sample_weight": sample_weight} for name in metrics}
    frame = MetricFrame(
        metrics={"count": count, **metrics},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=pd.Series(groups, name="group"),
        sample_params=weighted if sample_weight is not None else None,
    )
    table = frame.by_group
    by_group = {
        str(group): {
            name: int(row[name]) if name == "count" else _number(row[name])
            for name in table.columns
        }
        for group, row in table.iterrows()
    }
    out: dict[str, Any] = {"groups": len(by_group), "by_group": by_group}
    if binary:
        out["demographic_parity_difference"] = _number(
            demographic_parity_difference(
                y_true, y_pred, sensitive_features=groups, sample_weight=sample_weight
            )
        )
        out["equalized_odds_difference"] = _number(
            equalized_odds_difference(
                y_true, y_pred, sensitive_features=groups, sample_weight=sample_weight
            )
        )
    return out


def disparity(
    name: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    *,
    positive_index: int,
    sample_weight: np.ndarray | None = None,
) -> float:
    """The ``name`` disparity (one of :data:`DISPARITY_METRICS`) of binary label predictions."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    if name not in DISPARITY_METRICS:
        raise ValueError(
            f"Unknown disparity metric {name!r}; valid: {', '.join(DISPARITY_METRICS)}"
        )
    fn = (
        demographic_parity_difference if name == DISPARITY_METRICS[0] else equalized_odds_difference
    )
    value = fn(
        _binary(y_true, positive_index),
        _binary(y_pred, positive_index),
        sensitive_features=np.asarray(groups, dtype=object),
        sample_weight=sample_weight,
    )
    return float(value)


def predicted_labels(
    predictions: np.ndarray, positive_index: int, threshold: float | None = None
) -> np.ndarray:
    """Class probabilities → the labels the model returns: the arg-max, or for binary with a
    tuned ``threshold`` the positive class when its probability reaches it."""
    proba = np.asarray(predictions, dtype=np.float64)
    if threshold is None or proba.shape[1] != 2:
        return proba.argmax(axis=1)
    return np.where(proba[:, positive_index] >= threshold, positive_index, 1 - positive_index)


@dataclass(frozen=True)
class DisparityMeasure:
    """How a job measures one candidate's disparity: every prepared row's group, target
    (encoded) and weight, and which disparity; ``max_disparity`` is the job's limit (None:
    measured and shown, selection unconstrained)."""

    metric: str
    groups: np.ndarray
    y: np.ndarray
    positive_index: int
    weight: np.ndarray | None = None
    max_disparity: float | None = None

    def measure(
        self, rows: np.ndarray, predictions: np.ndarray, threshold: float | None = None
    ) -> float:
        """The disparity of the predictions for prepared ``rows`` (NaN without rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return math.nan
        return disparity(
            self.metric,
            self.y[rows],
            predicted_labels(predictions, self.positive_index, threshold),
            self.groups[rows],
            positive_index=self.positive_index,
            sample_weight=None if self.weight is None else self.weight[rows],
        )


def _number(value: Any) -> float | None:
    """A finite float, or None (a rate with no rows to measure it on: no positives in a group
    for TPR)."""
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class DisparityOption:
    """One candidate of the constrained choice."""

    name: str
    objective_value: float
    disparity: float


@dataclass(frozen=True)
class DisparityChoice:
    """The option to ship and why (``note`` goes to the job record's ``FairnessNote``)."""

    name: str
    note: str
    within: bool
    #: Options better on the objective left out for their disparity (best first).
    skipped: tuple[str, ...] = ()


def choose_within_disparity(
    options: Sequence[DisparityOption], metric: Metric, max_disparity: float, disparity_name: str
) -> DisparityChoice | None:
    """The best option (by ``metric``) whose disparity is at most ``max_disparity``, else the
    one with the least disparity (ties: the better on the objective); None without options.
    An option whose disparity could not be measured (NaN) never counts as within the limit.

    Ties on the objective keep the earlier option, as the job's own ranking does.
    """
    pick = pick_within(
        options, lambda o: o.objective_value, lambda o: o.disparity, max_disparity, metric
    )
    if pick is None:
        return None
    best, chosen = pick.best, pick.chosen
    skipped = tuple(o.name for o in pick.skipped)
    limit = f"the {disparity_name} limit {max_disparity:g}"

    def named(o: DisparityOption) -> str:
        return (
            f"{o.name} ({metric.name} {o.objective_value:.4g}, {disparity_name} {o.disparity:.4f})"
        )

    if pick.within and chosen is best:
        note = f"the best candidate is within {limit}: {named(best)}"
    elif pick.within:
        note = (
            f"skipped {len(skipped)} better candidate(s) over {limit}, the best {named(best)}: "
            f"shipped {named(chosen)}, the best within it"
        )
    elif chosen is not best:
        note = (
            f"no candidate is within {limit}: shipped the one with the least disparity, "
            f"{named(chosen)}, instead of the best, {named(best)}"
        )
    else:
        note = f"no candidate is within {limit}: the best, {named(best)}, has the least disparity"
    return DisparityChoice(chosen.name, note, pick.within, skipped)
