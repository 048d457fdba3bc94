"""What a job keeps for its notebooks and reports after its prepared data is gone.

The job deletes its working copy of the data (``.work/``) when it ends, so the analysis folder
keeps a small, self-contained extract in ``data-sample/``:

``rows.parquet``
    A seeded random sample of at most :data:`SAMPLE_ROWS` training rows, raw as read, indexed
    by row number in the prepared table (the rows ``validation-predictions.npz`` refers to).
``targets.npz``
    ``y`` (the encoded target of every prepared row), ``weight`` (empty without a weight column),
    ``folds`` (the validation plan) and ``groups`` (each row's group of the job's sensitive
    attribute; empty without one): enough to score any candidate's saved validation
    predictions again, by group too.
``duplicates.parquet``
    The most repeated rows with their counts (only when the table has duplicates).
``training-data.parquet`` / ``validation-data.parquet``
    The job's input when it was a DataFrame, so the candidate notebook can re-run it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.errors import JobNotFoundError
from mlpilot.metrics import sensitive_groups
from mlpilot.profile import MISSING_TOKENS, DatasetProfile, parse_numeric

__all__ = [
    "SAMPLE_ROWS",
    "SavedTargets",
    "load_sample",
    "load_targets",
    "save_data_sample",
    "save_input_frames",
]

#: Rows kept for the notebooks and the explanations.
SAMPLE_ROWS = 10_000
#: Distinct duplicated rows kept as examples.
DUPLICATE_EXAMPLES = 20
ROWS = "rows.parquet"
TARGETS = "targets.npz"
DUPLICATES = "duplicates.parquet"
ROW_INDEX = "__row__"
COUNT_COLUMN = "__count__"


@dataclass
class SavedTargets:
    y: np.ndarray
    weight: np.ndarray | None
    folds: np.ndarray
    #: Each row's group of the sensitive attribute (None without one).
    groups: np.ndarray | None = None


def _write_parquet(frame: pd.DataFrame, path: Path, *, index: bool) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=index)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the sample from other readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_data_sample(
    prepared_dir: Path, out_dir: Path, *, seed: int, sensitive: str | None = None
) -> None:
    """Extract the sample, targets and duplicate examples from a job's prepared data
    (``sensitive``: the column whose groups go with the targets)."""
    profile = DatasetProfile.load(prepared_dir / "profile.json")
    table = pd.read_parquet(prepared_dir / "table.parquet")
    folds = np.load(prepared_dir / "folds.npy")
    out_dir.mkdir(parents=True, exist_ok=True)

    y = profile.target.encode(table[profile.target.name])
    weight = (
        parse_numeric(table[profile.sample_weight], MISSING_TOKENS).to_numpy()
        if profile.sample_weight
        else np.zeros(0)
    )
    fd, tmp = tempfile.mkstemp(prefix=".targets.", suffix=".npz", dir=out_dir)
    os.close(fd)
    groups = (
        sensitive_groups(table[sensitive]).astype(str)
        if sensitive and sensitive in table.columns
        else np.zeros(0, dtype=str)
    )
    np.savez_compressed(tmp, y=y, weight=weight, folds=folds, groups=groups)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out_dir / TARGETS)

    rng = np.random.default_rng(seed)
    n = len(table)
    take = np.sort(rng.choice(n, size=min(n, SAMPLE_ROWS), replace=False))
    sample = table.iloc[take].copy()
    sample.index = pd.Index(take, name=ROW_INDEX)
    _write_parquet(sample, out_dir / ROWS, index=True)

    if profile.duplicate_rows:
        repeated = table[table.duplicated(keep=False)]
        counts = repeated.value_counts(dropna=False).head(DUPLICATE_EXAMPLES)
        examples = counts.index.to_frame(index=False)
        examples.insert(0, COUNT_COLUMN, counts.to_numpy())
        _write_parquet(examples, out_dir / DUPLICATES, index=False)


def save_input_frames(config: Any, out_dir: Path) -> dict[str, str]:
    """Save DataFrame inputs as Parquet; returns the paths by JobConfig field."""
    saved: dict[str, str] = {}
    for field_name, file_name in (
        ("training_data", "training-data.parquet"),
        ("validation_data", "validation-data.parquet"),
    ):
        frame = getattr(config, field_name)
        if isinstance(frame, pd.DataFrame):
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_parquet(frame, out_dir / file_name, index=False)
            saved[field_name] = str((out_dir / file_name).resolve())
    return saved


def load_sample(sample_dir: Path) -> pd.DataFrame:
    path = sample_dir / ROWS
    if not path.exists():
        raise JobNotFoundError(f"No data sample at {sample_dir} (the job did not save one)")
    return pd.read_parquet(path)


def load_duplicates(sample_dir: Path) -> pd.DataFrame | None:
    path = sample_dir / DUPLICATES
    return pd.read_parquet(path) if path.exists() else None


def load_targets(sample_dir: Path) -> SavedTargets:
    path = sample_dir / TARGETS
    if not path.exists():
        raise JobNotFoundError(f"No saved targets at {sample_dir} (the job did not save them)")
    with np.load(path) as saved:
        weight = saved["weight"]
        # Sample folders saved before groups were kept have none.
        groups = saved["groups"] if "groups" in saved.files else np.zeros(0, dtype=str)
        return SavedTargets(
            saved["y"],
            weight if weight.size else None,
            saved["folds"],
            groups.astype(object) if groups.size else None,
        )
