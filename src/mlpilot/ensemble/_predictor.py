"""The ensemble inside a model package, and the worker task that assembles one.

An :class:`EnsemblePredictor` holds base models ("units": a bag of fold models, or one model
refit on every row) and stackers (units whose inputs include base models' predictions), plus
the ensemble weights. It is what ``pipeline.joblib`` holds in an ensemble package, so
:class:`~mlpilot.package.InferenceModel` loads and predicts with it like any other package.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.ensemble._stack import stack_column_names, stack_features
from mlpilot.package import MANIFEST, PIPELINE, InferenceModel, load_payload, package_bytes
from mlpilot.search import VALIDATION_PREDICTIONS, load_prepared, predict_latency

__all__ = ["AssembleTask", "EnsemblePredictor", "Unit", "assemble"]


@dataclass
class Unit:
    """One model of the ensemble: ``members`` (feature pipeline, algorithm) pairs whose
    predictions are averaged; a stacker also reads the predictions of the units in ``inputs``."""

    name: str
    members: list[tuple[Any, Any]]
    inputs: list[int] = field(default_factory=list)


class EnsemblePredictor:
    """Weighted blend of units (base models and stackers), predicting on cleaned rows."""

    def __init__(
        self,
        units: list[Unit],
        weights: list[float],
        problem_type: ProblemType | str,
        n_classes: int,
    ) -> None:
        if len(units) != len(weights):
            raise ValueError("one weight per unit")
        self.units = units
        self.weights = [float(w) for w in weights]
        self.problem_type = ProblemType(problem_type)
        self.n_classes = n_classes
        self._needed = self._needed_units()

    def _needed_units(self) -> list[int]:
        needed = {i for i, w in enumerate(self.weights) if w > 0}
        frontier = list(needed)
        while frontier:
            for j in self.units[frontier.pop()].inputs:
                if j not in needed:
                    needed.add(j)
                    frontier.append(j)
        return sorted(needed)

    @property
    def cleaner_(self) -> Any:
        """The table cleaner every member shares (the base models' input schema)."""
        for unit in self.units:
            if not unit.inputs:
                return unit.members[0][0].cleaner_
        return self.units[0].members[0][0].cleaner_

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._needed = self._needed_units()

    def _unit_output(self, unit: Unit, clean: Any, matrices: dict[int, Any]) -> np.ndarray:
        outputs = []
        for pipeline, model in unit.members:
            # Units trained on the same rows with the same preprocessing share one pipeline
            # object (see share_pipelines): transform once per pipeline, not per member.
            matrix = matrices.get(id(pipeline))
            if matrix is None:
                matrix = matrices[id(pipeline)] = pipeline.transform_clean(clean)
            if self.problem_type.is_classification:
                outputs.append(model.predict_proba(matrix))
            else:
                outputs.append(model.predict(matrix))
        return outputs[0] if len(outputs) == 1 else np.mean(outputs, axis=0)

    def predict_clean(
        self,
        clean: pd.DataFrame | dict[str, np.ndarray],
        matrices: dict[int, Any] | None = None,
    ) -> np.ndarray:
        """Class probabilities ``(n, K)`` or values ``(n,)`` for rows the cleaner typed (a
        DataFrame, or a dict of column arrays for a few rows). ``matrices``: filled with the
        base models' inputs by ``id`` of their pipeline (an explainer reuses them)."""
        outputs: dict[int, np.ndarray] = {}
        matrices = {} if matrices is None else matrices  # base models' inputs, by pipeline
        for i in self._needed:
            unit = self.units[i]
            frame: Any = clean
            if unit.inputs:
                names = stack_column_names(len(unit.inputs), self.problem_type, self.n_classes)
                values = stack_features([outputs[j] for j in unit.inputs], self.problem_type)
                if isinstance(clean, dict):
                    frame = {**clean, **{n: values[:, k] for k, n in enumerate(names)}}
                else:
                    extra = pd.DataFrame(values, columns=names, index=clean.index)
                    frame = pd.concat([clean, extra], axis=1)
            outputs[i] = self._unit_output(unit, frame, matrices if frame is clean else {})
        total: np.ndarray | None = None
        for i, w in enumerate(self.weights):
            if w > 0:
                part = w * outputs[i]
                total = part if total is None else total + part
        assert total is not None
        return total

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": u.name,
                "weight": w,
                "members": len(u.members),
                "inputs": [self.units[j].name for j in u.inputs],
                "used": i in self._needed,
            }
            for i, (u, w) in enumerate(zip(self.units, self.weights, strict=True))
        ]


@dataclass(frozen=True)
class UnitSpec:
    """Where a unit's members are saved: a package folder (its ``pipeline.joblib``)."""

    name: str
    package_dir: str
    inputs: tuple[int, ...] = ()


@dataclass(frozen=True)
class AssembleTask:
    """Build one ensemble package in a worker: load the units' members, blend, measure, save."""

    out_dir: str
    data_dir: str
    units: tuple[UnitSpec, ...]
    weights: tuple[float, ...]
    candidate: dict[str, Any]
    archive: bool = False
    #: ``(rows, folds, predictions)`` to save as the candidate's validation predictions.
    validation: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    #: Single-row predictions timed (the median is reported).
    latency_repeats: int = 25


@dataclass
class AssembleResult:
    out_dir: str
    latency_seconds: float
    package_bytes: int
    seconds: float


def share_pipelines(units: list[Unit]) -> int:
    """Make members whose fitted feature pipelines are identical (same preprocessing, same
    training rows: the same fold of two bags, or two refits) hold one pipeline object, so the
    ensemble transforms a row once per distinct pipeline. Returns how many were shared."""
    canonical: dict[str, Any] = {}
    shared = 0
    for unit in units:
        members = []
        for pipeline, model in unit.members:
            key = hashlib.sha1(pickle.dumps(pipeline, protocol=5)).hexdigest()
            kept = canonical.setdefault(key, pipeline)
            shared += kept is not pipeline
            members.append((kept, model))
        unit.members = members
    return shared


def _load_members(package_dir: str) -> Any:
    folder = Path(package_dir)
    members = load_payload(folder / PIPELINE, json.loads((folder / MANIFEST).read_text()))
    if isinstance(members, EnsemblePredictor):
        raise ValueError(f"{package_dir} holds an ensemble, not a base model")
    return members


def assemble(task: AssembleTask) -> AssembleResult:
    """Worker entry point: write the ensemble package ``task`` describes."""
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_prepared(task.data_dir)
        cache: dict[str, Any] = {}
        units = []
        for spec in task.units:
            if spec.package_dir not in cache:
                cache[spec.package_dir] = _load_members(spec.package_dir)
            units.append(Unit(spec.name, cache[spec.package_dir], list(spec.inputs)))
        share_pipelines(units)
        predictor = EnsemblePredictor(
            units, list(task.weights), data.profile.problem_type, data.n_classes
        )
        package = InferenceModel.build(
            predictor,
            data.profile,
            candidate={**task.candidate, "Ensemble": predictor.describe()},
        )
        row = int(np.flatnonzero(data.folds >= 0)[0]) if (data.folds >= 0).any() else 0
        latency = predict_latency(package, data, row, repeats=task.latency_repeats)
        package.info["candidate"]["PredictSecondsPerRow"] = latency
        package.save(task.out_dir, archive=task.archive)
        if task.validation is not None:
            rows, folds, predictions = task.validation
            np.savez(
                os.path.join(task.out_dir, VALIDATION_PREDICTIONS),
                rows=rows,
                folds=folds,
                predictions=predictions,
            )
    return AssembleResult(
        task.out_dir, latency, package_bytes(task.out_dir), time.monotonic() - started
    )
