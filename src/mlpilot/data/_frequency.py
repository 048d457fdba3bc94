"""Forecast frequencies: Autopilot's ForecastFrequency strings and pandas offset aliases, the
grid each one draws.

A :class:`Frequency` is a unit (``min``, ``h``, ``D``, ``W``, ``M``, ``Q``, ``Y``), a multiple and,
for the calendar units, an anchor: the weekday of a week, whether months, quarters and years are
labelled by their first or last day, and the month a quarter or year starts (or ends) in. A
string that names no anchor (Autopilot's ``W``, ``M``, ``Y``; pandas' bare ``Q``, ``QS``…) leaves
it to :meth:`Frequency.resolve`, which reads it from the data; where the data show none (finer
timestamps that are aggregated) the defaults are weeks ending on Sunday (pandas' ``W``), months,
quarters and years labelled by their first day, quarters starting in January, years in January
(or ending in December when labelled by their last day).

Every multiple keeps Autopilot's rule that a frequency must not overlap the next larger unit:
minutes 1-59, hours 1-23, days 1-6, weeks 1-4, months 1-11, quarters 1-3 (pandas only) and years 1,
so ``60min`` asks for ``1H`` and ``7D`` for ``1W``, for pandas aliases too.

The season length of a frequency (for MASE and seasonal models) is
:func:`mlpilot.metrics.season_length` of its :attr:`Frequency.alias`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset

from mlpilot.errors import ConfigError

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

_MINUTE_NS = 60 * 10**9
_DAY_NS = 24 * 60 * _MINUTE_NS
#: Nanoseconds in one base step of the fixed-length units.
_STEP_NS = {"min": _MINUTE_NS, "h": 60 * _MINUTE_NS, "D": _DAY_NS, "W": 7 * _DAY_NS}
#: Months in one base step of the calendar units.
_STEP_MONTHS = {"M": 1, "Q": 3, "Y": 12}
#: Largest multiple of each unit, and the next larger unit with how many of this one make it.
_LIMITS = {
    "min": (59, ("H", 60)),
    "h": (23, ("D", 24)),
    "D": (6, ("W", 7)),
    "W": (4, None),
    "M": (11, ("Y", 12)),
    "Q": (3, ("Y", 4)),
    "Y": (1, None),
}
_UNIT_NAMES = {
    "min": "minutes",
    "h": "hours",
    "D": "days",
    "W": "weeks",
    "M": "months",
    "Q": "quarters",
    "Y": "years",
}

#: Unit letters as written → (unit, side). A side of None is read from the data.
_BODIES: dict[str, tuple[str, str | None]] = {
    "min": ("min", None),
    "T": ("min", None),
    "H": ("h", None),
    "h": ("h", None),
    "D": ("D", None),
    "W": ("W", None),
    "M": ("M", None),
    "MS": ("M", "start"),
    "ME": ("M", "end"),
    "Q": ("Q", None),
    "QS": ("Q", "start"),
    "QE": ("Q", "end"),
    "Y": ("Y", None),
    "A": ("Y", None),
    "YS": ("Y", "start"),
    "AS": ("Y", "start"),
    "YE": ("Y", "end"),
}
_PATTERN = re.compile(r"^(?P<n>\d*)(?P<body>[A-Za-z]+)(?:-(?P<anchor>[A-Za-z]{3}))?$")
_ACCEPTED = (
    "Autopilot's 1Y|Y, 1-11M|M, 1-4W|W, 1-6D|D, 1-23H|H, 1-59min, or a pandas alias "
    "(MS, ME, QS-JAN, QE-DEC, YS, W-FRI, D, h, 30min, T…)"
)


@dataclass(frozen=True)
class Frequency:
    """A forecast frequency: ``n`` steps of ``unit``, anchored as ``side`` and ``anchor`` say.

    ``side`` (``"start"`` or ``"end"``, months, quarters and years only) and ``anchor`` (a weekday
    ``MON``…``SUN`` for weeks, a month ``JAN``…``DEC`` for quarters and years) are None where the
    string named none: :meth:`resolve` reads them from the data.
    """

    unit: str
    n: int = 1
    side: str | None = None
    anchor: str | None = None

    def __post_init__(self) -> None:
        if self.unit not in _LIMITS:
            raise ConfigError(f"Frequency unit {self.unit!r} is not one of {', '.join(_LIMITS)}")
        most, _ = _LIMITS[self.unit]
        if not 1 <= self.n <= most:
            raise ConfigError(f"{_UNIT_NAMES[self.unit]} take a multiple from 1 to {most}")
        if self.side is not None and (self.unit not in _STEP_MONTHS or self.side not in _SIDES):
            raise ConfigError(f"A {self.unit} frequency has no side {self.side!r}")
        if self.anchor is not None:
            names = WEEKDAYS if self.unit == "W" else MONTHS if self.unit in ("Q", "Y") else ()
            if self.anchor not in names:
                raise ConfigError(f"A {self.unit} frequency has no anchor {self.anchor!r}")
            if self.unit == "Q":
                # QS-JAN, QS-APR, QS-JUL and QS-OCT draw one grid: keep one spelling.
                cycle = MONTHS.index(self.anchor) % 3
                object.__setattr__(self, "anchor", MONTHS[cycle + (9 if self.side == "end" else 0)])

    # -- parsing ---------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Frequency:
        """Read an Autopilot ForecastFrequency or a pandas offset alias; :class:`ConfigError`
        (one line) for anything else."""
        raw = str(text).strip()
        match = _PATTERN.match(raw)
        body = match["body"] if match else ""
        if match is None or body not in _BODIES:
            raise ConfigError(f"ForecastFrequency {text!r} is not a frequency: use {_ACCEPTED}")
        unit, side = _BODIES[body]
        digits = match["n"]
        if digits.startswith("0"):
            raise ConfigError(
                f"ForecastFrequency {text!r} is not valid: the multiple must be a whole number "
                "from 1, without leading zeros"
            )
        n = int(digits) if digits else 1
        most, larger = _LIMITS[unit]
        if n > most:
            hint = ""
            if larger is not None and n % larger[1] == 0:
                hint = f" (use {n // larger[1]}{larger[0]})"
            allowed = f"from 1 to {most}" if most > 1 else "of 1 only"
            raise ConfigError(
                f"ForecastFrequency {text!r} overlaps the next larger unit: {_UNIT_NAMES[unit]} "
                f"take a multiple {allowed}{hint}"
            )
        anchor = match["anchor"].upper() if match["anchor"] else None
        if anchor is not None:
            if unit == "W" and anchor not in WEEKDAYS:
                raise ConfigError(f"ForecastFrequency {text!r}: {anchor} is not a weekday")
            if unit in ("Q", "Y"):
                if anchor not in MONTHS:
                    raise ConfigError(f"ForecastFrequency {text!r}: {anchor} is not a month")
                # pandas' Q-DEC / A-DEC / Y-DEC label quarters and years by their last day.
                side = side or "end"
            if unit not in ("W", "Q", "Y"):
                raise ConfigError(f"ForecastFrequency {text!r}: {body} takes no anchor")
        return cls(unit, n, side, anchor)

    # -- what the frequency is -------------------------------------------------------------------

    @property
    def alias(self) -> str:
        """The pandas offset alias of this grid (defaults filled in where not yet resolved)."""
        n = str(self.n) if self.n > 1 else ""
        if self.unit in ("min", "h", "D"):
            return f"{n}{self.unit}"
        if self.unit == "W":
            return f"{n}W-{self._weekday_name}"
        letter = "S" if self._side == "start" else "E"
        if self.unit == "M":
            return f"{n}M{letter}"
        return f"{n}{self.unit}{letter}-{MONTHS[self._month - 1]}"

    @property
    def offset(self) -> BaseOffset:
        """The pandas offset that draws this grid (``pd.date_range(start, periods, freq=...)``)."""
        return to_offset(self.alias)

    @property
    def autopilot(self) -> str:
        """The same step as an Autopilot ForecastFrequency (which carries no anchor; a quarter
        is three months)."""
        if self.unit == "Q":
            return f"{3 * self.n}M"
        letter = {"min": "min", "h": "H"}.get(self.unit, self.unit)
        if self.unit == "min" or self.n > 1:
            return f"{self.n}{letter}"
        return letter

    @property
    def resolved(self) -> bool:
        """Whether every anchor this unit needs is known."""
        if self.unit == "W":
            return self.anchor is not None
        if self.unit == "M":
            return self.side is not None
        if self.unit in ("Q", "Y"):
            return self.side is not None and self.anchor is not None
        return True

    @property
    def shortest_period(self) -> pd.Timedelta:
        """The shortest time one step can span (28 days a month, 89 a quarter, 365 a year)."""
        if self.unit in _STEP_NS:
            return pd.Timedelta(self.n * _STEP_NS[self.unit], unit="ns")
        days = {"M": 28, "Q": 89, "Y": 365}[self.unit]
        return pd.Timedelta(days=days * self.n)

    def __str__(self) -> str:
        return self.alias

    # -- anchors from the data -------------------------------------------------------------------

    def resolve(self, timestamps: np.ndarray | pd.DatetimeIndex) -> Frequency:
        """This frequency with the anchors the string left open read from ``timestamps``: the
        weekday, the side (first or last day of the month) and the month of the quarter or year
        that more than half of them share (so one stray timestamp is reported off the grid rather
        than moving it); the defaults where none does (finer data, aggregated)."""
        if self.resolved:
            return self
        ts = _ns(timestamps)
        if self.unit == "W":
            day = _majority(_weekday(ts))
            return replace(self, anchor=WEEKDAYS[day] if day is not None else "SUN")
        side = self.side
        if side is None:
            on_side = {s: _on_side(ts, s) for s in _SIDES}
            side = next((s for s in _SIDES if on_side[s].mean() > 0.5), "start")
        anchor = self.anchor
        if anchor is None and self.unit in ("Q", "Y"):
            on = _on_side(ts, side)
            month = _majority(_months(ts[on]) % _STEP_MONTHS[self.unit])
            if month is not None and on.mean() > 0.5:
                anchor = MONTHS[month]
            else:
                anchor = "JAN" if side == "start" else "DEC"
        return Frequency(self.unit, self.n, side, anchor)

    # -- the grid --------------------------------------------------------------------------------

    def on_anchor(self, timestamps: np.ndarray | pd.DatetimeIndex) -> np.ndarray:
        """Which timestamps fall on an anchor of this grid (any time of day)."""
        ts = _ns(timestamps)
        if self.unit == "W":
            return _weekday(ts) == self._weekday
        if self.unit not in _STEP_MONTHS:
            return np.ones(len(ts), dtype=bool)
        ok = _on_side(ts, self._side)
        if self.unit != "M":
            phase = (self._month - 1) % _STEP_MONTHS[self.unit]
            ok &= ts.astype("datetime64[M]").astype(np.int64) % _STEP_MONTHS[self.unit] == phase
        return ok

    def positions(
        self, timestamps: np.ndarray | pd.DatetimeIndex, origins: np.ndarray | pd.DatetimeIndex
    ) -> tuple[np.ndarray, np.ndarray]:
        """Steps from each origin to its timestamp (floored) and whether the timestamp lies on
        the grid that starts at that origin. An origin off the anchors puts nothing on its grid."""
        ts, t0 = _ns(timestamps), _ns(origins)
        if self.unit in _STEP_NS:
            step = self.n * _STEP_NS[self.unit]
            delta = ts.astype(np.int64) - t0.astype(np.int64)
            on = (delta % step == 0) & self.on_anchor(ts) & self.on_anchor(t0)
            return delta // step, on
        step = self.n * _STEP_MONTHS[self.unit]
        delta = _months(ts) - _months(t0)
        same_time = _time_of_day(ts) == _time_of_day(t0)
        on = (delta % step == 0) & same_time & self.on_anchor(ts) & self.on_anchor(t0)
        return delta // step, on

    def timestamps(
        self, origins: np.ndarray | pd.DatetimeIndex, positions: np.ndarray
    ) -> np.ndarray:
        """The timestamp ``positions`` steps after each origin on the origin's grid."""
        t0 = _ns(origins)
        positions = np.asarray(positions, dtype=np.int64)
        if self.unit in _STEP_NS:
            return t0 + (positions * self.n * _STEP_NS[self.unit]).astype("timedelta64[ns]")
        months = _months(t0) + positions * self.n * _STEP_MONTHS[self.unit]
        return _month_label(months, self._side) + _time_of_day(t0).astype("timedelta64[ns]")

    def range(self, start: pd.Timestamp | str, periods: int) -> pd.DatetimeIndex:
        """``periods`` grid timestamps from ``start`` (which must lie on the grid)."""
        origin = np.array([pd.Timestamp(start).to_datetime64()], dtype="datetime64[ns]")
        stamps = self.timestamps(np.repeat(origin, periods), np.arange(periods))
        return pd.DatetimeIndex(stamps)

    def labels(self, timestamps: np.ndarray | pd.DatetimeIndex) -> np.ndarray:
        """The grid timestamp of the period each timestamp falls in, for aggregating finer data.

        Periods are counted from 1970-01-01 (pandas' ``origin="epoch"``). Minutes, hours and days
        are labelled by their first instant; weeks, and months, quarters and years anchored on
        their last day, by their last day (pandas' ``resample`` labels); the others by their
        first day. Calendar labels are at midnight.
        """
        ts = _ns(timestamps)
        raw = ts.astype(np.int64)
        if self.unit in ("min", "h", "D"):
            step = self.n * _STEP_NS[self.unit]
            return (raw - raw % step).astype("datetime64[ns]")
        if self.unit == "W":
            step_days = 7 * self.n
            first = (self._weekday - 3) % 7  # 1970-01-01 was a Thursday
            days = ts.astype("datetime64[D]").astype(np.int64) - first
            ends = days + (-days) % step_days + first
            return ends.astype("datetime64[D]").astype("datetime64[ns]")
        step = self.n * _STEP_MONTHS[self.unit]
        phase = (self._month - 1) % step if self.unit != "M" else 0
        months = _months(ts)
        if self._side == "start":
            months = months - (months - phase) % step
        else:
            months = months + (phase - months) % step
        return _month_label(months, self._side)

    # -- defaults for the anchors not resolved yet -----------------------------------------------

    @property
    def _side(self) -> str:
        return self.side or "start"

    @property
    def _weekday(self) -> int:
        return WEEKDAYS.index(self._weekday_name)

    @property
    def _weekday_name(self) -> str:
        return self.anchor or "SUN"

    @property
    def _month(self) -> int:
        if self.anchor is not None:
            return MONTHS.index(self.anchor) + 1
        return 1 if self._side == "start" else 12


_SIDES = ("start", "end")


def parse_frequency(text: str | Frequency) -> Frequency:
    """``text`` as a :class:`Frequency` (a Frequency is returned as it is)."""
    return text if isinstance(text, Frequency) else Frequency.parse(text)


def infer_frequency(
    timestamps: np.ndarray | pd.DatetimeIndex | pd.Series, series: np.ndarray | None = None
) -> Frequency | None:
    """The frequency the timestamps look like, from the most common step between consecutive
    distinct timestamps of each series (``series``: a code per timestamp; None: one series).
    None where that step is no frequency mlpilot knows (or there is no step at all)."""
    ts = _ns(timestamps)
    codes = np.zeros(len(ts), dtype=np.int64) if series is None else np.asarray(series)
    order = np.lexsort((ts, codes))
    ts, codes = ts[order], codes[order]
    same = codes[1:] == codes[:-1]
    steps = np.diff(ts.astype(np.int64))[same]
    steps = steps[steps > 0]
    if len(steps) == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[np.argmax(counts)])
    if step >= 28 * _DAY_NS and (_time_of_day(ts) == 0).all():
        month_steps = np.diff(_months(ts))[same]
        month_steps = month_steps[month_steps > 0]
        for side in _SIDES:
            if len(month_steps) and _on_side(ts, side).all():
                values, counts = np.unique(month_steps, return_counts=True)
                return _calendar(int(values[np.argmax(counts)]), side, ts)
    for unit in ("W", "D", "h", "min"):
        if step % _STEP_NS[unit] == 0:
            n = step // _STEP_NS[unit]
            if n > _LIMITS[unit][0]:
                return None
            if unit != "W":
                return Frequency(unit, n)
            days = np.unique(_weekday(ts))
            return Frequency("W", n, anchor=WEEKDAYS[int(days[0])]) if len(days) == 1 else None
    return None


def _calendar(months: int, side: str, ts: np.ndarray) -> Frequency | None:
    """The month, quarter or year frequency of a step of ``months`` anchored as ``ts`` are."""
    for unit, per in (("Y", 12), ("Q", 3), ("M", 1)):
        if months % per == 0 and months // per <= _LIMITS[unit][0]:
            if unit == "M":
                return Frequency("M", months, side)
            cycle = np.unique(_months(ts) % per)
            if len(cycle) == 1:
                return Frequency(unit, months // per, side, MONTHS[int(cycle[0])])
    return None


# -- datetime64 arithmetic on arrays (vectorised; months counted from 1970-01) ------------------


def _majority(values: np.ndarray) -> int | None:
    """The value more than half of ``values`` share, if any."""
    if len(values) == 0:
        return None
    found, counts = np.unique(values, return_counts=True)
    best = int(np.argmax(counts))
    return int(found[best]) if counts[best] * 2 > len(values) else None


def _ns(values: np.ndarray | pd.DatetimeIndex | pd.Series) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[ns]")


def _months(ts: np.ndarray) -> np.ndarray:
    return ts.astype("datetime64[M]").astype(np.int64)


def _weekday(ts: np.ndarray) -> np.ndarray:
    return (ts.astype("datetime64[D]").astype(np.int64) + 3) % 7  # Monday = 0


def _time_of_day(ts: np.ndarray) -> np.ndarray:
    return ts.astype(np.int64) - ts.astype("datetime64[D]").astype("datetime64[ns]").astype(
        np.int64
    )


def _day_of_month(ts: np.ndarray) -> np.ndarray:
    days = ts.astype("datetime64[D]") - ts.astype("datetime64[M]").astype("datetime64[D]")
    return days.astype(np.int64) + 1


def _days_in_month(months: np.ndarray) -> np.ndarray:
    first = months.astype("datetime64[D]")
    return ((months + 1).astype("datetime64[D]") - first).astype(np.int64)


def _on_side(ts: np.ndarray, side: str) -> np.ndarray:
    days = _day_of_month(ts)
    if side == "start":
        return days == 1
    return days == _days_in_month(ts.astype("datetime64[M]"))


def _month_label(months: np.ndarray, side: str) -> np.ndarray:
    """Midnight of the first (``start``) or last (``end``) day of each month count."""
    first = months.astype("datetime64[M]")
    if side == "start":
        return first.astype("datetime64[D]").astype("datetime64[ns]")
    last = (first + 1).astype("datetime64[D]") - np.timedelta64(1, "D")
    return last.astype("datetime64[ns]")
