"""An mlpilot model as an MLflow pyfunc model.

The MLflow model folder carries the mlpilot package as an artifact (``artifacts/mlpilot-model``)
and predicts through mlpilot's own loader, so every kind of tabular model exports: single
pipelines, bags, weighted ensembles and stackers. MLflow's tools load it as any pyfunc model::

    mlflow.pyfunc.load_model(folder).predict(frame)

The signature names every input column with its type (numbers as double, everything else as
string; columns the model does not use are optional) and the output columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, save_model
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

from mlpilot._version import __version__
from mlpilot.export._source import (
    algorithms_of,
    job_sample_rows,
    load_tabular,
    staged_output,
)
from mlpilot.package import InferenceModel, load_model
from mlpilot.profile import ColumnKind, label_key

__all__ = ["MlpilotPyfunc", "export_mlflow"]

#: The artifact key (and folder name) of the mlpilot package inside the MLflow model.
ARTIFACT = "mlpilot-model"

#: The library each algorithm module needs at prediction time, beyond scikit-learn.
_ALGORITHM_LIBRARIES = {
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "catboost": "catboost",
    "mlp": "torch",
    "nn_torch": "torch",
}


class MlpilotPyfunc(PythonModel):
    """Loads the packaged model with :func:`mlpilot.load_model`; ``predict`` answers with
    :meth:`InferenceModel.predict`'s columns."""

    def load_context(self, context: Any) -> None:
        loaded = load_model(context.artifacts[ARTIFACT])
        assert isinstance(loaded, InferenceModel)  # the export refuses forecasting models
        self.model = loaded

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        probabilities = bool((params or {}).get("probabilities", True))
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.predict(frame, probabilities=probabilities)


def export_mlflow(
    source: str | Path,
    output: str | Path,
    *,
    candidate: str | None = None,
    example: pd.DataFrame | None = None,
) -> Path:
    """Write the model at ``source`` (a job folder: its best candidate or ``candidate``; a
    package folder or ``model.tar.gz``) as an MLflow pyfunc model in the new folder ``output``.

    ``example``: rows for the input example; by default a job folder's first sample rows (a
    package alone then has none). Returns ``output``.
    """
    model, _ = load_tabular(source, candidate=candidate)
    rows = example if example is not None else job_sample_rows(source, model)
    with staged_output(output) as staging:
        package = staging.parent / ARTIFACT
        # Saved afresh from the loaded model: an encrypted package is carried decrypted (the
        # MLflow model has no keyring), an archive as a folder.
        model.save(package, archive=False)
        save_model(
            path=str(staging),
            python_model=str(Path(__file__).with_name("mlflow_model.py")),
            artifacts={ARTIFACT: str(package)},
            signature=signature(model),
            input_example=None if rows is None else input_example(model, rows),
            pip_requirements=requirements(model),
            metadata={
                "mlpilot_version": __version__,
                "problem_type": model.problem_type.value,
                "candidate": model.candidate_name,
                "labels": [label_key(v) for v in model.labels],
            },
        )
    return Path(output)


def signature(model: InferenceModel) -> ModelSignature:
    """Input columns with their types, the output columns, and the ``probabilities`` switch."""
    used = set(model.feature_columns)
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(_column_type(c["kind"]), c["name"], required=c["name"] in used)
        for c in model.info["input_columns"]
    ]
    outputs: list[ColSpec | TensorSpec] = [ColSpec(_label_type(model), "predicted_label")]
    if model.problem_type.is_classification:
        outputs.append(ColSpec("double", "probability"))
        outputs += [ColSpec("double", f"probability_{label_key(v)}") for v in model.labels]
    params = ParamSchema([ParamSpec("probabilities", "boolean", True)])
    return ModelSignature(Schema(inputs), Schema(outputs), params)


def input_example(model: InferenceModel, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` in the signature's types: numbers as floats, everything else as strings."""
    kinds = {c["name"]: c["kind"] for c in model.info["input_columns"]}
    out = pd.DataFrame(index=rows.index)
    for name, kind in kinds.items():
        if name not in rows.columns:
            continue
        values = rows[name]
        if kind == ColumnKind.NUMERIC:
            out[name] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            text = values.astype(object).where(values.notna(), None)
            out[name] = [None if v is None else str(v) for v in text]
    return out.reset_index(drop=True)


def requirements(model: InferenceModel) -> list[str]:
    """mlpilot and the libraries the model predicts with, at the versions it was saved with."""
    versions = model.info.get("versions", {})
    needed = ["numpy", "pandas", "scipy", "scikit-learn"]
    for algorithm in algorithms_of(model):
        module = type(algorithm).__module__.rsplit(".", 1)[-1]
        library = _ALGORITHM_LIBRARIES.get(module)
        if library and library not in needed:
            needed.append(library)
    pins = [f"mlpilot=={__version__}"]
    for library in needed:
        version = str(versions.get(library, "")).split("+")[0]  # torch's local "+cpu" tag
        pins.append(f"{library}=={version}" if version else library)
    return pins


def _column_type(kind: str) -> str:
    return "double" if kind == ColumnKind.NUMERIC else "string"


def _label_type(model: InferenceModel) -> str:
    if not model.problem_type.is_classification:
        return "double"
    labels = model.labels
    if labels and all(isinstance(v, bool | np.bool_) for v in labels):
        return "boolean"
    if labels and all(isinstance(v, int | np.integer) for v in labels):
        return "long"
    if labels and all(isinstance(v, float | int) for v in labels):
        return "double"
    return "string"
