"""One rule for shipping under a constraint (latency, disparity): the best candidate by the
objective whose cost is within the limit, else the one with the least cost.

Callers word the notes; the rule, its ordering and its ties live here once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mlpilot.metrics._registry import Metric

__all__ = ["ConstrainedPick", "pick_within"]

T = TypeVar("T")


@dataclass(frozen=True)
class ConstrainedPick(Generic[T]):
    """What :func:`pick_within` chose, and what it passed over."""

    chosen: T
    #: The best candidate on the objective alone.
    best: T
    #: Whether ``chosen`` is within the limit.
    within: bool
    #: Candidates better on the objective than ``chosen`` (best first).
    skipped: tuple[T, ...]


def pick_within(
    candidates: Sequence[T],
    objective: Callable[[T], float],
    cost: Callable[[T], float],
    limit: float,
    metric: Metric,
) -> ConstrainedPick[T] | None:
    """The best of ``candidates`` by ``metric`` whose ``cost`` is at most ``limit``; when none
    is, the one with the least cost. None without candidates.

    A cost that is not finite (never measured) is never within the limit and comes last in
    the fallback. Ties on the objective keep the earlier candidate, as a job's own ranking
    does; ties on the cost keep the better on the objective.
    """
    if not candidates:
        return None
    ranked = sorted(
        enumerate(candidates), key=lambda ic: (-metric.higher_is_better(objective(ic[1])), ic[0])
    )
    order = [c for _, c in ranked]
    best = order[0]

    def costed(c: T) -> float:
        value = cost(c)
        return value if math.isfinite(value) else math.inf

    within = [i for i, c in enumerate(order) if costed(c) <= limit]
    if within:
        at, fits = within[0], True
    else:
        at, fits = min(range(len(order)), key=lambda i: (costed(order[i]), i)), False
    return ConstrainedPick(order[at], best, fits, tuple(order[:at]))
