"""A small-batch twin of a fitted ColumnTransformer, in plain NumPy and dictionaries.

scikit-learn's transformers validate their input on every call; for one row that validation
is most of the prediction time (about 5 ms per pipeline against 0.1 ms here). The twin reads
the fitted parameters (categories, encodings, medians, means, quantiles) and applies them
directly. It is built once after fitting and checked against scikit-learn on probe rows
(training rows, unseen categories, missing values); any difference, or a transformer it does
not know, and the pipeline keeps using scikit-learn (dates and text always do, per block).

Large batches read column by column (:class:`Coded` categories from a bulk reader) go through
:meth:`FastTransform.transform_coded`: each category block maps the distinct levels once and
gathers by code. It answers only when every block computes what scikit-learn computes, value
for value (category lookups, imputation, standard scaling); otherwise None, and the caller
keeps scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    StandardScaler,
    TargetEncoder,
)

from mlpilot.features._clean import Coded
from mlpilot.features._transformers import DatetimeParts, TextColumn

__all__ = ["FastTransform", "build_fast_transform"]

#: Probe value standing for a category never seen in training.
_UNSEEN = "\x00mlpilot-unseen\x00"
#: Widest matrix the twin hands over dense (a sparse TF-IDF block's columns count in full:
#: a few rows of 80,000 float32 columns are 0.3 MB each).
MAX_DENSE_WIDTH = 100_000


class _Missing:
    """Dictionary key for a missing category (NaN never equals itself)."""

    def __reduce__(self) -> str:
        return "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
_BOUND = 1e-7  # QuantileTransformer's BOUNDS_THRESHOLD
_CLIP_MIN = special.ndtri(_BOUND - np.spacing(1))
_CLIP_MAX = special.ndtri(1 - (_BOUND - np.spacing(1)))


def _key(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return MISSING
    return value


def _keys(categories: np.ndarray) -> list[Any]:
    return [_key(c) for c in categories]


def _coded(values: Any) -> Coded:
    if isinstance(values, Coded):
        return values
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    return Coded(codes, np.asarray(uniques, dtype=object))


# -- blocks ---------------------------------------------------------------------------------
class _Ordinal:
    def __init__(self, columns: list[str], encoder: OrdinalEncoder) -> None:
        self.columns = columns
        self.maps = []
        self.unknown = float(encoder.unknown_value)
        for cats in encoder.categories_:
            mapping = {}
            for i, key in enumerate(_keys(cats)):
                mapping[key] = float(encoder.encoded_missing_value) if key is MISSING else float(i)
            self.maps.append(mapping)

    def __call__(self, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
        out = np.empty((n, len(self.columns)))
        for j, (name, mapping) in enumerate(zip(self.columns, self.maps, strict=True)):
            values = arrays[name]
            for i in range(n):
                out[i, j] = mapping.get(_key(values[i]), self.unknown)
        return out

    def bulk(self, arrays: dict[str, Any], n: int) -> np.ndarray:
        out = np.empty((n, len(self.columns)))
        for j, (name, mapping) in enumerate(zip(self.columns, self.maps, strict=True)):
            coded = _coded(arrays[name])
            table = np.array([mapping.get(_key(v), self.unknown) for v in coded.values], float)
            out[:, j] = table[coded.codes]
        return out


class _OneHot:
    def __init__(self, columns: list[str], encoder: OneHotEncoder) -> None:
        self.columns = columns
        self.slots: list[tuple[dict[Any, int], int, int]] = []  # (map, default, width)
        infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(columns)
        for cats, rare in zip(encoder.categories_, infrequent, strict=True):
            rare_keys = set() if rare is None else set(_keys(np.asarray(rare, dtype=object)))
            frequent = [k for k in _keys(cats) if k not in rare_keys]
            mapping = {k: i for i, k in enumerate(frequent)}
            width = len(frequent)
            default = -1
            if rare_keys:
                default = width
                for k in rare_keys:
                    mapping[k] = width
                width += 1
            self.slots.append((mapping, default, width))
        self.width = sum(w for _, _, w in self.slots)

    def __call__(self, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
        out = np.zeros((n, self.width))
        start = 0
        for name, (mapping, default, width) in zip(self.columns, self.slots, strict=True):
            values = arrays[name]
            for i in range(n):
                slot = mapping.get(_key(values[i]), default)
                if slot >= 0:
                    out[i, start + slot] = 1.0
            start += width
        return out

    def bulk(self, arrays: dict[str, Any], n: int) -> np.ndarray:
        out = np.zeros((n, self.width))
        start = 0
        for name, (mapping, default, width) in zip(self.columns, self.slots, strict=True):
            coded = _coded(arrays[name])
            table = np.array([mapping.get(_key(v), default) for v in coded.values], np.int64)
            slots = table[coded.codes]
            rows = np.flatnonzero(slots >= 0)
            out[rows, start + slots[rows]] = 1.0
            start += width
        return out


class _Target:
    def __init__(self, columns: list[str], encoder: TargetEncoder) -> None:
        self.columns = columns
        multiclass = encoder.target_type_ == "multiclass"
        k = len(encoder.classes_) if multiclass else 1
        means = np.atleast_1d(np.asarray(encoder.target_mean_, dtype=np.float64))
        self.maps: list[dict[Any, np.ndarray]] = []
        self.defaults: list[np.ndarray] = []
        for f, cats in enumerate(encoder.categories_):
            table = np.column_stack([encoder.encodings_[f * k + c] for c in range(k)])
            self.maps.append({key: table[i] for i, key in enumerate(_keys(cats))})
            self.defaults.append(means[:k] if multiclass else np.repeat(means[0], 1))
        self.k = k

    def __call__(self, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
        out = np.empty((n, len(self.columns) * self.k))
        for f, name in enumerate(self.columns):
            values = arrays[name]
            mapping, default = self.maps[f], self.defaults[f]
            for i in range(n):
                out[i, f * self.k : (f + 1) * self.k] = mapping.get(_key(values[i]), default)
        return out

    def bulk(self, arrays: dict[str, Any], n: int) -> np.ndarray:
        out = np.empty((n, len(self.columns) * self.k))
        for f, name in enumerate(self.columns):
            coded = _coded(arrays[name])
            mapping, default = self.maps[f], self.defaults[f]
            table = np.array([mapping.get(_key(v), default) for v in coded.values], float)
            out[:, f * self.k : (f + 1) * self.k] = table.reshape(-1, self.k)[coded.codes]
        return out


class _Numeric:
    """Numbers through optional median imputation (+ indicators), standard or quantile scaling."""

    def __init__(self, columns: list[str], steps: list[Any]) -> None:
        self.columns = columns
        self.ops: list[tuple[str, Any]] = []
        for step in steps:
            if isinstance(step, SimpleImputer):
                indicator = None
                if step.add_indicator:
                    indicator = np.asarray(step.indicator_.features_, dtype=np.int64)
                self.ops.append(("impute", (np.asarray(step.statistics_), indicator)))
            elif isinstance(step, StandardScaler):
                mean = step.mean_ if step.with_mean else np.zeros_like(step.scale_)
                scale = step.scale_ if step.with_std else np.ones_like(mean)
                self.ops.append(("scale", (np.asarray(mean), np.asarray(scale))))
            elif isinstance(step, QuantileTransformer):
                if step.output_distribution != "normal":
                    raise TypeError("only normal-output quantile scaling is supported")
                self.ops.append(("quantile", (step.quantiles_, step.references_)))
            else:
                raise TypeError(f"unsupported numeric step {type(step).__name__}")

    def __call__(self, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
        x = np.column_stack([np.asarray(arrays[c], dtype=np.float64) for c in self.columns])
        x = x.reshape(n, len(self.columns))
        for op, params in self.ops:
            if op == "impute":
                stats, indicator = params
                missing = np.isnan(x)
                filled = np.where(missing, stats, x)
                x = filled if indicator is None else np.hstack([filled, missing[:, indicator]])
            elif op == "scale":
                mean, scale = params
                x = (x - mean) / scale
            else:
                x = _quantile_normal(x, *params)
        return x

    def bulk(self, arrays: dict[str, Any], n: int) -> np.ndarray | None:
        # Imputation and standard scaling are scikit-learn's own arithmetic; the quantile
        # mapping is a close reimplementation, not the same operations.
        exact = all(op != "quantile" for op, _ in self.ops)
        return self(arrays, n) if exact else None


def _quantile_normal(x: np.ndarray, quantiles: np.ndarray, references: np.ndarray) -> np.ndarray:
    """QuantileTransformer(output_distribution="normal").transform: its arithmetic value for
    value, with only the interpolation per column (each column has its own quantiles). The
    bounds, the normal quantile function and the clipping run once on the whole matrix: for one
    row, the per-column NumPy calls were most of a network pipeline's time."""
    out = np.array(x, dtype=np.float64)
    mirrored_quantiles = -quantiles[::-1]
    mirrored_references = -references[::-1]
    # np.interp keeps NaN (a missing value stays missing, as scikit-learn leaves it).
    low = out - _BOUND < quantiles[0]
    high = out + _BOUND > quantiles[-1]
    for j in range(out.shape[1]):
        values = out[:, j]
        out[:, j] = 0.5 * (
            np.interp(values, quantiles[:, j], references)
            - np.interp(-values, mirrored_quantiles[:, j], mirrored_references)
        )
    out[high] = 1.0
    out[low] = 0.0
    # One errstate for the matrix: entering it costs more than a row's arithmetic.
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(special.ndtri(out), _CLIP_MIN, _CLIP_MAX)


class _Dates:
    """DatetimeParts in NumPy on the cleaner's ``datetime64[ns]`` columns: the calendar parts
    are integers, and the days since 1970 are divided as pandas divides them (nanoseconds / 1e9
    / 86400), so the values are DatetimeParts' own. Another unit goes through DatetimeParts."""

    _NS = np.dtype("datetime64[ns]")

    def __init__(self, columns: list[str], parts: DatetimeParts) -> None:
        self.columns = columns
        self.parts = parts

    @property
    def width(self) -> int:
        return sum(7 if self.parts.with_hour_[c] else 6 for c in self.parts.columns_)

    def __call__(self, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
        stamps = [np.asarray(arrays[c]) for c in self.parts.columns_]
        if any(t.dtype != self._NS for t in stamps):
            frame = pd.DataFrame({c: arrays[c] for c in self.columns})
            return np.asarray(self.parts.transform(frame), dtype=np.float64)
        blocks = []
        for c, t in zip(self.parts.columns_, stamps, strict=True):
            days = t.astype("datetime64[D]")
            months = t.astype("datetime64[M]")
            years = t.astype("datetime64[Y]")
            day_number = days.astype(np.int64)
            parts = [
                years.astype(np.int64) + 1970,
                months.astype(np.int64) % 12 + 1,
                (days - months.astype("datetime64[D]")).astype(np.int64) + 1,
                (day_number + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
                (days - years.astype("datetime64[D]")).astype(np.int64) + 1,
            ]
            if self.parts.with_hour_[c]:
                parts.append((t - days).astype("timedelta64[h]").astype(np.int64))
            block = np.column_stack([p.astype(np.float64) for p in parts])
            epoch = t.astype(np.int64) / 1e9 / 86_400.0
            block = np.column_stack([block, epoch])
            block[np.isnat(t)] = np.nan
            blocks.append(block)
        return np.hstack(blocks) if blocks else np.empty((n, 0))

    def bulk(self, arrays: dict[str, Any], n: int) -> None:
        return None


class _Fallback:
    """A block the twin does not rebuild from its parameters (dates, text): its transformer on
    its columns, through the transformer's own small-batch path where it has one (text, and
    dates followed by numeric steps), else scikit-learn."""

    def __init__(self, columns: list[str], transformer: Any) -> None:
        self.columns = columns
        self.transformer = transformer

    def _dates(self) -> Any:
        # Built on first use, so packages saved before it existed get it too (not pickled).
        if "_dates_twin" not in self.__dict__:
            self.__dict__["_dates_twin"] = _dates_twin(self.columns, self.transformer)
        return self.__dict__["_dates_twin"]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_dates_twin"}

    def __call__(self, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
        if isinstance(self.transformer, TextColumn):
            # The cleaner already read the column as text: skip the DataFrame and the checks.
            out = self.transformer.transform_texts(arrays[self.columns[0]])
            return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)
        dates = self._dates()
        if dates is not None:
            return np.asarray(dates(arrays, n), dtype=np.float64)
        frame = pd.DataFrame({c: arrays[c] for c in self.columns})
        out = self.transformer.transform(frame)
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)

    def bulk(self, arrays: dict[str, Any], n: int) -> None:
        return None


def _dates_twin(columns: list[str], transformer: Any) -> Any:
    """DatetimeParts, alone or followed by imputation and scaling, in NumPy; else None."""
    steps = (
        [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    )
    if not isinstance(steps[0], DatetimeParts):
        return None
    dates = _Dates(columns, steps[0])
    if len(steps) == 1:
        return dates
    try:
        then = _Numeric([str(i) for i in range(dates.width)], steps[1:])
    except TypeError:
        return None
    return _Chain(dates, then)


def _block(columns: list[str], transformer: Any) -> Any:
    if transformer == "passthrough" or (
        isinstance(transformer, FunctionTransformer) and transformer.func is None
    ):  # fitted "passthrough" blocks become identity FunctionTransformers
        return _Numeric(columns, [])
    steps = (
        [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    )
    first = steps[0]
    if isinstance(first, OrdinalEncoder) and len(steps) == 1:
        return _Ordinal(columns, first)
    if isinstance(first, OneHotEncoder) and len(steps) == 1 and first.drop is None:
        return _OneHot(columns, first)
    if isinstance(first, TargetEncoder):
        block = _Target(columns, first)
        if len(steps) == 1:
            return block
        if len(steps) == 2 and isinstance(steps[1], StandardScaler):
            return _Chain(block, _Numeric([], steps[1:]))
        raise TypeError("unsupported target-encoding pipeline")
    if all(isinstance(s, (SimpleImputer, StandardScaler, QuantileTransformer)) for s in steps):
        return _Numeric(columns, steps)
    return _Fallback(columns, transformer)


class _Chain:
    """A categorical block followed by numeric steps on its output (target encoding + scaler)."""

    def __init__(self, first: Any, then: _Numeric) -> None:
        self.first = first
        self.then = then

    def __call__(self, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
        x = self.first(arrays, n)
        return self.then({str(i): x[:, i] for i in range(x.shape[1])}, n)

    def bulk(self, arrays: dict[str, Any], n: int) -> np.ndarray | None:
        x = self.first.bulk(arrays, n)
        return self.then.bulk({str(i): x[:, i] for i in range(x.shape[1])}, n)


class FastTransform:
    """The twin of one fitted ColumnTransformer (``transform(clean) -> float32 matrix``)."""

    def __init__(self, columns: ColumnTransformer) -> None:
        self.blocks: list[tuple[list[str], Any]] = []
        for name, transformer, cols in columns.transformers_:
            if name == "remainder" or transformer == "drop" or len(cols) == 0:
                continue
            block = _block([str(c) for c in cols], transformer)
            if isinstance(block, _Chain):
                block.then.columns = [str(i) for i in range(_width(block.first))]
            self.blocks.append(([str(c) for c in cols], block))
        self.inputs = sorted({c for cols, _ in self.blocks for c in cols})

    def transform(self, clean: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
        """``clean``: the cleaner's typed rows, as a DataFrame or a dict of column arrays."""
        if isinstance(clean, dict):
            arrays = clean
            n = len(next(iter(clean.values()))) if clean else 0
        else:
            n = len(clean)
            arrays = {c: clean[c].to_numpy() for c in self.inputs}
        parts = [block(arrays, n) for _, block in self.blocks]
        if not parts:
            return np.zeros((n, 0), dtype=np.float32)
        return np.hstack(parts).astype(np.float32)

    def transform_coded(self, clean: dict[str, Any], n: int) -> np.ndarray | None:
        """:meth:`transform` of ``n`` rows the cleaner typed column by column (categories as
        :class:`Coded`, see ``TableCleaner.transform_coded``), or None when a block does not
        compute exactly what scikit-learn does (the caller then keeps scikit-learn)."""
        parts = []
        for _, block in self.blocks:
            part = block.bulk(clean, n)
            if part is None:
                return None
            parts.append(part)
        if not parts:
            return np.zeros((n, 0), dtype=np.float32)
        # One pass: each value cast to float32 as hstack(...).astype(float32) casts it.
        return np.concatenate(parts, axis=1, dtype=np.float32)


def _width(block: Any) -> int:
    if isinstance(block, _Target):
        return len(block.columns) * block.k
    raise TypeError("unsupported chained block")


def build_fast_transform(
    columns: ColumnTransformer, clean: pd.DataFrame, reference: Any
) -> FastTransform | None:
    """The twin of ``columns`` if it reproduces scikit-learn on probe rows, else None.

    ``clean`` holds typed training rows; ``reference(frame)`` is scikit-learn's transform.
    """
    try:
        width = max((s.stop for s in columns.output_indices_.values()), default=0)
        if width > MAX_DENSE_WIDTH:  # sparse TF-IDF too wide to hand over dense
            return None
        fast = FastTransform(columns)
        # Texts with sentence embeddings keep their training values: a made-up text would
        # load the encoder in every worker that fits a pipeline.
        embedded = [
            c for _, t, cols in columns.transformers_ if getattr(t, "embedding", None) for c in cols
        ]
        probe = _probe_rows(clean, keep=embedded)
        expected = reference(probe)
        if hasattr(expected, "toarray"):  # sparse TF-IDF: the twin answers it dense
            expected = expected.toarray()
        got = fast.transform(probe)
        if got.shape != np.shape(expected) or not np.allclose(
            got, np.asarray(expected, dtype=np.float32), rtol=1e-5, atol=1e-5, equal_nan=True
        ):
            return None
        return fast
    except (TypeError, ValueError, KeyError, AttributeError, IndexError):
        return None


def _probe_rows(clean: pd.DataFrame, n: int = 48, keep: list[str] | None = None) -> pd.DataFrame:
    """Some training rows, plus copies with unseen categories and missing values (except in
    the columns ``keep`` names)."""
    base = clean.iloc[: min(n, len(clean))].reset_index(drop=True)
    odd = base.iloc[: min(8, len(base))].copy()
    missing = base.iloc[: min(8, len(base))].copy()
    for name in base.columns:
        if name in (keep or ()):
            continue
        column = base[name]
        if column.dtype == object:
            odd[name] = _UNSEEN
            missing[name] = np.nan
        elif pd.api.types.is_numeric_dtype(column):
            odd[name] = column.max() * 10 + 1 if column.notna().any() else 1.0
            missing[name] = np.nan
    return pd.concat([base, odd, missing], ignore_index=True)
