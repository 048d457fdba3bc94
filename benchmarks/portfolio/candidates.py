"""The configurations the portfolio is learned from: the hand-designed portfolio's entries
plus seeded random draws from each algorithm's search space.

A configuration is the same on every dataset: parameters that only make sense for one kind of
problem (a forest's split criterion, the linear learner's C or alpha) are kept apart under
``classification`` / ``regression`` and applied by :func:`params_for`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlpilot._types import ProblemType
from mlpilot.algorithms import get_algorithm
from mlpilot.ensemble._portfolio import _draw

#: Random draws per algorithm (beyond its hand-designed entries).
DRAWS = {
    "lightgbm": 10,
    "xgboost": 8,
    "catboost": 8,
    "randomforest": 4,
    "extra-trees": 4,
    "linear-learner": 2,
    "nn-torch": 6,
}
SEED = 20261122
#: Parameters that exist for one kind of problem only.
_KIND_ONLY = {"criterion", "class_weight", "C", "alpha"}


def _hand(label: str, algorithm: str, params: dict[str, Any] | None = None, **kinds: Any) -> dict:
    return {
        "label": label,
        "algorithm": algorithm,
        "params": params or {},
        "classification": kinds.get("classification", {}),
        "regression": kinds.get("regression", {}),
    }


#: The hand-designed portfolio mlpilot shipped before this sweep (its order, its parameters).
HAND: list[dict[str, Any]] = [
    _hand("lightgbm", "lightgbm"),
    _hand("catboost", "catboost"),
    _hand("lightgbm-xt", "lightgbm", {"extra_trees": True, "learning_rate": 0.05}),
    _hand("xgboost", "xgboost", {"learning_rate": 0.08, "colsample_bytree": 0.8}),
    _hand("nn-torch", "nn-torch"),
    _hand(
        "extra-trees",
        "extra-trees",
        {"n_estimators": 200},
        classification={"max_features": "sqrt"},
        regression={"max_features": 0.6},
    ),
    _hand("linear-learner", "linear-learner"),
    _hand(
        "randomforest",
        "randomforest",
        {"n_estimators": 200},
        classification={"max_features": "sqrt"},
        regression={"max_features": 0.6},
    ),
    _hand("fastai", "fastai"),
    _hand(
        "lightgbm-large",
        "lightgbm",
        {"learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 5, "colsample_bytree": 0.7},
    ),
    _hand("catboost-deep", "catboost", {"depth": 8, "learning_rate": 0.05, "l2_leaf_reg": 5.0}),
    _hand(
        "xgboost-deep",
        "xgboost",
        {
            "learning_rate": 0.04,
            "max_depth": 9,
            "min_child_weight": 2.0,
            "subsample": 0.8,
            "colsample_bytree": 0.6,
        },
    ),
    _hand(
        "lightgbm-small",
        "lightgbm",
        {
            "learning_rate": 0.05,
            "num_leaves": 8,
            "min_child_samples": 30,
            "colsample_bytree": 0.6,
            "reg_lambda": 5.0,
        },
    ),
    _hand(
        "extra-trees-entropy",
        "extra-trees",
        {"n_estimators": 200},
        classification={"criterion": "entropy", "max_features": "sqrt"},
        regression={"max_features": 1.0},
    ),
    _hand(
        "nn-torch-wide",
        "nn-torch",
        {"layers": "512-256", "dropout": 0.2, "learning_rate": 1e-3, "weight_decay": 1e-5},
    ),
    _hand("catboost-shallow", "catboost", {"depth": 4, "learning_rate": 0.1, "l2_leaf_reg": 1.0}),
]


def candidate_pool() -> list[dict[str, Any]]:
    """Every configuration to sweep: ``{label, algorithm, params, classification, regression}``."""
    pool: list[dict[str, Any]] = [dict(entry) for entry in HAND]
    for algorithm, count in DRAWS.items():
        cls = get_algorithm(algorithm)
        rng = np.random.default_rng([SEED, sorted(DRAWS).index(algorithm)])
        for number in range(1, count + 1):
            entry: dict[str, Any] = {
                "label": f"{algorithm}-r{number}",
                "algorithm": algorithm,
                "params": {},
                "classification": {},
                "regression": {},
            }
            for kind, problem in (
                ("classification", ProblemType.BINARY),
                ("regression", ProblemType.REGRESSION),
            ):
                for name, dist in cls.search_space(problem, 5000).items():
                    if name == cls.iteration_param:
                        continue  # early stopping decides the rounds
                    if name in _KIND_ONLY:
                        entry[kind][name] = _draw(dist, rng)
                    elif kind == "classification":
                        entry["params"][name] = _draw(dist, rng)
            pool.append(entry)
    return pool


def params_for(entry: dict[str, Any], problem_type: ProblemType) -> dict[str, Any]:
    """The parameters (beyond the algorithm's defaults) ``entry`` uses on ``problem_type``."""
    kind = "classification" if problem_type.is_classification else "regression"
    return {**entry["params"], **entry.get(kind, {})}
