"""LightGBM: histogram gradient boosting with native categorical splits."""

from __future__ import annotations

import ctypes
import threading
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from optuna.distributions import FloatDistribution, IntDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import FitContext, FitData, predict_threads
from mlpilot.algorithms._boosting import MAX_ROUNDS, Boosting, EarlyStopping, Objectives
from mlpilot.algorithms._shap import TreeShap, dense, split_bias

#: LightGBM's C API constants (c_api.h): a normal (transformed) prediction, double input.
_PREDICT_NORMAL = 0
_FLOAT64 = 1


class LightGBM(Boosting):
    name = "lightgbm"
    description = "LightGBM gradient-boosted trees"
    tags = replace(Boosting.tags, iteration_param="n_estimators", native_categorical=True)
    objectives: ClassVar[Objectives] = {
        ProblemType.REGRESSION: {"objective": "regression"},
        ProblemType.BINARY: {"objective": "binary"},
        ProblemType.MULTICLASS: {"objective": "multiclass"},
    }

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "n_estimators": MAX_ROUNDS,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "colsample_bytree": 0.9,
            "subsample": 1.0,
            "reg_alpha": 1e-8,
            # Some L2 keeps leaf values finite where hessians vanish (multiclass with rare
            # classes otherwise drives probabilities to 1e-60 and the log loss up).
            "reg_lambda": 1.0,
            "cat_smooth": 10.0,
            # Randomised split thresholds (LightGBM's "extra trees"): a diverse ensemble member.
            "extra_trees": False,
        }

    @classmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": FloatDistribution(0.01, 0.3, log=True),
            "num_leaves": IntDistribution(8, 256, log=True),
            "min_child_samples": IntDistribution(3, 100, log=True),
            "colsample_bytree": FloatDistribution(0.4, 1.0),
            "subsample": FloatDistribution(0.5, 1.0),
            "reg_alpha": FloatDistribution(1e-8, 10.0, log=True),
            "reg_lambda": FloatDistribution(1e-3, 10.0, log=True),
            "cat_smooth": FloatDistribution(1.0, 100.0, log=True),
        }

    @classmethod
    def stacker_params(
        cls, problem_type: ProblemType, n_rows: int, max_rounds: int
    ) -> dict[str, Any]:
        params = cls.default_params(problem_type, n_rows)
        # Few, strong inputs: shallower trees and a slower rate overfit them less, and a stacker
        # needs few rounds to blend (its cap keeps it quick to predict).
        params.update(
            {
                "learning_rate": 0.03,
                "num_leaves": 15,
                "min_child_samples": 30,
                "n_estimators": max_rounds,
            }
        )
        return params

    def _boost(self, data: FitData, rounds: int, stopping: EarlyStopping | None) -> tuple[Any, int]:
        import lightgbm as lgb

        p = self.params
        # The validation set takes the same dataset parameters (else LightGBM warns that the
        # reference's override its own).
        dataset_params = {"verbose": -1, "max_bin": 255}
        train = lgb.Dataset(
            data.X,
            data.y,
            weight=data.sample_weight,
            categorical_feature=data.context.categorical_features or "auto",
            free_raw_data=False,
            params=dataset_params,
        )
        params = {
            **self._objective(),
            "learning_rate": p["learning_rate"],
            "num_leaves": int(p["num_leaves"]),
            "min_child_samples": int(p["min_child_samples"]),
            "feature_fraction": p["colsample_bytree"],
            "bagging_fraction": p["subsample"],
            "bagging_freq": 1 if p["subsample"] < 1.0 else 0,
            "lambda_l1": p["reg_alpha"],
            "lambda_l2": p["reg_lambda"],
            "cat_smooth": p["cat_smooth"],
            "extra_trees": bool(p.get("extra_trees", False)),
            "num_threads": data.context.n_jobs,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        callbacks: list[Any] = [self._deadline_callback(data.context)]
        valid_sets = []
        if stopping is not None:
            valid_sets.append(
                lgb.Dataset(
                    stopping.X,
                    stopping.y,
                    weight=stopping.sample_weight,
                    reference=train,
                    params=dataset_params,
                )
            )
            callbacks.append(
                lgb.early_stopping(stopping.patience, verbose=False, min_delta=stopping.min_delta)
            )
        model = lgb.train(
            params, train, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks
        )
        if stopping is not None and model.best_iteration > 0:
            return model, int(model.best_iteration)
        return model, int(model.current_iteration())

    @staticmethod
    def _deadline_callback(context: FitContext) -> Any:
        import lightgbm as lgb

        # The best validation round so far (first metric of the first validation set, as
        # early stopping judges it), so that a deadline keeps the best model like XGBoost's
        # and CatBoost's do, rather than the last, possibly overfitted, round.
        best_iteration, best_score = -1, 0.0
        best_results: list[Any] = []

        def stop_at_deadline(env: Any) -> None:
            nonlocal best_iteration, best_score, best_results
            results = env.evaluation_result_list or []
            if results:
                score, higher_is_better = results[0][2], results[0][3]
                improved = score > best_score if higher_is_better else score < best_score
                if best_iteration < 0 or improved:
                    best_iteration, best_score, best_results = env.iteration, score, results
            if context.out_of_time():
                if best_iteration >= 0:
                    raise lgb.callback.EarlyStopException(best_iteration, best_results)
                raise lgb.callback.EarlyStopException(env.iteration, results)

        stop_at_deadline.order = 40  # type: ignore[attr-defined]
        return stop_at_deadline

    def _predict_raw(self, X: Any) -> np.ndarray:
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[0] == 1:
            return self._both_classes(self._single_row().predict(X[0]))
        iteration = self.model_.best_iteration or None
        threads = predict_threads(X.shape[0])
        out = self.model_.predict(X, num_iteration=iteration, num_threads=threads)
        return self._both_classes(out)

    def _single_row(self) -> SingleRowPredictor:
        # Made on first use, so packages saved before it existed get it too (not pickled).
        single = self.__dict__.get("_single_row_predictor")
        if single is None or single.booster is not self.model_:  # made anew after a new fit
            single = self._single_row_predictor = SingleRowPredictor(self.model_)
        return single

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_single_row_predictor"}

    def tree_shap(self) -> TreeShap:
        # LightGBM's own TreeSHAP (pred_contrib): what shap.TreeExplainer returns too, without
        # first reading every tree into Python (half a second per boosted model).
        booster = self.model_

        def lightgbm(X: Any) -> tuple[np.ndarray, np.ndarray]:
            best = booster.best_iteration or None
            threads = predict_threads(X.shape[0])  # a few rows: threads cost more than they save
            raw = np.asarray(
                booster.predict(
                    dense(X), pred_contrib=True, num_iteration=best, num_threads=threads
                )
            )
            return split_bias(raw, X.shape[1])

        return lightgbm


class SingleRowPredictor:
    """LightGBM's single-row fast path (``LGBM_BoosterPredictForMatSingleRowFast``) on a
    booster: the prediction parameters are parsed and the predictor set up once, where
    ``Booster.predict`` does both (and pandas/NumPy checks) on every call. The values are
    ``Booster.predict(row, num_iteration=best or all, num_threads=1)``'s: the same C++ predictor
    on the same row, which LightGBM reads as doubles either way."""

    def __init__(self, booster: Any) -> None:
        from lightgbm.basic import _LIB, _safe_call

        self._lib, self._check = _LIB, _safe_call
        self.n_features = int(booster.num_feature())
        self.n_outputs = int(booster.num_model_per_iteration())
        self.booster = booster  # the handle belongs to it: keep it alive
        self._handle = ctypes.c_void_p()
        # ctypes lets go of the GIL during the call: one row at a time through the handle,
        # whichever thread serves it.
        self._lock = threading.Lock()
        self._check(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(booster.best_iteration or -1),  # -1: every iteration
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self.n_features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._handle),
            )
        )

    def predict(self, row: np.ndarray) -> np.ndarray:
        """The model's output for one row of ``n_features`` values: ``(1, n_outputs)`` for
        multiclass, ``(1,)`` otherwise (as ``Booster.predict`` on a one-row matrix)."""
        values = np.ascontiguousarray(row, dtype=np.float64)
        if values.shape != (self.n_features,):
            raise ValueError(
                f"LightGBM model expects {self.n_features} features, got {values.shape[-1]}"
            )
        out = np.empty(self.n_outputs, dtype=np.float64)
        length = ctypes.c_int64()
        with self._lock:
            self._check(
                self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    self._handle,
                    ctypes.c_void_p(values.ctypes.data),
                    ctypes.byref(length),
                    ctypes.c_void_p(out.ctypes.data),
                )
            )
        return out.reshape(1, -1) if self.n_outputs > 1 else out

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None and self._handle.value:
            self._check(self._lib.LGBM_FastConfigFree(self._handle))
