"""Forecast accuracy over a backtest window, with Amazon Forecast's (and Autopilot's) definitions.

Notation: ``y`` the actual value, ``ŷ`` the mean forecast, ``q_τ`` the τ-quantile forecast; a sum
without a subscript runs over every item and time step of one window.

- ``RMSE`` = √(Σ (y − ŷ)² / n), n the scored points of the window.
- ``wQL[τ]`` = 2 · Σ [τ · max(y − q_τ, 0) + (1 − τ) · max(q_τ − y, 0)] / Σ |y|.
- ``AverageWeightedQuantileLoss`` = the mean of ``wQL[τ]`` over the configured quantiles (the
  default objective).
- ``WAPE`` = Σ |y − ŷ| / Σ |y|. ``wQL[0.5]`` of a forecast equals ``WAPE`` of the same values.
- ``MAPE`` = the mean over items of each item's mean |(y − ŷ) / y|.
- ``MASE`` = the mean over items of each item's mean |y − ŷ| divided by the in-sample error of
  the seasonal naive forecast on the item's own history, mean |Y_t − Y_{t−m}| (season m from
  the frequency: :func:`season_length`).

Where a definition breaks down:

- **Σ|y| ≈ 0** (at most :data:`NEAR_ZERO`) in a window: ``wQL`` and ``WAPE`` report their
  numerators unweighted (the Forecast rule), so an all-zero window still ranks models.
- **MAPE**: points whose actual is exactly 0 are skipped; an item with no non-zero actual in the
  window is left out of the mean over items.
- **MASE**: an item whose history has no more than m points uses m = 1; an item whose naive
  error is 0 (a constant history) or undefined (fewer than two points) is left out.
- **Missing actuals** (NaN) are not scored: they drop out of every metric. Forecasts must be
  finite wherever an actual is present.
- A metric with nothing left to score is NaN.

Quantiles are named as Autopilot names them, ``p1`` … ``p99`` (:func:`quantile_level`,
:func:`quantile_name`); per-quantile losses are reported as ``wQL[0.1]``, … (:func:`wql_name`).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pandas.tseries import offsets
from pandas.tseries.frequencies import to_offset

from mlpilot.errors import ConfigError

#: A window whose Σ|y| is at most this counts as all zero (wQL and WAPE go unweighted).
NEAR_ZERO = 1e-10
#: Autopilot's default ForecastQuantiles.
DEFAULT_QUANTILES = ("p10", "p50", "p90")
#: The longest season :func:`season_length` returns (a day of one-minute steps).
MAX_SEASON = 1440

#: A quantile given as Autopilot's name (``"p10"``) or as its level (``0.1``).
QuantileKey = str | float

#: Each point's item id: strings, numbers, or tuples for a composite key.
ItemIds = Iterable[Hashable]

_QUANTILE_NAME = re.compile(r"p[1-9]\d?")


# --- quantile names -------------------------------------------------------------------------


def quantile_level(name: str) -> float:
    """``"p10"`` → ``0.1``: the level of one of Autopilot's quantile names, ``p1`` … ``p99``."""
    if not isinstance(name, str) or not _QUANTILE_NAME.fullmatch(name):
        raise ConfigError(
            f"Forecast quantile {name!r} is not one of p1 … p99 (such as p10, p50, p90)"
        )
    return int(name[1:]) / 100


def quantile_name(level: float) -> str:
    """``0.1`` → ``"p10"``; the level must be a whole percent from 1 to 99."""
    percent = round(float(level) * 100)
    if not 1 <= percent <= 99 or abs(float(level) * 100 - percent) > 1e-9:
        raise ConfigError(
            f"Forecast quantile level {level!r} is not a whole percent from 0.01 to 0.99"
        )
    return f"p{percent}"


def _level(quantile: QuantileKey) -> float:
    # Through the name and back, so 0.1 and "p10" become the same float.
    name = quantile if isinstance(quantile, str) else quantile_name(quantile)
    return quantile_level(name)


def wql_name(quantile: QuantileKey) -> str:
    """The per-quantile loss's name, as Forecast's accuracy export spells it: ``wQL[0.1]``."""
    return f"wQL[{_level(quantile)}]"


# --- season from the frequency --------------------------------------------------------------

# Autopilot's ForecastFrequency units, written as pandas aliases whose meaning does not depend on
# the pandas version ("M" and "H" are deprecated spellings there).
_AUTOPILOT_FREQUENCY = re.compile(r"(\d*)(Y|M|W|D|H|min)")
_AUTOPILOT_ALIAS = {"Y": "YS", "M": "MS", "W": "W", "D": "D", "H": "h", "min": "min"}

# Calendar offsets → steps in their natural cycle (a year; a week for days).
_STEPS_PER_CYCLE: tuple[tuple[tuple[type, ...], int], ...] = (
    ((offsets.YearBegin, offsets.YearEnd, offsets.BYearBegin, offsets.BYearEnd), 1),
    ((offsets.QuarterBegin, offsets.QuarterEnd, offsets.BQuarterBegin, offsets.BQuarterEnd), 4),
    ((offsets.SemiMonthBegin, offsets.SemiMonthEnd), 24),
    (
        (
            offsets.MonthBegin,
            offsets.MonthEnd,
            offsets.BusinessMonthBegin,
            offsets.BusinessMonthEnd,
            offsets.CustomBusinessMonthBegin,
            offsets.CustomBusinessMonthEnd,
            offsets.WeekOfMonth,
            offsets.LastWeekOfMonth,
        ),
        12,
    ),
    ((offsets.Week,), 52),
    ((offsets.BusinessDay, offsets.CustomBusinessDay), 5),
)

_MINUTE_NS = 60 * 10**9
_HOUR_NS = 60 * _MINUTE_NS
_DAY_NS = 24 * _HOUR_NS
_WEEK_NS = 7 * _DAY_NS


def _offset(freq: str | offsets.BaseOffset) -> offsets.BaseOffset:
    if isinstance(freq, offsets.BaseOffset):
        return freq
    text = str(freq).strip()
    autopilot = _AUTOPILOT_FREQUENCY.fullmatch(text)
    if autopilot:
        text = f"{autopilot[1] or 1}{_AUTOPILOT_ALIAS[autopilot[2]]}"
    try:
        with warnings.catch_warnings():
            # Legacy aliases (T, Q, A...) still name the same offsets; the warning is pandas'.
            warnings.simplefilter("ignore", FutureWarning)
            return to_offset(text)
    except ValueError:
        raise ConfigError(
            f"Unknown forecast frequency {freq!r}: give one of Autopilot's (such as W, 1D, "
            f"3M, 12H, 30min) or a pandas offset alias (such as MS, W-FRI, h)"
        ) from None


def _fixed_step_season(step_ns: int) -> int:
    # A step of a day or more repeats weekly; a shorter one daily, else hourly, else by the
    # minute: the first cycle that holds a whole number of steps, at most MAX_SEASON of them.
    cycles = (_WEEK_NS,) if step_ns >= _DAY_NS else (_DAY_NS, _HOUR_NS, _MINUTE_NS)
    for cycle in cycles:
        if cycle % step_ns == 0 and 2 <= cycle // step_ns <= MAX_SEASON:
            return cycle // step_ns
    return 1


def season_length(freq: str | offsets.BaseOffset) -> int:
    """The season m of MASE for a forecast frequency: steps per natural cycle.

    ``freq`` is one of Autopilot's ForecastFrequency strings (``Y``, ``3M``, ``W``, ``1D``,
    ``12H``, ``30min``...) or a pandas offset (alias or object, anchored ones included).

    ============================================  =============================================
    frequency                                     m
    ============================================  =============================================
    yearly (``Y``, ``YS``, ``YE``, ``A``, …)      1
    quarterly (``Q``, ``QS-JAN``, ``BQ``, …)      4 / n
    monthly (``M``, ``MS``, ``ME``, ``BMS``, …)   12 / n
    semi-monthly (``SMS``, ``SM``)                24 / n
    weekly (``W``, ``W-FRI``)                     52 / n
    business daily (``B``, ``C``)                 5 / n
    daily (``D``)                                 7 / n (a week)
    hourly (``h``, ``H``)                         24 / n (a day)
    minutes (``min``, ``T``)                      steps per day (1440 / n), else per hour
    seconds and finer                             steps per day, hour or minute: the first
                                                  whole number from 2 to 1440
    anything else (``BH``, Easter…)               1
    ============================================  =============================================

    n is the offset's multiple (``3M`` → n = 3 → m = 4). A multiple that does not divide its
    cycle leaves no whole season, and m = 1 (``5M``, ``2D``, ``7min``). A fixed step of whole
    days counts as days (``24h`` → 7). A history too short for m is the caller's concern
    (:func:`seasonal_naive_scale` falls back to m = 1).
    """
    offset = _offset(freq)
    n = offset.n
    if n < 1:
        raise ConfigError(f"Forecast frequency {freq!r} must step forward (got a multiple of {n})")
    if isinstance(offset, offsets.Day):  # a Tick in pandas 2, a calendar day in pandas 3
        return _fixed_step_season(n * _DAY_NS)
    for kinds, steps in _STEPS_PER_CYCLE:
        if isinstance(offset, kinds):
            return steps // n if steps % n == 0 else 1
    if isinstance(offset, offsets.Tick):
        return _fixed_step_season(int(offset.nanos))
    return 1


# --- input checks ---------------------------------------------------------------------------


def _vector(values: ArrayLike, what: str, length: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional; got shape {array.shape}")
    if length is not None and len(array) != length:
        raise ValueError(f"{what} has {len(array)} values; the actuals have {length}")
    return array


def _actuals(actual: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The actuals and the mask of those present (NaN = missing, not scored)."""
    y = _vector(actual, "actual")
    if np.isinf(y).any():
        raise ValueError("actual values must be finite (NaN marks a missing one)")
    return y, ~np.isnan(y)


def _forecast(forecast: ArrayLike, what: str, present: np.ndarray) -> np.ndarray:
    f = _vector(forecast, what, len(present))
    if not np.isfinite(f[present]).all():
        raise ValueError(f"{what} forecast is not finite where an actual is present")
    return f


def _scored(actual: ArrayLike, forecast: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The present actuals and their forecasts."""
    y, present = _actuals(actual)
    f = _forecast(forecast, what, present)
    return y[present], f[present]


def _items(item_ids: ItemIds | None, length: int) -> tuple[np.ndarray, list[Hashable]]:
    """Each point's item as a code, and the items in order of first appearance."""
    if item_ids is None:
        return np.zeros(length, dtype=np.intp), [None]
    # tupleize_cols=False keeps composite keys (tuples) as single labels.
    index = pd.Index(list(item_ids), tupleize_cols=False)
    if len(index) != length:
        raise ValueError(f"item_ids has {len(index)} values; the actuals have {length}")
    codes, uniques = index.factorize()
    return np.asarray(codes, dtype=np.intp), list(uniques)


def _mean_of(values: list[float] | np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _weighted_by_actuals(numerator: float, y: np.ndarray) -> float:
    if y.size == 0:
        return math.nan
    total = float(np.abs(y).sum())
    return numerator if total <= NEAR_ZERO else numerator / total


# --- the metrics ----------------------------------------------------------------------------


def rmse(actual: ArrayLike, mean: ArrayLike) -> float:
    """√(Σ (y − ŷ)² / n) over the window's present actuals."""
    y, f = _scored(actual, mean, "mean")
    return math.sqrt(float(np.mean((y - f) ** 2))) if y.size else math.nan


def wape(actual: ArrayLike, mean: ArrayLike) -> float:
    """Σ |y − ŷ| / Σ |y|; the bare numerator when Σ |y| ≈ 0."""
    y, f = _scored(actual, mean, "mean")
    return _weighted_by_actuals(float(np.abs(y - f).sum()), y)


def weighted_quantile_loss(actual: ArrayLike, forecast: ArrayLike, quantile: QuantileKey) -> float:
    """wQL[τ] = 2 · Σ [τ·(y − q)⁺ + (1 − τ)·(q − y)⁺] / Σ |y|; the bare numerator when
    Σ |y| ≈ 0. ``quantile`` is ``"p10"`` or ``0.1``."""
    tau = _level(quantile)
    y, q = _scored(actual, forecast, quantile_name(tau))
    under = np.maximum(y - q, 0.0)  # the actual above the quantile: weighted by τ
    over = np.maximum(q - y, 0.0)
    return _weighted_by_actuals(2.0 * float((tau * under + (1.0 - tau) * over).sum()), y)


def mape(actual: ArrayLike, mean: ArrayLike, item_ids: ItemIds | None = None) -> float:
    """The mean over items of each item's mean |(y − ŷ) / y|.

    Zero policy: points whose actual is exactly 0 are skipped (the ratio is undefined there),
    and an item with no non-zero actual in the window is left out; NaN when no item is left.
    """
    y, present = _actuals(actual)
    f = _forecast(mean, "mean", present)
    codes, items = _items(item_ids, len(y))
    used = present & (y != 0)
    ratios = np.abs((y[used] - f[used]) / y[used])
    totals = np.bincount(codes[used], weights=ratios, minlength=len(items))
    counts = np.bincount(codes[used], minlength=len(items))
    kept = counts > 0
    return _mean_of(totals[kept] / counts[kept])


def seasonal_naive_scale(history: ArrayLike, season: int) -> float:
    """Mean |Y_t − Y_{t−m}| over a history: the in-sample error of the seasonal naive forecast.

    A history of no more than m points uses m = 1; pairs with a missing value are skipped; NaN
    when no pair is left."""
    if season < 1:
        raise ValueError(f"season must be at least 1; got {season}")
    h = _vector(history, "history")
    m = season if len(h) > season else 1
    gaps = np.abs(h[m:] - h[:-m])
    gaps = gaps[~np.isnan(gaps)]
    return float(gaps.mean()) if gaps.size else math.nan


def mase(
    actual: ArrayLike,
    mean: ArrayLike,
    history: Mapping[Hashable, ArrayLike] | ArrayLike,
    season: int,
    item_ids: ItemIds | None = None,
) -> float:
    """The mean over items of each item's mean |y − ŷ| divided by its
    :func:`seasonal_naive_scale` (m = ``season``, see :func:`season_length`).

    ``history`` maps each item id to its values before the window, oldest first (one array
    when ``item_ids`` is not given). An item whose scale is 0 or undefined is left out; NaN when
    no item is left.
    """
    y, present = _actuals(actual)
    f = _forecast(mean, "mean", present)
    codes, items = _items(item_ids, len(y))
    if not isinstance(history, Mapping):
        if len(items) > 1:
            raise ValueError("history must map each item id to its values when there are items")
        history = {items[0]: history}
    errors = np.bincount(codes[present], weights=np.abs(y - f)[present], minlength=len(items))
    counts = np.bincount(codes[present], minlength=len(items))
    ratios = []
    for code, item in enumerate(items):
        if counts[code] == 0:
            continue
        if item not in history:
            raise ValueError(f"No history for item {item!r}: MASE scales by each item's past")
        scale = seasonal_naive_scale(history[item], season)
        if scale > 0:  # False for 0 and NaN: no naive error to scale by
            ratios.append(errors[code] / counts[code] / scale)
    return _mean_of(ratios)


def quantile_coverage(
    actual: ArrayLike, quantiles: Mapping[QuantileKey, ArrayLike]
) -> dict[str, float]:
    """Per quantile (``"p10"``...), the share of present actuals at or below its forecast; a
    calibrated τ-quantile covers about τ."""
    y, present = _actuals(actual)
    out = {}
    for tau, forecast in _by_level(quantiles):
        q = _forecast(forecast, quantile_name(tau), present)
        out[quantile_name(tau)] = (
            float(np.mean(y[present] <= q[present])) if present.any() else math.nan
        )
    return out


def _by_level(quantiles: Mapping[QuantileKey, ArrayLike]) -> list[tuple[float, ArrayLike]]:
    levels: dict[float, ArrayLike] = {}
    for key, forecast in quantiles.items():
        tau = _level(key)
        if tau in levels:
            raise ValueError(f"Quantile {quantile_name(tau)} is given twice")
        levels[tau] = forecast
    return sorted(levels.items())


def score_forecasts(
    actual: ArrayLike,
    mean: ArrayLike,
    quantiles: Mapping[QuantileKey, ArrayLike],
    *,
    item_ids: ItemIds | None = None,
    history: Mapping[Hashable, ArrayLike] | ArrayLike | None = None,
    season: int = 1,
) -> dict[str, float]:
    """Every forecast metric of one backtest window.

    Parameters
    ----------
    actual:
        The window's actual values, one per (item, time step); NaN where missing.
    mean:
        The mean forecast at the same points.
    quantiles:
        Quantile forecasts at the same points, keyed ``"p10"`` (or ``0.1``); at least one.
    item_ids:
        Each point's item (a composite key as a tuple); all one item when not given.
    history:
        For MASE: each item's values before the window, oldest first (see :func:`mase`);
        without it MASE is NaN.
    season:
        MASE's m, usually ``season_length(frequency)``.

    Returns
    -------
    ``{"RMSE", "wQL[τ]" per quantile (ascending), "AverageWeightedQuantileLoss", "MASE",
    "MAPE", "WAPE"}`` in that order, the order of AutoMLJobObjective's documentation.
    """
    levels = _by_level(quantiles)
    if not levels:
        raise ValueError("score_forecasts needs at least one quantile forecast")
    out = {"RMSE": rmse(actual, mean)}
    losses = {wql_name(tau): weighted_quantile_loss(actual, q, tau) for tau, q in levels}
    out.update(losses)
    out["AverageWeightedQuantileLoss"] = _mean_of(list(losses.values()))
    out["MASE"] = math.nan if history is None else mase(actual, mean, history, season, item_ids)
    out["MAPE"] = mape(actual, mean, item_ids)
    out["WAPE"] = wape(actual, mean)
    return out


def average_over_windows(windows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Each metric's mean over backtest windows (names in first-seen order). A window where a
    metric is NaN (nothing to score) or absent does not count for it; NaN when none does."""
    values: dict[str, list[float]] = {}
    for window in windows:
        for name, value in window.items():
            values.setdefault(name, [])
            if not math.isnan(value):
                values[name].append(float(value))
    return {name: _mean_of(kept) for name, kept in values.items()}
