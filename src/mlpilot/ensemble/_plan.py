"""How ENSEMBLING divides the rows: k-fold bagging (or a holdout the user asked for), how many
folds, and whether the table must be sampled to fit the time budget or the machine's memory."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from mlpilot.errors import ConfigError
from mlpilot.search import RowSplit, ValidationPlan, group_folds, plan_validation

__all__ = ["BaggingPlan", "plan_bagging", "sample_rows"]

#: Rows the bags train on at most, by runtime budget (seconds → rows).
ROW_CAPS = ((120, 50_000), (900, 200_000), (3_600, 1_000_000))
#: Share of the machine's memory the job may plan to use (parent + workers).
MEMORY_SHARE = 0.4
#: Copies of the table a worker holds at its peak (raw, typed, a fold's matrices, models).
WORKER_COPIES = 4.0
#: Base models whose out-of-fold predictions the parent keeps at most (for the memory plan).
PLANNED_MODELS = 40
#: Tables larger than this (rows) are bagged with 3 folds when the budget is short.
FEW_FOLDS_ROWS = 20_000
SHORT_BUDGET = 600


@dataclass
class BaggingPlan:
    validation: ValidationPlan
    #: Whether the base models are k-fold bags (else: one model each, scored on a holdout).
    bagged: bool
    #: Row numbers (of the usable table) the job trains on; None: all.
    sample: np.ndarray | None
    sample_reason: str
    #: Folds by entity: a forest's out-of-bag rows share entities with its bootstrap, so it
    #: is scored fold by fold instead.
    grouped: bool = False


#: Memory limits of the process's control group (v2, then v1): in a container the machine's
#: physical memory overstates what the job may use.
CGROUP_LIMITS = (
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
)


def _machine_memory() -> int:
    """Bytes the job may use: the physical memory, or the container's limit when lower."""
    try:
        physical = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        physical = 8 * 2**30
    for path in CGROUP_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < physical:
            return int(text)  # "max" (v2) or a huge number (v1) means no limit
    return physical


def sample_rows(
    n_rows: int,
    table_bytes: int,
    *,
    n_outputs: int,
    workers: int,
    budget: float | None,
    memory: int | None = None,
) -> tuple[int | None, str]:
    """The row cap (None: every row) and why."""
    caps: list[tuple[int, str]] = []
    if budget is not None:
        for seconds, rows in ROW_CAPS:
            if budget <= seconds:
                caps.append((rows, f"the {budget:g} s runtime budget"))
                break
    memory = memory or _machine_memory()
    per_row = table_bytes / max(1, n_rows) * (1 + WORKER_COPIES * workers)
    per_row += 8.0 * max(1, n_outputs) * PLANNED_MODELS
    fits = int(MEMORY_SHARE * memory / max(per_row, 1.0))
    caps.append((fits, f"{MEMORY_SHARE:.0%} of the machine's {memory / 2**30:.0f} GiB of memory"))
    rows, why = min(caps)
    if rows >= n_rows:
        return None, ""
    return rows, why


def plan_bagging(
    n_rows: int,
    y: np.ndarray,
    *,
    classification: bool,
    seed: int,
    fraction: float | None,
    n_validation_rows: int,
    budget: float | None,
    row_cap: int | None,
    cap_reason: str,
    split: RowSplit | None = None,
) -> BaggingPlan:
    """Folds for the ENSEMBLING job. ``folds[i] == -1`` never happens: rows outside a sample
    are removed from the table the workers see.

    A time split is a time holdout (stacking needs out-of-fold predictions for every row,
    which no fold trained on the past alone gives the earliest rows); a group split's bagging
    folds keep each entity's rows in one fold."""
    sample = None
    sample_reason = ""
    if row_cap is not None and n_rows > row_cap and not n_validation_rows:
        strat = _stratify(y if classification else None)
        keep, _ = train_test_split(
            np.arange(n_rows), train_size=row_cap, random_state=seed, stratify=strat
        )
        sample = np.sort(keep)
        sample_reason = (
            f"trained on a stratified sample of {row_cap:,} of {n_rows:,} rows to fit {cap_reason}"
            if strat is not None
            else f"trained on a sample of {row_cap:,} of {n_rows:,} rows to fit {cap_reason}"
        )
        y = y[sample]
        n_rows = row_cap
        if split is not None:
            split = RowSplit(split.kind, split.column, split.keys[sample])
    time_split = split is not None and split.kind == "time"
    if n_validation_rows or fraction is not None or time_split:
        plan = plan_validation(
            n_rows,
            y,
            classification=classification,
            seed=seed,
            fraction=fraction if fraction is not None else 0.2,
            n_validation_rows=n_validation_rows,
            split=split,
        )
        plan.reason += (
            "; each base model is trained once on the training rows and the ensemble is "
            "weighted on the validation rows (no stacking layer: it needs out-of-fold "
            "predictions for every row)"
        )
        return BaggingPlan(plan, False, sample, sample_reason)
    k = 5
    if n_rows > FEW_FOLDS_ROWS and budget is not None and budget < SHORT_BUDGET:
        k = 3
    if split is not None:
        n_groups = len(np.unique(split.keys))
        if n_groups < 2:
            raise ConfigError(
                f"Cannot split by group on {split.column!r}: it needs at least 2 distinct values"
            )
        k = min(k, n_groups)
        folds = group_folds(split.keys, y if classification else None, k, seed)
    else:
        strat = _stratify(y if classification else None)
        splitter = (
            StratifiedKFold(k, shuffle=True, random_state=seed)
            if strat is not None
            else KFold(k, shuffle=True, random_state=seed)
        )
        folds = np.zeros(n_rows, dtype=np.int16)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for fold, (_, test) in enumerate(splitter.split(np.zeros(n_rows), strat)):
                folds[test] = fold
    why = (
        f"{k}-fold bagging: every base model is trained {k} times, each time on {k - 1}/{k} of "
        f"the {n_rows:,} rows, and scored on the fold it did not see (out-of-fold predictions "
        "for every row, shared by all models so the stacker and the ensemble compare them "
        "row for row)"
    )
    if split is not None:
        why += f"; folds by group on {split.column!r}: each entity's rows in one fold"
    elif k == 3:
        why += f"; 3 folds rather than 5: over {FEW_FOLDS_ROWS:,} rows under a short budget"
    method = "bagged group cross-validation" if split is not None else "bagged cross-validation"
    plan = ValidationPlan(method, folds, tuple(range(k)), why, n_rows)
    return BaggingPlan(plan, True, sample, sample_reason, grouped=split is not None)


def _stratify(y: np.ndarray | None) -> np.ndarray | None:
    if y is None:
        return None
    _, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 2 else None
