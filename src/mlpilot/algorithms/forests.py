"""Random forest and extra trees (scikit-learn), grown in chunks so a time limit can stop them."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from optuna.distributions import CategoricalDistribution, IntDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import Algorithm, EvalSet, FitContext
from mlpilot.features import PreprocessingOptions

#: Trees added between two looks at the clock.
_CHUNK = 25
#: Rows each tree sees at most: beyond this, more rows add memory and time, little accuracy.
_MAX_SAMPLES = 200_000


class _Forest(Algorithm):
    preprocessing = PreprocessingOptions(
        categorical="ordinal", high_cardinality="target", impute=True
    )
    extra: ClassVar[bool] = False

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "n_estimators": 300,
            "max_features": "sqrt" if problem_type.is_classification else 1.0,
            "min_samples_leaf": 1,
            "criterion": "gini" if problem_type.is_classification else "squared_error",
        }

    @classmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        criteria = ["gini", "entropy"] if problem_type.is_classification else ["squared_error"]
        return {
            "max_features": CategoricalDistribution(["sqrt", "log2", 0.5, 0.75, 1.0]),
            "min_samples_leaf": IntDistribution(1, 20, log=True),
            "criterion": CategoricalDistribution(criteria),
            "n_estimators": IntDistribution(100, 500, step=50),
        }

    def _estimator(self, n_jobs: int) -> Any:
        from sklearn import ensemble

        kind = "ExtraTrees" if self.extra else "RandomForest"
        suffix = "Classifier" if self.problem_type.is_classification else "Regressor"
        cls = getattr(ensemble, kind + suffix)
        p = self.params
        return cls(
            n_estimators=0,
            max_features=p["max_features"],
            min_samples_leaf=int(p["min_samples_leaf"]),
            criterion=p["criterion"],
            warm_start=True,
            n_jobs=n_jobs,
            random_state=self.seed,
        )

    def _fit(
        self,
        X: Any,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        eval_set: EvalSet | None,
        context: FitContext,
    ) -> None:
        model = self._estimator(context.n_jobs)
        if X.shape[0] > _MAX_SAMPLES and not self.extra:
            model.set_params(max_samples=_MAX_SAMPLES)
        target = int(self.params["n_estimators"])
        grown = 0
        while grown < target:
            grown = min(target, grown + _CHUNK)
            model.set_params(n_estimators=grown)
            model.fit(X, y, sample_weight=sample_weight)
            if context.out_of_time():
                break
        model.set_params(n_jobs=1)
        self.model_ = model

    def _predict_raw(self, X: Any) -> np.ndarray:
        if self.problem_type.is_classification:
            return np.asarray(self.model_.predict_proba(X))
        return np.asarray(self.model_.predict(X))


class RandomForest(_Forest):
    name = "randomforest"
    description = "Random forest (scikit-learn)"


class ExtraTrees(_Forest):
    name = "extra-trees"
    description = "Extremely randomized trees (scikit-learn)"
    extra = True
