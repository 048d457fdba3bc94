"""An endpoint's production variants: what CreateEndpointConfig says about one
(:class:`VariantSpec`, checked by :func:`check_specs`), and a running one (:class:`Variant`: its
instances, picked round robin, and its invocation statistics)."""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpilot.serving._errors import EndpointStartError
from mlpilot.serving._instances import Instance

__all__ = ["Variant", "VariantSpec", "VariantStats", "check_specs"]


@dataclass(frozen=True)
class VariantSpec:
    """One production variant: what ``CreateEndpointConfig`` says about it.

    ``model`` is the model's ``ModelDataUrl`` (a ``model.tar.gz``, package folder or URI, as
    ``mlpilot serve-model`` accepts), ``environment`` its container ``Environment``.
    """

    name: str
    model: str
    environment: Mapping[str, str] = field(default_factory=dict)
    instance_count: int = 1
    weight: float = 1.0


def check_specs(variants: Sequence[VariantSpec]) -> None:
    """EndpointStartError unless the variants are a valid endpoint configuration."""
    if not variants:
        raise EndpointStartError("an endpoint needs at least one production variant")
    names = [v.name for v in variants]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise EndpointStartError(f"variant name {duplicate!r} is used twice")
    for v in variants:
        if not v.name:
            raise EndpointStartError("a variant needs a name")
        if not isinstance(v.instance_count, int) or v.instance_count < 1:
            raise EndpointStartError(
                f"variant {v.name!r}: instance count {v.instance_count!r} must be >= 1"
            )
        if not math.isfinite(float(v.weight)) or float(v.weight) < 0:
            raise EndpointStartError(f"variant {v.name!r}: weight {v.weight!r} must be >= 0")


class VariantStats:
    """Counters and model latency of one variant (CloudWatch's names, latency in µs)."""

    def __init__(self, window: int) -> None:
        self._lock = threading.Lock()
        self.invocations = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = 0.0
        self.recent: deque[float] = deque(maxlen=window)

    def record(self, status: int, seconds: float | None) -> None:
        with self._lock:
            self.invocations += 1
            if 400 <= status < 500:
                self.errors_4xx += 1
            elif status >= 500 or status == 0:
                self.errors_5xx += 1
            if seconds is not None:
                micros = seconds * 1e6
                self.count += 1
                self.total += micros
                self.low = min(self.low, micros)
                self.high = max(self.high, micros)
                self.recent.append(micros)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            recent = list(self.recent)
            latency: dict[str, Any] = {
                "Count": self.count,
                "Sum": self.total,
                "Minimum": self.low if self.count else None,
                "Maximum": self.high if self.count else None,
                "Average": self.total / self.count if self.count else None,
            }
            counts = {
                "Invocations": self.invocations,
                "Invocation4XXErrors": self.errors_4xx,
                "Invocation5XXErrors": self.errors_5xx,
            }
        if recent:
            p50, p99 = np.percentile(recent, [50, 99]).tolist()
        else:
            p50 = p99 = None
        latency.update({"p50": p50, "p99": p99, "Window": len(recent)})
        return {**counts, "ModelLatency": latency}


class Variant:
    """One running production variant: its spec, weight, instances and statistics."""

    def __init__(
        self,
        spec: VariantSpec,
        model_dir: Path,
        instances: tuple[Instance, ...],
        stats: VariantStats,
        numbers: itertools.count[int],
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.model_dir = model_dir
        self.weight = float(spec.weight)
        self.instances = instances  # replaced as a whole, so readers never lock
        self.stats = stats
        self.numbers = numbers
        self.cursor = itertools.count()

    def pick(self) -> Instance | None:
        """Round robin over the healthy instances."""
        pool = self.instances
        for _ in range(len(pool)):
            instance = pool[next(self.cursor) % len(pool)]
            if instance.healthy:
                return instance
        return None
