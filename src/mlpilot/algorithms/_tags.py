"""What an algorithm is, declared as data (in the spirit of scikit-learn's estimator tags).

The job engine, the ensemble builder and the reports decide by these tags, never by an
algorithm's name or by probing its methods, so a new algorithm joins every decision by declaring
its tags. They are class attributes of modules that import no machine-learning library at
import time: reading them costs no torch, CatBoost or XGBoost start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["AlgorithmTags", "Family", "ShapMethod", "StackerRole"]


class Family(Enum):
    BOOSTING = "gradient-boosted trees"
    FOREST = "forest"
    LINEAR = "linear"
    NEURAL_NETWORK = "neural network"
    OTHER = "other"


class ShapMethod(Enum):
    #: TreeSHAP on the model's own trees, column by column (``Algorithm.tree_shap``).
    TREE = "tree"
    #: Model-agnostic (permutation) SHAP over the packaged model's predictions on raw rows.
    KERNEL = "kernel"


class StackerRole(Enum):
    #: Stacks the base models' predictions next to the original features (``stack-full``).
    BOOSTING = "boosting"
    #: Stacks the base models' predictions alone (``stack-preds``).
    LINEAR = "linear"


@dataclass(frozen=True)
class AlgorithmTags:
    """An algorithm's declared traits; the defaults suit an algorithm that declares nothing."""

    family: Family = Family.OTHER
    #: A tree model (its splits need no scaling; TreeSHAP can read it).
    tree: bool = False
    shap: ShapMethod = ShapMethod.KERNEL
    #: Cost grows fastest with rows: on large tables the portfolio trains it after the others.
    slow_on_many_rows: bool = False
    #: Cost grows with the number of classes (one model per class per round).
    slow_on_many_classes: bool = False
    #: The stacking layer it can serve as, if any.
    stacker: StackerRole | None = None
    #: Hyperparameter holding the boosting rounds / epochs that early stopping decides.
    iteration_param: str | None = None
    #: Splits or embeds ordinal category codes itself (``FitContext.categorical_features``).
    native_categorical: bool = False
    #: ``fit_oob`` gives out-of-bag predictions: one fit scores the model on every row.
    out_of_bag: bool = False
    #: Modules loading its fitted model imports that take seconds (torch: 1-3.5 s): the white
    #: box imports them beside the search, so the explainability report does not pay for them
    #: in the job's last seconds.
    load_imports: tuple[str, ...] = ()
    #: ``Algorithm.baseline_tree_shap`` computes exact interventional TreeSHAP against baseline
    #: rows (what an endpoint's explanations use where the model's path-dependent TreeSHAP is
    #: slow, e.g. a forest's deep trees).
    baseline_tree_shap: bool = False
    #: The algorithm's part of candidate names, where shorter than its registered name.
    short_name: str | None = None
    #: Modules fitting it imports that take seconds (torch's compiler stack, which its
    #: optimizer's first step loads): a job's workers import them as they start when the job may
    #: train it, so that the first trial's time limit does not pay for them.
    fit_imports: tuple[str, ...] = ()

    @property
    def early_stopping(self) -> bool:
        """Training stops early on a validation set (and a refit needs the iteration count)."""
        return self.iteration_param is not None
