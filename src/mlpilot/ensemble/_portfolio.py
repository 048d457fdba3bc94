"""The ENSEMBLING portfolio: strong, diverse configurations in the order they are trained.

An ensemble gains most from its first few members, so the order is the budget policy. The
order and the configurations are learned (``portfolio.json``, written by
``benchmarks/portfolio/build.py``): every candidate configuration (the earlier hand-designed
portfolio plus seeded draws from each algorithm's search space) was scored out of fold on the
training splits of the shared datasets, and the portfolio was built greedily, each entry the
one that best covers the datasets the entries before it serve worst. For large or many-class
tables the algorithms whose cost grows fastest (CatBoost, forests, networks) move back among
the first entries; when the list runs out and time remains, further configurations are drawn
at random (seeded) from the search spaces of the best algorithms so far.

A job can be given another portfolio in the same format (``TabularConfig.portfolio``, a
:class:`~mlpilot.search.Portfolio`): it replaces the shipped one, order and all.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from mlpilot._types import ProblemType
from mlpilot.algorithms import ENSEMBLING_ALGORITHMS, algorithm_tags, get_algorithm
from mlpilot.search import Portfolio

__all__ = [
    "PortfolioEntry",
    "build_portfolio",
    "learned_portfolio",
    "random_entry",
    "shipped_portfolio",
]

#: The learned portfolio (see the module docstring).
PORTFOLIO_FILE = Path(__file__).with_name("portfolio.json")


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


@functools.cache
def shipped_portfolio() -> Portfolio:
    """``portfolio.json``, checked as a given portfolio is."""
    return Portfolio.parse(PORTFOLIO_FILE.read_bytes(), str(PORTFOLIO_FILE))


def learned_portfolio() -> dict[str, Any]:
    """``portfolio.json``'s document: where it was learned from, and its entries in order."""
    return shipped_portfolio().document


def _entries(problem_type: ProblemType, portfolio: Portfolio) -> list[PortfolioEntry]:
    kind = "classification" if problem_type.is_classification else "regression"
    return [
        PortfolioEntry(e["label"], e["algorithm"], {**e.get("params", {}), **e.get(kind, {})})
        for e in portfolio.entries
    ]


#: Algorithms whose cost grows fastest with rows (or with classes), by their tags: on tables
#: this large they wait until the cheaper ones have given the ensemble a base.
LARGE_ROWS = 20_000
MANY_CLASSES = 10
#: The entries a short budget trains; the cost rules above reorder only these.
HEAD = 8


def build_portfolio(
    problem_type: ProblemType,
    n_rows: int,
    n_classes: int,
    algorithms: tuple[str, ...] | list[str],
    portfolio: Portfolio | None = None,
) -> list[PortfolioEntry]:
    """The ordered portfolio for a table of ``n_rows`` restricted to ``algorithms``.

    ``portfolio``'s order (default: the shipped one), except that when ``algorithms`` is not
    the portfolio's own set (Autopilot's ENSEMBLING set for the shipped one: the user chose
    them) each one's first entry comes before any second entry. Registered algorithms without
    a portfolio entry (for example ``mlp`` or an import path) get one entry with their
    defaults, after the first :data:`HEAD` entries.
    """
    problem_type = ProblemType(problem_type)
    allowed = list(dict.fromkeys(algorithms))
    own = ENSEMBLING_ALGORITHMS if portfolio is None else portfolio.algorithms
    entries = [
        e
        for e in _entries(problem_type, portfolio or shipped_portfolio())
        if e.algorithm in allowed
    ]
    covered = {e.algorithm for e in entries}
    extra = [PortfolioEntry(name, name) for name in allowed if name not in covered]
    if set(allowed) != set(own):
        # Algorithms named by the user (AlgorithmsConfig) each get a model first: the best
        # entry of each, in learned order, then the rest.
        firsts = list({e.algorithm: e for e in reversed(entries)}.values())[::-1]
        firsts.sort(key=entries.index)
        entries = firsts + [e for e in entries if e not in firsts]
    head, rest = entries[:HEAD], entries[HEAD:]
    if n_rows > LARGE_ROWS or n_classes > MANY_CLASSES:
        slow = {e.algorithm for e in head if _slow(e.algorithm, n_rows, n_classes)}
        head = [e for e in head if e.algorithm not in slow] + [
            e for e in head if e.algorithm in slow
        ]
    return head + extra + rest


def _slow(algorithm: str, n_rows: int, n_classes: int) -> bool:
    tags = algorithm_tags(algorithm)
    return (n_rows > LARGE_ROWS and tags.slow_on_many_rows) or (
        n_classes > MANY_CLASSES and tags.slow_on_many_classes
    )


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
    return PortfolioEntry(f"{algorithm}-random{number}", algorithm, params)


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
