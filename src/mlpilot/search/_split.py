"""How rows are divided for validation: holdout, k-fold, or a given validation channel; or, when
the job asks, by time (validate on the latest rows) or by group (no entity on both sides)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from mlpilot.errors import ConfigError, DataError
from mlpilot.profile import MISSING_TOKENS, parse_numeric

__all__ = [
    "CV_MAX_ROWS",
    "RowSplit",
    "ValidationPlan",
    "group_folds",
    "plan_validation",
    "split_keys",
]

#: Tables up to this many rows are cross-validated (5 folds) unless a fraction is given.
CV_MAX_ROWS = 5_000
CV_FOLDS = 5


@dataclass
class ValidationPlan:
    """``folds[i]`` is row i's fold; ``eval_folds`` are the folds scored in turn (each trained on
    the other rows); ``-1`` marks rows left out of the search (used by the final refit)."""

    method: str  # "holdout" | "cross-validation" | "validation channel"
    folds: np.ndarray
    eval_folds: tuple[int, ...]
    reason: str
    search_rows: int
    #: Forward chaining (time-series folds): fold k is scored by a model trained on the folds
    #: before it only, not on every other fold; fold 0 is never scored.
    forward: bool = False


@dataclass(frozen=True)
class RowSplit:
    """A split the job asked for (``--split-by-time`` / ``--split-by-group``).

    ``kind`` "time": ``keys`` are sortable numbers (missing ones are the earliest), the
    validation rows the latest. ``kind`` "group": ``keys`` are entity codes, and no entity has
    rows on both sides.
    """

    kind: str
    column: str
    keys: np.ndarray


def _stratify(y: np.ndarray | None) -> np.ndarray | None:
    """Labels to stratify on, or None when some class is too rare for it."""
    if y is None:
        return None
    _, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 2 else None


def plan_validation(
    n_rows: int,
    y: np.ndarray,
    *,
    classification: bool,
    seed: int,
    fraction: float | None,
    n_validation_rows: int = 0,
    search_row_cap: int | None = None,
    split: RowSplit | None = None,
) -> ValidationPlan:
    """Choose the validation scheme. The last ``n_validation_rows`` rows, when given, are the
    validation channel; ``split`` (row for row with ``y``) makes it a time or group split."""
    labels = y if classification else None
    if n_validation_rows:
        folds = np.zeros(n_rows, dtype=np.int16)
        folds[n_rows - n_validation_rows :] = 1
        return ValidationPlan(
            "validation channel", folds, (1,), "a validation channel was given", n_rows
        )

    folds = np.zeros(n_rows, dtype=np.int16)
    in_search = np.arange(n_rows)
    sampled = ""
    if search_row_cap and n_rows > search_row_cap:
        strat = _stratify(labels)
        keep, _ = train_test_split(
            in_search, train_size=search_row_cap, random_state=seed, stratify=strat
        )
        folds[:] = -1
        in_search = np.sort(keep)
        folds[in_search] = 0
        sampled = (
            f"; the search trains on a sample of {search_row_cap:,} of {n_rows:,} rows to "
            "fit the time budget, the final model on all rows"
        )
    sub_y = y[in_search]
    if split is not None:
        cv = fraction is None and len(in_search) <= CV_MAX_ROWS
        plan = _split_plan(split, in_search, sub_y if classification else None, seed, fraction, cv)
        folds[in_search] = plan.folds
        plan.folds = folds
        plan.reason += sampled
        return plan
    if fraction is None and len(in_search) <= CV_MAX_ROWS:
        strat = _stratify(sub_y if classification else None)
        splitter = (
            StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed)
            if strat is not None
            else KFold(CV_FOLDS, shuffle=True, random_state=seed)
        )
        with warnings.catch_warnings():  # rare classes: fewer members than folds is fine here
            warnings.simplefilter("ignore", UserWarning)
            splits = list(splitter.split(np.zeros(len(in_search)), strat))
        for k, (_, test) in enumerate(splits):
            folds[in_search[test]] = k
        return ValidationPlan(
            "cross-validation",
            folds,
            tuple(range(CV_FOLDS)),
            f"{CV_FOLDS}-fold cross-validation: {len(in_search):,} rows (at most "
            f"{CV_MAX_ROWS:,}) are few enough to use every row for validation" + sampled,
            len(in_search),
        )
    fraction = 0.2 if fraction is None else fraction
    strat = _stratify(sub_y if classification else None)
    _, valid = train_test_split(
        np.arange(len(in_search)), test_size=fraction, random_state=seed, stratify=strat
    )
    folds[in_search[valid]] = 1
    how = "stratified " if strat is not None else ""
    return ValidationPlan(
        "holdout",
        folds,
        (1,),
        f"{how}holdout of {fraction:.0%} of {len(in_search):,} rows" + sampled,
        len(in_search),
    )


def _split_plan(
    split: RowSplit,
    rows: np.ndarray,
    labels: np.ndarray | None,
    seed: int,
    fraction: float | None,
    cv: bool,
) -> ValidationPlan:
    """The plan for ``rows`` (its folds are theirs, in order) split by time or by group."""
    keys = split.keys[rows]
    n = len(rows)
    if split.kind == "time":
        if cv:
            # TimeSeriesSplit's shape: 6 blocks in time order, the last 5 scored in turn.
            blocks = CV_FOLDS + 1
            folds = _time_blocks(keys, np.arange(n) * blocks // max(n, 1))
            scored = tuple(k for k in range(1, blocks) if (folds == k).any())
            if len(scored) < 2:
                raise ConfigError(
                    f"Cannot split by time on {split.column!r}: too few distinct values"
                )
            return ValidationPlan(
                "time-series cross-validation",
                folds,
                scored,
                f"time-series cross-validation on {split.column!r}: {n:,} rows in time order "
                f"in {blocks} blocks, each of the last {len(scored)} scored by a model trained "
                "on the blocks before it",
                n,
                forward=True,
            )
        fraction = 0.2 if fraction is None else fraction
        cut = n - max(1, round(n * fraction))
        folds = _time_blocks(keys, (np.arange(n) >= cut).astype(np.int16))
        if not (folds == 1).any() or (folds == 1).all():
            raise ConfigError(f"Cannot split by time on {split.column!r}: too few distinct values")
        return ValidationPlan(
            "time holdout",
            folds,
            (1,),
            f"time holdout on {split.column!r}: the latest {(folds == 1).mean():.0%} of "
            f"{n:,} rows validate, the earlier ones train",
            n,
        )
    n_groups = len(np.unique(keys))
    if n_groups < 2:
        raise ConfigError(
            f"Cannot split by group on {split.column!r}: it needs at least 2 distinct values"
        )
    if cv:
        k = min(CV_FOLDS, n_groups)
        folds = group_folds(keys, labels, k, seed)
        return ValidationPlan(
            "group cross-validation",
            folds,
            tuple(range(k)),
            f"{k}-fold group cross-validation on {split.column!r}: {n:,} rows of {n_groups:,} "
            "entities, each entity's rows in one fold",
            n,
        )
    fraction = 0.2 if fraction is None else fraction
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    _, valid = next(splitter.split(np.zeros(n), groups=keys))
    folds = np.zeros(n, dtype=np.int16)
    folds[valid] = 1
    return ValidationPlan(
        "group holdout",
        folds,
        (1,),
        f"group holdout on {split.column!r}: {fraction:.0%} of {n_groups:,} entities "
        f"({len(valid):,} of {n:,} rows) validate, the others train",
        n,
    )


def group_folds(keys: np.ndarray, labels: np.ndarray | None, k: int, seed: int) -> np.ndarray:
    """``k`` folds with each group's rows in one fold (stratified when ``labels`` allow)."""
    strat = _stratify(labels)
    n = len(keys)
    folds = np.zeros(n, dtype=np.int16)
    splitter: GroupKFold | StratifiedGroupKFold = (
        StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        if strat is not None
        else GroupKFold(k)
    )
    with warnings.catch_warnings():  # rare classes: fewer members than folds is fine here
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, test) in enumerate(splitter.split(np.zeros(n), strat, groups=keys)):
            folds[test] = fold
    return folds


def _time_blocks(keys: np.ndarray, block_at: np.ndarray) -> np.ndarray:
    """Each row's block: ``block_at[i]`` is the block of the i-th row in time order; rows with
    the same time share the block of the first of them (no tie straddles a cut)."""
    keys = np.where(np.isnan(keys), -np.inf, keys)
    order = np.argsort(keys, kind="stable")
    first = np.searchsorted(keys[order], keys, side="left")
    return np.asarray(block_at, dtype=np.int16)[first]


def split_keys(kind: str, column: str, raw: pd.Series) -> RowSplit:
    """``raw``'s split keys: entity codes (``kind`` "group", missing values one entity) or
    sortable times ("time": dates or numbers, missing ones the earliest)."""
    if kind == "group":
        codes, _ = pd.factorize(raw.astype("string").fillna("<missing>"))
        return RowSplit("group", column, codes)
    keys = parse_numeric(raw, MISSING_TOKENS)
    if keys.notna().sum() < len(raw) * 0.5 or pd.api.types.is_datetime64_any_dtype(raw):
        dates = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True)
        if dates.notna().sum() < len(raw) * 0.5:
            raise DataError(
                f"Cannot split by time on {column!r}: most of its values are neither dates "
                "nor numbers"
            )
        stamps = dates.dt.tz_localize(None).to_numpy("datetime64[ns]").astype("int64")
        return RowSplit("time", column, np.where(dates.isna(), np.nan, stamps.astype(float)))
    return RowSplit("time", column, keys.to_numpy(dtype=float, na_value=np.nan))
