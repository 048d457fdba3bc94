"""Tests for mlpilot.metrics: SageMaker names, directions, defaults, and every value checked
against scikit-learn (or a hand computation) on predictions of real models on real data."""

from __future__ import annotations

import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from helpers_data import ABALONE, PIMA, WINE
from helpers_models import linear_trial
from mlpilot._types import ProblemType
from mlpilot.data import read_table
from mlpilot.errors import ConfigError
from mlpilot.metrics import (
    BOOTSTRAP_ROUNDS,
    TEMPERATURE_BOUNDS,
    Metric,
    best_threshold,
    calibrate_probabilities,
    decision_matrix,
    default_objective,
    fit_calibration,
    get_metric,
    metric_names,
    metrics_for,
    objective_spread,
    score_all,
    score_one,
)
from mlpilot.profile import build_profile
from mlpilot.search import run_trial, write_prepared

B, M, R = ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION

BINARY_NAMES = ["Accuracy", "AUC", "BalancedAccuracy", "F1", "LogLoss", "Precision", "Recall"]
MULTICLASS_NAMES = [
    "Accuracy",
    "BalancedAccuracy",
    "F1macro",
    "LogLoss",
    "PrecisionMacro",
    "RecallMacro",
]
REGRESSION_NAMES = ["MAE", "MSE", "R2", "RMSE"]


# --- predictions of real models on real data ----------------------------------------------


def _numeric_table(path: Path, target: str) -> tuple[np.ndarray, np.ndarray]:
    raw = read_table(path)
    x = raw.drop(columns=[target]).apply(pd.to_numeric, errors="coerce").fillna(0.0)
    return x.to_numpy(dtype=float), raw[target].to_numpy()


@cache
def pima_predictions() -> tuple[np.ndarray, np.ndarray]:
    """Outcome codes (0/1) and a logistic regression's (n, 2) probabilities on Pima."""
    x, y_raw = _numeric_table(PIMA, "Outcome")
    y = (y_raw == "1").astype(int)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    model = LogisticRegression(max_iter=500).fit(x[:500], y[:500])
    return y[500:], model.predict_proba(x[500:])


@cache
def wine_predictions() -> tuple[np.ndarray, np.ndarray]:
    """Quality codes (7 classes) and a logistic regression's (n, 7) probabilities."""
    x, y_raw = _numeric_table(WINE, "quality")
    labels = sorted(set(y_raw), key=int)
    y = np.array([labels.index(v) for v in y_raw])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    rows = np.random.default_rng(0).permutation(len(y))
    train, test = rows[:3000], rows[3000:3600]
    model = LogisticRegression(max_iter=300).fit(x[train], y[train])
    return y[test], model.predict_proba(x[test])


@cache
def abalone_predictions() -> tuple[np.ndarray, np.ndarray]:
    """Rings and a linear regression's predictions on abalone."""
    raw = read_table(ABALONE)
    x = raw.drop(columns=["Rings", "Sex"]).apply(pd.to_numeric).to_numpy(dtype=float)
    y = raw["Rings"].astype(float).to_numpy()
    model = LinearRegression().fit(x[:3000], y[:3000])
    return y[3000:], model.predict(x[3000:])


def weights_for(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.1, 3.0, size=n)


def weighted_confusion(
    y: np.ndarray, pred: np.ndarray, positive: int, w: np.ndarray | None
) -> tuple[float, float, float, float]:
    """(tp, fp, fn, tn) by hand, each row counted with its weight."""
    w = np.ones(len(y)) if w is None else w
    t, p = y == positive, pred == positive
    return (
        float(w[t & p].sum()),
        float(w[~t & p].sum()),
        float(w[t & ~p].sum()),
        float(w[~t & ~p].sum()),
    )


# --- registry ------------------------------------------------------------------------------


def test_metric_names_follow_sagemaker_order_per_problem_type() -> None:
    assert metric_names(B) == [
        "Accuracy",
        "AUC",
        "BalancedAccuracy",
        "F1",
        "InferenceLatency",
        "LogLoss",
        "Precision",
        "Recall",
    ]
    assert metric_names(M) == [
        "Accuracy",
        "BalancedAccuracy",
        "F1macro",
        "InferenceLatency",
        "LogLoss",
        "PrecisionMacro",
        "RecallMacro",
    ]
    assert metric_names(R) == ["InferenceLatency", "MAE", "MSE", "R2", "RMSE"]
    assert metric_names("Regression") == metric_names(R)
    every = metric_names()
    assert len(every) == len(set(every)) == 15
    assert set(every) == set(metric_names(B)) | set(metric_names(M)) | set(metric_names(R))
    assert [m.name for m in metrics_for(M)] == metric_names(M)


@pytest.mark.parametrize(
    ("problem_type", "objective"),
    [(B, "F1"), (M, "Accuracy"), (R, "MSE"), ("Regression", "MSE")],
)
def test_default_objective_is_sagemakers(problem_type: ProblemType | str, objective: str) -> None:
    assert default_objective(problem_type) == objective  # type: ignore[arg-type]
    # The default is always a metric that applies to the problem type.
    assert get_metric(objective, problem_type).name == objective  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "maximize", "in_enum", "types"),
    [
        ("Accuracy", True, True, {B, M}),
        ("AUC", True, True, {B}),
        ("BalancedAccuracy", True, True, {B, M}),
        ("F1", True, True, {B}),
        ("F1macro", True, True, {M}),
        ("Precision", True, True, {B}),
        ("PrecisionMacro", True, True, {M}),
        ("Recall", True, True, {B}),
        ("RecallMacro", True, True, {M}),
        ("LogLoss", False, False, {B, M}),
        ("MAE", False, True, {R}),
        ("MSE", False, True, {R}),
        ("RMSE", False, True, {R}),
        ("R2", True, True, {R}),
        ("InferenceLatency", False, False, {B, M, R}),
    ],
)
def test_metric_directions_and_enum_membership(
    name: str, maximize: bool, in_enum: bool, types: set[ProblemType]
) -> None:
    metric = get_metric(name)
    assert isinstance(metric, Metric)
    assert metric.name == name
    assert metric.maximize is maximize
    assert metric.direction == ("Maximize" if maximize else "Minimize")
    assert metric.in_metric_enum is in_enum
    assert metric.problem_types == frozenset(types)
    assert metric.is_better(2.0, 1.0) is maximize
    assert metric.is_better(1.0, 2.0) is (not maximize)
    assert metric.is_better(1.0, 1.0) is False
    # Ranking key: larger is always better.
    assert (metric.higher_is_better(2.0) > metric.higher_is_better(1.0)) is maximize


def test_get_metric_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_metric("f1", B)  # names are case-sensitive, as in SageMaker
    message = str(info.value)
    assert "'f1'" in message
    for name in metric_names(B):
        assert name in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match=r"Unknown objective metric 'Bogus'.*MSE"):
        get_metric("Bogus")


@pytest.mark.parametrize(
    ("name", "problem_type"),
    [("AUC", R), ("F1", M), ("F1macro", B), ("MSE", B), ("LogLoss", R), ("Accuracy", R)],
)
def test_get_metric_rejects_a_metric_of_another_problem_type(
    name: str, problem_type: ProblemType
) -> None:
    with pytest.raises(ConfigError) as info:
        get_metric(name, problem_type)
    message = str(info.value)
    assert f"{name!r} does not apply to {problem_type.value}" in message
    assert all(valid in message for valid in metric_names(problem_type))


# --- binary ---------------------------------------------------------------------------------


def sklearn_binary(
    y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, positive: int
) -> dict[str, float]:
    pred = proba.argmax(axis=1)
    return {
        "Accuracy": skm.accuracy_score(y, pred, sample_weight=w),
        "AUC": skm.roc_auc_score(y == positive, proba[:, positive], sample_weight=w),
        "BalancedAccuracy": skm.balanced_accuracy_score(y, pred, sample_weight=w),
        "F1": skm.f1_score(y, pred, pos_label=positive, sample_weight=w),
        "LogLoss": skm.log_loss(y, proba, labels=[0, 1], sample_weight=w),
        "Precision": skm.precision_score(y, pred, pos_label=positive, sample_weight=w),
        "Recall": skm.recall_score(y, pred, pos_label=positive, sample_weight=w),
    }


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("positive", [1, 0])
def test_binary_metrics_match_sklearn(weighted: bool, positive: int) -> None:
    y, proba = pima_predictions()
    w = weights_for(len(y)) if weighted else None
    scores = score_all(B, y, proba, sample_weight=w, positive_index=positive, n_classes=2)
    assert list(scores) == BINARY_NAMES
    expected = sklearn_binary(y, proba, w, positive)
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value, rel=1e-9), name
        assert isinstance(scores[name], float)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("positive", [1, 0])
def test_binary_metrics_match_a_hand_computation(weighted: bool, positive: int) -> None:
    y, proba = pima_predictions()
    w = weights_for(len(y), seed=7) if weighted else None
    scores = score_all(B, y, proba, sample_weight=w, positive_index=positive)
    tp, fp, fn, tn = weighted_confusion(y, proba.argmax(axis=1), positive, w)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    specificity = tn / (tn + fp)
    assert scores["Accuracy"] == pytest.approx((tp + tn) / (tp + fp + fn + tn))
    assert scores["Precision"] == pytest.approx(precision)
    assert scores["Recall"] == pytest.approx(recall)
    assert scores["F1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert scores["BalancedAccuracy"] == pytest.approx((recall + specificity) / 2)
    ww = np.ones(len(y)) if w is None else w
    true_proba = proba[np.arange(len(y)), y]
    assert scores["LogLoss"] == pytest.approx(float(-(ww * np.log(true_proba)).sum() / ww.sum()))


def test_binary_positive_index_changes_the_positive_class_metrics() -> None:
    y, proba = pima_predictions()
    as_one = score_all(B, y, proba, positive_index=1)
    as_zero = score_all(B, y, proba, positive_index=0)
    # Pima: class 1 (diabetic) is the minority; the majority class scores higher F1/recall.
    assert as_zero["F1"] > as_one["F1"]
    assert as_zero["Recall"] != pytest.approx(as_one["Recall"])
    # Metrics that do not depend on which class is positive stay the same.
    for name in ("Accuracy", "BalancedAccuracy", "LogLoss", "AUC"):
        assert as_zero[name] == pytest.approx(as_one[name]), name
    # Swapping the labels and the probability columns with positive_index=0 is the mirror.
    mirrored = score_all(B, 1 - y, proba[:, ::-1], positive_index=0)
    for name, value in as_one.items():
        assert mirrored[name] == pytest.approx(value), name


def test_binary_auc_is_nan_when_only_one_class_is_present() -> None:
    y, proba = pima_predictions()
    only_negative = y == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn: "y_pred contains classes not in y_true"
        scores = score_all(B, y[only_negative], proba[only_negative], n_classes=2)
    assert math.isnan(scores["AUC"])
    # The other metrics are still defined.
    assert scores["Accuracy"] == pytest.approx(np.mean(proba[only_negative].argmax(1) == 0))
    assert scores["LogLoss"] == pytest.approx(
        skm.log_loss(y[only_negative], proba[only_negative], labels=[0, 1])
    )
    # Precision/recall/F1 without a positive row: 0, not an exception.
    assert scores["Recall"] == 0.0
    assert scores["F1"] == 0.0


def test_binary_auc_is_nan_when_one_class_has_only_zero_weights() -> None:
    y, proba = pima_predictions()
    w = np.where(y == 1, 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the weighted-away class
        scores = score_all(B, y, proba, sample_weight=w)
    assert math.isnan(scores["AUC"])
    assert scores["Accuracy"] == pytest.approx(np.mean(proba[y == 0].argmax(1) == 0))


def test_binary_perfect_and_inverted_predictions() -> None:
    y, _ = pima_predictions()
    perfect = np.eye(2)[y] * 0.98 + 0.01
    scores = score_all(B, y, perfect)
    for name in ("Accuracy", "AUC", "BalancedAccuracy", "F1", "Precision", "Recall"):
        assert scores[name] == pytest.approx(1.0), name
    assert scores["LogLoss"] == pytest.approx(-math.log(0.99))
    inverted = score_all(B, y, perfect[:, ::-1])
    assert inverted["AUC"] == pytest.approx(0.0)
    assert inverted["Accuracy"] == pytest.approx(0.0)


def test_log_loss_is_finite_for_a_zero_probability_on_the_true_class() -> None:
    y = np.array([0, 1, 1, 0])
    proba = np.array([[1.0, 0.0], [1.0, 0.0], [0.2, 0.8], [0.6, 0.4]])
    value = score_all(B, y, proba)["LogLoss"]
    assert math.isfinite(value)
    # Row 2 is clipped to 1e-15: its loss is about 34.5, far above the others.
    assert value == pytest.approx((-math.log(1e-15) - math.log(0.8) - math.log(0.6)) / 4, rel=1e-6)


def test_inference_latency_only_when_given() -> None:
    y, proba = pima_predictions()
    without = score_all(B, y, proba)
    assert "InferenceLatency" not in without
    with_latency = score_all(B, y, proba, latency_s=0.0125)
    assert with_latency["InferenceLatency"] == 0.0125
    assert list(with_latency) == [n for n in metric_names(B)]
    yr, pr = abalone_predictions()
    assert score_all(R, yr, pr, latency_s=2e-6)["InferenceLatency"] == 2e-6
    assert get_metric("InferenceLatency").fn is None


# --- multiclass -----------------------------------------------------------------------------


def sklearn_multiclass(
    y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, k: int
) -> dict[str, float]:
    pred = proba.argmax(axis=1)
    macro = {"average": "macro", "sample_weight": w, "zero_division": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "Accuracy": skm.accuracy_score(y, pred, sample_weight=w),
            "BalancedAccuracy": skm.balanced_accuracy_score(y, pred, sample_weight=w),
            "F1macro": skm.f1_score(y, pred, **macro),
            "LogLoss": skm.log_loss(y, proba, labels=list(range(k)), sample_weight=w),
            "PrecisionMacro": skm.precision_score(y, pred, **macro),
            "RecallMacro": skm.recall_score(y, pred, **macro),
        }


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_metrics_match_sklearn(weighted: bool) -> None:
    y, proba = wine_predictions()
    w = weights_for(len(y), seed=3) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = score_all(M, y, proba, sample_weight=w, n_classes=7)
    assert list(scores) == MULTICLASS_NAMES
    for name, value in sklearn_multiclass(y, proba, w, 7).items():
        assert scores[name] == pytest.approx(value, rel=1e-9), name


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_macro_metrics_match_a_hand_computation(weighted: bool) -> None:
    y, proba = wine_predictions()
    w = weights_for(len(y), seed=5) if weighted else np.ones(len(y))
    pred = proba.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = score_all(M, y, proba, sample_weight=w if weighted else None, n_classes=7)
    present = np.union1d(y, pred)  # classes in the truth or the predictions
    precisions, recalls, f1s = [], [], []
    for c in present:
        tp, fp, fn, _ = weighted_confusion(y, pred, c, w)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        precisions.append(p)
        recalls.append(r)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    assert scores["PrecisionMacro"] == pytest.approx(np.mean(precisions))
    assert scores["RecallMacro"] == pytest.approx(np.mean(recalls))
    assert scores["F1macro"] == pytest.approx(np.mean(f1s))
    assert scores["Accuracy"] == pytest.approx(float(w[y == pred].sum() / w.sum()))
    in_truth = np.unique(y)
    per_class_recall = [w[(y == c) & (pred == c)].sum() / w[y == c].sum() for c in in_truth]
    assert scores["BalancedAccuracy"] == pytest.approx(np.mean(per_class_recall))


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_with_a_class_absent_from_the_truth(weighted: bool) -> None:
    y, proba = wine_predictions()
    keep = y != 0  # wine class "3" (index 0) is absent from this sample
    y, proba = y[keep], proba[keep]
    assert 0 not in set(y)
    w = weights_for(len(y), seed=11) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = score_all(M, y, proba, sample_weight=w, n_classes=7)
    for name, value in sklearn_multiclass(y, proba, w, 7).items():
        assert scores[name] == pytest.approx(value, rel=1e-9), name


def test_multiclass_perfect_model_scores_one_when_a_class_is_absent() -> None:
    """A class absent from the sample and never predicted must not pull macro averages down."""
    y, _ = wine_predictions()
    y = y[y != 6]  # class "9": 5 rows in the whole data set, none here
    proba = np.eye(7)[y] * 0.9 + 0.1 / 7
    scores = score_all(M, y, proba, n_classes=7)
    for name in ("Accuracy", "BalancedAccuracy", "F1macro", "PrecisionMacro", "RecallMacro"):
        assert scores[name] == pytest.approx(1.0), name
    assert scores["LogLoss"] == pytest.approx(-math.log(0.9 + 0.1 / 7))


def test_multiclass_predicting_a_class_absent_from_the_truth_costs_precision() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 2, 3])  # one row predicted as class 3, which is not in y
    proba = np.eye(4)[pred] * 0.7 + 0.075
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = score_all(M, y, proba, n_classes=4)
    # Four classes count: 0, 1, 2 (precision 1) and 3 (precision 0).
    assert scores["PrecisionMacro"] == pytest.approx((1 + 1 + 1 + 0) / 4)
    assert scores["RecallMacro"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert scores["Accuracy"] == pytest.approx(5 / 6)
    assert scores["BalancedAccuracy"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_n_classes_is_taken_from_the_probability_matrix_by_default() -> None:
    y, proba = wine_predictions()
    keep = y != 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        implicit = score_all(M, y[keep], proba[keep])
        explicit = score_all(M, y[keep], proba[keep], n_classes=7)
    assert implicit == pytest.approx(explicit)


# --- regression -----------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_regression_metrics_match_sklearn_and_hand_computation(weighted: bool) -> None:
    y, pred = abalone_predictions()
    w = weights_for(len(y), seed=9) if weighted else None
    scores = score_all("Regression", y, pred, sample_weight=w)
    assert list(scores) == REGRESSION_NAMES
    assert scores["MAE"] == pytest.approx(skm.mean_absolute_error(y, pred, sample_weight=w))
    assert scores["MSE"] == pytest.approx(skm.mean_squared_error(y, pred, sample_weight=w))
    assert scores["R2"] == pytest.approx(skm.r2_score(y, pred, sample_weight=w))
    assert scores["RMSE"] == pytest.approx(skm.root_mean_squared_error(y, pred, sample_weight=w))
    ww = np.ones(len(y)) if w is None else w
    err = y - pred
    mse = float((ww * err**2).sum() / ww.sum())
    mean = float((ww * y).sum() / ww.sum())
    assert scores["MAE"] == pytest.approx(float((ww * np.abs(err)).sum() / ww.sum()))
    assert scores["MSE"] == pytest.approx(mse)
    assert scores["RMSE"] == pytest.approx(math.sqrt(mse))
    assert scores["R2"] == pytest.approx(1 - (ww * err**2).sum() / (ww * (y - mean) ** 2).sum())
    # A real model on abalone explains some but not all of the variance.
    assert 0.2 < scores["R2"] < 0.8


def test_regression_weights_change_the_result() -> None:
    y, pred = abalone_predictions()
    heavy_on_worst = 1.0 + 10.0 * (np.abs(y - pred) > np.median(np.abs(y - pred)))
    plain = score_all(R, y, pred)
    weighted = score_all(R, y, pred, sample_weight=heavy_on_worst)
    assert weighted["MAE"] > plain["MAE"]
    assert weighted["MSE"] > plain["MSE"]


def test_regression_perfect_prediction() -> None:
    y, _ = abalone_predictions()
    scores = score_all(R, y, y.copy())
    assert scores == {"MAE": 0.0, "MSE": 0.0, "R2": 1.0, "RMSE": 0.0}


@pytest.mark.slow  # about 20 s: left out of `make test-fast`
def test_best_threshold_finds_the_cut_that_maximizes_f1() -> None:
    rng = np.random.default_rng(0)
    # A minority positive class whose scores sit mostly below 0.5: F1 wants a lower cut.
    y = (rng.random(4000) < 0.2).astype(int)
    score = np.clip(
        np.where(y == 1, rng.normal(0.4, 0.15, 4000), rng.normal(0.15, 0.1, 4000)), 0, 1
    )
    proba = np.column_stack([1 - score, score])
    f1 = get_metric("F1", ProblemType.BINARY)
    threshold, value = best_threshold(y, proba, f1, positive_index=1)
    at_half = score_all(ProblemType.BINARY, y, proba)["F1"]
    assert 0.15 < threshold < 0.45
    assert value > at_half + 0.05
    # Exhaustive check over a fine grid: no cut does much better than the one found.
    grid = max(
        score_all(ProblemType.BINARY, y, proba, threshold=t)["F1"] for t in np.linspace(0, 1, 401)
    )
    assert value >= grid - 0.005
    # score_all at that threshold: label metrics change, probability metrics do not.
    tuned = score_all(ProblemType.BINARY, y, proba, threshold=threshold)
    assert tuned["F1"] == pytest.approx(value)
    assert tuned["AUC"] == pytest.approx(score_all(ProblemType.BINARY, y, proba)["AUC"])
    assert tuned["LogLoss"] == pytest.approx(score_all(ProblemType.BINARY, y, proba)["LogLoss"])
    # The decision matrix predicts the positive class exactly from the cut.
    decided = decision_matrix(proba, threshold, 1).argmax(axis=1)
    np.testing.assert_array_equal(decided, (score >= threshold).astype(int))
    # Every tunable metric, weighted or not, agrees with scikit-learn at the cut it reports.
    weight = rng.uniform(0.5, 2.0, len(y))
    for name in ("F1", "Accuracy", "BalancedAccuracy"):
        metric = get_metric(name, ProblemType.BINARY)
        for w in (None, weight):
            t, v = best_threshold(y, proba, metric, sample_weight=w)
            expected = score_all(ProblemType.BINARY, y, proba, sample_weight=w, threshold=t)
            assert v == pytest.approx(expected[name], abs=1e-9), name
            assert v >= score_all(ProblemType.BINARY, y, proba, sample_weight=w)[name] - 1e-12
    # A positive class at index 0 is cut on its own column.
    flipped = decision_matrix(proba[:, ::-1], threshold, 0).argmax(axis=1)
    np.testing.assert_array_equal(flipped, np.where(score >= threshold, 0, 1))


def test_best_threshold_keeps_one_half_when_nothing_beats_it() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    threshold, value = best_threshold(y, proba, get_metric("Accuracy", ProblemType.BINARY))
    assert value == 1.0
    assert threshold == 0.5  # already perfect: no cut moves it
    assert (decision_matrix(proba, threshold, 1).argmax(axis=1) == y).all()


def test_pick_within_ships_the_best_under_the_limit_else_the_least_cost():
    from mlpilot.metrics import get_metric, pick_within

    auc = get_metric("AUC")
    # (name, objective, cost): b is best but over the limit, d is unmeasured (NaN).
    options = [("a", 0.80, 1.0), ("b", 0.90, 5.0), ("c", 0.85, 2.0), ("d", 0.95, math.nan)]
    pick = pick_within(options, lambda o: o[1], lambda o: o[2], 2.0, auc)
    assert pick is not None
    assert (pick.chosen[0], pick.best[0], pick.within) == ("c", "d", True)
    assert [o[0] for o in pick.skipped] == ["d", "b"]
    # Nothing within: the least cost, an unmeasured one never chosen over a measured one.
    pick = pick_within(options, lambda o: o[1], lambda o: o[2], 0.5, auc)
    assert pick is not None and (pick.chosen[0], pick.within) == ("a", False)
    # Ties on the objective keep the earlier candidate.
    tied = [("x", 0.9, 1.0), ("y", 0.9, 1.0)]
    pick = pick_within(tied, lambda o: o[1], lambda o: o[2], 2.0, auc)
    assert pick is not None and pick.chosen[0] == "x" and pick.skipped == ()
    assert pick_within([], lambda o: 0.0, lambda o: 0.0, 1.0, auc) is None


# -- calibration ---------------------------------------------------------------------------------
def _calibration_case(sharpen: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from known class probabilities, and those probabilities with their logits
    multiplied by ``sharpen`` (1: calibrated; above: overconfident)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, (2000, 3))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in truth])
    sharp = np.exp(sharpen * logits)
    return y, sharp / sharp.sum(axis=1, keepdims=True)


def test_calibration_softens_overconfident_probabilities() -> None:
    y, proba = _calibration_case(sharpen=3.0)
    # One odd row predicted all but certainly as a class it is not.
    proba[0] = [1 - 2e-12, 1e-12, 1e-12]
    y[0] = 2
    log_loss = get_metric("LogLoss")
    fitted = fit_calibration(y, proba)
    assert 2.0 < fitted.temperature < TEMPERATURE_BOUNDS[1]  # about the 3 it was sharpened by
    assert fitted.floor > 0.0  # the odd row's cost is bounded
    before = log_loss.fn(y, proba, None, 0, 3)  # type: ignore[misc]
    after = log_loss.fn(y, fitted.apply(proba), None, 0, 3)  # type: ignore[misc]
    assert fitted.before == pytest.approx(before, rel=1e-9)
    assert fitted.after == pytest.approx(after, rel=1e-9)
    assert after < 0.8 * before
    calibrated = fitted.apply(proba)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert calibrated.min() >= fitted.floor / (1 + 3 * fitted.floor)
    assert (calibrated.argmax(axis=1) == proba.argmax(axis=1)).all()  # the order is kept
    assert fit_calibration(y, proba) == fitted  # deterministic


def test_calibration_leaves_calibrated_probabilities_alone() -> None:
    y, proba = _calibration_case(sharpen=1.0, seed=1)
    fitted = fit_calibration(y, proba)
    if not fitted.identity:  # kept only for a gain above noise, and then a small change
        assert fitted.temperature == pytest.approx(1.0, abs=0.1)
        assert fitted.before - fitted.after < 0.01
    np.testing.assert_array_equal(calibrate_probabilities(proba, 1.0, 0.0), proba)


def test_calibration_weights_rows() -> None:
    y, proba = _calibration_case(sharpen=3.0, seed=2)
    weight = np.where(np.arange(len(y)) < 1000, 1.0, 0.0)
    half = fit_calibration(y[:1000], proba[:1000])
    weighted = fit_calibration(y, proba, weight)
    assert weighted.temperature == pytest.approx(half.temperature, rel=1e-6)
    assert weighted.after == pytest.approx(half.after, rel=1e-9)


def test_calibration_of_perfectly_separated_rows_keeps_room_for_an_odd_row() -> None:
    """Every out-of-fold row right at 0.98: the rows alone would sharpen without bound (the
    least temperature, no floor; the first wrong row of new data costs ~18 nats). The fit
    counts one odd row, so what a wrong row can cost stays bounded."""
    n = 300
    y = np.arange(n) % 3
    proba = np.full((n, 3), 0.01)
    proba[np.arange(n), y] = 0.98
    fitted = fit_calibration(y, proba)
    assert fitted.after < fitted.before  # it may still sharpen a little
    assert -math.log(fitted.apply(proba).min()) < 8.0
    # Right but unsure rows: the guard does not stop a real gain.
    unsure = np.full((n, 3), 0.3)
    unsure[np.arange(n), y] = 0.4
    assert fit_calibration(y, unsure).after < fit_calibration(y, unsure).before


# --- one metric, and the objective's spread ----------------------------------------------


@pytest.mark.parametrize("threshold", [None, 0.3])
def test_score_one_is_score_alls_value_for_every_metric(threshold: float | None) -> None:
    cases = [(B, *pima_predictions()), (M, *wine_predictions()), (R, *abalone_predictions())]
    for problem, y, pred in cases:
        w = weights_for(len(y))
        cut = threshold if problem is B else None
        every = score_all(problem, y, pred, sample_weight=w, threshold=cut)
        for name, value in every.items():
            one = score_one(name, problem, y, pred, sample_weight=w, threshold=cut)
            assert one == pytest.approx(value, rel=1e-12, nan_ok=True), (problem, name)
    assert math.isnan(score_one("InferenceLatency", B, *pima_predictions()))


def test_the_spread_over_folds_is_the_std_of_each_folds_score() -> None:
    y, proba = pima_predictions()
    folds = np.arange(len(y)) % 4
    spread = objective_spread("AUC", B, y, proba, folds=folds)
    per_fold = [skm.roc_auc_score(y[folds == f], proba[folds == f, 1]) for f in range(4)]
    assert spread is not None and spread.over == "4 folds" and spread.count == 4
    assert spread.std == pytest.approx(np.std(per_fold, ddof=1), rel=1e-12)
    assert spread.details() == {"ObjectiveStd": round(spread.std, 6), "ObjectiveStdOver": "4 folds"}
    # A fold where AUC is undefined (one class) does not count.
    one_class = folds.copy()
    one_class[y == 0] = np.where(one_class[y == 0] == 3, 0, one_class[y == 0])
    assert objective_spread("AUC", B, y, proba, folds=one_class).over == "3 folds"


def test_the_spread_of_a_holdout_comes_from_seeded_resamples_of_its_rows() -> None:
    y, pred = abalone_predictions()
    first = objective_spread("RMSE", R, y, pred, seed=3)
    again = objective_spread("RMSE", R, y, pred, seed=3)
    other = objective_spread("RMSE", R, y, pred, seed=4)
    assert first is not None and other is not None
    assert first == again and first.std != other.std
    assert first.over == f"{BOOTSTRAP_ROUNDS} bootstrap resamples of the {len(y):,} validation rows"
    # The bootstrap's std is about the score's standard error: RMSE's by the delta method.
    squared = (y - pred) ** 2
    delta = np.std(squared) / np.sqrt(len(y)) / (2 * np.sqrt(squared.mean()))
    assert 0.5 * delta < first.std < 2 * delta
    # One fold is a holdout too; too few rows, or a metric not scored from predictions: none.
    assert objective_spread("RMSE", R, y, pred, folds=np.zeros(len(y)), seed=3) == first
    assert objective_spread("RMSE", R, y[:9], pred[:9]) is None
    assert objective_spread("InferenceLatency", R, y, pred) is None


@pytest.mark.parametrize("folds", [3, 1])
def test_a_trial_states_its_objectives_spread(tmp_path: Path, folds: int) -> None:
    raw = pd.read_csv(PIMA).head(300)
    profile = build_profile(raw, "Outcome")
    # Three folds scored in turn, or one holdout (fold 1) trained on fold 0.
    assignment = np.arange(len(raw)) % 3 if folds == 3 else (np.arange(len(raw)) % 4 == 0)
    write_prepared(tmp_path / "data", raw, profile, assignment.astype(int))
    eval_folds = (0, 1, 2) if folds == 3 else (1,)
    result = run_trial(linear_trial(tmp_path / "data", len(raw), "AUC", eval_folds))
    assert result.status == "Completed" and result.spread is not None
    if folds == 3:
        # The running means the trial reports give each fold's own score back.
        means = [result.intermediate_values[step] for step in range(3)]
        scores = [means[0], 2 * means[1] - means[0], 3 * means[2] - 2 * means[1]]
        assert result.spread.over == "3 folds"
        assert result.spread.std == pytest.approx(np.std(scores, ddof=1), rel=1e-9)
    else:
        over = f"{BOOTSTRAP_ROUNDS} bootstrap resamples of the 75 validation rows"
        assert result.spread.over == over
        assert 0 < result.spread.std < 0.2
