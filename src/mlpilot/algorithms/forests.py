"""Random forest and extra trees (scikit-learn), grown in chunks so a time limit can stop them."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from optuna.distributions import CategoricalDistribution, IntDistribution
from scipy import sparse

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import Algorithm, FitData, predict_threads
from mlpilot.algorithms._forest_walk import FlatForest
from mlpilot.algorithms._shap import TreeShap, dense, shap_tree_explainer
from mlpilot.algorithms._tags import AlgorithmTags, Family, ShapMethod
from mlpilot.features import PreprocessingOptions

#: Trees added between two looks at the clock.
_CHUNK = 25
#: Rows each tree sees at most: beyond this, more rows add memory and time, little accuracy.
_MAX_SAMPLES = 200_000


class _Forest(Algorithm):
    preprocessing = PreprocessingOptions(
        categorical="ordinal", high_cardinality="target", impute=True
    )
    tags = AlgorithmTags(
        family=Family.FOREST,
        tree=True,
        shap=ShapMethod.TREE,
        slow_on_many_rows=True,
        out_of_bag=True,
        baseline_tree_shap=True,
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
            # Scored out of bag, extra trees draw bootstrap samples too.
            bootstrap=True if self._fitting_oob else not self.extra,
            n_jobs=n_jobs,
            random_state=self.seed,
        )

    def _fit(self, data: FitData) -> None:
        X, y, sample_weight, context = data.X, data.y, data.sample_weight, data.context
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
        self.oob_prediction_ = None
        if self._fitting_oob:
            # Same trees: a warm-started fit with oob_score on only scores them out of bag.
            model.set_params(oob_score=True)
            model.fit(X, y, sample_weight=sample_weight)
            oob = (
                model.oob_decision_function_
                if self.problem_type.is_classification
                else model.oob_prediction_
            )
            oob = np.asarray(oob, dtype=np.float64)
            never_out = ~np.isfinite(oob).reshape(len(oob), -1).all(axis=1)
            if never_out.any():
                oob[never_out] = self._forest_predict(model, X[never_out])
            if self.problem_type.is_classification and oob.shape[1] < self.n_classes:
                full = np.zeros((len(oob), self.n_classes))
                full[:, model.classes_.astype(int)] = oob
                oob = full
            self.oob_prediction_ = oob
            model.set_params(oob_score=False)
            for name in ("oob_decision_function_", "oob_prediction_", "oob_score_"):
                if hasattr(model, name):
                    delattr(model, name)
        model.set_params(n_jobs=1)
        self.model_ = model

    def _forest_predict(self, model: Any, X: Any) -> np.ndarray:
        if self.problem_type.is_classification:
            return np.asarray(model.predict_proba(X))
        return np.asarray(model.predict(X))

    def _predict_raw(self, X: Any) -> np.ndarray:
        threads = predict_threads(X.shape[0])
        if threads == 1 and not sparse.issparse(X):
            # One thread anyway: the same sums, bit for bit, without scikit-learn's per-tree
            # Python overhead (one row of 350 trees on a busy machine: ~4 ms → ~0.4 ms).
            return self._flat_forest().predict(X)
        if threads == 1:
            return self._forest_predict(self.model_, X)
        # A shallow copy shares the trees; only its n_jobs differs (the stored model keeps 1).
        model = copy.copy(self.model_)
        model.set_params(n_jobs=threads)
        return self._forest_predict(model, X)

    def _flat_forest(self) -> FlatForest:
        """The trees as one set of arrays, made on first use (not pickled)."""
        flat: FlatForest | None = self.__dict__.get("_flat")
        if flat is None:
            classes = self.model_.n_classes_ if self.problem_type.is_classification else None
            flat = self.__dict__["_flat"] = FlatForest(self.model_, classes)
        return flat

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_flat", None)
        return state

    def baseline_tree_shap(
        self, background: np.ndarray, groups: np.ndarray, n_players: int
    ) -> TreeShap:
        flat = self._flat_forest()
        explain = flat.interventional_shap(dense(background), groups, n_players)
        seen = self.classes_seen_
        if seen is None or len(seen) == self.n_classes:
            return lambda X: explain(dense(X))

        def every_class(X: Any) -> tuple[np.ndarray, np.ndarray]:
            # Trained without some classes: those get 0, as in predict_proba.
            values, base = explain(dense(X))
            full = np.zeros((*values.shape[:2], self.n_classes))
            full[:, :, seen] = values
            full_base = np.zeros(self.n_classes)
            full_base[seen] = base
            return full, full_base

        return every_class

    def tree_shap(self) -> TreeShap:
        return shap_tree_explainer(self.model_, check_additivity=False)


class RandomForest(_Forest):
    name = "randomforest"
    description = "Random forest (scikit-learn)"
    tags = replace(_Forest.tags, short_name="rf")


class ExtraTrees(_Forest):
    name = "extra-trees"
    description = "Extremely randomized trees (scikit-learn)"
    # Random thresholds instead of searched ones: cheap enough on large tables.
    tags = replace(_Forest.tags, slow_on_many_rows=False, short_name="extratrees")
    extra = True
