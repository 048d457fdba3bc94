"""The algorithm registry: SageMaker's AutoMLAlgorithm names → classes, imported lazily.

Importing catboost or torch costs seconds, so nothing is imported until a candidate needs it.
The algorithm modules themselves import those libraries only inside their methods, so a class
and its tags are cheap to load.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from mlpilot.algorithms._base import Algorithm
from mlpilot.algorithms._tags import AlgorithmTags, StackerRole
from mlpilot.errors import ConfigError

_REGISTRY: dict[str, str] = {
    "lightgbm": "mlpilot.algorithms.lightgbm:LightGBM",
    "xgboost": "mlpilot.algorithms.xgboost:XGBoost",
    "catboost": "mlpilot.algorithms.catboost:CatBoost",
    "randomforest": "mlpilot.algorithms.forests:RandomForest",
    "extra-trees": "mlpilot.algorithms.forests:ExtraTrees",
    "linear-learner": "mlpilot.algorithms.linear:LinearLearner",
    "mlp": "mlpilot.algorithms.mlp:MLP",
    "nn-torch": "mlpilot.algorithms.nn_torch:NNTorch",
    # Autopilot's ENSEMBLING names fastai; mlpilot maps it to nn-torch with fastai's defaults.
    "fastai": "mlpilot.algorithms.nn_torch:FastAI",
}

#: The set a job uses when AlgorithmsConfig does not restrict it (fast, strong ones first).
DEFAULT_ALGORITHMS = (
    "lightgbm",
    "catboost",
    "xgboost",
    "extra-trees",
    "randomforest",
    "linear-learner",
    "mlp",
)

#: Autopilot's ENSEMBLING algorithms: what ENSEMBLING mode uses when AlgorithmsConfig is unset.
ENSEMBLING_ALGORITHMS = (
    "lightgbm",
    "catboost",
    "xgboost",
    "randomforest",
    "extra-trees",
    "linear-learner",
    "nn-torch",
    "fastai",
)


def algorithm_names() -> list[str]:
    return list(_REGISTRY)


def register_algorithm(name: str, path: str) -> None:
    """Make ``name`` resolve to the class at ``"package.module:ClassName"``."""
    if ":" not in path:
        raise ConfigError(f"Algorithm path {path!r} must look like 'package.module:ClassName'")
    _REGISTRY[name] = path


def algorithm_path(name: str) -> str:
    """The import path for ``name`` (a registered name or a ``module:Class`` path)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        return name
    raise ConfigError(f"Unknown algorithm {name!r}; valid names: {', '.join(_REGISTRY)}")


def get_algorithm(name: str) -> type[Algorithm]:
    module_name, _, class_name = algorithm_path(name).partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"Algorithm {name!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise ConfigError(f"Algorithm {name!r} is not an mlpilot Algorithm subclass")
    return cls


def algorithm_tags(name: str) -> AlgorithmTags:
    """What the algorithm ``name`` (a registered name or a ``module:Class`` path) declares."""
    return get_algorithm(name).tags


def short_name(name: str) -> str:
    """``name`` as candidate names spell it: a registered algorithm's tagged short name; any
    other name (an import path, a stacker's label) as it is."""
    if name in _REGISTRY:
        return algorithm_tags(name).short_name or name
    return name


def stacker_for(role: StackerRole, allowed: Iterable[str]) -> str | None:
    """The registered algorithm among ``allowed`` that can be the stacking layer's ``role``:
    the first in registration order (LightGBM before XGBoost before CatBoost)."""
    wanted = set(allowed)
    for name in _REGISTRY:
        if name in wanted and algorithm_tags(name).stacker is role:
            return name
    return None
