"""Probability calibration for log-loss objectives: a temperature on the log-probabilities and
a floor under every probability, fitted on out-of-fold predictions.

An overconfident blend (one row with every measurement missing, predicted at 0.999 for the
wrong class) costs a log loss out of all proportion to the other rows; a temperature above 1
softens every prediction, and a floor bounds what any one row can cost (``-log(floor)``).
Both are kept only when they lower the out-of-fold log loss.

The fit guards against the opposite failure too. A blend that separates its out-of-fold rows
perfectly is pulled by them towards ever sharper probabilities (temperatures far below 1, no
floor), which the first surprising row of new data punishes without limit. So the choice is
made as if the out-of-fold rows had one more, odd row: the one whose true class is the least
likely of all the predictions. A floor or a milder temperature bounds its cost; the reported
losses (``before``, ``after``) are those of the real rows alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = [
    "CALIBRATION_FLOORS",
    "TEMPERATURE_BOUNDS",
    "Calibration",
    "calibrate_probabilities",
    "fit_calibration",
]

#: The temperatures searched (a single scalar dividing the log-probabilities).
TEMPERATURE_BOUNDS = (0.25, 4.0)
#: The probability floors tried (0: none); each with its own best temperature.
CALIBRATION_FLOORS = (0.0, 1e-4, 1e-3, 3e-3, 1e-2)
#: Least out-of-fold log-loss gain for which a calibration is kept: a smaller one is noise of
#: fitting two numbers on the rows that score them.
MIN_GAIN = 1e-4
#: Probabilities below this are read as this before taking logarithms (the log loss's clip).
_TINY = 1e-15


def calibrate_probabilities(proba: np.ndarray, temperature: float, floor: float) -> np.ndarray:
    """``proba`` ``(n, K)`` with its log-probabilities divided by ``temperature`` (and
    normalised again), then no probability below ``floor`` (raised to it, rows normalised)."""
    p = np.asarray(proba, dtype=np.float64)
    if temperature != 1.0:
        logits = np.log(np.clip(p, _TINY, 1.0)) / temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
    if floor > 0.0:
        p = np.maximum(p, floor)
        p = p / p.sum(axis=1, keepdims=True)
    return p


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration and the out-of-fold log loss before and after it."""

    temperature: float
    floor: float
    before: float
    after: float

    @property
    def identity(self) -> bool:
        """Whether it leaves probabilities as they are (nothing improved the log loss)."""
        return self.temperature == 1.0 and self.floor == 0.0

    def apply(self, proba: np.ndarray) -> np.ndarray:
        return calibrate_probabilities(proba, self.temperature, self.floor)

    def to_dict(self) -> dict[str, float]:
        """The record's ``Mlpilot.Calibration``."""
        return {
            "Temperature": self.temperature,
            "Floor": self.floor,
            "BeforeLogLoss": self.before,
            "AfterLogLoss": self.after,
        }

    def package_entry(self) -> dict[str, float]:
        """What a model package keeps to apply it (its candidate's ``Calibration``)."""
        return {"Temperature": self.temperature, "Floor": self.floor}

    @staticmethod
    def settings(entry: Any) -> tuple[float, float] | None:
        """``(temperature, floor)`` from a package's or a record's entry; None for none."""
        if not isinstance(entry, dict):
            return None
        temperature = float(entry.get("Temperature", 1.0))
        floor = float(entry.get("Floor", 0.0))
        if temperature == 1.0 and floor == 0.0:
            return None
        return temperature, floor


def _log_loss(log_p_true: np.ndarray, weight: np.ndarray | None) -> float:
    return float(-np.average(log_p_true, weights=weight))


def fit_calibration(
    y: np.ndarray,
    proba: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> Calibration:
    """The temperature (within TEMPERATURE_BOUNDS) and floor (one of CALIBRATION_FLOORS)
    that minimise the log loss of ``proba`` ``(n, K)`` against class positions ``y`` with one
    odd row added (see the module's docstring); the identity when that does not beat the
    uncalibrated probabilities by MIN_GAIN, or leaves the real rows' log loss no lower.

    Deterministic (a bounded scalar search per floor); ``after`` and ``before`` are the
    weighted mean negative log-probability of the true class, as the LogLoss metric reads it.
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), _TINY, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    truth = np.asarray(y, dtype=np.int64)
    rows = np.arange(len(truth))
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    logs = np.log(p)
    before = _log_loss(logs[rows, truth], weight)

    counted = rows if weight is None else rows[weight > 0]  # rows of no weight are not seen
    total = float(len(truth) if weight is None else weight.sum())
    odd_weight = total / len(counted) if len(counted) else 1.0  # one row of average weight

    def losses(calibrated: np.ndarray) -> tuple[float, float]:
        """The real rows' log loss, and the log loss with the odd row added (the choice's)."""
        real = _log_loss(np.log(np.clip(calibrated[rows, truth], _TINY, 1.0)), weight)
        odd = -math.log(max(float(calibrated[counted].min(initial=1.0)), _TINY))
        return real, (real * total + odd * odd_weight) / (total + odd_weight)

    def guarded(temperature: float, floor: float) -> float:
        return losses(calibrate_probabilities(p, temperature, floor))[1]

    low, high = (math.log(b) for b in TEMPERATURE_BOUNDS)
    best = Calibration(1.0, 0.0, before, before)
    best_guarded = losses(p)[1]
    start = best_guarded
    for floor in CALIBRATION_FLOORS:
        found = minimize_scalar(
            lambda log_t, floor=floor: guarded(math.exp(log_t), floor),
            bounds=(low, high),
            method="bounded",
            options={"xatol": 1e-2},
        )
        temperature = float(math.exp(found.x))
        real, value = losses(calibrate_probabilities(p, temperature, floor))
        if value < best_guarded:
            best, best_guarded = Calibration(temperature, floor, before, real), value
    if start - best_guarded < MIN_GAIN or best.after >= before:
        return Calibration(1.0, 0.0, before, before)
    return best
