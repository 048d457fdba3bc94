"""How rows are divided for validation: holdout, k-fold, or a given validation channel."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

__all__ = ["CV_MAX_ROWS", "ValidationPlan", "plan_validation"]

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
) -> ValidationPlan:
    """Choose the validation scheme. The last ``n_validation_rows`` rows, when given, are the
    validation channel."""
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
