"""Algorithms: one small module each, behind :class:`Algorithm`, found through a registry.

Each declares what it is in its :class:`AlgorithmTags`; code outside this package decides by
those tags, never by an algorithm's name.
"""

from mlpilot.algorithms._base import Algorithm, EvalSet, FitContext, FitData
from mlpilot.algorithms._registry import (
    DEFAULT_ALGORITHMS,
    ENSEMBLING_ALGORITHMS,
    algorithm_names,
    algorithm_path,
    algorithm_tags,
    get_algorithm,
    register_algorithm,
    short_name,
    stacker_for,
)
from mlpilot.algorithms._tags import AlgorithmTags, Family, ShapMethod, StackerRole

__all__ = [
    "DEFAULT_ALGORITHMS",
    "ENSEMBLING_ALGORITHMS",
    "Algorithm",
    "AlgorithmTags",
    "EvalSet",
    "Family",
    "FitContext",
    "FitData",
    "ShapMethod",
    "StackerRole",
    "algorithm_names",
    "algorithm_path",
    "algorithm_tags",
    "get_algorithm",
    "register_algorithm",
    "short_name",
    "stacker_for",
]
