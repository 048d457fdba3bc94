"""Linear learner: regularised logistic regression (classification) or ridge (regression)."""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution
from scipy import sparse, special

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import Algorithm, FitData
from mlpilot.algorithms._tags import AlgorithmTags, Family, StackerRole
from mlpilot.features import PreprocessingOptions


class LinearLearner(Algorithm):
    name = "linear-learner"
    description = "Linear model (logistic regression / ridge, scikit-learn)"
    preprocessing = PreprocessingOptions(
        categorical="onehot",
        high_cardinality="target",
        impute=True,
        numeric_scaling="standard",
        text_svd=0,
    )
    tags = AlgorithmTags(family=Family.LINEAR, stacker=StackerRole.LINEAR, short_name="linear")

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        if problem_type.is_classification:
            return {"C": 1.0, "class_weight": "none"}
        return {"alpha": 1.0}

    @classmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        if problem_type.is_classification:
            return {
                "C": FloatDistribution(1e-3, 100.0, log=True),
                "class_weight": CategoricalDistribution(["none", "balanced"]),
            }
        return {"alpha": FloatDistribution(1e-3, 1e3, log=True)}

    def _fit(self, data: FitData) -> None:
        from sklearn.linear_model import LogisticRegression, Ridge

        p = self.params
        y = data.y
        if self.problem_type.is_classification:
            weight = None if p["class_weight"] == "none" else p["class_weight"]
            model: Any = LogisticRegression(
                C=p["C"], class_weight=weight, max_iter=500, tol=1e-4, random_state=self.seed
            )
        else:
            model = Ridge(alpha=p["alpha"], random_state=self.seed)
            # Ridge fits the target's scale: centre and scale it so alpha means the same everywhere.
            y = self._scale_target(y)
        model.fit(data.X, y, sample_weight=data.sample_weight)
        self.model_ = model

    def _predict_raw(self, X: Any) -> np.ndarray:
        if X.shape[0] <= 64 and not sparse.issparse(X):
            # A few rows: the model's arithmetic without scikit-learn's per-call input checks.
            z = np.asarray(X, dtype=np.float64) @ self.model_.coef_.T + self.model_.intercept_
            if not self.problem_type.is_classification:
                return self._unscaled(np.asarray(z).ravel())
            if z.shape[1] == 1:
                p = special.expit(z[:, 0])
                return np.column_stack([1.0 - p, p])
            return np.asarray(special.softmax(z, axis=1))
        if self.problem_type.is_classification:
            return np.asarray(self.model_.predict_proba(X))
        return self._unscaled(np.asarray(self.model_.predict(X)))
