"""The latency limit in HYPERPARAMETER_TUNING: which searched candidate ships.

The leaderboard ranks candidates by the objective alone; the job ships the best one whose
single-row latency, as measured when it was trained (``PredictSecondsPerRow``), is within
``max_latency_ms``. When none is, it ships the fastest, which is the nearest to the limit a
search can get. Either way the record says what the limit changed (``Mlpilot.LatencyNote``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mlpilot.metrics import Metric, pick_within

__all__ = ["LatencyChoice", "TimedCandidate", "choose_within_latency"]


class TimedCandidate(Protocol):
    """What the choice reads of a candidate: a job's record or a problem's report."""

    @property
    def name(self) -> str: ...

    @property
    def objective_value(self) -> float | None: ...

    @property
    def details(self) -> dict[str, Any]:
        """Its ``Mlpilot`` block, with ``PredictSecondsPerRow``."""
        ...


@dataclass(frozen=True)
class LatencyChoice:
    """The candidate to ship and why (``note`` goes to the record's ``LatencyNote``)."""

    name: str
    note: str
    #: Candidates better on the objective left out for their latency (best first).
    skipped: tuple[str, ...] = ()


def _latency(candidate: TimedCandidate) -> float:
    """Measured seconds per row; a candidate never timed counts as too slow."""
    value = candidate.details.get("PredictSecondsPerRow")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.inf


def _ms(seconds: float) -> str:
    return "untimed" if math.isinf(seconds) else f"{seconds * 1e3:.2f} ms per row"


def choose_within_latency(
    candidates: Sequence[TimedCandidate], metric: Metric, limit_seconds: float
) -> LatencyChoice | None:
    """The best completed candidate (by ``metric``) whose measured latency is within
    ``limit_seconds``, else the fastest; None when no candidate has an objective value.

    Ties on the objective keep the earlier candidate, as the job's own ranking does.
    """
    scored = [c for c in candidates if c.objective_value is not None]
    pick = pick_within(
        scored, lambda c: float(c.objective_value or 0.0), _latency, limit_seconds, metric
    )
    if pick is None:
        return None
    best, chosen = pick.best, pick.chosen
    skipped = tuple(c.name for c in pick.skipped)
    limit = f"{limit_seconds * 1e3:g} ms"

    def named(c: TimedCandidate) -> str:
        return f"{c.name} ({metric.name} {c.objective_value:.4g}, {_ms(_latency(c))})"

    if pick.within and chosen is best:
        note = f"the best candidate is within the {limit} limit: shipped {named(best)}"
    elif pick.within:
        note = (
            f"skipped {len(skipped)} better candidate(s) over the {limit} limit, the best "
            f"{named(best)}: shipped {named(chosen)}, the best within it"
        )
    elif chosen is not best:
        note = (
            f"no candidate answers a row within the {limit} limit: shipped the fastest, "
            f"{named(chosen)}, instead of the best, {named(best)}"
        )
    else:
        note = (
            f"no candidate answers a row within the {limit} limit: the best, {named(best)}, "
            "is also the fastest"
        )
    return LatencyChoice(chosen.name, note, skipped)
