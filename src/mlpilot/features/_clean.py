"""Raw table → typed feature table, as the profile decided.

The same transformer runs in training and inside the model package, so a row is read the same
way at prediction time as it was during training (the " " in Telco's TotalCharges, zeros that
mean missing, categories as strings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlpilot.errors import PredictionInputError
from mlpilot.profile import MISSING_TOKENS, ColumnKind, DatasetProfile, parse_numeric

__all__ = ["Coded", "TableCleaner"]


@dataclass(frozen=True)
class Coded:
    """A column as positions into its distinct values (``values[codes]`` is the column), as a
    bulk reader's dictionary encoding gives it. The cleaner and the feature pipelines' NumPy
    twin read each distinct value once and gather the result by ``codes``."""

    codes: np.ndarray  # one integer position into ``values`` per row
    values: np.ndarray  # the distinct values (object array)

    def __len__(self) -> int:
        return len(self.codes)

    def materialize(self) -> np.ndarray:
        """The column as one value per row."""
        return self.values[self.codes]


def _level(value: Any) -> Any:
    """One category value as the CSV would spell it; NaN for missing or blank."""
    if _is_missing(value):
        return np.nan
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    token = str(value).strip()
    return token if token else np.nan


def _as_category_strings(s: pd.Series) -> np.ndarray:
    """Categories as Python strings with NaN for missing (what sklearn's encoders expect).

    Works on the distinct values, so 1.0 and 1 are the same level whether the table came from
    CSV, Parquet or a DataFrame.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    levels = np.array([_level(v) for v in uniques] + [np.nan], dtype=object)
    return levels[codes]  # code -1 picks the trailing NaN


#: Up to this many rows, values are converted one by one: pandas' per-call overhead would
#: dominate the time of a single-row prediction.
SMALL_BATCH = 64


def _bad_numbers(name: str, examples: list[str], count: int) -> PredictionInputError:
    return PredictionInputError(
        f"Column {name!r} must be numeric; found {examples[:3]} in {count} row(s)"
    )


#: What pandas' to_numeric reads as a finite number (so both paths agree on every token).
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INFINITY = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


def _missing_set(extra: list[str] | None) -> frozenset[str]:
    return MISSING_TOKENS | {t.strip().lower() for t in extra or []}


def _numbers(name: str, raw: pd.Series, strict: bool, extra: list[str] | None) -> np.ndarray:
    missing = _missing_set(extra)
    x = parse_numeric(raw, missing)
    if strict and not (pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw)):
        lowered = raw.astype("string").str.strip().str.lower()
        bad = (
            raw.notna()
            & (lowered != "")
            & ~lowered.isin(missing)
            & ~lowered.isin(_INFINITY)
            & x.isna()
        )
        if bad.any():
            raise _bad_numbers(name, raw[bad].astype(str).unique().tolist(), int(bad.sum()))
    return x.to_numpy()


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _numbers_small(
    name: str, raw: pd.Series | np.ndarray, strict: bool, extra: list[str] | None
) -> np.ndarray:
    """Value by value, reading every token exactly as :func:`parse_numeric` does."""
    missing = _missing_set(extra)
    out = np.full(len(raw), np.nan)
    bad: list[str] = []
    for i, value in enumerate(raw.tolist()):
        if _is_missing(value):
            continue
        if isinstance(value, (bool, np.bool_)):
            out[i] = float(value)
        elif isinstance(value, (int, float, np.number)):
            out[i] = float(value) if np.isfinite(value) else np.nan
        else:
            token = str(value).strip()
            lowered = token.lower()
            if lowered in missing or lowered in _INFINITY:
                continue
            if _NUMBER.match(token):
                number = float(token)
                out[i] = number if np.isfinite(number) else np.nan
            else:
                bad.append(token)
    if strict and bad:
        raise _bad_numbers(name, bad, len(bad))
    return out


def _categories_small(raw: pd.Series | np.ndarray) -> np.ndarray:
    return np.array([_level(v) for v in raw.tolist()] or [], dtype=object)


def _all_strings(values: np.ndarray) -> bool:
    return all(isinstance(v, str) for v in values)


def text_values(raw: pd.Series) -> np.ndarray:
    """A text column's values as the features read them: strings, a missing value as ""."""
    text: np.ndarray = raw.astype("string").fillna("").astype(object).to_numpy()
    return text


def _text_or_dates(kind: str, raw: pd.Series) -> np.ndarray:
    if kind == ColumnKind.TEXT:
        return text_values(raw)
    if pd.api.types.is_datetime64_any_dtype(raw):
        stamps = pd.to_datetime(raw, utc=True)
    else:
        tokens = raw.astype("string").str.strip()
        tokens = tokens.mask(tokens.str.lower().isin(MISSING_TOKENS))
        stamps = pd.to_datetime(tokens, errors="coerce", format="mixed", utc=True)
    dates: np.ndarray = stamps.dt.tz_localize(None).to_numpy()
    return dates


class TableCleaner(TransformerMixin, BaseEstimator):
    """Select the feature columns and give each the type the profile chose.

    Parameters
    ----------
    columns:
        ``[{"name", "kind", "zero_means_missing"}, ...]`` for the features, in training order.
    """

    def __init__(self, columns: list[dict[str, Any]] | None = None) -> None:
        self.columns = columns

    @classmethod
    def from_profile(cls, profile: DatasetProfile) -> TableCleaner:
        return cls(
            [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "zero_means_missing": c.zero_means_missing,
                    "missing_tokens": list(c.missing_tokens),
                }
                for c in profile.columns
                if c.kind != ColumnKind.DROP
            ]
        )

    def fit(self, X: pd.DataFrame | None = None, y: Any = None) -> TableCleaner:
        self.feature_names_in_ = np.asarray([c["name"] for c in self.columns or []], dtype=object)
        return self

    def check_input(self, X: pd.DataFrame) -> None:
        """Raise a one-line :class:`PredictionInputError` if ``X`` cannot be read as trained."""
        self.transform(X, strict=True)

    def _missing_columns(self, given: Any) -> None:
        names = [c["name"] for c in self.columns or []]
        given = set(given)  # a pandas Index answers `in` several times slower
        missing = [n for n in names if n not in given]
        if missing:
            shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise PredictionInputError(
                f"{len(missing)} feature column(s) the model was trained on are missing: {shown}"
            )

    def transform(self, X: pd.DataFrame, strict: bool = False) -> pd.DataFrame:
        """Typed feature columns. ``strict`` (prediction): a numeric column holding text that is
        neither a number nor a missing marker is an error instead of a missing value."""
        return pd.DataFrame(self.transform_arrays(X, strict=strict), index=X.index)

    def transform_arrays(self, X: pd.DataFrame, strict: bool = False) -> dict[str, np.ndarray]:
        """:meth:`transform` as a dict of NumPy arrays, one per column: what the feature
        pipelines' small-batch path reads (a DataFrame's column access costs more than the
        transform of one row)."""
        self._missing_columns(X.columns)
        small = len(X) <= SMALL_BATCH
        # A few rows of text (what a serving request decodes to): one object block, read by
        # position, since each DataFrame column lookup costs more than parsing the value.
        block: np.ndarray | None = None
        position: dict[Any, int] = {}
        if small and X.columns.is_unique and all(map(pd.api.types.is_object_dtype, X.dtypes)):
            block = X.to_numpy()
            position = {name: i for i, name in enumerate(X.columns)}
        out: dict[str, Any] = {}
        for col in self.columns or []:
            name, kind = col["name"], col["kind"]
            if block is not None and kind in (ColumnKind.NUMERIC, ColumnKind.CATEGORICAL):
                values = block[:, position[name]]
                if kind == ColumnKind.NUMERIC:
                    x = _numbers_small(name, values, strict, col.get("missing_tokens"))
                    out[name] = np.where(x == 0, np.nan, x) if col.get("zero_means_missing") else x
                else:
                    out[name] = _categories_small(values)
                continue
            raw = X[name]
            if kind == ColumnKind.NUMERIC:
                extra = col.get("missing_tokens")
                read = _numbers_small if small else _numbers
                x = read(name, raw, strict, extra)
                if col.get("zero_means_missing"):
                    x = np.where(x == 0, np.nan, x)
                out[name] = x
            elif kind == ColumnKind.CATEGORICAL:
                out[name] = _categories_small(raw) if small else _as_category_strings(raw)
            elif kind == ColumnKind.TEXT and small and _all_strings(values := raw.to_numpy()):
                out[name] = np.array(values, dtype=object)  # already what pandas would give
            elif kind in (ColumnKind.TEXT, ColumnKind.DATETIME):
                out[name] = _text_or_dates(kind, raw)
        return out

    def transform_coded(
        self, X: Mapping[str, Coded], strict: bool = False
    ) -> dict[str, np.ndarray | Coded]:
        """:meth:`transform_arrays` of text columns given as :class:`Coded` (a bulk reader's
        output; more than ``SMALL_BATCH`` rows): numbers and categories are read once per
        distinct value, with the functions :meth:`transform` applies to every row, and gathered
        by the codes. Numeric columns come back as arrays, categorical ones as :class:`Coded`
        levels, text and dates as arrays."""
        self._missing_columns(X)
        out: dict[str, np.ndarray | Coded] = {}
        for col in self.columns or []:
            name, kind = col["name"], col["kind"]
            coded = X[name]
            if kind == ColumnKind.NUMERIC:
                extra = col.get("missing_tokens")
                try:
                    x = _numbers(name, pd.Series(coded.values, dtype=object), strict, extra)
                except PredictionInputError:
                    # The message counts rows: read them all to say how many.
                    _numbers(name, pd.Series(coded.materialize(), dtype=object), strict, extra)
                    raise
                if col.get("zero_means_missing"):
                    x = np.where(x == 0, np.nan, x)
                out[name] = x[coded.codes]
            elif kind == ColumnKind.CATEGORICAL:
                levels = np.array([_level(v) for v in coded.values.tolist()] or [], dtype=object)
                out[name] = Coded(coded.codes, levels)
            elif kind in (ColumnKind.TEXT, ColumnKind.DATETIME):
                out[name] = _text_or_dates(kind, pd.Series(coded.materialize(), dtype=object))
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([c["name"] for c in self.columns or []], dtype=object)
