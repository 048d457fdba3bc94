"""CatBoost: ordered boosting on oblivious trees, with native categorical features."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from optuna.distributions import FloatDistribution, IntDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import FitContext, FitData, predict_threads
from mlpilot.algorithms._boosting import MAX_ROUNDS, Boosting, EarlyStopping, Objectives
from mlpilot.algorithms._shap import TreeShap, dense
from mlpilot.features import PreprocessingOptions


class CatBoost(Boosting):
    name = "catboost"
    description = "CatBoost gradient-boosted oblivious trees"
    preprocessing = PreprocessingOptions(categorical="ordinal", high_cardinality="ordinal")
    tags = replace(
        Boosting.tags,
        iteration_param="iterations",
        native_categorical=True,
        slow_on_many_rows=True,
        slow_on_many_classes=True,
    )
    objectives: ClassVar[Objectives] = {
        ProblemType.REGRESSION: {"loss_function": "RMSE"},
        ProblemType.BINARY: {"loss_function": "Logloss"},
        ProblemType.MULTICLASS: {"loss_function": "MultiClass"},
    }
    num_class_key = "classes_count"

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "iterations": MAX_ROUNDS,
            "learning_rate": 0.08,
            "depth": 6,
            "l2_leaf_reg": 3.0,
            "random_strength": 1.0,
            "one_hot_max_size": 4,
        }

    @classmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": FloatDistribution(0.02, 0.3, log=True),
            "depth": IntDistribution(4, 9),
            "l2_leaf_reg": FloatDistribution(1.0, 30.0, log=True),
            "random_strength": FloatDistribution(0.1, 10.0, log=True),
            "one_hot_max_size": IntDistribution(2, 16),
        }

    def _frame(self, X: Any) -> pd.DataFrame:
        frame = pd.DataFrame(np.asarray(X))
        for i in self.cat_features_:
            frame[i] = frame[i].astype(np.int64)
        return frame

    def _objects(self, X: Any) -> np.ndarray:
        dense = np.asarray(X)
        out = dense.astype(object)
        if self.cat_features_:
            out[:, self.cat_features_] = dense[:, self.cat_features_].astype(np.int64)
        return out

    def _boost(self, data: FitData, rounds: int, stopping: EarlyStopping | None) -> tuple[Any, int]:
        from catboost import CatBoostClassifier, CatBoostRegressor

        p = self.params
        self.cat_features_ = list(data.context.categorical_features)
        common: dict[str, Any] = {
            "iterations": rounds,
            "learning_rate": p["learning_rate"],
            "depth": int(p["depth"]),
            "l2_leaf_reg": p["l2_leaf_reg"],
            "random_strength": p["random_strength"],
            "one_hot_max_size": int(p["one_hot_max_size"]),
            "thread_count": data.context.n_jobs,
            "random_seed": self.seed,
            "allow_writing_files": False,
            "logging_level": "Silent",
        }
        regression = self.problem_type is ProblemType.REGRESSION
        kind = CatBoostRegressor if regression else CatBoostClassifier
        model = kind(**self._objective(), **common)
        train = self._pool(data.X, data.y, data.sample_weight)
        fit_args: dict[str, Any] = {"callbacks": [_Deadline(data.context)]}
        if stopping is not None:
            fit_args["eval_set"] = self._pool(stopping.X, stopping.y, stopping.sample_weight)
            fit_args["early_stopping_rounds"] = stopping.patience
            fit_args["use_best_model"] = True
            if stopping.min_delta > 0:
                fit_args["callbacks"].append(_Plateau(stopping.patience, stopping.min_delta))
        model.fit(train, **fit_args)
        return model, int(model.tree_count_)

    def _pool(self, X: Any, y: np.ndarray, weight: np.ndarray | None) -> Any:
        from catboost import Pool

        return Pool(self._frame(X), y, weight=weight, cat_features=self.cat_features_)

    def _predict_raw(self, X: Any) -> np.ndarray:
        if X.shape[0] <= 64:
            return self._predict_few(X)
        frame: Any = self._frame(X)
        threads = predict_threads(X.shape[0])
        if self.problem_type is ProblemType.REGRESSION:
            return np.asarray(self.model_.predict(frame, thread_count=threads))
        proba = np.asarray(self.model_.predict_proba(frame, thread_count=threads))
        return proba

    def _predict_few(self, X: Any) -> np.ndarray:
        """A few rows, as ``predict``/``predict_proba`` give them, one thread: the object array
        (ints for categories; a DataFrame costs several times one row's prediction) goes into
        the Pool that CatBoost's ``predict`` would build, and the Pool to the model's own
        ``_base_predict``. ``predict`` re-reads the model's parameters (a JSON round trip) and
        feature lists on every call: about a quarter of a single row's time. A CatBoost without
        these methods takes the public ``predict``."""
        from catboost import Pool

        setup = self.__dict__.get("_few_rows_setup")
        if setup is None:  # per loaded model (not pickled, see __getstate__)
            model = self.model_
            regression = self.problem_type is ProblemType.REGRESSION
            try:
                setup = (
                    model._get_default_prediction_type() if regression else "Probability",
                    {
                        "cat_features": model._get_cat_feature_indices(),
                        "text_features": model._get_text_feature_indices(),
                        "embedding_features": model._get_embedding_feature_indices(),
                    },
                )
                model._base_predict  # noqa: B018 (present in the CatBoost installed)
            except AttributeError:
                setup = ()
            self._few_rows_setup = setup
        if not setup:
            objects = self._objects(X)
            if self.problem_type is ProblemType.REGRESSION:
                return np.asarray(self.model_.predict(objects, thread_count=1))
            return np.asarray(self.model_.predict_proba(objects, thread_count=1))
        prediction_type, features = setup
        pool = Pool(data=self._objects(X), thread_count=1, **features)
        return np.asarray(self.model_._base_predict(pool, prediction_type, 0, 0, 1, False, "CPU"))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_few_rows_setup"}

    def tree_shap(self) -> TreeShap:
        # CatBoost's own ShapValues (what shap.TreeExplainer calls too). Without precomputing
        # the trees' path data per call, a few rows take well under a millisecond instead of
        # ~10 ms; the values are the same.
        from catboost import Pool

        model = self.model_

        def catboost(X: Any) -> tuple[np.ndarray, np.ndarray]:
            rows = dense(X)
            data = self._frame(rows) if rows.shape[0] > 64 else self._objects(rows)
            raw = np.asarray(
                model.get_feature_importance(
                    data=Pool(data, cat_features=self.cat_features_),
                    type="ShapValues",
                    shap_mode="NoPreCalc" if rows.shape[0] <= 64 else "Auto",
                    thread_count=predict_threads(rows.shape[0]),
                ),
                dtype=float,
            )
            if raw.ndim == 2:  # one output: (n, columns + 1), the bias last
                raw = raw[:, None, :]
            return np.moveaxis(raw[:, :, :-1], 1, -1), raw[0, :, -1]

        return catboost


class _Plateau:
    """CatBoost callback: stop once the validation loss has not improved by ``delta`` for
    ``rounds`` iterations (CatBoost's own detector counts any improvement, however small)."""

    def __init__(self, rounds: int, delta: float) -> None:
        self.rounds, self.delta = rounds, delta
        self.best, self.best_at = float("inf"), 0

    def after_iteration(self, info: Any) -> bool:
        validation = next(
            (v for k, v in info.metrics.items() if k.startswith("validation") and v), None
        )
        if not validation:
            return True
        current = next(iter(validation.values()))[-1]
        if current < self.best - self.delta:
            self.best, self.best_at = current, info.iteration
        return bool(info.iteration - self.best_at < self.rounds)


class _Deadline:
    """CatBoost callback: stop when the candidate's time is up, keeping the trees so far."""

    def __init__(self, context: FitContext) -> None:
        self.context = context

    def after_iteration(self, info: Any) -> bool:
        return not self.context.out_of_time()
