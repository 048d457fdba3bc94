"""Greedy ensemble selection with replacement (Caruana et al., 2004) on out-of-fold predictions.

Start from the best single model; at each step add (again, possibly) the model whose addition
most improves the objective metric of the averaged predictions; keep the best prefix of the
trajectory. Weights are the counts divided by the steps, so the ensemble is a convex blend, and
a model that never helps gets weight 0 and stays out of the package.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mlpilot.metrics import Metric

__all__ = ["Selection", "greedy_selection"]

#: Steps of greedy selection (AutoGluon uses 25-100; the best prefix is kept anyway).
STEPS = 40
#: Rows the selection scores on at most (a seeded sample beyond it: the metric's cost is linear).
MAX_ROWS = 50_000


@dataclass
class Selection:
    weights: np.ndarray
    score: float
    trajectory: list[float]

    @property
    def chosen(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.weights > 0)]


def greedy_selection(
    predictions: list[np.ndarray],
    y: np.ndarray,
    metric: Metric,
    *,
    sample_weight: np.ndarray | None = None,
    positive_index: int = 1,
    n_classes: int = 0,
    steps: int = STEPS,
    seed: int = 0,
    cost: list[float] | None = None,
    max_cost: float | None = None,
    deadline: float | None = None,
) -> Selection:
    """Weights over ``predictions`` (each ``(n, K)`` probabilities or ``(n,)`` values).

    With ``cost`` and ``max_cost`` (e.g. seconds per row), a model is only added while the
    costs of the models with non-zero weight stay within ``max_cost``. With ``deadline``
    (``time.monotonic()``), no step starts after it: each step scores every model once, and a
    job's time limit must hold however many models the search trained.
    """
    if metric.fn is None:
        raise ValueError(f"{metric.name} cannot score predictions")
    n = len(y)
    rows = np.arange(n)
    if n > MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(n, MAX_ROWS, replace=False))
    y_s = y[rows]
    w_s = None if sample_weight is None else sample_weight[rows]
    preds = [np.asarray(p, dtype=np.float64)[rows] for p in predictions]

    def score(blend: np.ndarray) -> float:
        value = float(metric.fn(y_s, blend, w_s, positive_index, n_classes))  # type: ignore[misc]
        if not np.isfinite(value):
            return -np.inf
        return value if metric.maximize else -value

    singles = [score(p) for p in preds]
    allowed = [cost is None or max_cost is None or cost[i] <= max_cost for i in range(len(preds))]
    if not any(allowed):
        allowed = [True] * len(preds)
    order = sorted(range(len(preds)), key=lambda i: (not allowed[i], -singles[i], i))
    start = order[0]
    counts = np.zeros(len(preds))
    counts[start] = 1
    total = preds[start].copy()
    best_counts, best_score = counts.copy(), singles[start]
    trajectory = [singles[start]]
    for step in range(1, steps):
        if deadline is not None and time.monotonic() >= deadline:
            break
        used_cost = sum(cost[i] for i in np.flatnonzero(counts)) if cost else 0.0
        best_i, best_value = -1, -np.inf
        for i in order:
            if not allowed[i]:
                continue
            if cost and max_cost is not None and counts[i] == 0 and used_cost + cost[i] > max_cost:
                continue
            value = score((total + preds[i]) / (step + 1))
            if value > best_value:
                best_i, best_value = i, value
        if best_i < 0:
            break
        counts[best_i] += 1
        total += preds[best_i]
        trajectory.append(best_value)
        if best_value > best_score + 1e-12:
            best_counts, best_score = counts.copy(), best_value
    weights = best_counts / best_counts.sum()
    # Back to the metric's own sign.
    final = best_score if metric.maximize else -best_score
    signed = [t if metric.maximize else -t for t in trajectory]
    return Selection(weights, float(final), signed)


def latency_selection_note(
    cost: list[float], max_cost: float, limited: Selection, free: Selection, metric: str
) -> str:
    """What a cost limit did to selection: ``limited`` (selected within ``max_cost``) against
    ``free`` (selected without it), each with its total cost (seconds per row) and score."""

    def summary(selection: Selection) -> str:
        seconds = sum(cost[i] for i in selection.chosen)
        return (
            f"{len(selection.chosen)} model(s), {seconds * 1e3:.2f} ms per row estimated "
            f"refit, {metric} {selection.score:.4f}"
        )

    limit = f"{max_cost * 1e3:g} ms"
    if min(cost) > max_cost:
        return (
            f"no model's estimated refit latency is within the {limit} limit: selection ran "
            f"without it ({summary(limited)})"
        )
    if limited.chosen == free.chosen:
        return f"ensemble selection within the {limit} limit changed nothing ({summary(free)})"
    return (
        f"ensemble selection within the {limit} limit: {summary(limited)}; without the limit: "
        f"{summary(free)}"
    )


def blend(predictions: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The weighted average of ``predictions`` (models with weight 0 skipped)."""
    out: np.ndarray | None = None
    for p, w in zip(predictions, weights, strict=True):
        if w <= 0:
            continue
        part = w * np.asarray(p, dtype=np.float64)
        out = part if out is None else out + part
    assert out is not None
    return out
