"""The training data as the workers see it: written once by the job, read once per worker.

``<dir>/table.parquet`` holds the raw rows (features, target, weight), ``<dir>/folds.npy`` a fold
number per row (``-1``: left out of the search, used only by the final refit), and
``<dir>/profile.json`` the profile. Any executor that can reach the folder can run trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlpilot.features import TableCleaner
from mlpilot.profile import MISSING_TOKENS, DatasetProfile, parse_numeric

__all__ = ["PreparedData", "load_prepared", "write_prepared"]

_CACHE: dict[str, PreparedData] = {}


@dataclass
class PreparedData:
    profile: DatasetProfile
    raw: pd.DataFrame
    clean: pd.DataFrame
    y: np.ndarray
    weight: np.ndarray | None
    folds: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.profile.target.labels)


def write_prepared(
    directory: Path, table: pd.DataFrame, profile: DatasetProfile, folds: np.ndarray
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    table.to_parquet(directory / "table.parquet", index=False)
    np.save(directory / "folds.npy", folds.astype(np.int16))
    profile.save(directory / "profile.json")


def load_prepared(directory: str) -> PreparedData:
    """Read (and cache for the life of the process) the prepared data in ``directory``."""
    cached = _CACHE.get(directory)
    if cached is not None:
        return cached
    path = Path(directory)
    profile = DatasetProfile.load(path / "profile.json")
    raw = pd.read_parquet(path / "table.parquet")
    folds = np.load(path / "folds.npy")
    y = profile.target.encode(raw[profile.target.name])
    weight = None
    if profile.sample_weight:
        weight = parse_numeric(raw[profile.sample_weight], MISSING_TOKENS).to_numpy()
    clean = TableCleaner.from_profile(profile).fit().transform(raw)
    data = PreparedData(profile, raw, clean, y, weight, folds)
    _CACHE.clear()  # one dataset per worker at a time
    _CACHE[directory] = data
    return data
