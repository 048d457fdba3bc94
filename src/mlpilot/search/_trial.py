"""Run one trial in a worker: fit the candidate on each evaluation fold, score it, save it.

Everything a trial needs arrives in its :class:`TrialTask`; what it produced goes back as a
:class:`TrialResult`. Exceptions become a Failed result here, so that a crashing library costs
one candidate, never the job.
"""

from __future__ import annotations

import os
import time
import traceback
import warnings
from typing import Any

import numpy as np

from mlpilot._crash import crash_point
from mlpilot.algorithms import FitContext, algorithm_tags, get_algorithm
from mlpilot.errors import storage_failure
from mlpilot.features import FeaturePipeline, PreprocessingOptions
from mlpilot.metrics import ObjectiveSpread, get_metric, objective_spread, score_all
from mlpilot.package import InferenceModel
from mlpilot.search._prepared import PreparedData, load_prepared
from mlpilot.search._tasks import TrialResult, TrialTask

__all__ = ["VALIDATION_PREDICTIONS", "load_validation_predictions", "run_trial"]

#: File in a candidate's model folder with its out-of-fold (or holdout) predictions: arrays
#: ``rows`` (row numbers in the prepared table), ``folds`` and ``predictions`` (class
#: probabilities ``(n, K)`` in label order, or regression values ``(n,)``).
VALIDATION_PREDICTIONS = "validation-predictions.npz"

#: Seconds kept back from a trial's limit for scoring and saving.
_SAVE_RESERVE = 0.5


def _threads() -> int:
    return int(os.environ.get("MLPILOT_WORKER_THREADS", "1"))


def _pruner_study(task: TrialTask) -> Any:
    """An in-memory study holding the finished trials the parent shared, for the pruner."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if task.maximize else "minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    )
    for prior in task.prior_trials:
        study.add_trial(
            create_trial(
                state=TrialState[prior.state],
                value=prior.value if prior.state == "COMPLETE" else None,
                intermediate_values=dict(prior.intermediate_values),
            )
        )
    return study, study.ask()


def _fit_member(
    task: TrialTask,
    data: PreparedData,
    train: np.ndarray,
    valid: np.ndarray | None,
    seed: int,
    time_limit: float | None,
    step: int = 0,
) -> tuple[Any, Any, Any, int | None]:
    """The member's pipeline, model, transformed validation rows, and the look at the clock
    that found its time spent (None: it ran its course)."""
    options = PreprocessingOptions(**task.preprocessing)
    pipeline = FeaturePipeline.from_profile(data.profile, options, seed=seed)
    y_train = data.y[train]
    X_train = pipeline.fit_transform_clean(data.clean.iloc[train], y_train)
    w = data.weight
    eval_set = None
    X_valid = None
    if valid is not None:
        X_valid = pipeline.transform_clean(data.clean.iloc[valid])
        eval_set = (X_valid, data.y[valid], w[valid] if w is not None else None)
    cls = get_algorithm(task.algorithm_path)
    model = cls(data.profile.problem_type, data.n_classes, task.params, seed=seed)
    context = FitContext(
        categorical_features=pipeline.categorical_features_,
        category_cardinalities=pipeline.category_cardinalities_,
        time_limit=time_limit,
        n_jobs=_threads(),
        stop_at=(task.stop_at or {}).get(step),
    )
    model.fit(
        X_train,
        y_train,
        sample_weight=w[train] if w is not None else None,
        eval_set=eval_set,
        context=context,
    )
    return pipeline, model, X_valid, context.cut_at


def predict_latency(model: InferenceModel, data: PreparedData, row: int, repeats: int = 5) -> float:
    """Median seconds to predict one raw row through the whole package."""
    one = data.raw.iloc[[row]]
    model.predict_raw(one)  # first call pays one-off costs
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict_raw(one)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def run_trial(task: TrialTask) -> TrialResult:
    crash_point("trial")
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _run(task, started)
    except Exception as exc:
        full = storage_failure(exc, task.model_dir)
        reason = str(full) if full else f"{type(exc).__name__}: {exc}".splitlines()[0][:900]
        return TrialResult(
            task.number,
            task.candidate_name,
            "Failed",
            failure_reason=reason,
            train_seconds=time.monotonic() - started,
            detail=traceback.format_exc()[-4000:],
        )


def _run(task: TrialTask, started: float) -> TrialResult:
    data = load_prepared(task.data_dir)
    profile = data.profile

    def time_left() -> float | None:
        limits = []
        if task.time_limit is not None:
            limits.append(task.time_limit - (time.monotonic() - started))
        if task.deadline_at is not None:
            limits.append(task.deadline_at - time.time())
        return max(0.1, min(limits) - _SAVE_RESERVE) if limits else None

    if task.refit:
        rows = np.arange(len(data.y))
        pipeline, model, _, _ = _fit_member(task, data, rows, None, task.seed, time_left())
        members = [(pipeline, model)]
        held_out = _NO_ROWS
        result = TrialResult(task.number, task.candidate_name, "Completed", n_train_rows=len(rows))
        result.refit_params = model.refit_params()
    elif task.out_of_bag and algorithm_tags(task.algorithm_path).out_of_bag:
        result, members, held_out = _evaluate_out_of_bag(task, data, time_left)
        if result.status != "Completed":
            return result
    else:
        result, members, held_out = _evaluate(task, data, time_left)
        if result.status != "Completed":
            return result
        if not task.keep_all_folds and not algorithm_tags(task.algorithm_path).early_stopping:
            # Forests and linear models are refit if they win, so their fold bag is never the
            # final model: keep one fold's model (a fifth of the disk) as the candidate's own.
            members = members[:1]
    result.train_seconds = time.monotonic() - started
    package = InferenceModel.build(
        members,
        profile,
        candidate={
            "CandidateName": task.candidate_name,
            "Algorithm": task.algorithm,
            "Hyperparameters": task.params,
            "Preprocessing": task.preprocessing,
            "Refit": task.refit,
            "Members": len(members),
            "OutOfBag": task.out_of_bag and not task.refit,
        },
    )
    row = int(np.flatnonzero(data.folds >= 0)[0]) if (data.folds >= 0).any() else 0
    result.latency_seconds = predict_latency(package, data, row)
    if not task.refit:
        result.metrics["InferenceLatency"] = result.latency_seconds
        if task.objective == "InferenceLatency":
            result.objective_value = result.latency_seconds
    if task.model_dir:
        started = time.perf_counter()
        package.save(task.model_dir, archive=task.refit if task.archive is None else task.archive)
        result.save_seconds = time.perf_counter() - started
        result.model_dir = task.model_dir
        if not task.refit:
            rows, folds, predictions = held_out
            np.savez(
                os.path.join(task.model_dir, VALIDATION_PREDICTIONS),
                rows=rows,
                folds=folds,
                predictions=predictions,
            )
    return result


def load_validation_predictions(model_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, folds, predictions)`` a trial saved in ``model_dir``."""
    with np.load(os.path.join(model_dir, VALIDATION_PREDICTIONS)) as saved:
        return saved["rows"], saved["folds"], saved["predictions"]


def _scored(
    task: TrialTask,
    metrics: dict[str, float],
    scored_on: str,
    *,
    intermediate_values: dict[int, float],
    refit_params: dict[str, Any],
    n_train_rows: int,
) -> TrialResult:
    """A Completed result with the task's objective taken from ``metrics``, or a Failed one
    where the objective came out undefined (NaN or missing) on what was scored (``scored_on``)."""
    objective = get_metric(task.objective)
    value = metrics.get(objective.name)
    result = TrialResult(
        task.number,
        task.candidate_name,
        "Completed",
        metrics=metrics,
        objective_value=None if value is None or np.isnan(value) else float(value),
        intermediate_values=intermediate_values,
        refit_params=refit_params,
        n_train_rows=n_train_rows,
    )
    if result.objective_value is None and objective.fn is not None:
        result.status = "Failed"
        result.failure_reason = f"{objective.name} is undefined on {scored_on}"
    return result


def _evaluate(
    task: TrialTask, data: PreparedData, time_left: Any
) -> tuple[TrialResult, list[Any], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    profile = data.profile
    problem = profile.problem_type
    objective = get_metric(task.objective)
    trial = None
    if task.prune and len(task.eval_folds) > 1:
        _, trial = _pruner_study(task)
    members = []
    truth, predictions, weights, rows = [], [], [], []
    intermediate: dict[int, float] = {}
    fold_scores = []
    time_cuts: dict[int, int] = {}
    for step, fold in enumerate(task.eval_folds):
        before = data.folds < fold if task.forward_folds else data.folds != fold
        train = np.flatnonzero((data.folds >= 0) & before)
        valid = np.flatnonzero(data.folds == fold)
        remaining = time_left()
        limit = None if remaining is None else remaining / (len(task.eval_folds) - step)
        pipeline, model, X_valid, cut = _fit_member(
            task, data, train, valid, task.seed + step, limit, step
        )
        members.append((pipeline, model))
        if cut is not None:
            time_cuts[step] = cut
        pred = model.predict_proba(X_valid) if problem.is_classification else model.predict(X_valid)
        w = data.weight[valid] if data.weight is not None else None
        truth.append(data.y[valid])
        rows.append(valid)
        predictions.append(pred)
        weights.append(w)
        if objective.fn is not None:
            score = score_all(
                problem,
                data.y[valid],
                pred,
                sample_weight=w,
                positive_index=profile.target.positive_index,
                n_classes=data.n_classes,
            )[objective.name]
            fold_scores.append(score)
            intermediate[step] = float(np.nanmean(fold_scores))
            if trial is not None:
                trial.report(intermediate[step], step)
                if trial.should_prune():
                    return (
                        TrialResult(
                            task.number,
                            task.candidate_name,
                            "Stopped",
                            failure_reason=(
                                f"pruned after fold {step + 1} of {len(task.eval_folds)}: "
                                f"{objective.name} {intermediate[step]:.4f} was worse than the "
                                "median of earlier candidates"
                            ),
                            intermediate_values=intermediate,
                            pruned=True,
                        ),
                        [],
                        _NO_ROWS,
                    )
    y_all = np.concatenate(truth)
    p_all = np.concatenate(predictions)
    w_all = None if data.weight is None else np.concatenate([w for w in weights if w is not None])
    metrics = score_all(
        problem,
        y_all,
        p_all,
        sample_weight=w_all,
        positive_index=profile.target.positive_index,
        n_classes=data.n_classes,
    )
    iterations = [m.iterations_ for _, m in members if m.iterations_]
    refit = dict(members[0][1].refit_params())
    cls = type(members[0][1])
    if cls.iteration_param and iterations:
        # Refit on all rows: the mean stopping point, a little longer for the extra data.
        n_eval = sum(len(t) for t in truth)
        share = 1.0 + n_eval / max(1, len(data.y) - n_eval) / max(1, len(task.eval_folds))
        refit[cls.iteration_param] = max(1, round(float(np.mean(iterations)) * min(share, 1.25)))
    result = _scored(
        task,
        metrics,
        "the validation data",
        intermediate_values=intermediate,
        refit_params=refit,
        n_train_rows=int(np.sum(data.folds >= 0)),
    )
    result.time_cuts = time_cuts
    row_all = np.concatenate(rows)
    result.spread = _spread(task, data, y_all, p_all, data.folds[row_all], w_all)
    return result, members, (row_all, data.folds[row_all].astype(np.int16), p_all)


def _spread(
    task: TrialTask,
    data: PreparedData,
    y: np.ndarray,
    prediction: np.ndarray,
    folds: np.ndarray,
    weight: np.ndarray | None,
) -> ObjectiveSpread | None:
    """The objective's spread over the task's folds, or over resamples of its one holdout."""
    objective = get_metric(task.objective)
    if objective.fn is None:
        return None
    return objective_spread(
        objective.name,
        data.profile.problem_type,
        y,
        prediction,
        folds=folds if len(task.eval_folds) > 1 else None,
        sample_weight=weight,
        positive_index=data.profile.target.positive_index,
        n_classes=data.n_classes,
        seed=task.seed,
    )


def _evaluate_out_of_bag(
    task: TrialTask, data: PreparedData, time_left: Any
) -> tuple[TrialResult, list[Any], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A forest fit once on every searched row, scored on its out-of-bag predictions."""
    profile = data.profile
    rows = np.flatnonzero(data.folds >= 0)
    options = PreprocessingOptions(**task.preprocessing)
    pipeline = FeaturePipeline.from_profile(profile, options, seed=task.seed)
    X = pipeline.fit_transform_clean(data.clean.iloc[rows], data.y[rows])
    w = data.weight[rows] if data.weight is not None else None
    cls = get_algorithm(task.algorithm_path)
    model = cls(profile.problem_type, data.n_classes, task.params, seed=task.seed)
    context = FitContext(
        categorical_features=pipeline.categorical_features_,
        category_cardinalities=pipeline.category_cardinalities_,
        time_limit=time_left(),
        n_jobs=_threads(),
        stop_at=(task.stop_at or {}).get(0),
    )
    oob = model.fit_oob(X, data.y[rows], sample_weight=w, context=context)
    metrics = score_all(
        profile.problem_type,
        data.y[rows],
        oob,
        sample_weight=w,
        positive_index=profile.target.positive_index,
        n_classes=data.n_classes,
    )
    result = _scored(
        task,
        metrics,
        "the out-of-bag predictions",
        intermediate_values={},
        refit_params=model.refit_params(),
        n_train_rows=len(rows),
    )
    if context.cut_at is not None:
        result.time_cuts = {0: context.cut_at}
    result.spread = _spread(task, data, data.y[rows], oob, data.folds[rows], w)
    return result, [(pipeline, model)], (rows, data.folds[rows].astype(np.int16), oob)


_NO_ROWS = (np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0))
