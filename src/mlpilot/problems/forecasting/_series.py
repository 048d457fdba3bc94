"""Series preparation: a long table into regular series on the forecast frequency's grid.

The table has one row per item and timestamp: the item id (with the GroupingAttributeNames, a
composite key), the timestamp, the target and other columns. :func:`prepare_series` checks it,
aggregates timestamps finer than the frequency, puts every series on its grid, fills gaps and
missing values as Transformations.Filling says, and separates the future-dated rows (empty target,
after the series' last target value) that carry the covariates known over the horizon.

Rules and defaults
------------------
- **Columns.** Every column but the TimeSeriesConfig ones (or only FeatureAttributeNames, when
  given) is a static attribute when it holds at most one value per series, else a covariate;
  numeric when every value given parses as a number (or FeatureDataTypes says so), else
  categorical.
- **Grid.** A series starts at its first target value (frontfill ``none``: rows before it are
  dropped) and its grid is the frequency's, through that timestamp: minutes, hours, days and weeks
  step from it (the time of day is the series' own), months, quarters and years step along the
  calendar. Every row must lie on the grid, unless the data are finer than the frequency.
- **Aggregation.** Data are finer when the median step between a series' consecutive distinct
  timestamps is shorter than one period. Then each row goes to the period it falls in
  (:meth:`Frequency.labels`) and the target is aggregated with Transformations.Aggregation (sum,
  avg, first, min, max; default sum; a period with no target value stays missing, to be filled);
  numeric covariates with the mean, categorical ones with their first value. Otherwise two rows
  for one (item, timestamp) are an error.
- **Filling**, per column: ``middlefill`` fills inside a series' history (its first to its last
  target value), ``backfill`` after it to the dataset's last target timestamp (the target's
  backfill extends each shorter series to that end, as Forecast does), ``futurefill`` the horizon
  (covariates only). ``zero``, ``value`` (its ``<method>_value``), and the ``median``, ``mean``,
  ``min``, ``max`` of the series' own values (of every series' values where it has none; 0 where
  no series has any). Defaults: the target's middlefill ``zero`` (Autopilot's and Forecast's) and
  no backfill: a series ends at its last target value, so its forecast starts right after it.
  Numeric covariates: ``median`` for middlefill, backfill and futurefill. Categorical covariates
  take only ``value``; without one their missing values stay missing.
- **Zeros.** A target that is zero in every row of every series is an error (nothing to
  forecast); a series of zeros among others is kept and reported.
- **Horizon.** ForecastHorizon at most 500 and at most a quarter of the time steps of the longest
  series (first to last target value, on the grid).
- **Inference** (``inference=True``: a history to forecast from, sent to a trained model). The
  horizon and zero rules are training rules and do not apply (a history of zeros is forecast as
  such); a series without any target value is an error naming it, not left out, since the caller
  asked for its forecast.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.config import (
    MAX_HORIZON,
    ColumnFilling,
    Fill,
    Transformations,
    fill_number,
    parse_transformations,
)
from mlpilot.data import Frequency, infer_frequency, parse_frequency
from mlpilot.errors import ConfigError, DataError
from mlpilot.metrics import season_length
from mlpilot.profile import MISSING_TOKENS, parse_numeric

#: The series code column of :attr:`SeriesSet.history` and :attr:`SeriesSet.future`.
SERIES = "_series"
_FEATURE_TYPES = ("numeric", "categorical", "text", "datetime")


@dataclass(frozen=True, eq=False)
class SeriesSet:
    """Regular series, ready for models: what :func:`prepare_series` made of a table.

    Series are numbered 0..n-1 in the sorted order of their keys. :attr:`history` holds every
    series' grid from its first target value (``lengths[i]`` rows, series after series, in time
    order), :attr:`future` the ``horizon`` grid steps after each series' history with the
    covariates (given in future-dated rows, else filled).
    """

    frequency: Frequency
    horizon: int
    target: str
    timestamp: str
    #: The item id column, then the grouping columns.
    key_columns: tuple[str, ...]
    #: One row per series (index = series code): its key columns' values.
    keys: pd.DataFrame
    #: One row per series: the static attribute columns.
    static: pd.DataFrame
    #: Columns SERIES, the timestamp, the target, then the covariates.
    history: pd.DataFrame
    #: Columns SERIES, the timestamp, then the covariates; ``horizon`` rows per series.
    future: pd.DataFrame
    #: History rows per series.
    lengths: np.ndarray
    #: Per history row: whether the target value was filled (not in the data).
    target_filled: np.ndarray
    #: Covariate name → "numeric" or "categorical".
    covariates: dict[str, str]
    #: Static attribute name → "numeric" or "categorical".
    static_columns: dict[str, str]
    #: Covariate name → share of its future values that the data gave (the rest were filled).
    future_given: dict[str, float]
    #: What was aggregated, dropped and filled, and why, one line each (for the job's record).
    notes: tuple[str, ...]
    #: The time zone the timestamps were given in (they are kept as naive UTC), if any.
    timezone: str | None = None

    @property
    def n_series(self) -> int:
        return len(self.lengths)

    @cached_property
    def offsets(self) -> np.ndarray:
        """Where each series starts in :attr:`history` (``n_series + 1`` values)."""
        return np.concatenate([[0], np.cumsum(self.lengths)])

    def values(self, series: int) -> np.ndarray:
        """The target values of one series, in time order."""
        start, end = self.offsets[series], self.offsets[series + 1]
        return self.history[self.target].to_numpy()[start:end]

    def key_text(self, series: int) -> str:
        """One series' key as ``column='value'`` pairs (for messages)."""
        row = self.keys.iloc[series]
        return ", ".join(f"{column}={row[column]!r}" for column in self.key_columns)

    def with_keys(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (with a SERIES column) with that column replaced by the key columns."""
        keys = self.keys.iloc[frame[SERIES].to_numpy()].reset_index(drop=True)
        return pd.concat([keys, frame.drop(columns=SERIES).reset_index(drop=True)], axis=1)

    def summary(self) -> dict[str, Any]:
        """What the job records of the series."""
        return {
            "Series": self.n_series,
            "Frequency": self.frequency.alias,
            "ForecastFrequency": self.frequency.autopilot,
            "Season": season_length(self.frequency.alias),
            "Horizon": self.horizon,
            "HistoryRows": len(self.history),
            "ShortestSeries": int(self.lengths.min()),
            "LongestSeries": int(self.lengths.max()),
            "FilledTargetValues": int(self.target_filled.sum()),
            "Covariates": dict(self.covariates),
            "StaticAttributes": dict(self.static_columns),
            "FutureCovariatesGiven": dict(self.future_given),
            "Notes": list(self.notes),
        }


def prepare_series(
    table: pd.DataFrame,
    *,
    target: str,
    timestamp: str,
    item_id: str,
    frequency: Frequency | str,
    horizon: int,
    grouping: Sequence[str] = (),
    filling: Mapping[str, Mapping[str, str]] | None = None,
    aggregation: Mapping[str, str] | None = None,
    features: Sequence[str] | None = None,
    feature_types: Mapping[str, str] | None = None,
    inference: bool = False,
) -> SeriesSet:
    """Check ``table`` and turn it into a :class:`SeriesSet` (the module docstring states the
    rules; ``inference`` relaxes the training ones). Settings the API does not allow raise
    :class:`ConfigError`; data that cannot be used raise :class:`DataError`; both with one line
    that names the problem and an example."""
    freq = parse_frequency(frequency)
    _check_horizon(horizon)
    key_columns = (item_id, *grouping)
    roles = (*key_columns, timestamp, target)
    if len(set(roles)) < len(roles):
        raise ConfigError(f"TimeSeriesConfig names a column twice: {list(roles)}")
    transforms = parse_transformations(
        filling, aggregation, target=target, reserved=(timestamp, *key_columns)
    )
    others = _other_columns(table, roles, features, feature_types, transforms)
    if len(table) == 0:
        raise DataError("The data have no rows")
    prep = _Preparation(
        table, freq, horizon, target, timestamp, key_columns, transforms, inference=inference
    )
    return prep.run(others, dict(feature_types or {}))


def _check_horizon(horizon: int) -> None:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer):
        raise ConfigError(f"ForecastHorizon must be a whole number of steps, not {horizon!r}")
    if not 1 <= horizon <= MAX_HORIZON:
        raise ConfigError(f"ForecastHorizon {horizon} is out of range: 1 to {MAX_HORIZON} steps")


def _other_columns(
    table: pd.DataFrame,
    roles: Sequence[str],
    features: Sequence[str] | None,
    feature_types: Mapping[str, str] | None,
    transforms: Transformations,
) -> list[str]:
    names = [str(c) for c in table.columns]
    for column in roles:
        if column not in names:
            raise DataError(f"The data have no column {column!r}; columns: {names[:20]}")
    chosen = [c for c in names if c not in roles] if features is None else list(features)
    if SERIES in chosen:
        raise DataError(f"Column name {SERIES!r} is reserved for the series code: rename it")
    for column in [*chosen, *(feature_types or {})]:
        if column in roles:
            raise ConfigError(
                f"The feature specification names {column!r}, a TimeSeriesConfig column"
            )
        if column not in names:
            raise DataError(
                f"The feature specification names {column!r}; the data have no such column"
            )
    for column, kind in (feature_types or {}).items():
        if kind not in _FEATURE_TYPES:
            raise ConfigError(
                f"FeatureDataTypes {column!r}: {kind!r} is not one of {_FEATURE_TYPES}"
            )
    for column in transforms.filling:
        if column not in names:
            raise DataError(f"Filling names {column!r}; the data have no such column")
    return chosen


@dataclass
class _Column:
    """A covariate or static column: numbers, or categories coded as floats (NaN missing)."""

    name: str
    numeric: bool
    values: np.ndarray
    categories: list[Any] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "numeric" if self.numeric else "categorical"

    def output(self, values: np.ndarray) -> np.ndarray | pd.Categorical:
        if self.numeric:
            return values
        codes = np.where(np.isnan(values), -1, values).astype(np.int64)
        return pd.Categorical.from_codes(codes, categories=pd.Index(self.categories))


@dataclass
class _Preparation:
    """One table's way to a SeriesSet; the arrays stay sorted by (series, timestamp)."""

    table: pd.DataFrame
    freq: Frequency
    horizon: int
    target: str
    timestamp: str
    key_columns: tuple[str, ...]
    transforms: Transformations
    #: A history to forecast from rather than to train on (see the module docstring).
    inference: bool = False
    notes: list[str] = field(default_factory=list)
    #: The series' keys (one row per series code), once read.
    keys: pd.DataFrame = field(default_factory=pd.DataFrame)

    def run(self, others: list[str], feature_types: dict[str, str]) -> SeriesSet:
        codes, self.keys = self._series_codes()
        ts, tz = _timestamps(self.table[self.timestamp], self.timestamp)
        if tz is not None:
            self.notes.append(f"Timestamps given in {tz} are kept as UTC without a time zone")
        y = _numbers(self.table[self.target], f"Target {self.target!r}")
        columns = [_column(self.table[c], c, feature_types.get(c)) for c in others]

        codes = self._drop_items_without_target(codes, y)
        keep = codes >= 0
        rows = np.flatnonzero(keep)[np.lexsort((ts[keep], codes[keep]))]
        codes, ts, y = codes[rows], ts[rows], y[rows]
        for column in columns:
            column.values = column.values[rows]
        self._check_zeros(codes, y)
        static, covariates = self._split_static(codes, columns)
        static_frame = self._static_frame(static, codes)

        observed = ~np.isnan(y)
        self.freq = self.freq.resolve(np.unique(ts[observed]))
        if self._finer(codes[observed], ts[observed]):
            codes, ts, y, covariates = self._aggregate(codes, ts, y, covariates)
        else:
            self._check_duplicates(codes, ts)
            if self.transforms.aggregation is not None:
                self.notes.append(
                    f"Aggregation {self.transforms.aggregation} not applied: the timestamps "
                    f"are not finer than {self.freq.alias}"
                )
        result = self._on_grid(codes, ts, y, covariates)
        return SeriesSet(
            **result,
            frequency=self.freq,
            horizon=self.horizon,
            target=self.target,
            timestamp=self.timestamp,
            covariates={c.name: c.kind for c in covariates},
            key_columns=self.key_columns,
            keys=self.keys,
            static=static_frame,
            static_columns={c.name: c.kind for c in static},
            notes=tuple(self.notes),
            timezone=tz,
        )

    # -- items -----------------------------------------------------------------------------------

    def _series_codes(self) -> tuple[np.ndarray, pd.DataFrame]:
        """A code per row numbering the series in the sorted order of their keys, and the keys."""
        frame = self.table[list(self.key_columns)]
        per_column = {}
        for column in self.key_columns:
            codes, text = _distinct(frame[column], sort=True)
            blank = _blank_rows(codes, text)
            if blank.any():
                what = "Item identifier" if column == self.key_columns[0] else "Grouping column"
                raise DataError(
                    f"{what} {column!r} is missing in {int(blank.sum())} of {len(blank)} rows, "
                    f"e.g. data row {int(np.flatnonzero(blank)[0]) + 1}"
                )
            per_column[column] = codes
        # Sorted codes per column, so the composite's groups come in the keys' sorted order.
        groups = pd.DataFrame(per_column).groupby(list(self.key_columns), sort=True).ngroup()
        series = groups.to_numpy(np.int64)
        _, first = np.unique(series, return_index=True)
        return series, frame.iloc[first].reset_index(drop=True)

    def _drop_items_without_target(self, codes: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Series codes once the series without a target value are gone (-1 for their rows)."""
        with_target = np.zeros(len(self.keys), dtype=bool)
        with_target[codes[~np.isnan(y)]] = True
        if not with_target.any():
            raise DataError(f"Target {self.target!r} has no values")
        if not with_target.all():
            dropped = np.flatnonzero(~with_target)
            if self.inference:
                raise DataError(
                    f"{self._key_text(int(dropped[0]))} has no target values: nothing to "
                    f"forecast it from ({len(dropped)} series without any)"
                )
            self.notes.append(
                f"Series without any target value left out: {len(dropped)}, e.g. "
                f"{self._key_text(int(dropped[0]))}"
            )
        self.keys = self.keys[with_target].reset_index(drop=True)
        new = np.full(len(with_target), -1, dtype=np.int64)
        new[with_target] = np.arange(int(with_target.sum()))
        return new[codes]

    def _key_text(self, series: int) -> str:
        row = self.keys.iloc[series]
        return ", ".join(f"{column}={row[column]!r}" for column in self.key_columns)

    def _check_zeros(self, codes: np.ndarray, y: np.ndarray) -> None:
        observed = ~np.isnan(y)
        nonzero = np.zeros(len(self.keys), dtype=bool)
        nonzero[codes[observed & (y != 0)]] = True
        if not nonzero.any() and not self.inference:
            raise DataError(
                f"Target {self.target!r} is zero in every row of every series: there is "
                "nothing to forecast"
            )
        if not nonzero.all():
            zeros = np.flatnonzero(~nonzero)
            self.notes.append(
                f"Series with a target of zeros only (kept): {len(zeros)}, e.g. "
                f"{self._key_text(int(zeros[0]))}"
            )

    def _split_static(
        self, codes: np.ndarray, columns: list[_Column]
    ) -> tuple[list[_Column], list[_Column]]:
        """Static attributes (at most one value per series) apart from covariates."""
        static: list[_Column] = []
        covariates: list[_Column] = []
        for column in columns:
            if np.isnan(column.values).all():
                self.notes.append(f"Column {column.name!r} has no values: left out")
                continue
            distinct = pd.Series(column.values).groupby(codes).nunique()
            (static if distinct.max() <= 1 else covariates).append(column)
        return static, covariates

    # -- timestamps ------------------------------------------------------------------------------

    def _finer(self, codes: np.ndarray, ts: np.ndarray) -> bool:
        """Whether the series step more finely than the frequency (median step)."""
        raw = ts.astype(np.int64)
        same = (codes[1:] == codes[:-1]) & (raw[1:] != raw[:-1])
        steps = np.diff(raw)[same]
        if len(steps) == 0:
            return False
        return bool(np.median(steps) < self.freq.shortest_period.value)

    def _check_duplicates(self, codes: np.ndarray, ts: np.ndarray) -> None:
        dup = np.flatnonzero((codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1]))
        if len(dup):
            first = int(dup[0])
            raise DataError(
                f"Duplicate (item, timestamp) rows: {len(dup)}, e.g. "
                f"{self._key_text(int(codes[first]))} at {pd.Timestamp(ts[first])}: give one row "
                "per item and timestamp"
            )

    def _aggregate(
        self, codes: np.ndarray, ts: np.ndarray, y: np.ndarray, covariates: list[_Column]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[_Column]]:
        labels = self.freq.labels(ts)
        # Labels rise with time, so each (series, period) is a run of consecutive rows.
        new = np.r_[True, (codes[1:] != codes[:-1]) | (labels[1:] != labels[:-1])]
        group = np.cumsum(new) - 1
        method = self.transforms.aggregation or "sum"
        grouped = pd.Series(y).groupby(group, sort=False)
        if method == "sum":
            y_agg = grouped.sum(min_count=1)
        else:
            y_agg = getattr(grouped, {"avg": "mean"}.get(method, method))()
        for column in covariates:
            per = pd.Series(column.values).groupby(group, sort=False)
            column.values = (per.mean() if column.numeric else per.first()).to_numpy(np.float64)
        starts = np.flatnonzero(new)
        self.notes.append(
            f"Timestamps finer than {self.freq.alias}: {len(codes)} rows aggregated into "
            f"{len(starts)} periods, the target by {method}, numeric covariates by their mean, "
            "categorical ones by their first value"
        )
        return codes[starts], labels[starts], y_agg.to_numpy(np.float64), covariates

    # -- the grid --------------------------------------------------------------------------------

    def _on_grid(
        self, codes: np.ndarray, ts: np.ndarray, y: np.ndarray, covariates: list[_Column]
    ) -> dict[str, Any]:
        """The regular history and future frames, and what goes with them."""
        n = len(self.keys)
        observed = ~np.isnan(y)
        frame = pd.DataFrame({"s": codes[observed], "t": ts[observed].astype(np.int64)})
        bounds = frame.groupby("s")["t"].agg(["min", "max"]).reindex(range(n))
        first = bounds["min"].to_numpy(np.int64).astype("datetime64[ns]")
        last = bounds["max"].to_numpy(np.int64).astype("datetime64[ns]")

        front = ts < first[codes]
        if front.any():
            self.notes.append(
                f"{int(front.sum())} rows before their series' first target value dropped "
                "(frontfill none)"
            )
            keep = ~front
            codes, ts, y = codes[keep], ts[keep], y[keep]
            for column in covariates:
                column.values = column.values[keep]
        pos, on = self.freq.positions(ts, first[codes])
        if not on.all():
            self._irregular(codes, ts, on)
        observed_span = self.freq.positions(last, first)[0] + 1
        if not self.inference:
            self._check_horizon_fits(int(observed_span.max()))
        lengths = observed_span
        if self.transforms.filling.get(self.target, ColumnFilling()).back is not None:
            end = np.full(n, last.max())
            lengths = np.maximum(self.freq.positions(end, first)[0] + 1, observed_span)

        beyond = pos >= lengths[codes] + self.horizon
        if beyond.any():
            self.notes.append(
                f"{int(beyond.sum())} future-dated rows beyond the horizon of {self.horizon} "
                "steps dropped"
            )
        in_history = pos < lengths[codes]
        in_future = ~in_history & ~beyond
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        total = int(lengths.sum())
        flat = offsets[codes[in_history]] + pos[in_history]
        flat_future = codes[in_future] * self.horizon + (pos[in_future] - lengths[codes[in_future]])

        history_series = np.repeat(np.arange(n), lengths)
        history_pos = np.arange(total) - np.repeat(offsets, lengths)
        future_series = np.repeat(np.arange(n), self.horizon)
        future_pos = np.tile(np.arange(self.horizon), n) + np.repeat(lengths, self.horizon)
        # Regions of each history row: inside the series' history, or after it (backfilled).
        after = history_pos >= observed_span[history_series]

        target = np.full(total, np.nan)
        target[flat] = y[in_history]
        filled = np.isnan(target)
        target = self._fill_target(target, history_series, after)

        history: dict[str, Any] = {
            SERIES: history_series,
            self.timestamp: self.freq.timestamps(first[history_series], history_pos),
            self.target: target,
        }
        future: dict[str, Any] = {
            SERIES: future_series,
            self.timestamp: self.freq.timestamps(first[future_series], future_pos),
        }
        given: dict[str, float] = {}
        for column in covariates:
            past = np.full(total, np.nan)
            past[flat] = column.values[in_history]
            ahead = np.full(n * self.horizon, np.nan)
            ahead[flat_future] = column.values[in_future]
            given[column.name] = float(np.mean(~np.isnan(ahead)))
            past, ahead = self._fill_covariate(
                column, past, ahead, history_series, future_series, after
            )
            history[column.name] = column.output(past)
            future[column.name] = column.output(ahead)

        if filled.mean() > 0.5:
            seen = ~np.isnan(y)
            self._note_sparse(filled, codes[seen], ts[seen])
        return {
            "history": pd.DataFrame(history),
            "future": pd.DataFrame(future),
            "lengths": lengths.astype(np.int64),
            "target_filled": filled,
            "future_given": given,
        }

    def _irregular(self, codes: np.ndarray, ts: np.ndarray, on: np.ndarray) -> None:
        bad = int(np.flatnonzero(~on)[0])
        looks = infer_frequency(ts, codes)
        hint = f"; the data look like {looks.alias}" if looks and looks != self.freq else ""
        raise DataError(
            f"Irregular timestamps: {self._key_text(int(codes[bad]))} has "
            f"{pd.Timestamp(ts[bad])}, off its {self.freq.alias} grid ({int((~on).sum())} of "
            f"{len(on)} rows off the grid{hint})"
        )

    def _check_horizon_fits(self, longest: int) -> None:
        if 4 * self.horizon > longest:
            most = longest // 4
            fits = f"at most {most}" if most else "no horizon fits"
            raise DataError(
                f"ForecastHorizon {self.horizon} is too long for the data: at most a quarter of "
                f"the longest series ({longest} time steps at {self.freq.alias}), so {fits}"
            )

    def _note_sparse(self, filled: np.ndarray, codes: np.ndarray, ts: np.ndarray) -> None:
        looks = infer_frequency(ts, codes)
        hint = f" (they look like {looks.alias})" if looks and looks != self.freq else ""
        self.notes.append(
            f"{int(filled.sum())} of {len(filled)} target values on the {self.freq.alias} grid "
            f"were not in the data and were filled: is the frequency finer than the data{hint}?"
        )

    # -- filling ---------------------------------------------------------------------------------

    def _fill_target(self, values: np.ndarray, series: np.ndarray, after: np.ndarray) -> np.ndarray:
        given = self.transforms.filling.get(self.target, ColumnFilling())
        stats = _Stats(values, series, len(self.keys))
        regions = (
            ("middlefill", ~after, given.middle or Fill("zero")),
            ("backfill", after, given.back),
        )
        for name, region, fill in regions:
            if fill is not None:
                self._apply(
                    f"Target {self.target!r}", name, fill, values, region, series, stats, None
                )
        return values

    def _fill_covariate(
        self,
        column: _Column,
        past: np.ndarray,
        ahead: np.ndarray,
        history_series: np.ndarray,
        future_series: np.ndarray,
        after: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        given = self.transforms.filling.get(column.name, ColumnFilling())
        for name, fill in (
            ("middlefill", given.middle),
            ("backfill", given.back),
            ("futurefill", given.future),
        ):
            if fill is not None and not column.numeric and fill.method != "value":
                raise ConfigError(
                    f"Filling for {column.name!r}: {name} {fill.method!r} needs a numeric column; "
                    f"{column.name!r} is categorical (use value)"
                )
        default = Fill("median") if column.numeric else None
        stats = _Stats(
            np.concatenate([past, ahead]),
            np.concatenate([history_series, future_series]),
            len(self.keys),
        )
        where = f"Covariate {column.name!r}"
        for name, region, fill in (
            ("middlefill", ~after, given.middle or default),
            ("backfill", after, given.back or default),
        ):
            if fill is not None:
                self._apply(where, name, fill, past, region, history_series, stats, column)
        fill = given.future or default
        if fill is not None:
            everywhere = np.ones(len(ahead), dtype=bool)
            self._apply(where, "futurefill", fill, ahead, everywhere, future_series, stats, column)
        return past, ahead

    def _apply(
        self,
        where: str,
        name: str,
        fill: Fill,
        values: np.ndarray,
        region: np.ndarray,
        series: np.ndarray,
        stats: _Stats,
        column: _Column | None,
    ) -> None:
        """Fill the missing values of ``values`` in ``region`` with ``fill`` (in place)."""
        missing = region & np.isnan(values)
        if not missing.any():
            return
        if fill.method == "zero":
            values[missing] = 0.0
        elif fill.method == "value":
            values[missing] = _fill_value(fill.value, f"{where}: {name}_value", column)
        else:
            per_series, fallback = stats.get(fill.method)
            if fallback:
                self.notes.append(
                    f"{where}: {fallback} series have no value of their own, their {name} "
                    f"{fill.method} is every series' {fill.method}"
                )
            values[missing] = per_series[series[missing]]
        touched = len(np.unique(series[missing]))
        self.notes.append(
            f"{where}: {int(missing.sum())} missing values in {touched} series filled with "
            f"{fill} ({name})"
        )

    def _static_frame(self, static: list[_Column], codes: np.ndarray) -> pd.DataFrame:
        """One row per series: each static attribute's value (its first one given)."""
        n = len(self.keys)
        frame = pd.DataFrame(index=pd.RangeIndex(n))
        for column in static:
            values = pd.Series(column.values).groupby(codes).first()
            frame[column.name] = column.output(values.reindex(range(n)).to_numpy(np.float64))
        return frame


class _Stats:
    """Per-series median/mean/min/max of the values given, with every series' as the fallback
    (0 where no series has a value)."""

    def __init__(self, values: np.ndarray, series: np.ndarray, n: int) -> None:
        given = ~np.isnan(values)
        self.grouped = pd.Series(values[given]).groupby(series[given])
        self.all = values[given]
        self.n = n
        self.cache: dict[str, tuple[np.ndarray, int]] = {}

    def get(self, method: str) -> tuple[np.ndarray, int]:
        """The statistic per series and how many series took the fallback."""
        if method not in self.cache:
            per = getattr(self.grouped, method)().reindex(range(self.n)).to_numpy(np.float64)
            lacking = np.isnan(per)
            if lacking.any():
                whole = float(getattr(np, f"nan{method}")(self.all)) if len(self.all) else 0.0
                per[lacking] = whole
            self.cache[method] = (per, int(lacking.sum()))
        return self.cache[method]


def _fill_value(text: str | None, what: str, column: _Column | None) -> float:
    if column is None or column.numeric:
        return fill_number(text, what)
    if text not in column.categories:
        column.categories.append(text)
    return float(column.categories.index(text))


# -- parsing columns ----------------------------------------------------------------------------


def _timestamps(values: pd.Series, column: str) -> tuple[np.ndarray, str | None]:
    """The column as datetime64[ns] (UTC, without a zone, where one was given) and the zone."""
    if pd.api.types.is_datetime64_any_dtype(values):
        given = pd.DatetimeIndex(values)
        missing = np.asarray(given.isna())
        if missing.any():
            raise DataError(
                f"Timestamp {column!r} is empty in {int(missing.sum())} of {len(missing)} rows, "
                f"e.g. data row {int(np.flatnonzero(missing)[0]) + 1}"
            )
        return _naive(given, column)
    codes, text = _distinct(values)
    blank = _blank_rows(codes, text)
    if blank.any():
        raise DataError(
            f"Timestamp {column!r} is empty in {int(blank.sum())} of {len(blank)} rows, "
            f"e.g. data row {int(np.flatnonzero(blank)[0]) + 1}"
        )
    parsed = _parse_dates(pd.Index(text.to_numpy(object), dtype=object))
    bad = np.flatnonzero(np.asarray(parsed.isna()))
    if len(bad):
        row = int(np.flatnonzero(codes == bad[0])[0])
        raise DataError(
            f"Timestamp {column!r} has values that are not dates, e.g. {text[bad[0]]!r} "
            f"(data row {row + 1})"
        )
    stamps, tz = _naive(parsed, column)
    return stamps[codes], tz


def _parse_dates(tokens: pd.Index) -> pd.DatetimeIndex:
    """Date strings to timestamps, NaT where one is not a date. One format for all first (fast);
    each value on its own where formats differ; UTC where time zones differ."""
    # Short runs of digits ("1", "12") are counters, not dates: dateutil would read them as days.
    counters = pd.Series(tokens).str.fullmatch(r"\d{1,3}").fillna(False).to_numpy(bool)
    parsed: pd.DatetimeIndex | None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it cannot infer one format
        try:
            parsed = pd.to_datetime(tokens)
        except (ValueError, TypeError, OverflowError):
            parsed = None
        if not isinstance(parsed, pd.DatetimeIndex):
            try:
                parsed = pd.to_datetime(tokens, format="mixed", errors="coerce")
            except (ValueError, TypeError):
                parsed = None
        if not isinstance(parsed, pd.DatetimeIndex):
            parsed = pd.to_datetime(tokens, format="mixed", errors="coerce", utc=True)
    return pd.DatetimeIndex(parsed.where(~counters)) if counters.any() else parsed


def _naive(stamps: pd.DatetimeIndex, column: str) -> tuple[np.ndarray, str | None]:
    tz = None if stamps.tz is None else str(stamps.tz)
    if tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    try:
        return stamps.as_unit("ns").to_numpy(), tz
    except (OverflowError, ValueError) as exc:
        raise DataError(f"Timestamp {column!r} has dates out of range: {exc}") from exc


def _distinct(values: pd.Series, sort: bool = False) -> tuple[np.ndarray, pd.Series]:
    """A code per row (-1 where missing) and the distinct values as stripped strings: the text
    work is done once per distinct value, not once per row."""
    codes, uniques = pd.factorize(values, sort=sort)
    text = pd.Series(np.asarray(uniques, dtype=object)).astype("string").str.strip()
    return codes, text


def _blank_rows(codes: np.ndarray, text: pd.Series) -> np.ndarray:
    blank = (text.isna() | (text == "")).to_numpy(bool)
    return (codes < 0) | np.append(blank, True)[codes]


def _numbers(values: pd.Series, what: str) -> np.ndarray:
    """The column as floats; :class:`DataError` naming the first value that is not a number
    (missing tokens such as '' or 'NA' are missing values)."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return parse_numeric(values, MISSING_TOKENS).to_numpy(np.float64)
    codes, text = _distinct(values)
    parsed = parse_numeric(text, MISSING_TOKENS).to_numpy(np.float64)
    missing = (text.isna() | text.str.lower().isin(MISSING_TOKENS)).to_numpy(bool)
    bad = np.flatnonzero(np.isnan(parsed) & ~missing)
    if len(bad):
        row = int(np.flatnonzero(codes == bad[0])[0])
        raise DataError(f"{what} is not numeric: {values.iloc[row]!r} in data row {row + 1}")
    return np.append(parsed, np.nan)[codes]


def _column(values: pd.Series, name: str, declared: str | None) -> _Column:
    """A covariate or static column: numeric when declared so or when every value given
    parses as a number, else categorical (its distinct stripped strings, sorted)."""
    plain = pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values)
    if declared == "numeric" or (declared is None and plain):
        return _Column(name, True, _numbers(values, f"Column {name!r}"))
    if declared is None and (values.dtype == object or pd.api.types.is_string_dtype(values)):
        try:
            return _Column(name, True, _numbers(values, f"Column {name!r}"))
        except DataError:
            pass
    codes, text = _distinct(values)
    text = text.mask(text == "")
    # Distinct raw values can strip to one string: code the stripped ones again.
    inner, categories = pd.factorize(text, sort=True)
    inner = np.append(inner, -1)[codes]
    coded = np.where(inner < 0, np.nan, inner).astype(np.float64)
    return _Column(name, False, coded, list(categories))
