"""What the gradient-boosting modules share: early-stopping patience, the least improvement
that counts, the iteration cap, and a base class whose ``_fit`` settles those and the objective
before the library's own training (:meth:`Boosting._boost`)."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import Algorithm, EvalSet, FitData
from mlpilot.algorithms._tags import AlgorithmTags, Family, ShapMethod, StackerRole
from mlpilot.features import PreprocessingOptions

#: Rounds allowed when a validation set decides where to stop.
MAX_ROUNDS = 10_000
#: ...and at most this many per training row (at least MIN_ROUND_CAP): on a few hundred rows the
#: validation loss of a separable table keeps creeping down for all 10,000 rounds of a slow
#: learner (a depth-7 CatBoost at rate 0.026 took 29 s on the 10-row recipe table).
ROUNDS_PER_ROW, MIN_ROUND_CAP = 50, 1_000


def round_cap(requested: int, n_rows: int) -> int:
    """Rounds for a fit with early stopping on ``n_rows`` training rows."""
    return int(min(requested, max(MIN_ROUND_CAP, ROUNDS_PER_ROW * n_rows)))


def patience(learning_rate: float) -> int:
    """Rounds without improvement before stopping: slower learning waits longer."""
    return int(min(200, max(20, 5.0 / max(learning_rate, 1e-3))))


#: Least drop in validation log loss that counts as an improvement. On separable data the loss
#: creeps towards 0 by ~1e-7 a round for thousands of rounds: the model grows (slow to predict)
#: and its probabilities harden towards 0/1 (one wrong row on unseen data then costs a lot).
MIN_LOGLOSS_DELTA = 1e-4


def min_delta(classification: bool) -> float:
    """Early stopping's least improvement: log loss has a natural scale, RMSE does not."""
    return MIN_LOGLOSS_DELTA if classification else 0.0


#: A booster's objective settings (library keyword → value) for each problem type.
Objectives = dict[ProblemType, dict[str, Any]]


# eq=False: fields hold arrays, which do not compare to one bool.
@dataclass(frozen=True, eq=False)
class EarlyStopping:
    """Where and when a boosting fit stops early: the validation rows, the rounds without an
    improvement allowed, and the least improvement that counts."""

    X: Any
    y: np.ndarray
    sample_weight: np.ndarray | None
    patience: int
    min_delta: float


class Boosting(Algorithm):
    """What LightGBM, XGBoost and CatBoost share: ordinal categories, their tags, the objective
    per problem type, the round cap and settings of early stopping, and the binary output the
    libraries give as one column. Subclasses train in :meth:`_boost`."""

    preprocessing = PreprocessingOptions(categorical="ordinal", high_cardinality="target")
    tags = AlgorithmTags(
        family=Family.BOOSTING,
        tree=True,
        shap=ShapMethod.TREE,
        stacker=StackerRole.BOOSTING,
    )

    #: The library's objective settings per problem type; multiclass adds the number of classes
    #: under ``num_class_key``.
    objectives: ClassVar[Objectives]
    num_class_key: ClassVar[str] = "num_class"

    def _fit(self, data: FitData) -> None:
        stopping = None
        if data.eval_set is not None:
            X_val, y_val, w_val = data.eval_set
            stopping = EarlyStopping(
                X_val,
                y_val,
                w_val,
                patience(self.params["learning_rate"]),
                min_delta(self.problem_type.is_classification),
            )
        rounds = self._rounds(data.eval_set, data.X.shape[0])
        self.model_, self.iterations_ = self._boost(data, rounds, stopping)

    @abstractmethod
    def _boost(self, data: FitData, rounds: int, stopping: EarlyStopping | None) -> tuple[Any, int]:
        """Train for at most ``rounds`` rounds, until the context's deadline, and early on
        ``stopping``'s validation rows if given; the model and the rounds it kept."""

    def _objective(self) -> dict[str, Any]:
        """The library's objective settings for this problem (and number of classes)."""
        objective = dict(self.objectives[self.problem_type])
        if self.problem_type is ProblemType.MULTICLASS:
            objective[self.num_class_key] = self.n_classes
        return objective

    def _rounds(self, eval_set: EvalSet | None, n_rows: int) -> int:
        """Rounds to train: the requested ones, capped when a validation set stops early."""
        assert self.iteration_param is not None
        requested = int(self.params[self.iteration_param])
        return round_cap(requested, n_rows) if eval_set is not None else requested

    def _both_classes(self, out: Any) -> np.ndarray:
        """Binary: the positive-class probabilities the library gives, with the negative's."""
        out = np.asarray(out)
        if self.problem_type is ProblemType.BINARY:
            return np.column_stack([1.0 - out, out])
        return out
