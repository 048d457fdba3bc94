"""Open formats out: an mlpilot model as an MLflow pyfunc model or an ONNX graph.

The libraries are optional extras (``mlpilot[mlflow]``, ``mlpilot[onnx]``), imported only when
an export of that format is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpilot.export._source import need_library

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["FORMATS", "export_mlflow", "export_onnx", "onnx_feed"]

#: The formats ``mlpilot export --format`` writes.
FORMATS = ("mlflow", "onnx")


def export_mlflow(
    source: str | Path,
    output: str | Path,
    *,
    candidate: str | None = None,
    example: pd.DataFrame | None = None,
) -> Path:
    """Write the tabular model at ``source`` as an MLflow pyfunc model folder ``output``
    (see :mod:`mlpilot.export._mlflow`); needs ``mlpilot[mlflow]``."""
    need_library("mlflow", "mlflow")
    from mlpilot.export._mlflow import export_mlflow as write

    return write(source, output, candidate=candidate, example=example)


def export_onnx(source: str | Path, output: str | Path, *, candidate: str | None = None) -> Path:
    """Write the tabular model at ``source`` as ``output/model.onnx`` (see
    :mod:`mlpilot.export._onnx`); needs ``mlpilot[onnx]``. Returns the file."""
    for module in ("onnx", "onnxmltools", "skl2onnx"):
        need_library(module, "onnx")
    from mlpilot.export._onnx import export_onnx as write

    return write(source, output, candidate=candidate)


def onnx_feed(model: Any, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The input feed of an exported ONNX graph (its ``onnx.ModelProto`` or an
    ``onnxruntime.InferenceSession``) for raw rows, read as mlpilot reads them."""
    from mlpilot.export._onnx import onnx_feed as feed

    return feed(model, rows)
