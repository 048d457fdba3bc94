"""Algorithms: one small module each, behind :class:`Algorithm`, found through a registry."""

from mlpilot.algorithms._base import Algorithm, EvalSet, FitContext
from mlpilot.algorithms._registry import (
    DEFAULT_ALGORITHMS,
    ENSEMBLING_ALGORITHMS,
    algorithm_names,
    algorithm_path,
    get_algorithm,
    register_algorithm,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "ENSEMBLING_ALGORITHMS",
    "Algorithm",
    "EvalSet",
    "FitContext",
    "algorithm_names",
    "algorithm_path",
    "get_algorithm",
    "register_algorithm",
]
