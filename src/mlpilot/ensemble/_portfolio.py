"""The ENSEMBLING portfolio: strong, diverse configurations in the order they are trained.

An ensemble gains most from its first few members, so the order is the budget policy: cheap
strong models first (LightGBM), the slower or weaker ones later, and for large or many-class
tables the algorithms whose cost grows fastest (CatBoost, forests, networks) move back. The
configurations are each algorithm's tuned defaults plus well-known strong variants (larger and
shallower boosters, extra-trees splits, entropy forests, a wider network), ordered by cost
and checked in ENSEMBLING runs on training splits of shared datasets (churn, car evaluation,
abalone, titanic: each first-round model earned ensemble weight somewhere); when the list
runs out and time remains, further configurations are drawn at random (seeded) from the
search spaces of the best algorithms so far.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from mlpilot._types import ProblemType
from mlpilot.algorithms import get_algorithm

__all__ = ["PortfolioEntry", "build_portfolio", "random_entry"]


@dataclass(frozen=True)
class PortfolioEntry:
    """One base model to bag: an algorithm and the parameters that differ from its defaults."""

    label: str
    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)

    def full_params(self, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        cls = get_algorithm(self.algorithm)
        return {**cls.default_params(problem_type, n_rows), **self.params}

    def key(self) -> str:
        text = json.dumps([self.algorithm, self.params], sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:8]


def _entries(problem_type: ProblemType) -> list[PortfolioEntry]:
    classification = problem_type.is_classification
    forest_features = "sqrt" if classification else 0.6
    return [
        PortfolioEntry("lightgbm", "lightgbm"),
        PortfolioEntry("catboost", "catboost"),
        PortfolioEntry("lightgbm-xt", "lightgbm", {"extra_trees": True, "learning_rate": 0.05}),
        PortfolioEntry("xgboost", "xgboost", {"learning_rate": 0.08, "colsample_bytree": 0.8}),
        PortfolioEntry("nn-torch", "nn-torch"),
        PortfolioEntry(
            "extra-trees",
            "extra-trees",
            {"max_features": forest_features, "n_estimators": 200},
        ),
        PortfolioEntry("linear-learner", "linear-learner"),
        PortfolioEntry(
            "randomforest",
            "randomforest",
            {"max_features": forest_features, "n_estimators": 200},
        ),
        PortfolioEntry("fastai", "fastai"),
        PortfolioEntry(
            "lightgbm-large",
            "lightgbm",
            {
                "learning_rate": 0.03,
                "num_leaves": 128,
                "min_child_samples": 5,
                "colsample_bytree": 0.7,
            },
        ),
        PortfolioEntry(
            "catboost-deep", "catboost", {"depth": 8, "learning_rate": 0.05, "l2_leaf_reg": 5.0}
        ),
        PortfolioEntry(
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
        PortfolioEntry(
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
        PortfolioEntry(
            "extra-trees-entropy" if classification else "extra-trees-full",
            "extra-trees",
            (
                {"criterion": "entropy", "max_features": "sqrt", "n_estimators": 200}
                if classification
                else {"max_features": 1.0, "n_estimators": 200}
            ),
        ),
        PortfolioEntry(
            "nn-torch-wide",
            "nn-torch",
            {"layers": "512-256", "dropout": 0.2, "learning_rate": 1e-3, "weight_decay": 1e-5},
        ),
        PortfolioEntry(
            "catboost-shallow", "catboost", {"depth": 4, "learning_rate": 0.1, "l2_leaf_reg": 1.0}
        ),
    ]


#: Algorithms whose cost grows fastest with rows (or, for boosting, with classes): on large
#: tables they wait until the cheaper ones have given the ensemble a base.
_SLOW_ON_LARGE = {"catboost", "randomforest", "fastai", "nn-torch"}
_SLOW_ON_MANY_CLASSES = {"catboost", "xgboost", "lightgbm"}
LARGE_ROWS = 20_000
MANY_CLASSES = 10


def build_portfolio(
    problem_type: ProblemType,
    n_rows: int,
    n_classes: int,
    algorithms: tuple[str, ...] | list[str],
) -> list[PortfolioEntry]:
    """The ordered portfolio for a table of ``n_rows`` restricted to ``algorithms``.

    Registered algorithms without a portfolio entry (for example ``mlp`` or an import path)
    get one entry with their defaults, after the portfolio's first round.
    """
    problem_type = ProblemType(problem_type)
    allowed = list(dict.fromkeys(algorithms))
    entries = [e for e in _entries(problem_type) if e.algorithm in allowed]
    covered = {e.algorithm for e in entries}
    extra = [PortfolioEntry(name, name) for name in allowed if name not in covered]
    # The first entry of each algorithm forms the first round; variants follow.
    seen: set[str] = set()
    first: list[PortfolioEntry] = []
    rest: list[PortfolioEntry] = []
    for entry in entries:
        (rest if entry.algorithm in seen else first).append(entry)
        seen.add(entry.algorithm)
    ordered = first + extra + rest
    if n_rows > LARGE_ROWS or n_classes > MANY_CLASSES:
        slow = set(_SLOW_ON_LARGE) if n_rows > LARGE_ROWS else set()
        if n_classes > MANY_CLASSES:
            slow |= _SLOW_ON_MANY_CLASSES - {"lightgbm"}
        head = [e for e in ordered[: len(first)] if e.algorithm not in slow]
        tail = [e for e in ordered[: len(first)] if e.algorithm in slow]
        ordered = head + tail + ordered[len(first) :]
    return ordered


def random_entry(
    algorithm: str, problem_type: ProblemType, n_rows: int, rng: np.random.Generator, number: int
) -> PortfolioEntry:
    """A configuration drawn from ``algorithm``'s search space (beyond the portfolio)."""
    cls = get_algorithm(algorithm)
    params: dict[str, Any] = {}
    for name, dist in cls.search_space(problem_type, n_rows).items():
        if cls.iteration_param == name:
            continue  # early stopping decides the rounds
        params[name] = _draw(dist, rng)
    return PortfolioEntry(f"{algorithm}-r{number}", algorithm, params)


def _draw(dist: Any, rng: np.random.Generator) -> Any:
    if isinstance(dist, CategoricalDistribution):
        choice = dist.choices[int(rng.integers(len(dist.choices)))]
        return choice.item() if isinstance(choice, np.generic) else choice
    if isinstance(dist, IntDistribution):
        if dist.log:
            value = int(np.rint(np.exp(rng.uniform(np.log(dist.low), np.log(dist.high)))))
        else:
            value = int(rng.integers(dist.low, dist.high + 1))
        step = dist.step or 1
        return int(min(dist.high, max(dist.low, dist.low + (value - dist.low) // step * step)))
    if isinstance(dist, FloatDistribution):
        if dist.log:
            return float(np.exp(rng.uniform(np.log(dist.low), np.log(dist.high))))
        return float(rng.uniform(dist.low, dist.high))
    raise TypeError(f"unsupported distribution {dist!r}")
