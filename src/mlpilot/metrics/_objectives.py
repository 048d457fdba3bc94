"""Objectives beyond SageMaker's list: a cost matrix (expected cost, minimised, with the
cost-minimising decision) and a user metric given as a Python entry point.

Both are mlpilot extensions of a tabular job's config. A job *activates* its objective once
its target's classes are known (:func:`activate_objective`, in the job's process and in each
worker that loads the prepared data); from then on :func:`~mlpilot.metrics.get_metric` resolves
its name like a built-in metric and :func:`~mlpilot.metrics.score_all` scores it beside them.
Nothing here imports a user's module until the metric is first scored.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.errors import ConfigError

__all__ = [
    "EXPECTED_COST",
    "ActiveObjective",
    "CostMatrix",
    "ObjectiveError",
    "ObjectiveFunction",
    "activate_objective",
    "active_objective",
    "bayes_decision",
    "expected_cost",
    "objective_from_dict",
    "objective_to_dict",
]

#: The cost matrix objective's name (lower is better).
EXPECTED_COST = "ExpectedCost"
#: ``package.module:function``: dotted identifiers, a colon, one identifier.
_ENTRY_POINT = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class ObjectiveError(Exception):
    """A user metric raised, or returned something other than a finite number: the candidate
    scored with it fails with this message."""


def _label(value: Any) -> str:
    """A class label as the model's output spells it (``1.0`` → ``"1"``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class CostMatrix:
    """``costs[actual][predicted]``: what predicting class ``predicted`` costs when the row's
    class is ``actual``, in the order of ``labels`` (rows: actual, columns: predicted)."""

    labels: tuple[str, ...]
    costs: tuple[tuple[float, ...], ...]

    @classmethod
    def parse(cls, document: Any, source: str = "The cost matrix") -> CostMatrix:
        """From its JSON document ``{"labels": [...], "costs": [[...], ...]}``."""
        if not isinstance(document, dict) or set(document) != {"labels", "costs"}:
            raise ConfigError(
                f'{source} must be a JSON object with "labels" and "costs" '
                '(costs[actual][predicted]), e.g. {"labels": ["no", "yes"], '
                '"costs": [[0, 1], [5, 0]]}'
            )
        labels, costs = document["labels"], document["costs"]
        if (
            not isinstance(labels, list)
            or len(labels) < 2
            or not all(isinstance(v, str | int | float) for v in labels)
        ):
            raise ConfigError(f"{source}: labels must be a list of two or more class labels")
        names = tuple(_label(v) for v in labels)
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: labels repeat a class: {list(names)}")
        n = len(names)
        if (
            not isinstance(costs, list)
            or len(costs) != n
            or not all(isinstance(row, list) and len(row) == n for row in costs)
        ):
            raise ConfigError(
                f"{source}: costs must be a {n}x{n} matrix (one row per actual class, one "
                f"column per predicted class, for {n} labels)"
            )
        values: list[tuple[float, ...]] = []
        for i, row in enumerate(costs):
            for j, value in enumerate(row):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(
                        f"{source}: costs[{i}][{j}] is {value!r}; every cost must be a number"
                    )
                if not math.isfinite(value) or value < 0:
                    raise ConfigError(
                        f"{source}: costs[{i}][{j}] is {value}; costs must be finite and not "
                        "negative"
                    )
            values.append(tuple(float(v) for v in row))
        return cls(names, tuple(values))

    @classmethod
    def load(cls, value: str) -> CostMatrix:
        """From inline JSON (a value starting with ``{``), or a JSON file's path or
        ``file://`` URI."""
        text = value.strip()
        if text.startswith("{"):
            return cls.from_json(text)
        path = Path(text[len("file://") :] if text.startswith("file://") else text)
        source = f"Cost matrix {text}"
        try:
            return cls.from_json(path.read_text(), source)
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read it ({exc.strerror or exc})") from None

    @classmethod
    def from_json(cls, text: str, source: str = "The cost matrix") -> CostMatrix:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source} is not valid JSON: {exc}") from None
        return cls.parse(document, source)

    @classmethod
    def parse_inline(cls, text: str, source: str = "The cost matrix") -> CostMatrix:
        """From the form a tag value can hold (SageMaker's tag values allow no braces or
        quotes): one row per actual class, ``label=cost:cost:...`` with the costs in the
        rows' label order, rows separated by ``/``; e.g. ``no=0:1/yes=5:0``."""
        rows = [row.strip() for row in text.split("/") if row.strip()]
        if not rows or any(row.count("=") != 1 for row in rows):
            raise ConfigError(
                f'{source}: expected rows "actual=cost:cost:..." separated by "/", the costs '
                f"in the rows' label order (e.g. no=0:1/yes=5:0); got {text!r}"
            )
        labels: list[str] = []
        costs: list[list[float]] = []
        for row in rows:
            label, values = (part.strip() for part in row.split("="))
            labels.append(label)
            costs.append([])
            for value in values.split(":"):
                try:
                    costs[-1].append(float(value))
                except ValueError:
                    raise ConfigError(
                        f"{source}: cost {value.strip()!r} in the row of class {label!r} is not "
                        "a number"
                    ) from None
        return cls.parse({"labels": labels, "costs": costs}, source)

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "costs": [list(row) for row in self.costs]}

    def to_inline(self) -> str | None:
        """The :meth:`parse_inline` form, or None when a label cannot be written in it."""
        if any(not label or set(label) & set("=/:") for label in self.labels):
            return None
        return "/".join(
            f"{label}={':'.join(f'{c:g}' for c in row)}"
            for label, row in zip(self.labels, self.costs, strict=True)
        )

    def aligned(self, classes: Sequence[str]) -> np.ndarray:
        """The matrix with rows and columns in the order of ``classes`` (the target's labels as
        the model spells them), which must be exactly this matrix's labels."""
        missing = [c for c in classes if c not in self.labels]
        extra = [c for c in self.labels if c not in classes]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"the target's class(es) {missing} are not in it")
            if extra:
                parts.append(f"its label(s) {extra} are not classes of the target")
            raise ConfigError(
                f"The cost matrix's labels do not match the target's classes {list(classes)}: "
                + "; ".join(parts)
            )
        order = [self.labels.index(c) for c in classes]
        return np.asarray(self.costs, dtype=float)[np.ix_(order, order)]


def bayes_decision(proba: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """The class positions of least expected cost: ``argmin_j sum_i p_i * costs[i][j]``
    (ties: the first)."""
    return np.asarray(np.asarray(proba, dtype=float) @ np.asarray(costs, dtype=float)).argmin(
        axis=1
    )


def expected_cost(
    y_true: np.ndarray,
    predicted: np.ndarray,
    costs: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> float:
    """The mean (weighted) cost of predicting class positions ``predicted`` for rows whose
    class positions are ``y_true``."""
    y = np.asarray(y_true, dtype=int)
    paid = np.asarray(costs, dtype=float)[y, np.asarray(predicted, dtype=int)]
    if len(paid) == 0:
        return math.nan
    return float(np.average(paid, weights=sample_weight))


@dataclass(frozen=True)
class ObjectiveFunction:
    """A user metric ``f(y_true, y_pred, sample_weight) -> float``, named by its entry point
    ``package.module:function``, with its direction.

    ``y_true`` holds the target's values (class labels as the model spells them, or numbers
    for regression). ``y_pred`` holds the predicted labels, or with ``probabilities`` (for
    classification) a DataFrame of class probabilities, one column per label.
    ``sample_weight`` is the rows' weights, or None.
    """

    entry_point: str
    maximize: bool
    probabilities: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.entry_point, str) or not _ENTRY_POINT.fullmatch(self.entry_point):
            raise ConfigError(
                f"Objective {self.entry_point!r}: give a Python entry point "
                "package.module:function (e.g. mypkg.metrics:profit)"
            )

    @property
    def module(self) -> str:
        return self.entry_point.split(":", 1)[0]

    @property
    def direction(self) -> str:
        return "Maximize" if self.maximize else "Minimize"

    def load(self) -> Callable[..., Any]:
        """The function itself (imports its module)."""
        module_name, name = self.entry_point.split(":", 1)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any failure of the user's import is theirs to read
            raise ConfigError(
                f"Objective {self.entry_point}: cannot import {module_name} "
                f"({type(exc).__name__}: {exc})"
            ) from None
        fn = getattr(module, name, None)
        if not callable(fn):
            raise ConfigError(f"Objective {self.entry_point}: {module_name} has no function {name}")
        return fn

    def allowed_by(self, prefixes: Sequence[str]) -> bool:
        """Whether the module is one of ``prefixes`` or inside one (``mypkg`` allows
        ``mypkg`` and ``mypkg.metrics``, not ``mypkg2``)."""
        return any(self.module == p or self.module.startswith(p + ".") for p in prefixes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_point": self.entry_point,
            "maximize": self.maximize,
            "probabilities": self.probabilities,
        }


def objective_from_dict(data: dict[str, Any]) -> CostMatrix | ObjectiveFunction:
    """Read back what :func:`objective_to_dict` wrote."""
    if "cost_matrix" in data:
        return CostMatrix.parse(data["cost_matrix"])
    return ObjectiveFunction(**data["function"])


def objective_to_dict(objective: CostMatrix | ObjectiveFunction) -> dict[str, Any]:
    if isinstance(objective, CostMatrix):
        return {"cost_matrix": objective.to_dict()}
    return {"function": objective.to_dict()}


@dataclass(frozen=True)
class ActiveObjective:
    """A custom objective bound to one job's classes: what the metric registry scores."""

    name: str
    maximize: bool
    problem_types: frozenset[ProblemType]
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray | None, int, int], float]
    #: The cost matrix in the classes' order (None for a user metric).
    costs: np.ndarray | None
    spec: CostMatrix | ObjectiveFunction


_ACTIVE: ActiveObjective | None = None


def active_objective() -> ActiveObjective | None:
    """The objective :func:`activate_objective` set in this process, if any."""
    return _ACTIVE


def activate_objective(
    objective: CostMatrix | ObjectiveFunction | None,
    problem_type: ProblemType,
    classes: Sequence[str],
) -> ActiveObjective | None:
    """Bind ``objective`` to a job's problem type and classes (labels as the model spells
    them, in the model's order) and make it this process's custom objective; None clears it.

    Raises :class:`~mlpilot.errors.ConfigError` for a cost matrix on a regression target or
    whose labels are not the target's classes."""
    global _ACTIVE
    if objective is None:
        _ACTIVE = None
        return None
    problem_type = ProblemType(problem_type)
    if isinstance(objective, CostMatrix):
        if not problem_type.is_classification:
            raise ConfigError(
                "A cost matrix applies to binary and multiclass classification; the target "
                f"is {problem_type.value}"
            )
        costs = objective.aligned(list(classes))

        def cost_fn(y: Any, p: Any, w: Any, pos: int, k: int) -> float:
            return expected_cost(y, bayes_decision(p, costs), costs, w)

        _ACTIVE = ActiveObjective(
            EXPECTED_COST,
            False,
            frozenset({ProblemType.BINARY, ProblemType.MULTICLASS}),
            cost_fn,
            costs,
            objective,
        )
        return _ACTIVE
    _ACTIVE = ActiveObjective(
        objective.entry_point,
        objective.maximize,
        frozenset(ProblemType),
        _user_scorer(objective, problem_type, list(classes)),
        None,
        objective,
    )
    return _ACTIVE


def _user_scorer(
    objective: ObjectiveFunction, problem_type: ProblemType, classes: list[str]
) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None, int, int], float]:
    loaded: list[Callable[..., Any]] = []
    labels = np.asarray(classes, dtype=object)

    def score(y: Any, p: Any, w: Any, pos: int, k: int) -> float:
        if not loaded:
            loaded.append(objective.load())
        truth: Any = np.asarray(y)
        pred: Any = np.asarray(p)
        if problem_type.is_classification:
            truth = labels[truth.astype(int)]
            pred = (
                pd.DataFrame(pred, columns=classes)
                if objective.probabilities
                else labels[pred.argmax(axis=1)]
            )
        try:
            value = loaded[0](truth, pred, w)
        except Exception as exc:  # the user's code: any failure fails the candidate
            message = str(exc).splitlines()[0] if str(exc) else ""
            raise ObjectiveError(
                f"objective {objective.entry_point} raised {type(exc).__name__}: {message}"
            ) from None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ObjectiveError(
                f"objective {objective.entry_point} returned {value!r}, not a finite number"
            )
        return number

    return score
