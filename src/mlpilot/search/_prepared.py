"""The training data as the workers see it: written once by the job, read once per worker.

``<dir>/table.parquet`` holds the raw rows (features, target, weight), ``<dir>/folds.npy`` a fold
number per row (``-1``: left out of the search, used only by the final refit), and
``<dir>/profile.json`` the profile, and ``<dir>/objective.json`` the job's own objective when it
has one (a cost matrix, a user metric), which loading the folder activates in the worker;
``<dir>/embeddings/`` holds a text job's sentence embeddings (one ``.npy`` per text column, a row
per table row, named in ``index.json``), which loading the folder hands to the encoder so that
no worker encodes a text again. Any executor that can reach the folder can run trials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlpilot.features import TableCleaner
from mlpilot.metrics import (
    CostMatrix,
    ObjectiveFunction,
    activate_objective,
    objective_from_dict,
    objective_to_dict,
)
from mlpilot.profile import MISSING_TOKENS, DatasetProfile, label_key, parse_numeric

__all__ = ["PreparedData", "load_prepared", "prepared_objective", "write_prepared"]

_CACHE: dict[str, PreparedData] = {}
#: The job's own objective in the prepared folder.
OBJECTIVE_FILE = "objective.json"
#: Text columns' sentence embeddings in the prepared folder.
EMBEDDINGS_DIR = "embeddings"


@dataclass
class PreparedData:
    profile: DatasetProfile
    raw: pd.DataFrame
    clean: pd.DataFrame
    y: np.ndarray
    weight: np.ndarray | None
    folds: np.ndarray
    objective: CostMatrix | ObjectiveFunction | None = None

    @property
    def n_classes(self) -> int:
        return len(self.profile.target.labels)


def write_prepared(
    directory: Path,
    table: pd.DataFrame,
    profile: DatasetProfile,
    folds: np.ndarray,
    objective: CostMatrix | ObjectiveFunction | None = None,
    embeddings: dict[str, tuple[str, np.ndarray]] | None = None,
) -> None:
    """``embeddings``: text column -> (encoder name, its vectors, a row per table row)."""
    directory.mkdir(parents=True, exist_ok=True)
    table.to_parquet(directory / "table.parquet", index=False)
    np.save(directory / "folds.npy", folds.astype(np.int16))
    profile.save(directory / "profile.json")
    objective_file = directory / OBJECTIVE_FILE
    if objective is not None:
        objective_file.write_text(json.dumps(objective_to_dict(objective)))
    else:
        objective_file.unlink(missing_ok=True)
    _write_embeddings(directory / EMBEDDINGS_DIR, embeddings or {}, len(table))


def _write_embeddings(
    directory: Path, embeddings: dict[str, tuple[str, np.ndarray]], n_rows: int
) -> None:
    if directory.exists():
        for old in directory.iterdir():
            old.unlink()
    if not embeddings:
        return
    directory.mkdir(exist_ok=True)
    index = {}
    for i, (column, (encoder, vectors)) in enumerate(embeddings.items()):
        if len(vectors) != n_rows:
            raise ValueError(f"{len(vectors)} embeddings for {n_rows} rows of {column!r}")
        np.save(directory / f"{i}.npy", np.asarray(vectors, dtype=np.float32))
        index[column] = {"encoder": encoder, "file": f"{i}.npy"}
    (directory / "index.json").write_text(json.dumps(index))


def _load_embeddings(directory: Path, raw: pd.DataFrame) -> None:
    """Hand the prepared embeddings to the encoder's memory of this process."""
    index_file = directory / "index.json"
    if not index_file.exists():
        return
    from mlpilot.features import remember_embeddings, text_values

    for column, entry in json.loads(index_file.read_text()).items():
        vectors = np.load(directory / entry["file"])
        remember_embeddings(entry["encoder"], text_values(raw[column]), vectors)


def prepared_objective(directory: Path) -> CostMatrix | ObjectiveFunction | None:
    """The job's own objective :func:`write_prepared` wrote in ``directory``, if any."""
    objective_file = directory / OBJECTIVE_FILE
    if not objective_file.exists():
        return None
    return objective_from_dict(json.loads(objective_file.read_text()))


def activate(data: PreparedData) -> None:
    """Make the data's objective (or none) this process's custom objective."""
    target = data.profile.target
    activate_objective(data.objective, target.problem_type, [label_key(v) for v in target.labels])


def load_prepared(directory: str) -> PreparedData:
    """Read (and cache for the life of the process) the prepared data in ``directory``."""
    cached = _CACHE.get(directory)
    if cached is not None:
        activate(cached)
        return cached
    path = Path(directory)
    profile = DatasetProfile.load(path / "profile.json")
    raw = pd.read_parquet(path / "table.parquet")
    folds = np.load(path / "folds.npy")
    y = profile.target.encode(raw[profile.target.name])
    weight = None
    if profile.sample_weight:
        weight = parse_numeric(raw[profile.sample_weight], MISSING_TOKENS).to_numpy()
    _load_embeddings(path / EMBEDDINGS_DIR, raw)
    clean = TableCleaner.from_profile(profile).fit().transform(raw)
    data = PreparedData(profile, raw, clean, y, weight, folds, prepared_objective(path))
    activate(data)
    _CACHE.clear()  # one dataset per worker at a time
    _CACHE[directory] = data
    return data
