"""The metric registry.

Each :class:`Metric` is keyed by SageMaker's name (``F1``, ``AUC``, ``MSE``...). Classification
metrics take integer-coded labels and an ``(n, K)`` probability matrix; regression metrics take
the true and predicted values. ``InferenceLatency`` is not computed from predictions: it is the
measured seconds per row, handed to :func:`score_all` by the caller.

Time-series forecasting's objectives (``AverageWeightedQuantileLoss``, ``MASE``, ``MAPE``,
``WAPE``, and ``RMSE`` shared with regression) are looked up here too, so that a job's records
can state their direction and enum membership; they are computed over whole backtest windows
by :mod:`mlpilot.metrics._forecast`, not by :func:`score_all`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlpilot._types import ProblemType
from mlpilot.errors import ConfigError
from mlpilot.metrics import _fast
from mlpilot.metrics._objectives import (
    EXPECTED_COST,
    ActiveObjective,
    active_objective,
    bayes_decision,
)

_B, _M, _R = ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION

# (y_true, y_pred_or_proba, sample_weight, positive_index, n_classes) -> value
_ScoreFn = Callable[[np.ndarray, np.ndarray, np.ndarray | None, int, int], float]


@dataclass(frozen=True)
class Metric:
    """One objective metric.

    Attributes
    ----------
    name:
        SageMaker's name, e.g. ``"F1"``.
    maximize:
        Whether larger is better (``FinalAutoMLJobObjectiveMetric.Type`` is ``Maximize``).
    problem_types:
        Tabular problem types the metric applies to; empty for the forecasting-only metrics.
    in_metric_enum:
        Whether the name is in ``AutoMLMetricEnum`` (``LogLoss`` and ``InferenceLatency`` are
        only in the extended enum, so they go in ``StandardMetricName`` alone).
    fn:
        The scorer of one tabular prediction; ``None`` for ``InferenceLatency`` (measured) and
        the forecasting-only metrics (scored per window by ``score_forecasts``).
    """

    name: str
    maximize: bool
    problem_types: frozenset[ProblemType]
    in_metric_enum: bool
    fn: _ScoreFn | None

    @property
    def direction(self) -> str:
        return "Maximize" if self.maximize else "Minimize"

    def higher_is_better(self, value: float) -> float:
        """The value with its sign turned so that larger is always better (for ranking)."""
        return value if self.maximize else -value

    def is_better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1)


def _accuracy(y, p, w, pos, k):
    return _fast.accuracy(y, _labels(p), w)


def _balanced_accuracy(y, p, w, pos, k):
    return _fast.balanced_accuracy(y, _labels(p), w)


# Index of precision, recall and F1 in what _fast.precision_recall_f1 returns.
_PRECISION, _RECALL, _F1 = 1, 2, 3


def _binary(which):
    def score(y, p, w, pos, k):
        return float(_fast.precision_recall_f1(y, _labels(p), w, pos + 1)[which][pos])

    return score


def _macro(which):
    # Averaged over the classes present in the truth or the predictions (scikit-learn's
    # default): a class absent from both says nothing about the model, and counting it as 0
    # would keep a perfect model below 1 on a sample that lacks a rare class.
    def score(y, p, w, pos, k):
        scores = _fast.precision_recall_f1(y, _labels(p), w)
        return float(np.mean(scores[which][scores[0]]))

    return score


def _auc(y, p, w, pos, k):
    truth = (np.asarray(y) == pos).astype(int)
    counted = truth if w is None else truth[np.asarray(w) > 0]  # rows of weight 0 do not count
    if counted.size == 0 or counted.min() == counted.max():  # one class only: AUC is undefined
        return float("nan")
    return _fast.roc_auc(truth, np.asarray(p, dtype=float)[:, pos], w)


def _log_loss(y, p, w, pos, k):
    proba = np.clip(np.asarray(p, dtype=float), 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return _fast.log_loss(y, proba, w)


def _regression(fn):
    def score(y, p, w, pos, k):
        return fn(y, p, w)

    return score


def _rmse(y, p, w, pos, k):
    return float(np.sqrt(_fast.mean_squared_error(y, p, w)))


def _metric(name, maximize, types, fn, in_enum=True):
    return Metric(name, maximize, frozenset(types), in_enum, fn)


_METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        _metric("Accuracy", True, [_B, _M], _accuracy),
        _metric("AUC", True, [_B], _auc),
        _metric("BalancedAccuracy", True, [_B, _M], _balanced_accuracy),
        _metric("F1", True, [_B], _binary(_F1)),
        _metric("F1macro", True, [_M], _macro(_F1)),
        _metric("Precision", True, [_B], _binary(_PRECISION)),
        _metric("PrecisionMacro", True, [_M], _macro(_PRECISION)),
        _metric("Recall", True, [_B], _binary(_RECALL)),
        _metric("RecallMacro", True, [_M], _macro(_RECALL)),
        _metric("LogLoss", False, [_B, _M], _log_loss, in_enum=False),
        _metric("MAE", False, [_R], _regression(_fast.mean_absolute_error)),
        _metric("MSE", False, [_R], _regression(_fast.mean_squared_error)),
        _metric("RMSE", False, [_R], _rmse),
        _metric("R2", True, [_R], _regression(_fast.r2)),
        _metric("InferenceLatency", False, [_B, _M, _R], None, in_enum=False),
    ]
}

_DEFAULTS = {_B: "F1", _M: "Accuracy", _R: "MSE"}

#: The time-series problem type, as AutoMLProblemTypeConfigName spells it. Not a ProblemType
#: member: ProblemType is the inferred tabular type.
TIME_SERIES_FORECASTING = "TimeSeriesForecasting"

# Forecasting-only objectives: all in AutoMLMetricEnum, all minimized, none tabular. The
# per-quantile wQL[τ] values have no enum name, so they are not objectives.
_FORECAST_ONLY: dict[str, Metric] = {
    name: _metric(name, False, [], None)
    for name in ("AverageWeightedQuantileLoss", "MASE", "MAPE", "WAPE")
}

# The order of AutoMLJobObjective's documentation: RMSE, (wQL,) Average wQL, MASE, MAPE, WAPE.
_FORECAST_ORDER = ["RMSE", "AverageWeightedQuantileLoss", "MASE", "MAPE", "WAPE"]

# The order SageMaker lists them in, per problem type.
_ORDER = {
    _B: [
        "Accuracy",
        "AUC",
        "BalancedAccuracy",
        "F1",
        "InferenceLatency",
        "LogLoss",
        "Precision",
        "Recall",
    ],
    _M: [
        "Accuracy",
        "BalancedAccuracy",
        "F1macro",
        "InferenceLatency",
        "LogLoss",
        "PrecisionMacro",
        "RecallMacro",
    ],
    _R: ["InferenceLatency", "MAE", "MSE", "R2", "RMSE"],
}


def metric_names(problem_type: ProblemType | str | None = None) -> list[str]:
    """All tabular metric names, or those of one problem type (``TimeSeriesForecasting``
    included)."""
    if problem_type is None:
        return list(_METRICS)
    if problem_type == TIME_SERIES_FORECASTING:
        return forecast_metric_names()
    return list(_ORDER[ProblemType(problem_type)])


def forecast_metric_names() -> list[str]:
    """Time-series forecasting's objective metrics, in SageMaker's order."""
    return list(_FORECAST_ORDER)


def default_forecast_objective() -> str:
    """SageMaker's default objective for time-series forecasting."""
    return "AverageWeightedQuantileLoss"


def get_metric(name: str, problem_type: ProblemType | str | None = None) -> Metric:
    """Look a metric up by its SageMaker name; the error lists the valid names.

    Without a problem type, forecasting's objectives resolve too; a tabular problem type
    rejects them ("does not apply"), and ``TimeSeriesForecasting`` rejects the tabular ones."""
    if problem_type == TIME_SERIES_FORECASTING:
        return get_forecast_metric(name)
    custom = active_objective()
    if custom is not None and custom.name == name:
        if problem_type is not None and ProblemType(problem_type) not in custom.problem_types:
            raise ConfigError(
                f"Objective {name!r} does not apply to {ProblemType(problem_type).value}"
            )
        return _custom_metric(custom)
    metric = _METRICS.get(name) or _FORECAST_ONLY.get(name)
    if metric is None:
        if name == EXPECTED_COST or ":" in name:
            raise ConfigError(
                f"Objective {name!r} is a job's own objective (a cost matrix or a user "
                "metric); read it with that job's config"
            )
        valid = metric_names(problem_type)
        if problem_type is None:
            valid += list(_FORECAST_ONLY)
        raise ConfigError(f"Unknown objective metric {name!r}; valid names: {', '.join(valid)}")
    if problem_type is not None and ProblemType(problem_type) not in metric.problem_types:
        valid = metric_names(problem_type)
        raise ConfigError(
            f"Objective metric {name!r} does not apply to {ProblemType(problem_type).value}; "
            f"valid names: {', '.join(valid)}"
        )
    return metric


def _custom_metric(custom: ActiveObjective) -> Metric:
    return Metric(custom.name, custom.maximize, custom.problem_types, False, custom.fn)


def objective_direction(name: str, declared: str | None = None) -> bool:
    """Whether larger is better for objective ``name``: a built-in metric's or the active
    custom objective's direction; for another job's own objective (a cost matrix, a user
    metric), what its records ``declared`` (``Maximize`` / ``Minimize``)."""
    custom = active_objective()
    if custom is not None and custom.name == name:
        return custom.maximize
    if name in _METRICS or name in _FORECAST_ONLY:
        return get_metric(name).maximize
    if name == EXPECTED_COST:
        return False
    return declared != "Minimize"


def in_metric_enum(name: str) -> bool:
    """Whether ``name`` is in SageMaker's ``AutoMLMetricEnum`` (a job's own objective is
    not)."""
    metric = _METRICS.get(name) or _FORECAST_ONLY.get(name)
    return metric is not None and metric.in_metric_enum


def get_forecast_metric(name: str) -> Metric:
    """Look a time-series forecasting objective up; a tabular-only name does not apply."""
    if name in _FORECAST_ORDER:
        return get_metric(name)
    valid = ", ".join(_FORECAST_ORDER)
    if name in _METRICS:
        raise ConfigError(
            f"Objective metric {name!r} does not apply to {TIME_SERIES_FORECASTING}; "
            f"valid names: {valid}"
        )
    raise ConfigError(f"Unknown objective metric {name!r}; valid names: {valid}")


def metrics_for(problem_type: ProblemType) -> list[Metric]:
    return [_METRICS[n] for n in _ORDER[ProblemType(problem_type)]]


def default_objective(problem_type: ProblemType) -> str:
    """SageMaker's default objective: F1 (binary), Accuracy (multiclass), MSE (regression)."""
    return _DEFAULTS[ProblemType(problem_type)]


#: Binary objectives computed from predicted labels whose best cut of the positive class's
#: probability is worth finding (Precision and Recall are left out: each is maximized by a
#: degenerate cut that predicts almost nothing, or everything, positive).
THRESHOLD_METRICS = frozenset({"Accuracy", "BalancedAccuracy", "F1"})
#: Metrics computed from predicted labels (a decision threshold or a cost matrix changes them).
_LABEL_METRICS = frozenset(
    {
        "Accuracy",
        "BalancedAccuracy",
        "F1",
        "Precision",
        "Recall",
        "F1macro",
        "PrecisionMacro",
        "RecallMacro",
    }
)
#: Cuts tried by :func:`best_threshold` at most (quantiles of the predicted probabilities).
_THRESHOLD_CANDIDATES = 1000


def decision_matrix(proba: np.ndarray, threshold: float, positive_index: int) -> np.ndarray:
    """Binary probabilities → a matrix whose arg-max is the label at ``threshold``: the
    positive class when its probability is at least ``threshold``."""
    proba = np.asarray(proba, dtype=float)
    positive = proba[:, positive_index] >= threshold
    out = np.zeros_like(proba)
    out[np.arange(len(proba)), np.where(positive, positive_index, 1 - positive_index)] = 1.0
    return out


def best_threshold(
    y_true: np.ndarray,
    proba: np.ndarray,
    metric: Metric,
    *,
    sample_weight: np.ndarray | None = None,
    positive_index: int = 1,
) -> tuple[float, float]:
    """``(threshold, value)``: the cut of the positive class's probability that scores best on
    ``metric`` (one of :data:`THRESHOLD_METRICS`), tried at up to 1,000 quantiles of the
    probabilities; 0.5 when nothing beats it, and among equal values the cut nearest 0.5."""
    if metric.name not in THRESHOLD_METRICS:
        raise ValueError(f"{metric.name} has no decision threshold to tune")
    truth = (np.asarray(y_true) == positive_index).astype(float)
    score = np.asarray(proba, dtype=float)[:, positive_index]
    w = np.ones_like(score) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    quantiles = np.quantile(score, np.linspace(0.0, 1.0, _THRESHOLD_CANDIDATES))
    cuts = np.unique(np.append(quantiles, 0.5))
    # Weighted confusion counts at every cut at once: sort the scores, then a row is predicted
    # positive at cut t when its score is at least t (suffix sums from t's position).
    order = np.argsort(score, kind="stable")
    ranked = score[order]
    pos_after = np.append(np.cumsum((truth * w)[order][::-1])[::-1], 0.0)
    neg_after = np.append(np.cumsum(((1 - truth) * w)[order][::-1])[::-1], 0.0)
    start = np.searchsorted(ranked, cuts, side="left")
    tp, fp = pos_after[start], neg_after[start]
    positives, negatives = pos_after[0], neg_after[0]
    fn, tn = positives - tp, negatives - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric.name == "F1":
            values = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        elif metric.name == "Accuracy":
            values = (tp + tn) / max(positives + negatives, 1e-300)
        else:  # BalancedAccuracy: the mean recall of the classes present
            recalls = []
            if positives > 0:
                recalls.append(tp / positives)
            if negatives > 0:
                recalls.append(tn / negatives)
            values = np.mean(recalls, axis=0) if recalls else np.zeros_like(cuts)
    values = np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf)
    best = values.max()
    ties = np.flatnonzero(values >= best - 1e-12)
    pick = ties[np.argmin(np.abs(cuts[ties] - 0.5))]
    return float(cuts[pick]), float(values[pick])


def score_all(
    problem_type: ProblemType,
    y_true: np.ndarray,
    prediction: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    positive_index: int = 1,
    n_classes: int = 0,
    latency_s: float | None = None,
    threshold: float | None = None,
) -> dict[str, float]:
    """Every metric of ``problem_type``, in SageMaker's order.

    For classification ``y_true`` holds class indices and ``prediction`` the ``(n, K)``
    probability matrix (the predicted label is its arg-max, or for binary problems with a
    ``threshold``, the positive class when its probability reaches it); for regression both
    are values. ``InferenceLatency`` is included only when ``latency_s`` is given.
    """
    return _score(
        problem_type,
        y_true,
        prediction,
        None,
        sample_weight=sample_weight,
        positive_index=positive_index,
        n_classes=n_classes,
        latency_s=latency_s,
        threshold=threshold,
    )


def score_one(
    name: str,
    problem_type: ProblemType,
    y_true: np.ndarray,
    prediction: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    positive_index: int = 1,
    n_classes: int = 0,
    threshold: float | None = None,
) -> float:
    """The metric ``name`` (a job's own objective included) alone, as :func:`score_all`
    computes it; NaN where ``problem_type`` has no such metric scored from predictions."""
    scores = _score(
        problem_type,
        y_true,
        prediction,
        name,
        sample_weight=sample_weight,
        positive_index=positive_index,
        n_classes=n_classes,
        threshold=threshold,
    )
    return scores.get(name, float("nan"))


def _score(
    problem_type: ProblemType,
    y_true: np.ndarray,
    prediction: np.ndarray,
    only: str | None,
    *,
    sample_weight: np.ndarray | None = None,
    positive_index: int = 1,
    n_classes: int = 0,
    latency_s: float | None = None,
    threshold: float | None = None,
) -> dict[str, float]:
    """:func:`score_all`'s metrics, or with ``only`` that one alone."""
    problem_type = ProblemType(problem_type)
    y = np.asarray(y_true)
    pred = np.asarray(prediction)
    k = n_classes or (pred.shape[1] if pred.ndim == 2 else 0)
    custom = active_objective()
    if custom is not None and problem_type not in custom.problem_types:
        custom = None
    decided = None
    if threshold is not None and problem_type is ProblemType.BINARY:
        decided = decision_matrix(pred, threshold, positive_index)
    elif custom is not None and custom.costs is not None:
        # The model predicts the cost-minimising class: the label metrics score that decision.
        decided = np.eye(pred.shape[1])[bayes_decision(pred, custom.costs)]
    out: dict[str, float] = {}
    for metric in metrics_for(problem_type):
        if only is not None and metric.name != only:
            continue
        if metric.fn is None:
            if latency_s is not None:
                out[metric.name] = float(latency_s)
            continue
        used = decided if decided is not None and metric.name in _LABEL_METRICS else pred
        out[metric.name] = float(metric.fn(y, used, sample_weight, positive_index, k))
    if custom is not None and only in (None, custom.name):
        # A cost matrix decides from the probabilities itself; a user metric of labels sees the
        # model's decisions (a tuned threshold included), one of probabilities the matrix.
        wants_labels = custom.costs is None and not getattr(custom.spec, "probabilities", False)
        used = decided if decided is not None and wants_labels else pred
        out[custom.name] = float(custom.fn(y, used, sample_weight, positive_index, k))
    return out
