"""Column type inference: what each raw column is, and why.

The readers hand over raw tokens (CSV columns arrive as strings), so the decisions here see the
table as its author wrote it: ``" "`` in a numeric column, ``"?"`` or ``"unknown"`` for missing,
zeros standing for missing measurements, ``"None"`` used as a real category, identifiers, free
text and dates stored as strings.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["MISSING_TOKENS", "ColumnKind", "ColumnProfile", "infer_column", "parse_numeric"]


class ColumnKind:
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    TEXT = "text"
    DATETIME = "datetime"
    DROP = "drop"

    ALL = ("numeric", "categorical", "text", "datetime", "drop")
    #: SageMaker FeatureDataTypes values mapped to ours ("sequence" is read as text).
    FROM_SPEC: ClassVar[dict[str, str]] = {
        "numeric": "numeric",
        "categorical": "categorical",
        "text": "text",
        "datetime": "datetime",
        "sequence": "text",
    }


#: Tokens that stand for "no value" in real tables (compared stripped and lower-cased).
MISSING_TOKENS = frozenset(
    {"", "?", "na", "n/a", "nan", "null", "none", "unknown", "-", "--", "missing", "#n/a", "nil"}
)

_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"([ T]\d{1,2}:\d{2}(:\d{2})?(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key)$|^(id|uuid|guid|index|instant)$", re.I)

# Thresholds, named so the profile can quote them.
NUMERIC_PARSE_SHARE = 0.99  # share of non-missing tokens that must parse as numbers
TEXT_MIN_WORDS = 3.0  # mean words per value for free text
TEXT_MIN_UNIQUE = 0.3  # share of distinct values for free text
ID_MIN_UNIQUE = 0.98  # share of distinct values for an identifier
HIGH_CARDINALITY = 64  # categorical levels beyond which target encoding is used
MAX_EXTRA_TOKENS = 20  # unparseable tokens of a numeric column remembered as missing markers


@dataclass
class ColumnProfile:
    """What the profiler decided about one column.

    ``kind`` is one of numeric, categorical, text, datetime or drop; ``reason`` says why in a
    sentence. ``missing_tokens`` are the raw tokens read as missing; ``category_tokens`` are
    missing-looking tokens deliberately kept as categories (e.g. ``"None"`` for "no veneer").
    """

    name: str
    kind: str
    reason: str
    raw_dtype: str
    missing_ratio: float
    n_unique: int
    missing_tokens: list[str] = field(default_factory=list)
    category_tokens: list[str] = field(default_factory=list)
    zero_means_missing: bool = False
    unparsed_values: int = 0
    high_cardinality: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    #: A text column: TF-IDF of character n-grams beside the word n-grams (a text job's).
    text_char_ngrams: bool = False
    #: A text column: the sentence encoder whose embeddings join its features (None: none).
    text_embedding: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        return cls(**data)


def _is_text_series(s: pd.Series) -> bool:
    return bool(pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s))


def parse_numeric(values: pd.Series, missing_tokens: set[str] | frozenset[str]) -> pd.Series:
    """Strings to floats: missing tokens become NaN, anything unparseable or infinite too.

    Works on the distinct values only, so a column of a million repeated tokens costs little.
    """
    if not _is_text_series(values):
        x = pd.to_numeric(values, errors="coerce").astype("float64")
        return x.mask(np.isinf(x))
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    tokens = pd.Series(uniques, dtype="string").str.strip()
    tokens = tokens.mask(tokens.str.lower().isin(missing_tokens))
    parsed = pd.to_numeric(tokens, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    parsed = np.where(np.isinf(parsed), np.nan, parsed)  # imputers and models reject infinity
    out = (
        np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.nan)
        if len(parsed)
        else (np.full(len(values), np.nan))
    )
    return pd.Series(out, index=values.index, name=values.name, dtype="float64")


def _zero_means_missing(x: pd.Series) -> bool:
    """True when 0 sits far below every other value, as missing measurements do (Pima)."""
    finite = x.dropna()
    if finite.empty or (finite < 0).any():
        return False
    zeros = int((finite == 0).sum())
    positive = np.unique(finite[finite > 0].to_numpy())
    if zeros == 0 or positive.size < 20 or zeros > 0.5 * len(finite):
        return False
    typical_step = float(np.median(np.diff(positive)))
    return bool(typical_step > 0 and positive[0] >= 5 * typical_step)


def _numeric_stats(x: pd.Series) -> dict[str, Any]:
    finite = x.dropna()
    if finite.empty:
        return {}
    q1, q3 = np.percentile(finite, [25, 75])
    iqr = q3 - q1
    outliers = int(((finite < q1 - 3 * iqr) | (finite > q3 + 3 * iqr)).sum()) if iqr > 0 else 0
    return {
        "min": float(finite.min()),
        "max": float(finite.max()),
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=0)),
        "median": float(finite.median()),
        "outliers_3iqr": outliers,
    }


@dataclass
class _Tokens:
    """A text column's distinct raw tokens, split into missing markers and present values."""

    counts: pd.Series  # occurrences per distinct raw token
    stripped: pd.Series  # the distinct tokens, stripped
    missing: list[str]  # raw tokens that look missing
    uniques: pd.Series  # distinct present values (stripped)
    weights: np.ndarray  # occurrences of each present value
    n_present: int


def _tokens(raw: pd.Series) -> _Tokens:
    counts = raw.value_counts(dropna=True)
    counts = counts[counts > 0]  # a categorical dtype also lists its unused categories
    stripped = pd.Series(counts.index, dtype="string").str.strip()
    is_token = stripped.str.lower().isin(MISSING_TOKENS).to_numpy()
    weights = counts.to_numpy()[~is_token]
    return _Tokens(
        counts=counts,
        stripped=stripped,
        missing=sorted(set(map(str, counts.index[is_token]))),
        uniques=stripped[~is_token].reset_index(drop=True),
        weights=weights,
        n_present=int(weights.sum()),
    )


def _text_numbers(
    name: str, raw: pd.Series, tok: _Tokens, *, identify: bool = True
) -> ColumnProfile | None:
    """The column as numbers when enough of its present values parse, else None."""
    parsed = pd.to_numeric(tok.uniques, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if tok.n_present:
        parse_share = float(tok.weights[~np.isnan(parsed)].sum() / tok.n_present)
        if parse_share < NUMERIC_PARSE_SHARE:
            return None
    unparsed = int(tok.weights[np.isnan(parsed)].sum())
    infinite = int(tok.weights[np.isinf(parsed)].sum())
    # The rare tokens that are not numbers join the missing markers, so prediction later reads
    # them the same way (instead of rejecting a row the model was trained on).
    odd = sorted(set(tok.uniques[np.isnan(parsed)].astype(str)))[:MAX_EXTRA_TOKENS]
    why = "numbers stored as text"
    if tok.missing:
        why += f"; {', '.join(repr(t) for t in tok.missing)} read as missing"
    if unparsed:
        shown = ", ".join(repr(t) for t in odd[:5])
        why += f"; {unparsed} unparseable value(s) ({shown}) read as missing"
    if infinite:
        why += f"; {infinite} infinite value(s) read as missing"
    x = parse_numeric(raw, MISSING_TOKENS)
    tokens = tok.missing + [t for t in odd if t not in tok.missing]
    return _numeric(name, x, str(raw.dtype), why, tokens, unparsed, identify=identify)


def numeric_column(name: str, raw: pd.Series) -> ColumnProfile | None:
    """The column read as numbers because the user declared it numeric, or None if its values
    are not numbers. Unlike :func:`infer_column` it keeps identifiers and constants."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return None
    if pd.api.types.is_bool_dtype(raw) or not _is_text_series(raw):
        x = parse_numeric(raw, MISSING_TOKENS)
        return _numeric(name, x, str(raw.dtype), "stored as a numeric type", [], 0, identify=False)
    return _text_numbers(name, raw, _tokens(raw), identify=False)


def infer_column(name: str, raw: pd.Series) -> ColumnProfile:
    """Decide one column's kind from its raw values."""
    n = len(raw)
    raw_dtype = str(raw.dtype)

    if pd.api.types.is_bool_dtype(raw):
        counts = raw.dropna().astype("string").value_counts()
        return _categorical(name, counts, len(raw), raw_dtype, "boolean values", [])

    if not _is_text_series(raw):
        if pd.api.types.is_datetime64_any_dtype(raw):
            return ColumnProfile(
                name,
                ColumnKind.DATETIME,
                "stored as a datetime type",
                raw_dtype,
                float(raw.isna().mean()),
                int(raw.nunique()),
            )
        x = parse_numeric(raw, MISSING_TOKENS)
        return _numeric(name, x, raw_dtype, "stored as a numeric type", [], 0)

    tok = _tokens(raw)
    counts, stripped, tokens = tok.counts, tok.stripped, tok.missing
    uniques, weights, n_present = tok.uniques, tok.weights, tok.n_present
    if n_present == 0:
        return ColumnProfile(
            name,
            ColumnKind.DROP,
            "every value is empty or a missing-value marker",
            raw_dtype,
            1.0,
            0,
            missing_tokens=tokens,
        )
    missing_ratio = float(1 - n_present / n) if n else 0.0

    numbers = _text_numbers(name, raw, tok)
    if numbers is not None:
        return numbers

    # A weighted sample of distinct values stands for the column in the costlier checks.
    rng = np.random.default_rng(0)
    take = rng.choice(len(uniques), size=min(2000, n_present), p=weights / n_present)
    sample = uniques.iloc[take]
    if sample.str.match(_DATE_LIKE).mean() >= 0.95:
        parsed_dates = pd.to_datetime(sample, errors="coerce", format="mixed")
        if parsed_dates.notna().mean() >= 0.95:
            return ColumnProfile(
                name,
                ColumnKind.DATETIME,
                "date/time strings",
                raw_dtype,
                missing_ratio,
                len(uniques),
                missing_tokens=tokens,
                stats={"min": str(parsed_dates.min()), "max": str(parsed_dates.max())},
            )

    n_unique = len(uniques)
    unique_share = n_unique / n_present
    words = float(sample.map(lambda v: len(str(v).split())).mean())
    if unique_share >= TEXT_MIN_UNIQUE and words >= TEXT_MIN_WORDS and n_unique > 20:
        return ColumnProfile(
            name,
            ColumnKind.TEXT,
            f"free text ({words:.1f} words per value, {unique_share:.0%} distinct)",
            raw_dtype,
            missing_ratio,
            n_unique,
            missing_tokens=tokens,
            stats={"mean_words": words},
        )
    if unique_share >= ID_MIN_UNIQUE and n_present >= 50 and words <= 1.5 and n_present >= 0.9 * n:
        return ColumnProfile(
            name,
            ColumnKind.DROP,
            f"identifier-like: {unique_share:.0%} of values are distinct single tokens",
            raw_dtype,
            missing_ratio,
            n_unique,
            missing_tokens=tokens,
        )
    # Missing-looking tokens in a categorical column stay categories: "None" often means a
    # real "none" level (Ames MasVnrType), and "?" or "unknown" carry information as a level.
    level_counts = pd.Series(counts.to_numpy(), index=stripped.to_numpy())
    level_counts = level_counts[level_counts.index != ""]
    # Blank tokens (" ") cannot be kept: the cleaner reads them as missing.
    blank = [t for t in tokens if not t.strip()]
    kept = [t for t in tokens if t.strip()]
    return _categorical(name, level_counts, n, raw_dtype, "text labels", kept, blank)


def _categorical(
    name: str,
    counts: pd.Series,
    n_rows: int,
    raw_dtype: str,
    why: str,
    kept: list[str],
    blank: list[str] | None = None,
) -> ColumnProfile:
    """``counts``: occurrences per distinct (stripped) value, blanks excluded; ``kept``:
    missing-looking tokens kept as levels; ``blank``: blank tokens, read as missing."""
    counts = counts.groupby(level=0).sum().sort_values(ascending=False)
    n_unique = len(counts)
    missing_ratio = float(1 - counts.sum() / n_rows) if n_rows else 0.0
    reason = why
    if kept:
        reason += f"; {', '.join(repr(t) for t in kept)} kept as categories"
    if n_unique <= 1:
        return ColumnProfile(
            name,
            ColumnKind.DROP,
            "constant: a single distinct value",
            raw_dtype,
            missing_ratio,
            n_unique,
            missing_tokens=list(blank or []),
        )
    high = n_unique > HIGH_CARDINALITY
    if high:
        reason += f"; high cardinality ({n_unique} levels)"
    top = {str(k): int(v) for k, v in counts.head(10).items()}
    return ColumnProfile(
        name,
        ColumnKind.CATEGORICAL,
        reason,
        raw_dtype,
        missing_ratio,
        n_unique,
        missing_tokens=list(blank or []),
        category_tokens=kept,
        high_cardinality=high,
        stats={"top": top},
    )


def _numeric(
    name: str,
    x: pd.Series,
    raw_dtype: str,
    why: str,
    tokens: list[str],
    unparsed: int,
    *,
    identify: bool = True,
) -> ColumnProfile:
    """``identify=False`` keeps constants and identifiers (the user declared the column)."""
    n = len(x)
    finite = x.dropna()
    n_unique = int(finite.nunique())
    if identify and n_unique <= 1:
        return ColumnProfile(
            name,
            ColumnKind.DROP,
            "constant: a single distinct value",
            raw_dtype,
            float(x.isna().mean()) if n else 0.0,
            n_unique,
            missing_tokens=tokens,
        )
    integral = bool(np.all(np.mod(finite.to_numpy(), 1) == 0))
    named = bool(_ID_NAME.search(name))
    # A short table needs the name to say so (a few distinct integers may well be a measure).
    if identify and integral and n_unique == len(x) and n >= 2 and (n >= 50 or named):
        ordered = np.sort(finite.to_numpy())
        consecutive = bool(np.all(np.diff(ordered) == 1))
        if consecutive or named:
            what = "a row number" if consecutive else "an identifier by its name"
            return ColumnProfile(
                name,
                ColumnKind.DROP,
                f"identifier-like: distinct integers for every row, {what}",
                raw_dtype,
                0.0,
                n_unique,
            )
    zero_missing = _zero_means_missing(x)
    if zero_missing:
        zeros = int((x == 0).sum())
        why += (
            f"; {zeros} zero(s) read as missing (0 lies far below every other value, as a "
            "missing measurement does)"
        )
        x = x.mask(x == 0)
    return ColumnProfile(
        name,
        ColumnKind.NUMERIC,
        why,
        raw_dtype,
        float(x.isna().mean()) if n else 0.0,
        n_unique,
        missing_tokens=tokens,
        zero_means_missing=zero_missing,
        unparsed_values=unparsed,
        stats=_numeric_stats(x),
    )
