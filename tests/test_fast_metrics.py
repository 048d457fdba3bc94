"""The registry's NumPy metrics give scikit-learn's values on random inputs."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mlpilot.metrics import get_metric

_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def _close(got: float, want: float) -> bool:
    if np.isnan(want):
        return bool(np.isnan(got))
    return abs(got - want) <= 1e-12 * max(1.0, abs(want))


@st.composite
def _classification(draw, k_min: int = 2, k_max: int = 5):
    """Labels, a probability matrix (coarse, so that ties are common, with rows of zeros and
    ones) and optional weights (some zero, at least one positive)."""
    k = draw(st.integers(k_min, k_max))
    n = draw(st.integers(1, 40))
    # Truth drawn from a subset of the classes, so that some are missing from it.
    seen = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    y = np.array(draw(st.lists(st.sampled_from(seen), min_size=n, max_size=n)))
    raw = draw(
        st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]), min_size=n * k, max_size=n * k)
    )
    proba = np.array(raw).reshape(n, k)
    proba[proba.sum(axis=1) == 0, 0] = 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    weights = None
    if draw(st.booleans()):
        weights = np.array(
            draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.5]), min_size=n, max_size=n))
        )
        weights[draw(st.integers(0, n - 1))] = 1.5
    return k, y, proba, weights


def _reference(name: str, y, proba, w, pos: int, k: int) -> float:
    """The registry's scikit-learn scoring before the NumPy rewrite."""
    labels = proba.argmax(axis=1)
    label_fns = {
        "F1": skm.f1_score,
        "Precision": skm.precision_score,
        "Recall": skm.recall_score,
        "F1macro": skm.f1_score,
        "PrecisionMacro": skm.precision_score,
        "RecallMacro": skm.recall_score,
    }
    if name in label_fns:
        average = "macro" if name.endswith("macro") or name.endswith("Macro") else "binary"
        extra = {"pos_label": pos} if average == "binary" else {}
        return label_fns[name](
            y, labels, average=average, sample_weight=w, zero_division=0.0, **extra
        )
    if name == "Accuracy":
        return skm.accuracy_score(y, labels, sample_weight=w)
    if name == "BalancedAccuracy":
        return skm.balanced_accuracy_score(y, labels, sample_weight=w)
    if name == "AUC":
        truth = (y == pos).astype(int)
        counted = truth if w is None else truth[w > 0]
        if counted.min() == counted.max():
            return float("nan")
        return skm.roc_auc_score(truth, proba[:, pos], sample_weight=w)
    assert name == "LogLoss"
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return skm.log_loss(y, clipped, labels=np.arange(k), sample_weight=w)


def _check(names, k, y, proba, w, pos=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's warnings on missing classes
        for name in names:
            got = get_metric(name).fn(y, proba, w, pos, k)
            want = _reference(name, y, proba, w, pos, k)
            assert _close(got, want), (name, got, want)


@_SETTINGS
@given(_classification(2, 2), st.integers(0, 1))
def test_binary_metrics_match_scikit_learn(case, pos):
    k, y, proba, w = case
    names = ["Accuracy", "AUC", "BalancedAccuracy", "F1", "Precision", "Recall", "LogLoss"]
    _check(names, k, y, proba, w, pos)


@_SETTINGS
@given(_classification(3, 5))
def test_multiclass_metrics_match_scikit_learn(case):
    k, y, proba, w = case
    names = ["Accuracy", "BalancedAccuracy", "F1macro", "PrecisionMacro", "RecallMacro", "LogLoss"]
    _check(names, k, y, proba, w)


def test_unweighted_counts_and_auc_are_exact():
    # Counts-based metrics without weights are ratios of integers: the same float exactly.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    proba = rng.dirichlet(np.ones(4), 300)
    for name, ref in [
        ("Accuracy", skm.accuracy_score(y, proba.argmax(1))),
        ("BalancedAccuracy", skm.balanced_accuracy_score(y, proba.argmax(1))),
        ("F1macro", skm.f1_score(y, proba.argmax(1), average="macro")),
    ]:
        assert get_metric(name).fn(y, proba, None, 1, 4) == ref
    # AUC over the same ROC points as roc_curve keeps (collinear ones dropped), so the same
    # trapezoid sum: rounded scores make many ties.
    for _ in range(20):
        y2 = rng.integers(0, 2, 100)
        proba2 = np.round(rng.dirichlet(np.ones(2), 100), 2)
        proba2 /= proba2.sum(axis=1, keepdims=True)
        want = skm.roc_auc_score(y2, proba2[:, 1])
        assert get_metric("AUC").fn(y2, proba2, None, 1, 2) == want


@st.composite
def _regression(draw):
    n = draw(st.integers(1, 30))
    values = st.sampled_from([-3.0, 0.0, 0.5, 1.0, 7.25])
    constant = draw(st.booleans())
    y = (
        np.full(n, draw(values))
        if constant
        else np.array(draw(st.lists(values, min_size=n, max_size=n)))
    )
    # A perfect prediction now and then, to reach R2's constant-truth branches.
    p = (
        y.copy()
        if draw(st.booleans())
        else np.array(draw(st.lists(values, min_size=n, max_size=n)))
    )
    w = None
    if draw(st.booleans()):
        w = np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 2.0]), min_size=n, max_size=n)))
        w[0] = 1.0
    return y, p, w


@_SETTINGS
@given(_regression())
def test_regression_metrics_match_scikit_learn(case):
    y, p, w = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R2 of fewer than two rows
        refs = {
            "MAE": skm.mean_absolute_error(y, p, sample_weight=w),
            "MSE": skm.mean_squared_error(y, p, sample_weight=w),
            "RMSE": np.sqrt(skm.mean_squared_error(y, p, sample_weight=w)),
            "R2": skm.r2_score(y, p, sample_weight=w),
        }
    for name, want in refs.items():
        got = get_metric(name).fn(y, p, w, 1, 0)
        assert _close(got, want), (name, got, want)


def test_constant_truth_r2_is_one_if_perfect_else_zero():
    y = np.full(5, 2.0)
    r2 = get_metric("R2").fn
    assert r2(y, y, None, 1, 0) == 1.0
    assert r2(y, y + 1, None, 1, 0) == 0.0
    assert np.isnan(r2(y[:1], y[:1], None, 1, 0))
