"""The interface every algorithm implements.

An algorithm is a small class: its hyperparameter defaults and search space as data (Optuna
distributions), the preprocessing it wants, and ``fit``/``predict`` on the numeric matrix the
feature pipeline produces. The base class owns the shared bookkeeping: time limits, class
bookkeeping, and turning early-stopped iteration counts into refit parameters.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from optuna.distributions import BaseDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms._tags import AlgorithmTags
from mlpilot.features import PreprocessingOptions

__all__ = ["Algorithm", "EvalSet", "FitContext", "FitData"]

EvalSet = tuple[Any, np.ndarray, np.ndarray | None]  # (X_val, y_val, w_val)


#: Rows from which a prediction uses every core: below it one thread answers faster (thread
#: start-up dominates), which is what single-row latency needs.
BATCH_ROWS = 2000


def predict_threads(n_rows: int) -> int:
    """Threads for predicting ``n_rows`` rows at once."""
    return 1 if n_rows < BATCH_ROWS else max(1, os.cpu_count() or 1)


class FitContext:
    """What an algorithm may know besides the data: matrix layout, threads, the time limit."""

    def __init__(
        self,
        *,
        categorical_features: list[int] | None = None,
        category_cardinalities: list[int] | None = None,
        time_limit: float | None = None,
        n_jobs: int = 1,
        stop_at: int | None = None,
    ) -> None:
        self.categorical_features = list(categorical_features or [])
        self.category_cardinalities = list(category_cardinalities or [])
        self.n_jobs = max(1, int(n_jobs))
        self.started = time.monotonic()
        # 0 s is a (spent) budget, not "no limit": only None means unlimited.
        self.deadline = None if time_limit is None else self.started + time_limit
        #: A replay: the look at the clock (counted from 0) from which the time is spent,
        #: whatever the clock says (a fit the job's time limit cut short, replayed exactly).
        self.stop_at = stop_at
        self.looks = 0
        #: The first look that found the time spent (None: the fit ran its course).
        self.cut_at: int | None = None

    def time_left(self) -> float:
        if self.deadline is None or self.stop_at is not None:
            return float("inf")  # a replay stops at its look, not by the clock
        return self.deadline - time.monotonic()

    def out_of_time(self, reserve: float = 0.0) -> bool:
        """Whether the time is spent. Algorithms look through this at points of their training
        that do not depend on the clock (a round, a chunk of trees, an epoch), so that the looks
        are numbered alike in a replay; a network's look between the batches of a long epoch
        (``time_left``) is not counted, and such a cut replays its last epoch whole."""
        look = self.looks
        self.looks += 1
        spent = look >= self.stop_at if self.stop_at is not None else self.time_left() <= reserve
        if spent and self.cut_at is None:
            self.cut_at = look
        return spent


# eq=False: fields hold arrays, which do not compare to one bool.
@dataclass(frozen=True, eq=False)
class FitData:
    """One fit's inputs, as :meth:`Algorithm._fit` receives them: the training rows, their
    target and weights, the validation rows iterative models stop early on, and the context."""

    X: Any
    y: np.ndarray
    sample_weight: np.ndarray | None
    eval_set: EvalSet | None
    context: FitContext


class Algorithm(ABC):
    """Base class of mlpilot's algorithms.

    Subclasses set the class attributes (``tags`` among them), implement
    :meth:`default_params`, :meth:`search_space`, :meth:`_fit` and :meth:`_predict_raw`, and set
    ``iterations_`` when training stopped early so that :meth:`refit_params` can fix the
    iteration count.

    Parameters
    ----------
    problem_type:
        Binary, multiclass or regression.
    n_classes:
        Number of classes (classification); labels arrive as indices ``0..n_classes-1``.
    params:
        Hyperparameters; missing ones take :meth:`default_params`.
    seed:
        Random seed.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    problem_types: ClassVar[frozenset[ProblemType]] = frozenset(ProblemType)
    preprocessing: ClassVar[PreprocessingOptions] = PreprocessingOptions()
    tags: ClassVar[AlgorithmTags] = AlgorithmTags()
    #: Hyperparameter holding the number of boosting rounds / epochs, if any: the tags' own,
    #: mirrored here (a subclass that sets it alone updates its tags instead).
    iteration_param: ClassVar[str | None] = None

    #: Out-of-bag predictions on the training rows, left by :meth:`fit_oob`.
    oob_prediction_: np.ndarray | None = None
    #: True while :meth:`fit_oob` fits: an ``out_of_bag`` algorithm's ``_fit`` then fills
    #: ``oob_prediction_``.
    _fitting_oob: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "tags" in own:
            if "iteration_param" in own and cls.iteration_param != cls.tags.iteration_param:
                raise TypeError(f"{cls.__name__}: iteration_param disagrees with its tags")
            cls.iteration_param = cls.tags.iteration_param
        elif "iteration_param" in own:
            cls.tags = replace(cls.tags, iteration_param=cls.iteration_param)

    def __init__(
        self,
        problem_type: ProblemType | str,
        n_classes: int = 0,
        params: dict[str, Any] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.problem_type = ProblemType(problem_type)
        self.n_classes = n_classes
        self.params = {**self.default_params(self.problem_type, 0), **(params or {})}
        self.seed = seed
        self.iterations_: int | None = None

    # -- declared data -------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        """Strong defaults: the first configuration tried."""

    @classmethod
    @abstractmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, BaseDistribution]:
        """Optuna distributions for the tuned hyperparameters."""

    # -- training ------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        eval_set: EvalSet | None = None,
        context: FitContext | None = None,
    ) -> Algorithm:
        """Train. With ``eval_set``, iterative models stop early on it."""
        data = FitData(X, y, sample_weight, eval_set, context or FitContext())
        self.classes_seen_ = np.unique(y) if self.problem_type.is_classification else None
        started = time.monotonic()
        self._fit(data)
        self.fit_seconds_ = time.monotonic() - started
        return self

    @abstractmethod
    def _fit(self, data: FitData) -> None:
        """Train on ``data``; :meth:`fit` has recorded the classes seen and times the call."""

    @abstractmethod
    def _predict_raw(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, K or seen classes)`` or regression values ``(n,)``."""

    def fit_oob(
        self,
        X: Any,
        y: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        context: FitContext | None = None,
    ) -> np.ndarray:
        """Fit on every row and return out-of-bag predictions for them (algorithms tagged
        ``out_of_bag``): the model's own cross-validation, one fit instead of one per fold."""
        if not self.tags.out_of_bag:
            raise NotImplementedError(f"{type(self).__name__} gives no out-of-bag predictions")
        self._fitting_oob = True
        try:
            self.fit(X, y, sample_weight=sample_weight, context=context)
        finally:
            self._fitting_oob = False
        assert self.oob_prediction_ is not None
        return self.oob_prediction_

    def refit_params(self) -> dict[str, Any]:
        """Parameters to train the same model on all data without a validation set."""
        params = dict(self.params)
        if self.iteration_param and self.iterations_:
            params[self.iteration_param] = max(1, int(self.iterations_))
        return params

    @classmethod
    def stacker_params(
        cls, problem_type: ProblemType, n_rows: int, max_rounds: int
    ) -> dict[str, Any]:
        """Parameters as a stacking layer's model (algorithms with a ``stacker`` tag).
        ``max_rounds``: the rounds a stacker that caps them may take (quick to predict)."""
        return cls.default_params(problem_type, n_rows)

    # Regression targets centred and scaled, for models whose regularisation or training
    # depends on the target's scale (the linear model's alpha, the networks' learning rate).
    def _scale_target(self, y: np.ndarray) -> np.ndarray:
        self.y_mean_, self.y_std_ = float(np.mean(y)), float(np.std(y) or 1.0)
        return self._scaled(y)

    def _scaled(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean_) / self.y_std_

    def _unscaled(self, z: np.ndarray) -> np.ndarray:
        return z * self.y_std_ + self.y_mean_

    # -- explanation ---------------------------------------------------------------------
    def tree_shap(self) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
        """For algorithms tagged ``ShapMethod.TREE``: a function from a transformed matrix to
        TreeSHAP values ``(rows, columns, outputs)`` and each output's expected value, in the
        model's own output space (raw scores for boosting, probabilities for forests)."""
        raise NotImplementedError(f"{type(self).__name__} has no TreeSHAP")

    def baseline_tree_shap(
        self, background: np.ndarray, groups: np.ndarray, n_players: int
    ) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
        """For algorithms tagged ``baseline_tree_shap``: exact interventional TreeSHAP against
        the ``background`` rows (a dense matrix like the model's input), players being groups of
        matrix columns (column ``c`` belongs to ``groups[c]``). Returns a function from a matrix
        to values ``(rows, n_players, outputs)`` and each output's base value (the mean output
        on the background), in the model's output space."""
        raise NotImplementedError(f"{type(self).__name__} has no interventional TreeSHAP")

    # -- prediction ----------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        proba = np.asarray(self._predict_raw(X), dtype=np.float64)
        if proba.ndim == 1:  # a model that returns the positive-class probability only
            proba = np.column_stack([1.0 - proba, proba])
        seen = self.classes_seen_
        if seen is not None and len(seen) < self.n_classes:
            # Trained on a sample that lacked some classes: those get probability 0.
            if proba.shape[1] != self.n_classes:
                full = np.zeros((proba.shape[0], self.n_classes))
                full[:, seen] = proba
                proba = full
            else:
                # A model with an output per class (boosting's num_class, the MLP's softmax)
                # still puts some mass on classes it never saw: drop it and renormalise.
                unseen = np.ones(self.n_classes, dtype=bool)
                unseen[seen] = False
                proba = np.where(unseen, 0.0, proba)
                total = proba.sum(axis=1, keepdims=True)
                uniform = np.zeros(self.n_classes)
                uniform[seen] = 1.0 / len(seen)
                proba = np.where(total > 0, proba / np.where(total > 0, total, 1.0), uniform)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        if self.problem_type.is_classification:
            return self.predict_proba(X).argmax(axis=1)
        return np.asarray(self._predict_raw(X), dtype=np.float64).ravel()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"
