"""What every export starts from: the tabular model a job or package holds, and sample rows."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from mlpilot._layout import JobLayout, read_job_record
from mlpilot.errors import ExportError
from mlpilot.package import InferenceModel, ModelVersionWarning, SeriesModel, load_model

__all__ = ["algorithms_of", "job_sample_rows", "load_tabular", "need_library", "staged_output"]

#: Rows of the job's data sample kept as an input example.
EXAMPLE_ROWS = 5


def load_tabular(
    source: str | Path, *, candidate: str | None = None
) -> tuple[InferenceModel, list[str]]:
    """The tabular model at ``source`` (a job folder, package folder or ``model.tar.gz``), and
    the library-version warnings met loading it (exporting needs the model as it loads here)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        model = load_model(source, candidate=candidate)
    notes = [str(w.message) for w in caught if issubclass(w.category, ModelVersionWarning)]
    if isinstance(model, SeriesModel):
        raise ExportError(
            f"{source} holds a forecasting model (TimeSeriesForecasting): mlpilot export "
            "takes tabular models; serve or predict forecasts with mlpilot instead"
        )
    return model, notes


def job_sample_rows(source: str | Path, model: InferenceModel) -> pd.DataFrame | None:
    """A few raw rows from a job folder's data sample (input columns only), or None when
    ``source`` is not a job folder or its sample is gone."""
    root = Path(source)
    if not (root / "job.json").exists():
        return None
    layout = JobLayout(root, read_job_record(root)["AutoMLJobName"])
    rows = layout.data_sample / "rows.parquet"
    if not rows.exists():
        return None
    table = pd.read_parquet(rows).head(EXAMPLE_ROWS)
    present = [c for c in model.input_columns if c in table.columns]
    return table[present].reset_index(drop=True) if present else None


def need_library(module: str, extra: str) -> None:
    """A one-line error naming the optional extra when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ExportError(f"this export needs the {module} package: pip install 'mlpilot[{extra}]'")


@contextmanager
def staged_output(output: str | Path) -> Iterator[Path]:
    """A staging path beside ``output``, renamed to it when the block succeeds (so no
    half-written export is ever at ``output``) and removed when it fails. An ``output`` that
    already exists and is not an empty folder is refused."""
    target = Path(output)
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise ExportError(f"{target} already exists: choose another --output or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging = work / target.name
    try:
        yield staging
        if target.exists():
            target.rmdir()  # the empty folder checked above
        staging.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def algorithms_of(model: InferenceModel) -> list[object]:
    """Every trained algorithm object the model holds (a bag's members, an ensemble's units)."""
    members = model.members
    units = getattr(members, "units", None)
    if units is not None:
        return [algorithm for unit in units for _, algorithm in unit.members]
    return [algorithm for _, algorithm in members]
