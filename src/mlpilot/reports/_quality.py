"""The model-quality report ("model insights") of one candidate.

It scores the candidate's saved validation predictions (out-of-fold or holdout, the rows the
leaderboard's numbers come from) against the saved targets, and writes:

``statistics.json``
    Model Monitor's model-quality layout: ``binary_classification_metrics``,
    ``multiclass_classification_metrics`` or ``regression_metrics``, each scalar as
    ``{"value": x, "standard_deviation": s}`` (bootstrap; ``"NaN"`` under 200 rows), plus an
    ``mlpilot`` block with SageMaker's metric names as on the leaderboard.
``report.html`` / ``report.pdf``
    The metrics table and the plots for the problem type.

With a sensitive attribute (classification), ``mlpilot.fairness`` holds fairlearn's group
metrics of the validation predictions (count, selection rate, TPR, FPR, accuracy per group;
demographic-parity and equalized-odds differences) and, for the job's best candidate, the
trade-off between the objective and the disparity over every candidate; the report shows both.

Classification labels are the class with the highest probability (for binary, the positive
class when its probability reaches 0.5, or the decision threshold the job tuned for an F1,
accuracy or balanced-accuracy objective): the label the model returns and the one the metrics
use.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from mlpilot._types import ProblemType
from mlpilot.metrics import bayes_decision, expected_cost, get_metric, group_metrics, score_all
from mlpilot.profile import label_key
from mlpilot.reports._render import Report, Section, figure, write_html, write_pdf

__all__ = ["Evaluation", "Tradeoff", "model_statistics", "write_model_insights"]

#: Bootstrap resamples for standard deviations, and the rows each resample holds at most (the
#: deviation is scaled to the full count, as it shrinks with √n).
BOOTSTRAP_ROUNDS = 20
BOOTSTRAP_ROWS = 5_000
#: Model Monitor reports a standard deviation from this many rows on.
MIN_ROWS_FOR_STD = 200
#: Points kept on each curve in statistics.json.
CURVE_POINTS = 200
#: Labels shown in a multiclass confusion matrix (Autopilot's limit).
MAX_MATRIX_LABELS = 15
#: Points drawn in a regression scatter plot.
MAX_SCATTER = 5_000


@dataclass
class Tradeoff:
    """Objective against disparity over a job's candidates: ``rows`` are
    ``(candidate, objective value, disparity)``, ``shipped`` the job's model."""

    objective: str
    disparity_metric: str
    max_disparity: float | None
    shipped: str
    rows: list[tuple[str, float, float]]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "disparity_metric": self.disparity_metric,
            "max_disparity": self.max_disparity,
            "shipped": self.shipped,
            "note": self.note,
            "candidates": [
                {"candidate": name, "objective": value, "disparity": disparity}
                for name, value, disparity in self.rows
            ],
        }


@dataclass
class Evaluation:
    """A candidate's validation predictions with the truth."""

    problem_type: ProblemType
    labels: list[Any]
    positive_index: int
    y: np.ndarray
    predictions: np.ndarray
    weight: np.ndarray | None
    candidate: str
    objective: str
    #: Binary: the probability of the positive class from which it is predicted (None: 0.5).
    threshold: float | None = None
    #: A cost matrix job's costs[actual][predicted] in label order: the model predicts the
    #: class of least expected cost.
    costs: np.ndarray | None = None
    #: The job's sensitive attribute and each evaluated row's group of it (None without one).
    sensitive_attribute: str | None = None
    groups: np.ndarray | None = None
    #: A log-loss job's calibration of these predictions (the record's ``Mlpilot.Calibration``:
    #: Temperature, Floor, BeforeLogLoss, AfterLogLoss), None without one.
    calibration: dict[str, float] | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def predicted(self) -> np.ndarray:
        if self.costs is not None:
            return bayes_decision(self.predictions, self.costs)
        if self.threshold is None or self.problem_type is not ProblemType.BINARY:
            return np.asarray(self.predictions).argmax(axis=1)
        pos = self.positive_index
        return np.where(np.asarray(self.predictions)[:, pos] >= self.threshold, pos, 1 - pos)

    @property
    def cut(self) -> float:
        return 0.5 if self.threshold is None else self.threshold

    @property
    def label_names(self) -> list[str]:
        return [label_key(v) for v in self.labels]


def _value(value: float, std: float | None) -> dict[str, Any]:
    return {
        "value": float(value),
        "standard_deviation": "NaN" if std is None or std != std else float(std),
    }


def _bootstrap(e: Evaluation, scalars: Any) -> dict[str, float]:
    """Standard deviation of each scalar metric over bootstrap resamples."""
    if e.n < MIN_ROWS_FOR_STD:
        return {}
    rng = np.random.default_rng(0)
    size = min(e.n, BOOTSTRAP_ROWS)
    draws: dict[str, list[float]] = {}
    for _ in range(BOOTSTRAP_ROUNDS):
        rows = rng.integers(0, e.n, size)
        sub = Evaluation(
            e.problem_type,
            e.labels,
            e.positive_index,
            e.y[rows],
            e.predictions[rows],
            None if e.weight is None else e.weight[rows],
            e.candidate,
            e.objective,
            e.threshold,
            e.costs,
        )
        for name, value in scalars(sub).items():
            draws.setdefault(name, []).append(value)
    scale = np.sqrt(size / e.n)
    return {name: float(np.nanstd(values) * scale) for name, values in draws.items()}


def _binary_scalars(e: Evaluation) -> dict[str, float]:
    # Every rate from one confusion matrix: the bootstrap evaluates this 21 times, and one
    # scikit-learn scorer per metric (16 calls, each re-checking its inputs) made the
    # model-quality report take 4 s of a 60 s job on 614 rows.
    pos = e.positive_index
    truth = (e.y == pos).astype(int)
    pred = (e.predicted == pos).astype(int)
    w = e.weight
    cm = skm.confusion_matrix(truth, pred, labels=[0, 1], sample_weight=w).astype(float)
    tn, fp, fn, tp = cm.ravel()

    def rate(a: float, b: float) -> float:
        return float(a / (a + b)) if a + b > 0 else 0.0

    def fbeta(beta: float, tp: float, fp: float, fn: float) -> float:
        # scikit-learn's F-beta with zero_division=0.
        b2 = beta * beta
        return rate((1 + b2) * tp, b2 * fn + fp)

    total = tn + fp + fn + tp
    out = {
        "recall": rate(tp, fn),
        "precision": rate(tp, fp),
        "accuracy": rate(tp + tn, fp + fn),
        "true_positive_rate": rate(tp, fn),
        "true_negative_rate": rate(tn, fp),
        "false_positive_rate": rate(fp, tn),
        "false_negative_rate": rate(fn, tp),
        "f0_5": fbeta(0.5, tp, fp, fn),
        "f1": fbeta(1.0, tp, fp, fn),
        "f2": fbeta(2.0, tp, fp, fn),
    }
    # The registry's AUC (NaN with one class only), without scikit-learn's per-call checks.
    auc = get_metric("AUC").fn
    assert auc is not None
    out["auc"] = float(auc(e.y, e.predictions, w, pos, 2))
    # The better of always-positive and always-negative, metric by metric: always-negative
    # scores 0 on recall, precision and F (no true positives), always-positive has every
    # positive as a true positive and every negative as a false positive.
    positives, negatives = tp + fn, tn + fp
    out["recall_best_constant_classifier"] = 1.0 if positives > 0 else 0.0
    out["precision_best_constant_classifier"] = rate(positives, negatives)
    out["f1_best_constant_classifier"] = fbeta(1.0, positives, negatives, 0.0)
    out["accuracy_best_constant_classifier"] = (
        float(max(positives, negatives) / total) if total > 0 else 0.0
    )
    out["f0_5_best_constant_classifier"] = fbeta(0.5, positives, negatives, 0.0)
    out["f2_best_constant_classifier"] = fbeta(2.0, positives, negatives, 0.0)
    return out


def _multiclass_scalars(e: Evaluation) -> dict[str, float]:
    y, pred, w = e.y, e.predicted, e.weight
    labels = np.arange(len(e.labels))

    def weighted(truth: np.ndarray, guess: np.ndarray) -> dict[str, float]:
        kw: dict[str, Any] = {
            "average": "weighted",
            "sample_weight": w,
            "zero_division": 0,
            "labels": labels,
        }
        return {
            "accuracy": float(skm.accuracy_score(truth, guess, sample_weight=w)),
            "weighted_recall": float(skm.recall_score(truth, guess, **kw)),
            "weighted_precision": float(skm.precision_score(truth, guess, **kw)),
            "weighted_f0_5": float(skm.fbeta_score(truth, guess, beta=0.5, **kw)),
            "weighted_f1": float(skm.f1_score(truth, guess, **kw)),
            "weighted_f2": float(skm.fbeta_score(truth, guess, beta=2, **kw)),
        }

    out = weighted(y, pred)
    present = np.unique(y)
    constants = [weighted(y, np.full_like(y, c)) for c in present]
    for name in list(out):
        out[f"{name}_best_constant_classifier"] = max(c[name] for c in constants)
    return out


def _regression_scalars(e: Evaluation) -> dict[str, float]:
    y, p, w = e.y, e.predictions, e.weight
    mse = float(skm.mean_squared_error(y, p, sample_weight=w))
    return {
        "mae": float(skm.mean_absolute_error(y, p, sample_weight=w)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "r2": float(skm.r2_score(y, p, sample_weight=w)),
    }


def _sagemaker_metrics(e: Evaluation) -> dict[str, float]:
    return score_all(
        e.problem_type,
        e.y,
        e.predictions,
        sample_weight=e.weight,
        positive_index=e.positive_index,
        n_classes=len(e.labels),
        threshold=e.threshold,
    )


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    n = len(arrays[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return [np.asarray(a)[keep].astype(float).tolist() for a in arrays]


def model_statistics(e: Evaluation) -> dict[str, Any]:
    """``statistics.json`` for the evaluation (Model Monitor's layout + ``mlpilot``)."""
    problem = e.problem_type
    names = e.label_names
    if problem is ProblemType.REGRESSION:
        scalars, key = _regression_scalars, "regression_metrics"
    elif problem is ProblemType.BINARY:
        scalars, key = _binary_scalars, "binary_classification_metrics"
    else:
        scalars, key = _multiclass_scalars, "multiclass_classification_metrics"
    values = scalars(e)
    stds = _bootstrap(e, scalars)
    block: dict[str, Any] = {}
    if problem.is_classification:
        cm = skm.confusion_matrix(e.y, e.predicted, labels=np.arange(len(names)))
        block["confusion_matrix"] = {
            names[i]: {names[j]: int(cm[i, j]) for j in range(len(names))}
            for i in range(len(names))
        }
    for name, value in values.items():
        block[name] = _value(value, stds.get(name))
    if problem is ProblemType.BINARY:
        truth = (e.y == e.positive_index).astype(int)
        score = e.predictions[:, e.positive_index]
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = skm.roc_curve(truth, score, sample_weight=e.weight)
            precision, recall, _ = skm.precision_recall_curve(truth, score, sample_weight=e.weight)
            fpr_l, tpr_l = _thin(fpr, tpr)
            prec_l, rec_l = _thin(precision, recall)
            block["receiver_operating_characteristic_curve"] = {
                "false_positive_rates": fpr_l,
                "true_positive_rates": tpr_l,
            }
            block["precision_recall_curve"] = {"precisions": prec_l, "recalls": rec_l}
    sagemaker = _sagemaker_metrics(e)
    sagemaker_std = _bootstrap(e, _sagemaker_metrics)
    extra: dict[str, Any] = {}
    if e.costs is not None:
        extra["cost_matrix"] = {
            "labels": names,
            "costs": e.costs.tolist(),
            "expected_cost": expected_cost(e.y, e.predicted, e.costs, e.weight),
            "expected_cost_at_argmax": expected_cost(
                e.y, np.asarray(e.predictions).argmax(axis=1), e.costs, e.weight
            ),
        }
    return {
        "version": 0.0,
        "dataset": {
            "item_count": e.n,
            "evaluation_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        key: block,
        "mlpilot": {
            "candidate": e.candidate,
            "objective": e.objective,
            "positive_label": names[e.positive_index] if problem is ProblemType.BINARY else None,
            "threshold": e.cut if problem is ProblemType.BINARY else None,
            "weighted": e.weight is not None,
            "metrics": {n: _value(v, sagemaker_std.get(n)) for n, v in sagemaker.items()},
            **extra,
            **_fairness(e),
            **({"calibration": dict(e.calibration)} if e.calibration else {}),
        },
    }


def _fairness(e: Evaluation) -> dict[str, Any]:
    """``{"fairness": ...}``: fairlearn's group metrics of the evaluation, when it has groups."""
    if e.groups is None or not e.problem_type.is_classification:
        return {}
    metrics = group_metrics(
        e.y,
        e.predicted,
        e.groups,
        binary=e.problem_type is ProblemType.BINARY,
        positive_index=e.positive_index,
        sample_weight=e.weight,
    )
    return {"fairness": {"sensitive_attribute": e.sensitive_attribute, **metrics}}


def _fairness_section(block: dict[str, Any], tradeoff: Tradeoff | None) -> Section:
    """Group metrics, the disparities and the objective-against-disparity trade-off."""
    binary = "demographic_parity_difference" in block
    section = Section(
        f"Fairness by {block['sensitive_attribute']}",
        text=[
            "Group metrics of the validation predictions (fairlearn's MetricFrame) at the label "
            "the model returns. Selection rate: share predicted positive; demographic-parity "
            "difference: the largest gap in selection rate between groups; equalized-odds "
            "difference: the larger of the largest gaps in true- and false-positive rate."
            if binary
            else "Count and accuracy per group of the validation predictions (fairlearn's "
            "MetricFrame). Selection rate, TPR, FPR, demographic parity and equalized odds are "
            "defined for binary classification only."
        ],
    )
    columns = ["count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"]
    columns = [c for c in columns if binary or c in ("count", "accuracy")]
    section.table(
        ["group", *[c.replace("_", " ") for c in columns]],
        [
            [group, *["" if values[c] is None else values[c] for c in columns]]
            for group, values in block["by_group"].items()
        ],
    )
    if binary:
        section.table(
            ["disparity", "value"],
            [
                [name.replace("_", " "), "" if block[name] is None else block[name]]
                for name in ("demographic_parity_difference", "equalized_odds_difference")
            ],
        )
    if tradeoff is None or not tradeoff.rows:
        return section
    limit = (
        f"the limit {tradeoff.max_disparity:g}"
        if tradeoff.max_disparity is not None
        else "no limit"
    )
    section.text.append(
        f"Every candidate's {tradeoff.objective} against its {tradeoff.disparity_metric} "
        f"disparity on the same validation rows ({limit}); the shipped model is marked."
        + (f" {tradeoff.note[0].upper()}{tradeoff.note[1:]}." if tradeoff.note else "")
    )
    section.table(
        ["candidate", tradeoff.objective, f"{tradeoff.disparity_metric} disparity", "shipped"],
        [
            [name, value, disparity, "✓" if name == tradeoff.shipped else ""]
            for name, value, disparity in tradeoff.rows
        ],
    )
    fig, ax = figure(5.5, 4)
    others = [r for r in tradeoff.rows if r[0] != tradeoff.shipped]
    mine = [r for r in tradeoff.rows if r[0] == tradeoff.shipped]
    ax.scatter([r[2] for r in others], [r[1] for r in others], color="#8aa9cf", label="candidate")
    ax.scatter(
        [r[2] for r in mine],
        [r[1] for r in mine],
        color="#d1495b",
        marker="*",
        s=160,
        label="shipped",
    )
    if tradeoff.max_disparity is not None:
        ax.axvline(tradeoff.max_disparity, color="grey", linestyle="--", label="limit")
    ax.set_xlabel(f"{tradeoff.disparity_metric} disparity")
    ax.set_ylabel(tradeoff.objective)
    ax.legend(loc="best")
    fig.tight_layout()
    section.add(fig, "Objective against disparity for every candidate; the star ships.")
    return section


# -- figures -----------------------------------------------------------------------------------
def _confusion_figure(cm: np.ndarray, names: list[str], title: str) -> Any:
    size = 2.5 + 0.45 * len(names)
    fig, ax = figure(size + 1.2, size)
    shares = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 3 else 0, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    small = len(names) <= 8
    for i in range(len(names)):
        for j in range(len(names)):
            text = f"{cm[i, j]:,}\n{shares[i, j]:.1%}" if small else f"{cm[i, j]:,}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=9 if small else 7,
                color="white" if shares[i, j] > 0.6 else "black",
            )
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the actual class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _binary_figures(e: Evaluation, section: Section) -> None:
    pos = e.positive_index
    names = e.label_names
    truth = (e.y == pos).astype(int)
    score = e.predictions[:, pos]
    cm = skm.confusion_matrix(e.y, e.predicted, labels=[0, 1])
    section.add(
        _confusion_figure(cm, names, f"Confusion matrix at threshold {e.cut:.3g}"),
        f"Confusion matrix: counts and share of each actual class; positive class "
        f"{names[pos]!r}, predicted when its probability reaches {e.cut:.3g}"
        + (" (the threshold the job tuned for its objective)." if e.threshold else "."),
    )
    if not 0 < truth.sum() < len(truth):
        return
    fpr, tpr, _ = skm.roc_curve(truth, score, sample_weight=e.weight)
    auc = skm.roc_auc_score(truth, score, sample_weight=e.weight)
    fig, ax = figure(5, 4.4)
    ax.plot(fpr, tpr, color="#2c6fbb", label=f"model (AUC = {auc:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    section.add(fig, "ROC curve: true against false positive rate over every threshold.")

    precision, recall, thresholds = skm.precision_recall_curve(truth, score, sample_weight=e.weight)
    auprc = skm.average_precision_score(truth, score, sample_weight=e.weight)
    prevalence = float(np.average(truth, weights=e.weight))
    fig, ax = figure(5, 4.4)
    ax.plot(recall, precision, color="#2c6fbb", label=f"model (AUPRC = {auprc:.4f})")
    ax.axhline(prevalence, color="grey", linestyle=":", label=f"prevalence {prevalence:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left")
    fig.tight_layout()
    section.add(fig, "Precision against recall; AUPRC is the average precision.")

    f1 = np.where(
        precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0
    )
    fig, ax = figure(5, 4.4)
    ax.plot(thresholds, precision[:-1], label="precision", color="#2c6fbb")
    ax.plot(thresholds, recall[:-1], label="recall", color="#d9822b")
    ax.plot(thresholds, f1[:-1], label="F1", color="#3a9a5b")
    ax.axvline(
        e.cut, color="black", linestyle="--", linewidth=1, label=f"threshold used ({e.cut:.3g})"
    )
    ax.set_xlabel(f"threshold on P({names[pos]})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision and recall by threshold")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    section.add(fig, "Moving the threshold trades precision against recall.")

    order = np.argsort(-score, kind="stable")
    weights = np.ones(len(truth)) if e.weight is None else e.weight
    gained = np.cumsum((truth * weights)[order]) / max((truth * weights).sum(), 1e-12)
    reached = np.cumsum(weights[order]) / weights.sum()
    fig, axes = figure(9, 3.8, ncols=2)
    axes[0].plot(reached, gained, color="#2c6fbb", label="model")
    axes[0].plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    axes[0].set_xlabel("share of rows, highest scores first")
    axes[0].set_ylabel(f"share of {names[pos]!r} found")
    axes[0].set_title("Cumulative gain")
    axes[0].legend(loc="lower right")
    lift = gained / np.maximum(reached, 1e-12)
    start = max(1, len(lift) // 100)
    axes[1].plot(reached[start:], lift[start:], color="#2c6fbb")
    axes[1].axhline(1, color="grey", linestyle=":")
    axes[1].set_xlabel("share of rows, highest scores first")
    axes[1].set_ylabel("lift")
    axes[1].set_title("Lift")
    fig.tight_layout()
    section.add(
        fig, "Gain and lift: how concentrated the positives are among the top scores.", wide=True
    )


def _multiclass_figures(e: Evaluation, section: Section) -> None:
    names = e.label_names
    k = len(names)
    cm = skm.confusion_matrix(e.y, e.predicted, labels=np.arange(k))
    if k > MAX_MATRIX_LABELS:
        keep = np.argsort(-cm.sum(axis=1), kind="stable")[: MAX_MATRIX_LABELS - 1]
        other = np.setdiff1d(np.arange(k), keep)
        index = np.full(k, len(keep))
        index[keep] = np.arange(len(keep))
        small = np.zeros((len(keep) + 1, len(keep) + 1), dtype=np.int64)
        np.add.at(small, (index[:, None].repeat(k, 1), index[None, :].repeat(k, 0)), cm)
        cm = small
        names = [names[i] for i in keep] + [f"({len(other)} other classes)"]
        title = f"Confusion matrix ({MAX_MATRIX_LABELS - 1} most frequent classes)"
    else:
        title = "Confusion matrix"
    section.add(
        _confusion_figure(cm, names, title),
        "Rows: actual class; columns: predicted class (the most probable).",
    )
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        e.y, e.predicted, labels=np.arange(k), sample_weight=e.weight, zero_division=0
    )
    shown = np.argsort(-support, kind="stable")[:30]
    fig, ax = figure(8, max(2.5, 0.6 + 0.32 * len(shown)))
    ypos = np.arange(len(shown))
    ax.barh(ypos - 0.25, precision[shown], height=0.25, label="precision", color="#2c6fbb")
    ax.barh(ypos, recall[shown], height=0.25, label="recall", color="#d9822b")
    ax.barh(ypos + 0.25, f1[shown], height=0.25, label="F1", color="#3a9a5b")
    ax.set_yticks(ypos, [e.label_names[i] for i in shown])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title("Per-class precision, recall and F1")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    section.add(fig, "Per class (most frequent first).")


def _regression_figures(e: Evaluation, section: Section) -> None:
    y, p = np.asarray(e.y, float), np.asarray(e.predictions, float)
    rng = np.random.default_rng(0)
    shown = rng.choice(len(y), size=min(len(y), MAX_SCATTER), replace=False)
    slope, intercept = np.polyfit(p, y, 1) if len(y) > 1 else (1.0, 0.0)
    fig, ax = figure(5.2, 4.8)
    ax.scatter(p[shown], y[shown], s=6, alpha=0.4, color="#2c6fbb", label="rows")
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle=":", label="actual = predicted")
    ax.plot(
        [low, high],
        [slope * low + intercept, slope * high + intercept],
        color="#d9822b",
        label=f"fitted line (slope {slope:.2f})",
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Actual against predicted")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    section.add(fig, "Each point is a validation row; a perfect model lies on the dotted line.")

    residual = y - p
    scale = residual.std() or 1.0
    standardized = residual / scale
    outlying = np.abs(standardized) > 3
    fig, ax = figure(5.2, 4.8)
    ax.scatter(p[shown], standardized[shown], s=6, alpha=0.4, color="#2c6fbb", label="|r| ≤ 3")
    marked = shown[outlying[shown]]
    ax.scatter(p[marked], standardized[marked], s=10, color="#d62728", label="|r| > 3 (outlier)")
    ax.axhline(0, color="grey", linestyle=":")
    for bound in (-3, 3):
        ax.axhline(bound, color="#d62728", linestyle="--", linewidth=0.8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("standardized residual")
    ax.set_title(f"Standardized residuals ({outlying.mean():.1%} beyond ±3)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    section.add(fig, "Residuals (actual − predicted) divided by their standard deviation.")

    fig, ax = figure(6, 3.8)
    ax.hist(residual, bins=60, color="#2c6fbb")
    ax.axvline(0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("residual (actual − predicted)")
    ax.set_ylabel("rows")
    ax.set_title("Error distribution")
    fig.tight_layout()
    section.add(fig, "Distribution of the errors; a long tail marks rows the model misses badly.")


def _cost_section(e: Evaluation, block: dict[str, Any]) -> Section:
    """The job's cost matrix and what the model's decisions cost on the validation rows."""
    names = e.label_names
    section = Section(
        "Cost matrix",
        text=[
            "The job minimised the expected cost of its cost matrix (rows: the actual class, "
            "columns: the predicted class). The model predicts the class of least expected cost "
            "from its probabilities (argmin over j of the sum over i of p_i * cost[i][j]). "
            f"Mean cost per validation row: {block['expected_cost']:.6g} with that decision, "
            f"{block['expected_cost_at_argmax']:.6g} predicting the most probable class."
        ],
    )
    section.table(
        ["actual \\ predicted", *names],
        [[names[i], *[float(c) for c in row]] for i, row in enumerate(block["costs"])],
    )
    return section


# -- the report --------------------------------------------------------------------------------
def _calibration_text(calibration: dict[str, float]) -> str:
    temperature = float(calibration.get("Temperature", 1.0))
    floor = float(calibration.get("Floor", 0.0))
    before, after = calibration.get("BeforeLogLoss"), calibration.get("AfterLogLoss")
    if temperature == 1.0 and floor == 0.0:
        return (
            "Calibration: no temperature or probability floor lowered the out-of-fold log "
            f"loss ({before:.4f}); the probabilities are the blend's, as predicted."
        )
    return (
        f"Calibrated probabilities: the model divides its log-probabilities by a temperature "
        f"of {temperature:.3f}"
        + (f" and keeps every probability at or above {floor:g}" if floor else "")
        + f", fitted on these out-of-fold predictions: log loss {after:.4f}, against "
        f"{before:.4f} before calibration. The metrics below are of the calibrated "
        "probabilities, as the model predicts them."
    )


def write_model_insights(
    e: Evaluation,
    out_dir: Path,
    *,
    job_name: str,
    algorithm: str,
    validation: str,
    pdf: bool = True,
    tradeoff: Tradeoff | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Write statistics.json, report.html (and report.pdf); return the statistics.
    ``tradeoff``: the job's candidates' objective against disparity (with a sensitive
    attribute). ``deadline`` (``time.monotonic()``): report.pdf, the HTML's figures drawn
    again, is left out (with a note) when drawing them again would pass it."""
    started = time.monotonic()
    stats = model_statistics(e)
    if tradeoff is not None and "fairness" in stats["mlpilot"]:
        stats["mlpilot"]["fairness"]["tradeoff"] = tradeoff.to_dict()
    metric = get_metric(e.objective)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(stats, indent=1)
    (out_dir / "statistics.json").write_text(text)
    # The PDF draws every figure again: as long as drawing them for the HTML took.
    drawing = time.monotonic()

    report = Report(
        title=f"Model quality: {e.candidate}",
        subtitle=f"Job {job_name} — how the candidate did on validation rows it was not "
        "trained on.",
        facts=[
            ("Candidate", e.candidate),
            ("Algorithm", algorithm),
            ("Job", job_name),
            ("Problem type", e.problem_type.value),
            ("Objective metric", f"{e.objective} ({metric.direction.lower()})"),
            ("Evaluation rows", f"{e.n:,} ({validation})"),
            ("Evaluated", stats["dataset"]["evaluation_time"]),
        ],
    )
    metrics_section = Section(
        "Metrics",
        text=[
            "Every metric of the problem type on the validation predictions (out-of-fold for "
            "cross-validation, the held-out rows otherwise). Standard deviations come from "
            f"{BOOTSTRAP_ROUNDS} bootstrap resamples"
            + (" (none under 200 rows)." if e.n < MIN_ROWS_FOR_STD else ".")
        ],
    )
    rows = []
    for name, entry in stats["mlpilot"]["metrics"].items():
        std = entry["standard_deviation"]
        rows.append(
            [
                name + (" (objective)" if name == e.objective else ""),
                entry["value"],
                std if isinstance(std, float) else "",
            ]
        )
    if e.calibration:
        metrics_section.text.append(_calibration_text(e.calibration))
    metrics_section.table(["metric", "value", "standard deviation"], rows)
    if e.weight is not None:
        metrics_section.note = "Metrics are weighted by the job's sample weights."
    report.sections.append(metrics_section)
    if e.costs is not None:
        report.sections.append(_cost_section(e, stats["mlpilot"]["cost_matrix"]))

    plots = Section("Plots", grid=True)
    if e.problem_type is ProblemType.BINARY:
        block = stats["binary_classification_metrics"]
        plots.text.append(
            f"The positive class is {e.label_names[e.positive_index]!r}; a row is predicted "
            + (
                "as the class of least expected cost under the job's cost matrix"
                if e.costs is not None
                else f"positive when its probability reaches {e.cut:.3g}"
            )
            + " (the label the model returns)."
        )
        detail = Section(
            "Threshold metrics",
            text=[
                "At the threshold 0.5, for the positive class. The best constant classifier "
                "is the better of always predicting positive and always predicting negative: "
                "a model should beat it."
            ],
        )
        detail.table(
            ["metric", "value", "best constant classifier"],
            [
                [
                    name,
                    block[name]["value"],
                    block.get(f"{name}_best_constant_classifier", {"value": ""})["value"],
                ]
                for name in ("accuracy", "precision", "recall", "f0_5", "f1", "f2")
            ]
            + [
                [name, block[name]["value"], ""]
                for name in (
                    "true_positive_rate",
                    "true_negative_rate",
                    "false_positive_rate",
                    "false_negative_rate",
                )
            ],
        )
        report.sections.append(detail)
        _binary_figures(e, plots)
    elif e.problem_type is ProblemType.MULTICLASS:
        _multiclass_figures(e, plots)
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            e.y,
            e.predicted,
            labels=np.arange(len(e.labels)),
            sample_weight=e.weight,
            zero_division=0,
        )
        per_class = Section("Per-class metrics")
        per_class.table(
            ["class", "precision", "recall", "F1", "validation rows"],
            [
                [
                    e.label_names[i],
                    float(precision[i]),
                    float(recall[i]),
                    float(f1[i]),
                    int(np.sum(e.y == i)),
                ]
                for i in range(len(e.labels))
            ],
        )
        report.sections.append(per_class)
    else:
        _regression_figures(e, plots)
    report.sections.append(plots)
    if "fairness" in stats["mlpilot"]:
        report.sections.append(_fairness_section(stats["mlpilot"]["fairness"], tradeoff))
    write_html(report, out_dir / "report.html")
    html_seconds = time.monotonic() - drawing
    if pdf and (deadline is None or deadline - time.monotonic() > html_seconds):
        write_pdf(report, out_dir / "report.pdf")
    elif pdf:
        stats["mlpilot"]["notes"] = [
            "report.pdf left out: the job's time ran out (mlpilot report JOB --generate --force "
            "writes it)"
        ]
        (out_dir / "statistics.json").write_text(json.dumps(stats, indent=1))
    stats["mlpilot"]["seconds"] = round(time.monotonic() - started, 3)
    return stats
