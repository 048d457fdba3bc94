"""The measures behind the data-exploration notebook: pure functions over arrays.

Prediction power (0-1) is how well one column alone predicts the target: the column is cut into
bins (quantiles for numbers, the most frequent levels for categories), each bin's target rate is
learned on four fifths of the sample and applied to the rest (5-fold), and the out-of-fold
predictions are scored: 2·AUC−1 (binary), the accuracy gain over always predicting the majority
class (multiclass) or R² (regression), floored at 0.

Beside it: the association of a column with the target (Spearman ρ, the correlation ratio η or
Cramér's V, by the column's and the problem's kind), skewness and robust z-scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.profile import ColumnKind, TargetProfile

__all__ = [
    "FOLDS",
    "association",
    "bin_codes",
    "correlation_ratio",
    "cramers_v",
    "prediction_power",
    "robust_z",
    "skewness",
]

#: Bins of a numeric or datetime column, and levels of a categorical one, at most.
_BINS = 32
_LEVELS = 100
#: Folds of the out-of-fold prediction power.
FOLDS = 5


def bin_codes(kind: str, values: pd.Series) -> np.ndarray | None:
    """Bin codes of one feature (None for text): ``values`` as the models see them."""
    if kind in (ColumnKind.NUMERIC, ColumnKind.DATETIME):
        if kind == ColumnKind.DATETIME:
            stamps = pd.to_datetime(values)
            v = np.where(stamps.isna(), np.nan, stamps.astype("int64").astype("float64"))
        else:
            v = np.asarray(values, dtype="float64")
        finite = ~np.isnan(v)
        codes = np.full(len(v), -1, dtype=np.int64)
        distinct = np.unique(v[finite])
        if len(distinct) <= _BINS:
            codes[finite] = np.searchsorted(distinct, v[finite])
        else:
            inner = np.linspace(0, 1, _BINS + 1)[1:-1]
            edges = np.unique(np.quantile(v[finite], inner))
            codes[finite] = np.searchsorted(edges, v[finite], side="right")
        codes[~finite] = codes.max() + 1
        return codes
    if kind == ColumnKind.CATEGORICAL:
        series = pd.Series(values, dtype="object")
        top = series.value_counts().index[:_LEVELS]
        lookup = {level: i for i, level in enumerate(top)}
        mapped = series.map(lookup).where(series.notna(), len(top) + 1)
        return mapped.fillna(len(top)).to_numpy(dtype=np.int64)
    return None


def prediction_power(
    codes: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    problem_type: ProblemType,
    target_profile: TargetProfile,
) -> float:
    """Out-of-fold score of predicting the target ``y`` from the bin alone (0-1).

    ``folds`` numbers each row's fold (0 to :data:`FOLDS` - 1).
    """
    n_bins = int(codes.max()) + 1
    if problem_type.is_classification:
        k = len(target_profile.labels)
        pred = np.zeros((len(y), k))
        for f in range(FOLDS):
            train, test = folds != f, folds == f
            counts = np.bincount(codes[train] * k + y[train], minlength=n_bins * k)
            counts = counts.reshape(n_bins, k).astype(float)
            prior = np.bincount(y[train], minlength=k) / max(1, train.sum())
            pred[test] = ((counts + prior) / (counts.sum(axis=1, keepdims=True) + 1))[codes[test]]
        if problem_type is ProblemType.BINARY:
            from sklearn.metrics import roc_auc_score

            positive = target_profile.positive_index
            truth = y == positive
            if truth.all() or not truth.any():
                return 0.0
            return max(0.0, 2 * float(roc_auc_score(truth, pred[:, positive])) - 1)
        accuracy = float(np.mean(pred.argmax(axis=1) == y))
        base = float(np.bincount(y).max() / len(y))
        return 0.0 if base >= 1 else max(0.0, (accuracy - base) / (1 - base))
    target = np.asarray(y, dtype=float)
    pred_r = np.zeros(len(target))
    for f in range(FOLDS):
        train, test = folds != f, folds == f
        sums = np.bincount(codes[train], weights=target[train], minlength=n_bins)
        counts = np.bincount(codes[train], minlength=n_bins)
        mean = float(target[train].mean())
        pred_r[test] = ((sums + mean) / (counts + 1))[codes[test]]
    total = float(np.sum((target - target.mean()) ** 2))
    if total == 0:
        return 0.0
    return max(0.0, 1 - float(np.sum((target - pred_r) ** 2)) / total)


def association(
    kind: str, values: pd.Series, codes: np.ndarray, y: np.ndarray, problem_type: ProblemType
) -> tuple[str, float]:
    """(measure, value) between one feature and the target ``y``.

    ``values`` are the feature as the models see it, ``codes`` its :func:`bin_codes`.
    """
    if kind in (ColumnKind.NUMERIC, ColumnKind.DATETIME) and not problem_type.is_classification:
        x = pd.Series(np.asarray(codes if kind == ColumnKind.DATETIME else values, dtype=float))
        rho = x.corr(pd.Series(np.asarray(y, dtype=float)), method="spearman")
        return "Spearman ρ", float(rho) if rho == rho else 0.0
    if kind in (ColumnKind.NUMERIC, ColumnKind.DATETIME):
        xs = np.asarray(codes if kind == ColumnKind.DATETIME else values, dtype=float)
        present = ~np.isnan(xs)
        return "correlation ratio η", correlation_ratio(y[present], xs[present])
    if problem_type.is_classification:
        return "Cramér's V", cramers_v(codes, y)
    return "correlation ratio η", correlation_ratio(codes, np.asarray(y, dtype=float))


def skewness(values: np.ndarray) -> float:
    """Sample skewness (adjusted Fisher-Pearson, as pandas computes it)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 3:
        return 0.0
    d = x - x.mean()
    m2, m3 = float(np.mean(d**2)), float(np.mean(d**3))
    if m2 == 0:
        return 0.0
    return m3 / m2**1.5 * np.sqrt(n * (n - 1)) / (n - 2)


def robust_z(x: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826·MAD), with the IQR's scale where the MAD is 0; 0 where missing."""
    x = np.asarray(x, dtype=float)
    present = x[~np.isnan(x)]
    if present.size == 0:
        return np.zeros_like(x)
    median = np.median(present)
    mad = np.median(np.abs(present - median)) * 1.4826
    if mad == 0:
        q1, q3 = np.percentile(present, [25, 75])
        mad = (q3 - q1) / 1.349
    if mad == 0:
        return np.zeros_like(x)
    return np.where(np.isnan(x), 0.0, (x - median) / mad)


def correlation_ratio(groups: np.ndarray, values: np.ndarray) -> float:
    """η: how much of the variance of ``values`` the groups explain (0-1)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return 0.0
    _, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(inverse)
    means = np.bincount(inverse, weights=values) / counts
    total = float(np.sum((values - values.mean()) ** 2))
    between = float(np.sum(counts * (means - values.mean()) ** 2))
    return float(np.sqrt(between / total)) if total > 0 else 0.0


def cramers_v(codes: np.ndarray, y: np.ndarray) -> float:
    table = pd.crosstab(codes, y).to_numpy().astype(float)
    n = table.sum()
    if n == 0 or min(table.shape) < 2:
        return 0.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(np.sum((table - expected) ** 2 / np.where(expected > 0, expected, 1)))
    return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
