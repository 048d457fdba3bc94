"""From prepared series to what models read besides the target (:class:`SeriesFeatures`):
covariates over each series' history and horizon, static attributes, the grid's local
timestamps, and holiday features from HolidayConfig's country.

Holidays
--------
The calendar is the maintained ``holidays`` package's for the country (national holidays; the
package's observed-on-Monday days included). Each step's local date is the grid timestamp in
the time zone the data were given in (timestamps are kept as naive UTC with
:attr:`SeriesSet.timezone`; naive timestamps are taken as local already). So half-hours given in
UTC are holidays by their UTC date: give timestamps with the local offset (or naive local
times) to flag the local holidays. Text whose offsets change over the year (daylight saving)
names no zone and is read as UTC; a zone-aware column (Parquet) keeps its zone. Features per step:

- ``holiday``: how many of the step's days are holidays (0 or 1 for daily and finer steps; a
  week, month or quarter counts its holidays, by the days its grid timestamp stands for:
  weeks and end-anchored months end on their timestamp, start-anchored ones begin there);
- ``days_to_holiday`` and ``days_since_holiday`` (daily and finer steps): days to the next and
  since the last holiday, 0 on one, at most :data:`HOLIDAY_REACH`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from mlpilot.config import check_holiday_country
from mlpilot.problems.forecasting._series import SERIES, SeriesSet
from mlpilot.problems.forecasting.models import SeriesFeatures

__all__ = ["HOLIDAY_REACH", "HolidayCalendar", "series_features"]

#: Days to or since a holiday are counted up to this many.
HOLIDAY_REACH = 30
_MONTHS = {"M": 1, "Q": 3, "Y": 12}


@dataclass(frozen=True)
class HolidayCalendar:
    """A country's public holidays, from the ``holidays`` package."""

    country: str

    def __post_init__(self) -> None:
        check_holiday_country(self.country)

    @cached_property
    def description(self) -> str:
        """Which calendar, in words (for the job's record)."""
        import holidays
        from holidays.registry import COUNTRIES

        names = [entry[0] for entry in COUNTRIES.values() if self.country in entry[1:]]
        # The registry names countries in CamelCase (UnitedStates).
        spaced = [re.sub(r"(?<=[a-z])(?=[A-Z])", " ", n) for n in names]
        name = f"{spaced[0]} ({self.country})" if spaced else self.country
        return f"{name} national holidays, from the holidays package {holidays.__version__}"

    def days(self, first: np.datetime64, last: np.datetime64) -> np.ndarray:
        """The holidays from a year before ``first`` to a year after ``last``, as sorted
        datetime64[D] days."""
        import holidays

        years = range(pd.Timestamp(first).year - 1, pd.Timestamp(last).year + 2)
        calendar = holidays.country_holidays(self.country, years=years)
        return np.array(sorted(calendar), dtype="datetime64[D]")


def series_features(series: SeriesSet, holidays: HolidayCalendar | None = None) -> SeriesFeatures:
    """The features of every series of ``series``: history then the ``horizon`` future rows
    (with the covariates the data gave there, else filled) per series."""
    n, horizon = series.n_series, series.horizon
    lengths = series.lengths.astype(np.int64)
    spans = lengths + horizon
    starts = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
    steps = int(spans.sum())
    # Where each history row and each future row lands on the timelines.
    history_rows = np.repeat(starts, lengths) + (
        np.arange(int(lengths.sum())) - np.repeat(series.offsets[:-1], lengths)
    )
    future_rows = np.repeat(starts + lengths, horizon) + np.tile(np.arange(horizon), n)
    order = np.argsort(series.future[SERIES].to_numpy(), kind="stable")
    future = series.future.iloc[order]

    time = np.empty(steps, dtype="datetime64[ns]")
    time[history_rows] = series.history[series.timestamp].to_numpy("datetime64[ns]")
    time[future_rows] = future[series.timestamp].to_numpy("datetime64[ns]")
    time = _local(time, series.timezone)

    categories: dict[str, tuple[str, ...]] = {}
    covariates = np.full((steps, len(series.covariates)), np.nan)
    for j, name in enumerate(series.covariates):
        covariates[history_rows, j] = _codes(series.history[name], name, categories)
        covariates[future_rows, j] = _codes(future[name], name, categories)
    static = np.full((n, len(series.static_columns)), np.nan)
    for j, name in enumerate(series.static_columns):
        static[:, j] = _codes(series.static[name], name, categories)

    names: tuple[str, ...] = ()
    flags = np.empty((steps, 0))
    if holidays is not None and steps:
        names, flags = _holiday_features(time, series, holidays)
    return SeriesFeatures(
        frequency=series.frequency,
        lengths=lengths,
        horizon=horizon,
        time=time,
        covariates=covariates,
        covariate_names=tuple(series.covariates),
        static=static,
        static_names=tuple(series.static_columns),
        categories=categories,
        holidays=flags,
        holiday_names=names,
        holiday_country=None if holidays is None else holidays.country,
    )


def _local(time: np.ndarray, timezone: str | None) -> np.ndarray:
    """Naive UTC timestamps as wall-clock time in ``timezone`` (as they are without one)."""
    if timezone is None or timezone == "UTC":
        return time
    stamps = pd.DatetimeIndex(time).tz_localize("UTC").tz_convert(timezone).tz_localize(None)
    return stamps.as_unit("ns").to_numpy()


def _codes(values: pd.Series, name: str, categories: dict[str, tuple[str, ...]]) -> np.ndarray:
    """A column as floats: numbers as they are, categories as codes (NaN where missing)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        own = tuple(str(c) for c in values.cat.categories)
        known = categories.setdefault(name, own)
        codes = values.cat.codes.to_numpy(np.int64)
        if known != own:  # history and future were coded alike; keep to the first
            mapping = np.array([known.index(c) if c in known else -1 for c in own] + [-1])
            codes = mapping[codes]
        return np.where(codes < 0, np.nan, codes).astype(np.float64)
    return values.to_numpy(np.float64)


def _holiday_features(
    time: np.ndarray, series: SeriesSet, calendar: HolidayCalendar
) -> tuple[tuple[str, ...], np.ndarray]:
    freq = series.frequency
    day = time.astype("datetime64[D]")
    days = calendar.days(day.min(), day.max())
    if freq.unit in ("min", "h"):
        first, end = day, day + 1
    elif freq.unit == "D":
        first, end = day, day + freq.n
    elif freq.unit == "W":
        first, end = day - 7 * freq.n + 1, day + 1
    else:
        months = freq.n * _MONTHS[freq.unit]
        month = day.astype("datetime64[M]")
        if freq.side == "end":
            first, end = (month - months + 1).astype("datetime64[D]"), day + 1
        else:
            first, end = day, (month + months).astype("datetime64[D]")
    count = np.searchsorted(days, end) - np.searchsorted(days, first)
    columns = [count.astype(np.float64)]
    names: tuple[str, ...] = ("holiday",)
    if freq.unit in ("min", "h") or (freq.unit == "D" and freq.n == 1):
        columns += _days_around(day, days)
        names += ("days_to_holiday", "days_since_holiday")
    return names, np.column_stack(columns)


def _days_around(day: np.ndarray, holidays: np.ndarray) -> list[np.ndarray]:
    """Days from each day to the next holiday and since the last one, capped at the reach."""
    number = day.astype(np.int64)
    # Sentinels beyond the reach on either side, so every day has a holiday before and after.
    known = np.concatenate(
        [[number.min() - HOLIDAY_REACH], holidays.astype(np.int64), [number.max() + HOLIDAY_REACH]]
    )
    after = known[np.searchsorted(known, number)] - number
    since = number - known[np.searchsorted(known, number, side="right") - 1]
    return [
        np.minimum(after, HOLIDAY_REACH).astype(np.float64),
        np.minimum(since, HOLIDAY_REACH).astype(np.float64),
    ]
