"""Tabular analysis: read the channels, profile the table, drop unusable rows, choose the mode
(AUTO's rule) and plan the validation (holdout or k-fold, or ENSEMBLING's bagging folds)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlpilot._types import Mode
from mlpilot.config import JobConfig, TabularConfig
from mlpilot.data import read_table
from mlpilot.errors import ConfigError, DataError
from mlpilot.profile import MISSING_TOKENS, DatasetProfile, clean_labels, parse_numeric
from mlpilot.search import RowSplit, split_keys

__all__ = [
    "AUTO_ENSEMBLING_MAX_BYTES",
    "SEARCH_ROW_CAPS",
    "choose_mode",
    "read_channels",
    "row_split",
]

#: Largest sample the search trains on, by runtime budget (seconds → rows).
SEARCH_ROW_CAPS = ((120, 50_000), (900, 200_000))
#: Above this size (bytes in memory), AUTO mode would pick HYPERPARAMETER_TUNING anyway.
AUTO_ENSEMBLING_MAX_BYTES = 100 * 1024 * 1024


def read_channels(cfg: JobConfig) -> tuple[pd.DataFrame, int]:
    """The training table with the validation channel's rows (if any) appended; the number of
    those rows."""
    table = read_table(
        cfg.training_data,
        content_type=cfg.content_type,
        compression=cfg.compression,
        data_type=cfg.data_type,
    )
    if len(table) == 0:
        raise DataError("The training data has no rows")
    n_validation = 0
    if cfg.validation_data is not None:
        valid = read_table(
            cfg.validation_data, content_type=cfg.content_type, compression=cfg.compression
        )
        if list(valid.columns) != list(table.columns):
            raise DataError(
                "The validation channel's columns differ from the training data's: "
                f"{list(valid.columns)[:10]} vs {list(table.columns)[:10]}"
            )
        if len(valid) == 0:
            raise DataError("The validation data has no rows")
        n_validation = len(valid)
        table = pd.concat([table, valid], ignore_index=True)
    return table, n_validation


@dataclass
class UsableRows:
    table: pd.DataFrame
    y: np.ndarray
    n_validation: int


def usable_rows(
    table: pd.DataFrame, n_validation: int, cfg: TabularConfig, profile: DatasetProfile
) -> UsableRows:
    """Rows the profile says cannot be used (no target, no weight) leave the table here."""
    labels = clean_labels(table[cfg.target])
    usable = labels.notna()
    if pd.api.types.is_numeric_dtype(labels):  # e.g. inf in a Parquet float target
        usable &= ~np.isinf(labels.astype("float64"))
    if cfg.sample_weight:
        usable &= parse_numeric(table[cfg.sample_weight], MISSING_TOKENS).notna()
    keep = usable.to_numpy()
    n_validation = int(keep[len(table) - n_validation :].sum()) if n_validation else 0
    table = table[keep].reset_index(drop=True)
    return UsableRows(table, profile.target.encode(table[cfg.target]), n_validation)


def choose_mode(cfg: TabularConfig, table: pd.DataFrame) -> tuple[Mode, str]:
    """The training mode and why: AUTO picks ENSEMBLING under 100 MB of data (as CSV, as
    Autopilot measures it in storage), else HYPERPARAMETER_TUNING."""
    if cfg.mode is not Mode.AUTO:
        return cfg.mode, "set by the job"
    if cfg.candidates_only or cfg.candidates is not None:
        return Mode.HYPERPARAMETER_TUNING, (
            "AUTO chose HYPERPARAMETER_TUNING: candidate definitions (candidates-only job, "
            "or candidates given) are tuned candidates"
        )
    size = csv_bytes(table)
    if size < AUTO_ENSEMBLING_MAX_BYTES:
        return Mode.ENSEMBLING, (
            f"AUTO chose ENSEMBLING: {size / 2**20:.1f} MB of data (as CSV), under 100 MB"
        )
    return Mode.HYPERPARAMETER_TUNING, (
        f"AUTO chose HYPERPARAMETER_TUNING: {size / 2**20:.0f} MB of data (as CSV), 100 MB or more"
    )


def search_row_cap(max_runtime: float | None) -> int | None:
    """Largest sample the search trains on for this runtime budget (None: every row)."""
    if max_runtime is None:
        return None
    return next((rows for seconds, rows in SEARCH_ROW_CAPS if max_runtime <= seconds), None)


def sample_weights(cfg: TabularConfig, table: pd.DataFrame) -> np.ndarray | None:
    if not cfg.sample_weight:
        return None
    return parse_numeric(table[cfg.sample_weight], MISSING_TOKENS).to_numpy()


def csv_bytes(table: pd.DataFrame) -> int:
    """The table's size written as CSV, estimated from up to 2,000 rows."""
    if len(table) == 0:
        return 0
    sample = table.sample(min(2_000, len(table)), random_state=0) if len(table) > 2_000 else table
    per_row = len(sample.to_csv(index=False, header=False).encode()) / len(sample)
    return int(per_row * len(table))


def row_split(cfg: JobConfig, table: pd.DataFrame) -> RowSplit | None:
    """The time or group split the job asked for, keyed row for row with ``table``.

    The column stays what the profile made of it (a date's parts, an entity's category, or
    dropped as an identifier): the split is what keeps it honest.
    """
    spec = cfg.problem_as(TabularConfig)
    kind, column = (
        ("time", cfg.split_by_time)
        if cfg.split_by_time is not None
        else ("group", cfg.split_by_group)
    )
    if column is None:
        return None
    if column not in table.columns:
        raise DataError(
            f"Split column {column!r} is not in the data; columns are: "
            f"{', '.join(map(str, table.columns[:30]))}"
        )
    if column in (spec.target, spec.sample_weight):
        raise ConfigError(f"The split column {column!r} cannot be the target or the weight")
    return split_keys(kind, column, table[column])
