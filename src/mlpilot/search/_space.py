"""The candidate space: which algorithms, which hyperparameter ranges, which first guesses.

Declared as data (Optuna distributions) so it can be printed, saved with the job and re-run from
the candidate-definition notebook. Each algorithm's parameters are prefixed with its name
(``lightgbm.learning_rate``) so that every name keeps one distribution across trials.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)
from optuna.trial import BaseTrial

from mlpilot._types import ProblemType
from mlpilot.algorithms import Algorithm, algorithm_path, get_algorithm
from mlpilot.errors import ConfigError
from mlpilot.features import PreprocessingOptions

__all__ = ["CandidateDefinition", "CandidateSpec", "SearchSpace"]

ALGORITHM_PARAM = "algorithm"
_DEFINITION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class CandidateDefinition:
    """One candidate pipeline the search may try: preprocessing, algorithm, hyperparameters.

    The candidate-definition notebook writes every definition out in full; a job given
    ``JobConfig(candidates=[...])`` searches exactly those. Left as ``None``, a part keeps the
    algorithm's built-in choice.

    Attributes
    ----------
    algorithm:
        A registered algorithm name (``"lightgbm"``) or a ``"module:Class"`` path.
    preprocessing:
        :class:`~mlpilot.features.PreprocessingOptions` (or a dict of its fields).
    defaults:
        Every hyperparameter's value in the first trial; parameters without a range keep it in
        every trial.
    ranges:
        Optuna distributions of the tuned hyperparameters.
    name:
        The pipeline's name (default: the algorithm's), to try one algorithm with two
        preprocessing choices: ``name="lightgbm-onehot"``.
    """

    algorithm: str
    preprocessing: PreprocessingOptions | None = None
    defaults: dict[str, Any] | None = None
    ranges: dict[str, BaseDistribution] | None = None
    name: str | None = field(default=None)

    def __post_init__(self) -> None:
        algorithm_path(self.algorithm)  # a clear error for an unknown name
        if isinstance(self.preprocessing, dict):
            try:
                options = PreprocessingOptions(**self.preprocessing)
            except TypeError as exc:
                raise ConfigError(f"Candidate {self.key!r}: bad preprocessing: {exc}") from None
            object.__setattr__(self, "preprocessing", options)
        elif self.preprocessing is not None and not isinstance(
            self.preprocessing, PreprocessingOptions
        ):
            raise ConfigError(
                f"Candidate {self.key!r}: preprocessing must be PreprocessingOptions or a dict"
            )
        for param, dist in (self.ranges or {}).items():
            if not isinstance(dist, BaseDistribution):
                raise ConfigError(
                    f"Candidate {self.key!r}: the range of {param!r} must be an Optuna "
                    f"distribution (FloatDistribution, IntDistribution, "
                    f"CategoricalDistribution); got {dist!r}"
                )
        if self.name is not None and not _DEFINITION_NAME.fullmatch(self.name):
            raise ConfigError(
                f"Candidate name {self.name!r} must be 1-32 lower-case letters, digits, '-' or '_'"
            )

    @property
    def key(self) -> str:
        """The name the search and the leaderboard know the pipeline by."""
        return self.name or self.algorithm

    @classmethod
    def builtin(
        cls, algorithm: str, problem_type: ProblemType | str, n_rows: int
    ) -> CandidateDefinition:
        """The algorithm's own choices, written out in full."""
        algo = get_algorithm(algorithm)
        problem = ProblemType(problem_type)
        return cls(
            algorithm,
            algo.preprocessing,
            dict(algo.default_params(problem, n_rows)),
            dict(algo.search_space(problem, n_rows)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; :meth:`from_dict` reads it back exactly."""
        return {
            "name": self.key,
            "algorithm": self.algorithm,
            "preprocessing": None if self.preprocessing is None else self.preprocessing.to_dict(),
            "defaults": self.defaults,
            "ranges": None
            if self.ranges is None
            else {p: distribution_to_json(d) for p, d in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateDefinition:
        ranges = data.get("ranges")
        algorithm = data["algorithm"]
        return cls(
            algorithm,
            data.get("preprocessing"),  # a dict, converted on init
            data.get("defaults"),
            None if ranges is None else {p: json_to_distribution(d) for p, d in ranges.items()},
            None if data.get("name") in (None, algorithm) else data["name"],
        )


@dataclass(frozen=True)
class CandidateSpec:
    """One candidate: (preprocessing, algorithm, hyperparameters)."""

    algorithm: str
    params: dict[str, Any]
    preprocessing: dict[str, Any]


class SearchSpace:
    """The candidate pipelines a job may try and the ranges of their hyperparameters.

    ``definitions`` (the candidate-definition notebook's, or ``JobConfig.candidates``) replace
    ``algorithms``: each is searched under its :attr:`CandidateDefinition.key`.
    """

    def __init__(
        self,
        algorithms: list[str],
        problem_type: ProblemType,
        n_rows: int,
        definitions: Sequence[CandidateDefinition] | None = None,
    ) -> None:
        if definitions is not None:
            entries = [(d.key, d) for d in definitions]
        else:
            entries = [(name, CandidateDefinition(name)) for name in algorithms]
        if not entries:
            raise ConfigError("At least one algorithm is needed")
        keys = [key for key, _ in entries]
        if len(set(keys)) != len(keys):
            raise ConfigError(
                f"Candidate names must be unique; got {keys} (give one of two definitions of an "
                "algorithm a name)"
            )
        self.problem_type = ProblemType(problem_type)
        self.n_rows = n_rows
        self.classes: dict[str, type[Algorithm]] = {}
        self.definitions: dict[str, CandidateDefinition] = {}
        for key, definition in entries:
            cls = get_algorithm(definition.algorithm)
            if self.problem_type not in cls.problem_types:
                continue
            self.classes[key] = cls
            self.definitions[key] = definition
        if not self.classes:
            raise ConfigError(f"None of the algorithms {keys} supports {self.problem_type.value}")
        self.algorithms = list(self.classes)

    def distributions(self, algorithm: str) -> dict[str, BaseDistribution]:
        ranges = self.definitions[algorithm].ranges
        if ranges is not None:
            return dict(ranges)
        return self.classes[algorithm].search_space(self.problem_type, self.n_rows)

    def defaults(self, algorithm: str) -> dict[str, Any]:
        defaults = self.definitions[algorithm].defaults
        if defaults is not None:
            return dict(defaults)
        return self.classes[algorithm].default_params(self.problem_type, self.n_rows)

    def preprocessing(self, algorithm: str) -> PreprocessingOptions:
        options = self.definitions[algorithm].preprocessing
        return options if options is not None else self.classes[algorithm].preprocessing

    def resolved(self) -> list[CandidateDefinition]:
        """Every pipeline written out in full (what the candidate notebook shows)."""
        return [
            CandidateDefinition(
                d.algorithm,
                self.preprocessing(key),
                self.defaults(key),
                self.distributions(key),
                d.name,
            )
            for key, d in self.definitions.items()
        ]

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

    def suggest(self, trial: BaseTrial) -> CandidateSpec:
        """Ask ``trial`` for one candidate (define-by-run over the declared space)."""
        if len(self.algorithms) == 1:
            name = self.algorithms[0]
        else:
            name = str(trial.suggest_categorical(ALGORITHM_PARAM, self.algorithms))
        params = dict(self.defaults(name))
        for param, dist in self.distributions(name).items():
            params[param] = _suggest(trial, f"{name}.{param}", dist)
        options = self.preprocessing(name).to_dict()
        return CandidateSpec(self.definitions[name].algorithm, params, options)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: per pipeline, its algorithm, defaults, ranges and preprocessing
        (:meth:`CandidateDefinition.from_dict` reads an entry back)."""
        return {
            name: {
                "algorithm": self.definitions[name].algorithm,
                "description": cls.description,
                "defaults": self.defaults(name),
                "ranges": {p: distribution_to_json(d) for p, d in self.distributions(name).items()},
                "preprocessing": self.preprocessing(name).to_dict(),
                "preprocessing_steps": self.preprocessing(name).describe(),
            }
            for name, cls in self.classes.items()
        }


def _contains(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _suggest(trial: BaseTrial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    raise ConfigError(f"Unsupported distribution for {name}: {dist!r}")
