"""The registry's tabular metrics in plain NumPy, giving scikit-learn's values.

Why not call scikit-learn: each of its metric functions validates its input first (parameter
checks, ``type_of_target``, label one-hot encoding), which costs milliseconds per call while the
arithmetic costs microseconds. The ensemble builder, threshold tuning, calibration and the
latency and disparity picks score predictions in loops, so that overhead dominated them. The
inputs here are the registry's own (integer class indices ``0..k-1``, float arrays), already
checked upstream, so the functions below compute the same quantities directly;
``tests/test_fast_metrics.py`` holds them to scikit-learn's functions on random inputs.

Semantics kept from scikit-learn: weights of zero still make a class present (for the macro
averages), ``zero_division`` is 0.0, an average with all weights zero raises
``ZeroDivisionError`` (``np.average``), balanced accuracy averages the recall of the classes
with weight in the truth, AUC is the area under the weighted ROC curve (ties count half), and
R2 is 1.0 for a perfect fit and 0.0 for an imperfect one of a constant truth (``force_finite``),
NaN for fewer than two rows.
"""

from __future__ import annotations

import numpy as np


def _ints(y: np.ndarray) -> np.ndarray:
    return np.asarray(y).astype(np.intp, copy=False)


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if w is None else np.asarray(w, dtype=float)


def accuracy(y: np.ndarray, labels: np.ndarray, w: np.ndarray | None) -> float:
    return float(np.average(_ints(y) == labels, weights=w))


def class_counts(
    y: np.ndarray, labels: np.ndarray, w: np.ndarray | None, k: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(present, tp, predicted, true)``: per class (at least ``k`` of them), whether it
    occurs in the truth or the predictions (whatever its weight), and the weighted true
    positives, predicted count and true count."""
    y = _ints(y)
    ww = _weights(w, len(y))
    k = max(k, int(max(y.max(initial=-1), labels.max(initial=-1))) + 1)
    hit = y == labels
    present = np.bincount(y, minlength=k) + np.bincount(labels, minlength=k) > 0
    tp = np.bincount(y[hit], weights=ww[hit], minlength=k)
    predicted = np.bincount(labels, weights=ww, minlength=k)
    true = np.bincount(y, weights=ww, minlength=k)
    return present, tp, predicted, true


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0.0 where ``den`` is zero (scikit-learn's ``zero_division=0.0``)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den != 0)


def precision_recall_f1(
    y: np.ndarray, labels: np.ndarray, w: np.ndarray | None, k: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(present, precision, recall, f1)`` per class (at least ``k`` of them)."""
    present, tp, predicted, true = class_counts(y, labels, w, k)
    return (
        present,
        _divide(tp, predicted),
        _divide(tp, true),
        _divide(2 * tp, true + predicted),
    )


def balanced_accuracy(y: np.ndarray, labels: np.ndarray, w: np.ndarray | None) -> float:
    _, tp, _, true = class_counts(y, labels, w)
    counted = true != 0  # classes only predicted, or only in rows of weight 0, are left out
    return float(np.mean(tp[counted] / true[counted])) if counted.any() else float("nan")


def log_loss(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None) -> float:
    eps = np.finfo(float).eps
    picked = np.clip(proba[np.arange(len(proba)), _ints(y)], eps, 1 - eps)
    return float(np.average(-np.log(picked), weights=w))


def roc_auc(truth: np.ndarray, score: np.ndarray, w: np.ndarray | None) -> float:
    """The trapezoid under the weighted ROC curve of binary ``truth`` (both classes present
    among the rows of positive weight)."""
    ww = _weights(w, len(truth))
    keep = ww != 0
    truth, score, ww = truth[keep], score[keep], ww[keep]
    order = np.argsort(score, kind="mergesort")[::-1]
    score, truth, ww = score[order], truth[order], ww[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(truth * ww)[last_of_tie]
    fps = np.cumsum((1 - truth) * ww)[last_of_tie]
    if len(tps) > 2:
        # Drop the points collinear with their neighbours as roc_curve does: the area is the
        # same, and then so is its rounding.
        corner = np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True]
        tps, fps = tps[corner], fps[corner]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def mean_absolute_error(y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> float:
    return float(np.average(np.abs(np.asarray(y) - np.asarray(p)), weights=w))


def mean_squared_error(y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> float:
    return float(np.average((np.asarray(y) - np.asarray(p)) ** 2, weights=w))


def r2(y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> float:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) < 2:
        return float("nan")
    ww = _weights(w, len(y))
    residual = np.sum(ww * (y - p) ** 2)
    spread = np.sum(ww * (y - np.average(y, weights=w)) ** 2)
    if residual == 0:
        return 1.0
    if spread == 0:
        return 0.0
    return float(1 - residual / spread)
