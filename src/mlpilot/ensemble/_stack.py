"""The stacking layer's inputs: base models' predictions as extra numeric columns.

A stacker is an ordinary candidate trained (with the same folds) on a prepared table that has
one more numeric column per base-model output: the out-of-fold predictions while training, the
base models' own predictions at inference. Probabilities enter on the log scale (log-odds for
binary, log-probabilities for multiclass), where a linear stacker is a geometric blend and a
tree stacker is unaffected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.profile import ColumnKind, ColumnProfile, DatasetProfile
from mlpilot.search import prepared_objective, write_prepared

__all__ = ["STACK_EPS", "stack_column_names", "stack_features", "write_stack_data"]

#: Probabilities are clipped to [STACK_EPS, 1 - STACK_EPS] before their log is taken.
STACK_EPS = 1e-6
PREFIX = "__stack"


def stack_column_names(n_inputs: int, problem_type: ProblemType, n_classes: int) -> list[str]:
    per = n_classes if problem_type is ProblemType.MULTICLASS else 1
    return [f"{PREFIX}_{i:02d}_{k}" for i in range(n_inputs) for k in range(per)]


def stack_features(outputs: list[np.ndarray], problem_type: ProblemType) -> np.ndarray:
    """Base-model outputs → the stacker's extra columns, ``(n, n_inputs × per-model)``."""
    blocks = []
    for out in outputs:
        out = np.asarray(out, dtype=np.float64)
        if problem_type is ProblemType.BINARY:
            p = np.clip(out[:, 1], STACK_EPS, 1 - STACK_EPS)
            blocks.append(np.log(p / (1 - p))[:, None])
        elif problem_type is ProblemType.MULTICLASS:
            blocks.append(np.log(np.clip(out, STACK_EPS, 1.0)))
        else:
            blocks.append(out.reshape(-1, 1))
    return np.hstack(blocks)


def write_stack_data(
    source: Path,
    destination: Path,
    outputs: list[np.ndarray],
    *,
    keep_features: bool,
) -> list[str]:
    """Copy the prepared data in ``source`` to ``destination`` with the stack columns added
    (``outputs`` are the base models' out-of-fold predictions, one row per table row); with
    ``keep_features=False`` the original features are dropped (a stacker on predictions only).
    Returns the stack column names."""
    profile = DatasetProfile.load(source / "profile.json")
    table = pd.read_parquet(source / "table.parquet")
    folds = np.load(source / "folds.npy")
    problem = profile.problem_type
    n_classes = len(profile.target.labels)
    names = stack_column_names(len(outputs), problem, n_classes)
    values = stack_features(outputs, problem)
    extra = pd.DataFrame(values, columns=names, index=table.index)
    table = pd.concat([table, extra], axis=1)
    columns = []
    for col in profile.columns:
        if not keep_features and col.kind != ColumnKind.DROP:
            col = ColumnProfile.from_dict(
                {**col.to_dict(), "kind": ColumnKind.DROP, "reason": "stacker on predictions"}
            )
        columns.append(col)
    for name in names:
        columns.append(
            ColumnProfile(
                name=name,
                kind=ColumnKind.NUMERIC,
                reason="a base model's out-of-fold prediction (stacking layer)",
                raw_dtype="float64",
                missing_ratio=0.0,
                n_unique=len(table),
            )
        )
    stacked = DatasetProfile.from_dict({**profile.to_dict(), "columns": []})
    stacked.columns = columns
    stacked.n_columns = len(columns)
    write_prepared(destination, table, stacked, folds, prepared_objective(source))
    return names
