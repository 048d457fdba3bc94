"""The candidate space: which algorithms, which hyperparameter ranges, which first guesses.

Declared as data (Optuna distributions) so it can be printed, saved with the job and re-run from
the candidate-definition notebook. Each algorithm's parameters are prefixed with its name
(``lightgbm.learning_rate``) so that every name keeps one distribution across trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from mlpilot._types import ProblemType
from mlpilot.algorithms import get_algorithm
from mlpilot.errors import ConfigError

__all__ = ["CandidateSpec", "SearchSpace"]

ALGORITHM_PARAM = "algorithm"


@dataclass(frozen=True)
class CandidateSpec:
    """One candidate: (preprocessing, algorithm, hyperparameters)."""

    algorithm: str
    params: dict[str, Any]
    preprocessing: dict[str, Any]


class SearchSpace:
    """The algorithms a job may try and the ranges of their hyperparameters."""

    def __init__(self, algorithms: list[str], problem_type: ProblemType, n_rows: int) -> None:
        if not algorithms:
            raise ConfigError("At least one algorithm is needed")
        self.problem_type = ProblemType(problem_type)
        self.n_rows = n_rows
        self.classes = {}
        for name in algorithms:
            cls = get_algorithm(name)
            if self.problem_type not in cls.problem_types:
                continue
            self.classes[name] = cls
        if not self.classes:
            raise ConfigError(
                f"None of the algorithms {algorithms} supports {self.problem_type.value}"
            )
        self.algorithms = list(self.classes)

    def distributions(self, algorithm: str) -> dict[str, BaseDistribution]:
        return self.classes[algorithm].search_space(self.problem_type, self.n_rows)

    def defaults(self, algorithm: str) -> dict[str, Any]:
        return self.classes[algorithm].default_params(self.problem_type, self.n_rows)

    def warm_starts(self) -> list[dict[str, Any]]:
        """Each algorithm's defaults, in the configured order: the first trials of a search."""
        starts = []
        for name in self.algorithms:
            fixed: dict[str, Any] = {ALGORITHM_PARAM: name}
            defaults = self.defaults(name)
            for param, dist in self.distributions(name).items():
                if param in defaults and _contains(dist, defaults[param]):
                    fixed[f"{name}.{param}"] = defaults[param]
            starts.append(fixed)
        return starts

    def suggest(self, trial: optuna.Trial) -> CandidateSpec:
        """Ask ``trial`` for one candidate (define-by-run over the declared space)."""
        if len(self.algorithms) == 1:
            name = self.algorithms[0]
        else:
            name = str(trial.suggest_categorical(ALGORITHM_PARAM, self.algorithms))
        params = dict(self.defaults(name))
        for param, dist in self.distributions(name).items():
            params[param] = _suggest(trial, f"{name}.{param}", dist)
        options = self.classes[name].preprocessing.to_dict()
        return CandidateSpec(name, params, options)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: per algorithm, its defaults, ranges and preprocessing."""
        return {
            name: {
                "description": cls.description,
                "defaults": self.defaults(name),
                "ranges": {p: distribution_to_json(d) for p, d in self.distributions(name).items()},
                "preprocessing": cls.preprocessing.to_dict(),
                "preprocessing_steps": cls.preprocessing.describe(),
            }
            for name, cls in self.classes.items()
        }


def _contains(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    raise ConfigError(f"Unsupported distribution for {name}: {dist!r}")
