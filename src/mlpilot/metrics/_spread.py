"""How much a candidate's objective moves with the rows it was scored on: the standard
deviation over its cross-validation folds, or, scored on one holdout, over bootstrap
resamples of the validation rows. A difference between two candidates well inside it is
noise of the data, not skill."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpilot._types import ProblemType
from mlpilot.metrics._registry import score_one

__all__ = ["BOOTSTRAP_ROUNDS", "ObjectiveSpread", "objective_spread"]

#: Resamples of the validation rows for a holdout's spread (the job's own metric runs once
#: per resample: a few milliseconds each with the NumPy metrics).
BOOTSTRAP_ROUNDS = 30
#: Fewer validation rows than this give no spread (each resample would repeat a handful).
MIN_BOOTSTRAP_ROWS = 10


@dataclass(frozen=True)
class ObjectiveSpread:
    """The objective's sample standard deviation over ``count`` scorings, and what they
    were (``"5 folds"``, ``"30 bootstrap resamples of the 1,234 validation rows"``)."""

    std: float
    count: int
    over: str

    @classmethod
    def of(cls, values: Iterable[float], over: Callable[[int], str]) -> ObjectiveSpread | None:
        """The spread of the finite ``values`` (``over(count)`` says what they were); None
        with fewer than two."""
        finite = [float(v) for v in values if np.isfinite(v)]
        if len(finite) < 2:
            return None
        return cls(float(np.std(finite, ddof=1)), len(finite), over(len(finite)))

    def details(self) -> dict[str, Any]:
        """The candidate's record entries (its ``Mlpilot`` details)."""
        return {"ObjectiveStd": round(self.std, 6), "ObjectiveStdOver": self.over}


def objective_spread(
    name: str,
    problem_type: ProblemType,
    y_true: np.ndarray,
    prediction: np.ndarray,
    *,
    folds: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    positive_index: int = 1,
    n_classes: int = 0,
    threshold: float | None = None,
    seed: int = 0,
) -> ObjectiveSpread | None:
    """The spread of the objective ``name`` over the folds in ``folds`` (each row's fold; two
    at least), else over :data:`BOOTSTRAP_ROUNDS` resamples of the rows (seeded). None where
    fewer than two scorings are defined (a fold with one class for AUC, too few rows) or the
    metric is not scored from predictions (InferenceLatency)."""
    y = np.asarray(y_true)
    pred = np.asarray(prediction)
    weight = None if sample_weight is None else np.asarray(sample_weight)

    def score(rows: np.ndarray) -> float:
        try:
            return score_one(
                name,
                problem_type,
                y[rows],
                pred[rows],
                sample_weight=None if weight is None else weight[rows],
                positive_index=positive_index,
                n_classes=n_classes,
                threshold=threshold,
            )
        except Exception:  # a user's metric that fails on a part of the rows: no spread
            return float("nan")

    if folds is not None and len(np.unique(folds)) >= 2:
        values = [score(np.flatnonzero(folds == f)) for f in np.unique(folds)]
        return ObjectiveSpread.of(values, lambda count: f"{count} folds")
    n = len(y)
    if n < MIN_BOOTSTRAP_ROWS:
        return None
    rng = np.random.default_rng(seed)
    values = [score(rng.integers(0, n, n)) for _ in range(BOOTSTRAP_ROUNDS)]
    return ObjectiveSpread.of(
        values, lambda count: f"{count} bootstrap resamples of the {n:,} validation rows"
    )
