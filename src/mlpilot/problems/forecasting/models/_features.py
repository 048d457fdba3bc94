"""What a model may read besides the target: :class:`SeriesFeatures`, and the calendar
features of a frequency's grid."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlpilot.data import Frequency

__all__ = ["SeriesFeatures", "calendar_columns", "calendar_values"]


@dataclass(frozen=True, eq=False)
class SeriesFeatures:
    """Covariates, static attributes, grid timestamps and holiday features of ``n`` series.

    Each series has a *timeline*: its ``lengths[i]`` history steps, then ``horizon`` future
    steps. The per-step arrays hold every series' timeline, one after another; a model
    forecasting series ``i`` reads its future steps' covariates at ``offsets[i] + lengths[i]``
    onwards. Categorical columns are codes into :attr:`categories` (NaN where missing), so a
    model trained on one table can recode another table's columns by their category names.
    """

    frequency: Frequency
    #: History steps per series (the length of the target array a model is given).
    lengths: np.ndarray
    #: Future steps after each history.
    horizon: int
    #: Grid timestamps as local wall-clock time (datetime64[ns]), one per timeline step.
    time: np.ndarray
    #: ``(steps, k)``: the covariates per timeline step.
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    #: ``(n, s)``: the static attributes per series.
    static: np.ndarray
    static_names: tuple[str, ...]
    #: Categorical column (covariate or static) → its categories, which its codes index.
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: ``(steps, m)``: holiday features per timeline step (none without a holiday calendar).
    holidays: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    holiday_names: tuple[str, ...] = ()
    #: What the holiday features were computed from (e.g. ``AU``), if any.
    holiday_country: str | None = None

    def __post_init__(self) -> None:
        steps = int(self.spans.sum())
        if len(self.time) != steps or self.covariates.shape != (steps, len(self.covariate_names)):
            raise ValueError("SeriesFeatures: the per-step arrays do not cover every timeline")
        if self.static.shape != (self.n_series, len(self.static_names)):
            raise ValueError("SeriesFeatures: the static attributes are not one row per series")
        if self.holidays.shape != (steps, len(self.holiday_names)):
            if self.holiday_names or self.holidays.size:
                raise ValueError("SeriesFeatures: the holiday features do not cover the timelines")
            object.__setattr__(self, "holidays", np.empty((steps, 0)))

    @property
    def n_series(self) -> int:
        return len(self.lengths)

    @property
    def spans(self) -> np.ndarray:
        """Timeline steps per series: history and future."""
        return np.asarray(self.lengths, dtype=np.int64) + self.horizon

    @property
    def offsets(self) -> np.ndarray:
        """Where each series' timeline starts (``n_series + 1`` values)."""
        return np.concatenate([[0], np.cumsum(self.spans)]).astype(np.int64)

    def is_categorical(self, name: str) -> bool:
        return name in self.categories

    def cut(self, series: Sequence[int], cutoffs: Sequence[int], horizon: int) -> SeriesFeatures:
        """The features of ``series`` with their histories ending at ``cutoffs`` and the
        ``horizon`` steps after as their future (a backtest window: the covariates there are the
        actual ones, known in advance)."""
        chosen = np.asarray(series, dtype=np.int64)
        ends = np.asarray(cutoffs, dtype=np.int64)
        if np.any(ends + horizon > self.spans[chosen]) or np.any(ends < 0):
            raise ValueError("SeriesFeatures.cut: a window reaches past a series' timeline")
        starts = self.offsets[chosen]
        rows = np.concatenate(
            [np.arange(s, s + e + horizon) for s, e in zip(starts, ends, strict=True)]
        ).astype(np.int64)
        return SeriesFeatures(
            frequency=self.frequency,
            lengths=ends,
            horizon=horizon,
            time=self.time[rows],
            covariates=self.covariates[rows],
            covariate_names=self.covariate_names,
            static=self.static[chosen],
            static_names=self.static_names,
            categories=dict(self.categories),
            holidays=self.holidays[rows],
            holiday_names=self.holiday_names,
            holiday_country=self.holiday_country,
        )

    # -- a worker reads them from a file ----------------------------------------------------------

    def save(self, path: str | Path) -> None:
        meta = {
            "frequency": self.frequency.alias,
            "horizon": self.horizon,
            "covariate_names": list(self.covariate_names),
            "static_names": list(self.static_names),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "holiday_names": list(self.holiday_names),
            "holiday_country": self.holiday_country,
        }
        np.savez(
            path,
            meta=np.array(json.dumps(meta)),
            lengths=np.asarray(self.lengths, dtype=np.int64),
            time=self.time.astype("datetime64[ns]").view(np.int64),
            covariates=self.covariates,
            static=self.static,
            holidays=self.holidays,
        )

    @classmethod
    def load(cls, path: str | Path) -> SeriesFeatures:
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            return cls(
                frequency=Frequency.parse(meta["frequency"]),
                lengths=data["lengths"],
                horizon=int(meta["horizon"]),
                time=data["time"].view("datetime64[ns]"),
                covariates=data["covariates"],
                covariate_names=tuple(meta["covariate_names"]),
                static=data["static"],
                static_names=tuple(meta["static_names"]),
                categories={k: tuple(v) for k, v in meta["categories"].items()},
                holidays=data["holidays"],
                holiday_names=tuple(meta["holiday_names"]),
                holiday_country=meta["holiday_country"],
            )


# -- calendar features ---------------------------------------------------------------------------

#: The calendar features that vary from step to step at each frequency unit.
_CALENDAR: dict[str, tuple[str, ...]] = {
    "min": ("hour_of_day", "day_of_week", "day_of_month", "week_of_year", "month"),
    "h": ("hour_of_day", "day_of_week", "day_of_month", "week_of_year", "month"),
    "D": ("day_of_week", "day_of_month", "week_of_year", "month"),
    "W": ("week_of_year", "month"),
    "M": ("month",),
    "Q": ("quarter",),
    "Y": (),
}


def calendar_columns(frequency: Frequency) -> tuple[str, ...]:
    """The calendar features worth computing at ``frequency``: those that change between its
    steps (no hour of day for daily data, no month for yearly data)."""
    names = _CALENDAR[frequency.unit]
    if frequency.unit == "Q" and frequency.n >= 4:
        return ()
    if frequency.unit == "M" and frequency.n >= 12:
        return ()
    return names


def calendar_values(name: str, time: np.ndarray) -> np.ndarray:
    """One calendar feature of each timestamp, as floats (hour of day with its minutes)."""
    stamps = pd.DatetimeIndex(time)
    values: np.ndarray
    if name == "hour_of_day":
        values = np.asarray(stamps.hour) + np.asarray(stamps.minute) / 60.0
    elif name == "day_of_week":
        values = np.asarray(stamps.dayofweek)
    elif name == "day_of_month":
        values = np.asarray(stamps.day)
    elif name == "week_of_year":
        values = stamps.isocalendar()["week"].to_numpy()
    elif name == "month":
        values = np.asarray(stamps.month)
    elif name == "quarter":
        values = np.asarray(stamps.quarter)
    else:
        raise ValueError(f"unknown calendar feature {name!r}")
    return np.asarray(values, dtype=np.float64)
