"""The tabular model package: a trained candidate that predicts rows.

Its payload (``pipeline.joblib``, see :mod:`._files` for the layout) holds the members:
(FeaturePipeline, Algorithm) pairs; bagged candidates have one member per fold, averaged at
prediction. An ensemble package holds one predictor object instead (with ``cleaner_`` and
``predict_clean``; see mlpilot.ensemble).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.errors import ModelPackageError, PredictionInputError
from mlpilot.features import Coded
from mlpilot.metrics import Calibration, calibrate_probabilities
from mlpilot.package._files import (
    FORECASTING,
    PIPELINE,
    copy_package,
    manifest,
    publish,
    read_package,
)
from mlpilot.profile import ColumnKind, DatasetProfile, label_key

__all__ = ["InferenceModel", "package_bytes", "typical_row"]

#: Rows predicted through the pipelines' small-batch path (see features._fast).
SMALL_BATCH = 64


def typical_row(profile: DatasetProfile) -> dict[str, Any]:
    """One row standing for "feature unknown" in explanations (the SHAP baseline): each numeric
    feature's median and each categorical feature's most frequent level in the training table;
    other kinds (text, dates) missing, which the model reads as it read missing values."""
    row: dict[str, Any] = {}
    for column in profile.columns:
        if column.kind == ColumnKind.DROP:
            continue
        value: Any = None
        if column.kind == ColumnKind.NUMERIC:
            value = column.stats.get("median")
        elif column.kind == ColumnKind.CATEGORICAL:
            value = next(iter(column.stats.get("top") or {}), None)
        row[column.name] = value
    return row


class InferenceModel:
    """A trained candidate, ready to predict on raw rows.

    Parameters
    ----------
    members:
        ``(feature_pipeline, algorithm)`` pairs, whose predictions are averaged; or a predictor
        object with a ``cleaner_`` and ``predict_clean(rows)`` (an ensemble).
    info:
        The manifest: problem type, labels, input columns, candidate facts.
    """

    def __init__(self, members: Any, info: dict[str, Any]) -> None:
        self.members = members
        self.info = info

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        members: Any,
        profile: DatasetProfile,
        *,
        candidate: dict[str, Any],
    ) -> InferenceModel:
        target = profile.target
        if target.decision_costs is not None:
            candidate = {"DecisionCosts": target.decision_costs, **candidate}
        info = manifest(
            profile.problem_type.value,
            candidate,
            target=target.name,
            labels=target.labels,
            positive_label=target.positive_label,
            input_columns=[{"name": c.name, "kind": c.kind} for c in profile.columns],
            feature_columns=profile.features(),
            baseline=typical_row(profile),
        )
        return cls(members, info)

    # -- facts ----------------------------------------------------------------------------
    @property
    def problem_type(self) -> ProblemType:
        return ProblemType(self.info["problem_type"])

    @property
    def labels(self) -> list[Any]:
        return list(self.info.get("labels") or [])

    @property
    def input_columns(self) -> list[str]:
        """Columns of the training table (target and weight excluded), in training order."""
        return [c["name"] for c in self.info["input_columns"]]

    @property
    def feature_columns(self) -> list[str]:
        return list(self.info["feature_columns"])

    @property
    def baseline(self) -> dict[str, Any] | None:
        """The typical training row :func:`typical_row` recorded (None in packages made before
        it was kept)."""
        value = self.info.get("baseline")
        return dict(value) if isinstance(value, dict) else None

    @property
    def candidate_name(self) -> str:
        return str(self.info["candidate"].get("CandidateName", ""))

    @property
    def decision_threshold(self) -> float | None:
        """Binary models: the probability of the positive class from which it is predicted,
        when the job tuned it for its objective (else the arg-max, i.e. 0.5)."""
        value = self.info["candidate"].get("DecisionThreshold")
        if value is None or self.problem_type is not ProblemType.BINARY:
            return None
        return float(value)

    @property
    def calibration(self) -> tuple[float, float] | None:
        """Classification models of a log-loss job: ``(temperature, floor)`` applied to the
        probabilities (see mlpilot.metrics.calibrate_probabilities); None for none."""
        if not self.problem_type.is_classification:
            return None
        return Calibration.settings(self.info["candidate"].get("Calibration"))

    @property
    def positive_index(self) -> int:
        """Position of the positive label in :attr:`labels` (binary models)."""
        labels = self.labels
        positive = self.info.get("positive_label")
        return labels.index(positive) if positive in labels else len(labels) - 1

    @property
    def decision_costs(self) -> np.ndarray | None:
        """Classification models of a cost matrix job: costs[actual][predicted] in the order
        of :attr:`labels`; the model predicts the class of least expected cost."""
        value = self.info["candidate"].get("DecisionCosts")
        if value is None or not self.problem_type.is_classification:
            return None
        return np.asarray(value, dtype=float)

    def decide(self, raw: np.ndarray) -> np.ndarray:
        """Class positions predicted from ``predict_raw``'s probabilities: the least expected
        cost under a cost matrix, else the tuned threshold (binary) or the arg-max."""
        costs = self.decision_costs
        if costs is not None:  # Bayes decision: argmin_j sum_i p_i * costs[i][j]
            return np.asarray(np.asarray(raw, dtype=float) @ costs).argmin(axis=1)
        threshold = self.decision_threshold
        if threshold is None:
            return np.asarray(raw).argmax(axis=1)
        pos = self.positive_index
        return np.where(np.asarray(raw)[:, pos] >= threshold, pos, 1 - pos)

    # -- prediction -----------------------------------------------------------------------
    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Averaged class probabilities ``(n, K)``, or regression values ``(n,)``.

        Raises :class:`PredictionInputError` for rows that do not fit the input schema (missing
        columns, text in numeric columns); extra columns are ignored.
        """
        return self.predict_clean(self.clean(X))

    def clean(self, X: pd.DataFrame) -> Any:
        """``X`` read by the cleaner every member shares, strictly (:class:`PredictionInputError`
        for rows that do not fit): a few rows as column arrays (the pipelines' fast path), more
        as a DataFrame. What :meth:`predict_clean` takes; a caller that needs the rows twice
        (prediction and explanation) reads them once."""
        if not isinstance(X, pd.DataFrame):
            raise PredictionInputError("Rows to predict must be a pandas DataFrame")
        if len(X) == 0:
            raise PredictionInputError("No rows to predict")
        predictor = self.members if hasattr(self.members, "predict_clean") else None
        cleaner = predictor.cleaner_ if predictor is not None else self.members[0][0].cleaner_
        if len(X) <= SMALL_BATCH and hasattr(cleaner, "transform_arrays"):
            return cleaner.transform_arrays(X, strict=True)
        return cleaner.transform(X, strict=True)

    def predict_coded(self, columns: Mapping[str, Coded]) -> np.ndarray:
        """:meth:`predict_raw` of more than ``SMALL_BATCH`` rows given column by column as
        :class:`~mlpilot.features.Coded` text (what a bulk CSV reader gives: each column's
        distinct strings and a code per row); every column the cleaner reads must be there.

        The cleaner reads each distinct value once, and a pipeline whose NumPy twin computes
        exactly what scikit-learn does encodes the distinct categories once and gathers by code;
        the predictions are those :meth:`predict_raw` gives for the same rows as a DataFrame of
        strings. Raises :class:`PredictionInputError` as :meth:`predict_raw` does.
        """
        predictor = self.members if hasattr(self.members, "predict_clean") else None
        cleaner = predictor.cleaner_ if predictor is not None else self.members[0][0].cleaner_
        clean = cleaner.transform_coded(columns, strict=True)
        matrices: dict[int, Any] = {}
        if predictor is None:
            for pipeline, _ in self.members:
                if id(pipeline) not in matrices:
                    matrix = pipeline.transform_coded(clean)
                    if matrix is not None:
                        matrices[id(pipeline)] = matrix
            if all(id(pipeline) in matrices for pipeline, _ in self.members):
                return self.predict_clean(clean, matrices)
        typed = {k: v.materialize() if isinstance(v, Coded) else v for k, v in clean.items()}
        return self.predict_clean(pd.DataFrame(typed), matrices)

    def predict_clean(self, clean: Any, matrices: dict[int, Any] | None = None) -> np.ndarray:
        """:meth:`predict_raw` of rows :meth:`clean` read; ``matrices``, when given, is filled
        with the rows through each member's pipeline, by ``id`` of the pipeline."""
        matrices = {} if matrices is None else matrices
        raw = self._predict_members(clean, matrices)
        calibration = self.calibration
        if calibration is None:
            return raw
        return calibrate_probabilities(raw, *calibration)

    def _predict_members(self, clean: Any, matrices: dict[int, Any]) -> np.ndarray:
        if hasattr(self.members, "predict_clean"):
            ensemble: np.ndarray = self.members.predict_clean(clean, matrices)
            return ensemble
        outputs = []
        for pipeline, model in self.members:
            matrix = matrices.get(id(pipeline))
            if matrix is None:
                matrix = matrices[id(pipeline)] = pipeline.transform_clean(clean)
            if self.problem_type.is_classification:
                outputs.append(model.predict_proba(matrix))
            else:
                outputs.append(model.predict(matrix))
        result: np.ndarray = outputs[0] if len(outputs) == 1 else np.mean(outputs, axis=0)
        return result

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        """One column per class (named by label), rows summing to 1."""
        if not self.problem_type.is_classification:
            raise PredictionInputError("predict_proba needs a classification model")
        proba = self.predict_raw(X)
        return pd.DataFrame(proba, columns=[label_key(v) for v in self.labels], index=X.index)

    def predict(self, X: pd.DataFrame, *, probabilities: bool = False) -> pd.DataFrame:
        """Predictions with Autopilot's names.

        Columns: ``predicted_label``; for classification also ``probability`` (of the predicted
        label) and, with ``probabilities=True``, ``probability_<label>`` for every class.
        Regression puts the predicted value in ``predicted_label``.
        """
        raw = self.predict_raw(X)
        if not self.problem_type.is_classification:
            return pd.DataFrame({"predicted_label": raw}, index=X.index)
        labels = np.asarray(self.labels, dtype=object)
        best = self.decide(raw)
        out = pd.DataFrame(
            {"predicted_label": labels[best], "probability": raw[np.arange(len(raw)), best]},
            index=X.index,
        )
        if probabilities:
            for i, label in enumerate(self.labels):
                out[f"probability_{label_key(label)}"] = raw[:, i]
        return out

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path, *, archive: bool = True) -> Path:
        """Write the package atomically: a half-written package is never visible."""
        return publish(Path(directory), self.info, self.members, archive=archive)

    @staticmethod
    def copy_package(
        source: str | Path,
        directory: str | Path,
        *,
        archive: bool = True,
        candidate: dict[str, Any] | None = None,
    ) -> Path:
        """Copy a saved package (files as they are, nothing unpickled), adding the archive;
        ``candidate`` replaces the manifest's candidate facts of the same name."""
        return copy_package(source, directory, archive=archive, candidate=candidate)

    @classmethod
    def load(cls, directory: str | Path, *, strict: bool = False) -> InferenceModel:
        """Load a package directory (or a ``model.tar.gz``) and check library versions.

        Differences are reported as a :class:`ModelVersionWarning` naming each library, or as a
        :class:`ModelPackageError` with ``strict=True``. A forecasting package is a
        :class:`ModelPackageError` (load it with :func:`load_model`, which gives a
        :class:`~mlpilot.package.SeriesModel`).
        """
        info, members = read_package(directory, strict=strict, accept=_tabular_only)
        return cls(members, info)


def _tabular_only(path: Path, info: dict[str, Any]) -> None:
    if info.get("problem_type") == FORECASTING:
        raise ModelPackageError(
            f"{path} holds a {FORECASTING} model, which forecasts series rather than predicting "
            "rows: load it with mlpilot.load_model"
        )


def package_bytes(directory: str | Path) -> int:
    """Size of a saved package's pickled pipeline (0 if absent)."""
    path = Path(directory) / PIPELINE
    return path.stat().st_size if path.exists() else 0
