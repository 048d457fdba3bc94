"""XGBoost: gradient-boosted trees with the histogram method."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from optuna.distributions import FloatDistribution, IntDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import FitContext, FitData, predict_threads
from mlpilot.algorithms._boosting import MAX_ROUNDS, Boosting, EarlyStopping, Objectives
from mlpilot.algorithms._shap import TreeShap, dense, split_bias


class XGBoost(Boosting):
    name = "xgboost"
    description = "XGBoost gradient-boosted trees"
    tags = replace(Boosting.tags, iteration_param="n_estimators", slow_on_many_classes=True)
    objectives: ClassVar[Objectives] = {
        ProblemType.REGRESSION: {"objective": "reg:squarederror", "eval_metric": "rmse"},
        ProblemType.BINARY: {"objective": "binary:logistic", "eval_metric": "logloss"},
        ProblemType.MULTICLASS: {"objective": "multi:softprob", "eval_metric": "mlogloss"},
    }

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "n_estimators": MAX_ROUNDS,
            "learning_rate": 0.1,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "reg_lambda": 1.0,
            "reg_alpha": 1e-8,
        }

    @classmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": FloatDistribution(0.01, 0.3, log=True),
            "max_depth": IntDistribution(3, 10),
            "min_child_weight": FloatDistribution(0.5, 20.0, log=True),
            "subsample": FloatDistribution(0.5, 1.0),
            "colsample_bytree": FloatDistribution(0.4, 1.0),
            "reg_lambda": FloatDistribution(1e-3, 10.0, log=True),
            "reg_alpha": FloatDistribution(1e-8, 1.0, log=True),
        }

    def _boost(self, data: FitData, rounds: int, stopping: EarlyStopping | None) -> tuple[Any, int]:
        import xgboost as xgb

        p = self.params
        threads = data.context.n_jobs
        params = {
            **self._objective(),
            "tree_method": "hist",
            "eta": p["learning_rate"],
            "max_depth": int(p["max_depth"]),
            "min_child_weight": p["min_child_weight"],
            "subsample": p["subsample"],
            "colsample_bytree": p["colsample_bytree"],
            "lambda": p["reg_lambda"],
            "alpha": p["reg_alpha"],
            "nthread": threads,
            "seed": self.seed,
            "verbosity": 0,
        }
        train = xgb.DMatrix(data.X, label=data.y, weight=data.sample_weight, nthread=threads)
        evals = []
        callbacks: list[Any] = []
        if stopping is not None:
            validation = xgb.DMatrix(stopping.X, label=stopping.y, weight=stopping.sample_weight)
            evals.append((validation, "validation"))
            callbacks.append(
                xgb.callback.EarlyStopping(
                    rounds=stopping.patience, save_best=True, min_delta=stopping.min_delta
                )
            )
        # After early stopping: XGBoost asks the callbacks in order and stops at the first that
        # says stop, so a deadline first could end the first round before early stopping had
        # recorded it (and its save_best then raised for want of a best round).
        callbacks.append(_deadline(data.context))
        model = xgb.train(
            params,
            train,
            num_boost_round=rounds,
            evals=evals,
            callbacks=callbacks,
            verbose_eval=False,
        )
        model.set_param({"nthread": 1})
        return model, int(model.num_boosted_rounds())

    def _predict_raw(self, X: Any) -> np.ndarray:
        import xgboost as xgb

        if X.shape[0] <= 64 and isinstance(X, np.ndarray):
            out = self.model_.inplace_predict(X)  # no DMatrix for a few rows
        else:
            threads = predict_threads(X.shape[0])
            if threads > 1:
                self.model_.set_param({"nthread": threads})
            try:
                out = self.model_.predict(xgb.DMatrix(X, nthread=threads))
            finally:
                if threads > 1:
                    self.model_.set_param({"nthread": 1})
        return self._both_classes(out)

    def tree_shap(self) -> TreeShap:
        # XGBoost's own TreeSHAP (pred_contribs), as LightGBM's.
        import xgboost as xgb

        def xgboost(X: Any) -> tuple[np.ndarray, np.ndarray]:
            raw = np.asarray(self.model_.predict(xgb.DMatrix(dense(X)), pred_contribs=True))
            if raw.ndim == 3:  # multiclass: (n, classes, columns + 1)
                raw = raw.reshape(raw.shape[0], -1)
            return split_bias(raw, X.shape[1])

        return xgboost


def _deadline(context: FitContext) -> Any:
    """A callback that stops boosting when the candidate's time is up; the rounds so far are
    kept. Its class is made here so that importing this module does not import XGBoost."""
    import xgboost as xgb

    class Deadline(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            return context.out_of_time()

    return Deadline()
