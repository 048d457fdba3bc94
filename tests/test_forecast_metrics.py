"""Tests for the forecast metrics: each one against a hand-worked window and against a plain-Python
loop on random windows, the edge policies (Σ|y| ≈ 0, MAPE's zeros, MASE's season and fallback),
quantile names, coverage, and the registry entries that job records render."""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Sequence

import numpy as np
import pytest

from mlpilot._types import ProblemType
from mlpilot.errors import ConfigError
from mlpilot.jobs._records import metric_data, objective_block
from mlpilot.metrics import (
    DEFAULT_QUANTILES,
    NEAR_ZERO,
    TIME_SERIES_FORECASTING,
    average_over_windows,
    default_forecast_objective,
    forecast_metric_names,
    get_forecast_metric,
    get_metric,
    mape,
    mase,
    metric_names,
    quantile_coverage,
    quantile_level,
    quantile_name,
    rmse,
    score_forecasts,
    season_length,
    seasonal_naive_scale,
    wape,
    weighted_quantile_loss,
    wql_name,
)

# --- a hand-worked window ----------------------------------------------------------------------
# Two items, three steps each.
#   item A: y = 2, 4, 6   mean = 3, 4, 3   |e| = 1, 0, 3
#   item B: y = 0, 1, 3   mean = 1, 1, 2   |e| = 1, 0, 1
IDS = ["A", "A", "A", "B", "B", "B"]
Y = [2.0, 4.0, 6.0, 0.0, 1.0, 3.0]
MEAN = [3.0, 4.0, 3.0, 1.0, 1.0, 2.0]
P10 = [1.0, 5.0, 4.0, 0.0, 2.0, 1.0]
P90 = [3.0, 5.0, 7.0, 1.0, 2.0, 2.0]
QUANTILES = {"p10": P10, "p50": MEAN, "p90": P90}
HISTORY = {"A": [1.0, 2.0, 3.0, 4.0, 5.0], "B": [0.0, 2.0, 0.0, 2.0]}

# Σ|y| = 2 + 4 + 6 + 0 + 1 + 3 = 16; Σ|e| = 1 + 0 + 3 + 1 + 0 + 1 = 6.
HAND_WAPE = 6 / 16  # 0.375
HAND_RMSE = math.sqrt((1 + 0 + 9 + 1 + 0 + 1) / 6)  # √2
# wQL[0.1]: y above q costs 0.1 per unit, below 0.9 per unit.
#   A: (2 vs 1) 0.1·1, (4 vs 5) 0.9·1, (6 vs 4) 0.1·2
#   B: (0 vs 0) 0, (1 vs 2) 0.9·1, (3 vs 1) 0.1·2
#   Σ = 0.1 + 0.9 + 0.2 + 0 + 0.9 + 0.2 = 2.3 → 2 · 2.3 / 16
HAND_WQL10 = 4.6 / 16  # 0.2875
# wQL[0.9]: A: 0.1 + 0.1 + 0.1 (q one above y each time); B: 0.1, 0.1, then (3 vs 2) 0.9·1 → 1.4
HAND_WQL90 = 2.8 / 16  # 0.175
# wQL[0.5] of the mean = 2 · 0.5 · Σ|e| / Σ|y| = WAPE.
HAND_WQL50 = HAND_WAPE
HAND_AVERAGE_WQL = (HAND_WQL10 + HAND_WQL50 + HAND_WQL90) / 3  # 0.2791666…
# MAPE: A: 1/2, 0/4, 3/6 → mean 1/3; B: the 0 is skipped, 0/1, 1/3 → mean 1/6; (1/3 + 1/6) / 2.
HAND_MAPE = 0.25
# MASE: MAE_A = 4/3, MAE_B = 2/3.
#   m = 1: A's naive error 1 (steps of 1), B's 2 → (4/3 / 1 + 2/3 / 2) / 2 = 5/6.
#   m = 2: A: |3−1|, |4−2|, |5−3| → 2, so 2/3; B: |0−0|, |2−2| → 0, left out → 2/3.
#   m = 5: neither history has more than 5 points: both fall back to m = 1 → 5/6.
HAND_MASE = {1: 5 / 6, 2: 2 / 3, 5: 5 / 6}
# Coverage (y ≤ q): p10: 4≤5, 0≤0, 1≤2 → 3/6; p50 (the mean): 2≤3, 4≤4, 0≤1, 1≤1 → 4/6;
# p90: all but (3 vs 2) → 5/6.
HAND_COVERAGE = {"p10": 0.5, "p50": 4 / 6, "p90": 5 / 6}


@pytest.mark.parametrize("season", [1, 2, 5])
def test_score_forecasts_on_the_hand_worked_window(season: int) -> None:
    scores = score_forecasts(Y, MEAN, QUANTILES, item_ids=IDS, history=HISTORY, season=season)
    assert list(scores) == [
        "RMSE",
        "wQL[0.1]",
        "wQL[0.5]",
        "wQL[0.9]",
        "AverageWeightedQuantileLoss",
        "MASE",
        "MAPE",
        "WAPE",
    ]
    expected = {
        "RMSE": HAND_RMSE,
        "wQL[0.1]": HAND_WQL10,
        "wQL[0.5]": HAND_WQL50,
        "wQL[0.9]": HAND_WQL90,
        "AverageWeightedQuantileLoss": HAND_AVERAGE_WQL,
        "MASE": HAND_MASE[season],
        "MAPE": HAND_MAPE,
        "WAPE": HAND_WAPE,
    }
    assert scores == pytest.approx(expected, rel=1e-12)
    assert all(isinstance(v, float) for v in scores.values())


def test_each_metric_function_on_the_hand_worked_window() -> None:
    assert rmse(Y, MEAN) == pytest.approx(math.sqrt(2))
    assert wape(Y, MEAN) == pytest.approx(0.375)
    assert weighted_quantile_loss(Y, P10, "p10") == pytest.approx(0.2875)
    assert weighted_quantile_loss(Y, P10, 0.1) == pytest.approx(0.2875)
    assert weighted_quantile_loss(Y, P90, "p90") == pytest.approx(0.175)
    assert mape(Y, MEAN, IDS) == pytest.approx(0.25)
    assert mase(Y, MEAN, HISTORY, 2, IDS) == pytest.approx(2 / 3)
    assert quantile_coverage(Y, QUANTILES) == pytest.approx(HAND_COVERAGE)
    # Pooled over one series, MAPE is the mean of the five defined ratios.
    assert mape(Y, MEAN) == pytest.approx((0.5 + 0 + 0.5 + 0 + 1 / 3) / 5)


def test_quantile_keys_may_be_names_or_levels_in_any_order() -> None:
    by_level = {0.9: P90, 0.1: P10, 0.5: MEAN}
    assert score_forecasts(Y, MEAN, by_level, item_ids=IDS) == pytest.approx(
        score_forecasts(Y, MEAN, QUANTILES, item_ids=IDS), nan_ok=True
    )
    assert list(quantile_coverage(Y, by_level)) == ["p10", "p50", "p90"]
    with pytest.raises(ValueError, match="p10 is given twice"):
        score_forecasts(Y, MEAN, {"p10": P10, 0.1: P10})
    with pytest.raises(ValueError, match="at least one quantile"):
        score_forecasts(Y, MEAN, {})


# --- plain-Python loops, compared on random windows -------------------------------------------


def loop_rmse(y: Sequence[float], f: Sequence[float]) -> float:
    squares = [(a - b) ** 2 for a, b in zip(y, f, strict=True) if not math.isnan(a)]
    return math.sqrt(sum(squares) / len(squares))


def loop_weighted(numerator: float, y: Sequence[float]) -> float:
    total = sum(abs(a) for a in y if not math.isnan(a))
    return numerator if total <= NEAR_ZERO else numerator / total


def loop_wape(y: Sequence[float], f: Sequence[float]) -> float:
    errors = [abs(a - b) for a, b in zip(y, f, strict=True) if not math.isnan(a)]
    return loop_weighted(sum(errors), y)


def loop_wql(y: Sequence[float], q: Sequence[float], tau: float) -> float:
    loss = 0.0
    for a, b in zip(y, q, strict=True):
        if math.isnan(a):
            continue
        loss += tau * (a - b) if a > b else (1 - tau) * (b - a)
    return loop_weighted(2 * loss, y)


def loop_mape(y: Sequence[float], f: Sequence[float], ids: Sequence[Hashable]) -> float:
    per_item: dict[Hashable, list[float]] = {}
    for a, b, item in zip(y, f, ids, strict=True):
        if math.isnan(a) or a == 0:
            continue
        per_item.setdefault(item, []).append(abs((a - b) / a))
    if not per_item:
        return math.nan
    return statistics.fmean(statistics.fmean(v) for v in per_item.values())


def loop_scale(history: Sequence[float], m: int) -> float:
    if len(history) <= m:
        m = 1
    gaps = [abs(history[t] - history[t - m]) for t in range(m, len(history))]
    gaps = [g for g in gaps if not math.isnan(g)]
    return sum(gaps) / len(gaps) if gaps else math.nan


def loop_mase(
    y: Sequence[float],
    f: Sequence[float],
    ids: Sequence[Hashable],
    history: dict[Hashable, list[float]],
    m: int,
) -> float:
    errors: dict[Hashable, list[float]] = {}
    for a, b, item in zip(y, f, ids, strict=True):
        if not math.isnan(a):
            errors.setdefault(item, []).append(abs(a - b))
    ratios = []
    for item, errs in errors.items():
        scale = loop_scale(history[item], m)
        if scale > 0:
            ratios.append(statistics.fmean(errs) / scale)
    return statistics.fmean(ratios) if ratios else math.nan


def random_window(seed: int) -> dict:
    """A window of 2–12 items of different kinds: smooth, intermittent (mostly zero), negative,
    constant-history, with a few missing actuals; quantiles from noisy offsets of the mean."""
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(2, 13))
    horizon = int(rng.integers(1, 15))
    ids: list[Hashable] = []
    y: list[float] = []
    history: dict[Hashable, list[float]] = {}
    for k in range(n_items):
        item = f"item-{k}" if k % 3 else k  # mixed id types
        kind = rng.choice(["smooth", "intermittent", "negative", "constant"])
        length = int(rng.integers(1, 60))
        if kind == "smooth":
            series = (
                50
                + 10 * np.sin(np.arange(length + horizon) / 3)
                + rng.normal(0, 3, length + horizon)
            )
        elif kind == "intermittent":
            series = rng.poisson(0.3, length + horizon).astype(float)
        elif kind == "negative":
            series = rng.normal(-5, 4, length + horizon)
        else:
            series = np.full(length + horizon, 7.0)
        history[item] = [float(v) for v in series[:length]]
        ids += [item] * horizon
        y += [float(v) for v in series[length:]]
    y_arr = np.array(y)
    y_arr[rng.random(len(y)) < 0.05] = np.nan  # gaps in the window
    mean = np.nan_to_num(y_arr, nan=0.0) + rng.normal(0, 2, len(y))
    spread = np.abs(rng.normal(3, 1, len(y)))
    quantiles = {
        "p10": mean - 1.28 * spread,
        "p50": mean + rng.normal(0, 0.5, len(y)),
        "p90": mean + 1.28 * spread,
        "p97": mean + 1.9 * spread,
    }
    return {"y": y_arr, "mean": mean, "quantiles": quantiles, "ids": ids, "history": history}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("season", [1, 3, 7])
def test_every_metric_matches_a_plain_loop_on_random_windows(seed: int, season: int) -> None:
    w = random_window(seed)
    y, f, ids = w["y"].tolist(), w["mean"].tolist(), w["ids"]
    scores = score_forecasts(
        w["y"], w["mean"], w["quantiles"], item_ids=ids, history=w["history"], season=season
    )
    expected = {"RMSE": loop_rmse(y, f)}
    for name, q in w["quantiles"].items():
        expected[f"wQL[{int(name[1:]) / 100}]"] = loop_wql(y, q.tolist(), int(name[1:]) / 100)
    losses = [v for k, v in expected.items() if k.startswith("wQL")]
    expected["AverageWeightedQuantileLoss"] = statistics.fmean(losses)
    expected["MASE"] = loop_mase(y, f, ids, w["history"], season)
    expected["MAPE"] = loop_mape(y, f, ids)
    expected["WAPE"] = loop_wape(y, f)
    assert list(scores) == list(expected)
    assert scores == pytest.approx(expected, rel=1e-9, nan_ok=True)


@pytest.mark.parametrize("seed", range(8))
def test_wql_of_the_median_is_wape_of_the_median(seed: int) -> None:
    """The reference's identity: at τ = 0.5 the factor 2 cancels the 0.5."""
    w = random_window(seed)
    median = w["quantiles"]["p50"]
    assert weighted_quantile_loss(w["y"], median, "p50") == pytest.approx(wape(w["y"], median))
    # Also in a window where Σ|y| ≈ 0 (both go unweighted).
    zeros = np.zeros(6)
    assert weighted_quantile_loss(zeros, median[:6], 0.5) == pytest.approx(wape(zeros, median[:6]))


def test_wql_is_a_proper_scoring_rule_on_samples() -> None:
    """Sanity beyond the formula: on draws from N(0, 1) shifted by 100, the true quantiles score
    better than quantiles pushed off them."""
    rng = np.random.default_rng(4)
    y = 100 + rng.normal(0, 1, 20_000)
    for tau, z in [(0.1, -1.2816), (0.5, 0.0), (0.9, 1.2816)]:
        true = np.full_like(y, 100 + z)
        for shift in (-0.5, 0.5):
            assert weighted_quantile_loss(y, true, tau) < weighted_quantile_loss(
                y, true + shift, tau
            )


# --- edge policies -------------------------------------------------------------------------------


def test_an_all_zero_window_reports_the_unweighted_numerators() -> None:
    y = [0.0, 0.0, 0.0]
    mean = [1.0, 0.0, 2.0]
    q10 = [1.0, 1.0, 0.0]
    # WAPE: Σ|e| = 1 + 0 + 2 = 3, not divided by Σ|y| = 0.
    assert wape(y, mean) == 3.0
    # wQL[0.1]: every q is at or above y: 2 · (0.9·1 + 0.9·1 + 0) = 3.6.
    assert weighted_quantile_loss(y, q10, "p10") == pytest.approx(3.6)
    scores = score_forecasts(y, mean, {"p10": q10, "p50": mean})
    assert scores["WAPE"] == 3.0
    assert scores["wQL[0.5]"] == pytest.approx(3.0)
    assert scores["AverageWeightedQuantileLoss"] == pytest.approx((3.6 + 3.0) / 2)
    assert math.isnan(scores["MAPE"])  # no non-zero actual anywhere
    assert math.isnan(scores["MASE"])  # no history given
    # "≈ 0": a Σ|y| of float noise counts as zero; one just above NEAR_ZERO does not.
    tiny = [1e-12, 0.0, -1e-12]
    assert wape(tiny, mean) == pytest.approx(3.0)
    above = [2 * NEAR_ZERO, 0.0, 0.0]
    assert wape(above, mean) == pytest.approx(3.0 / (2 * NEAR_ZERO))


def test_mape_skips_zero_actuals_and_leaves_out_all_zero_items() -> None:
    ids = ["a", "a", "a", "z", "z", "b", "b"]
    y = [0.0, 10.0, 20.0, 0.0, 0.0, -4.0, 0.0]
    mean = [5.0, 12.0, 15.0, 3.0, 1.0, -2.0, 9.0]
    # a: the 0 is skipped: |−2/10| = 0.2, |5/20| = 0.25 → 0.225. z: all zero, left out.
    # b: |−2/−4| = 0.5 (the 0 skipped). → (0.225 + 0.5) / 2.
    assert mape(y, mean, ids) == pytest.approx((0.225 + 0.5) / 2)
    # Had the all-zero item counted, it would have pulled the mean; had zeros counted, inf.
    assert math.isfinite(mape(y, mean, ids))
    assert math.isnan(mape([0.0, 0.0], [1.0, 2.0], ["z", "z"]))


def test_mase_season_comes_from_the_frequency_and_matters() -> None:
    """Daily sales with a weekly pattern: m = season_length("D") = 7, and the weekly naive error
    (small) makes the same forecast errors look worse than the day-to-day naive error (large)."""
    rng = np.random.default_rng(11)
    week = np.array([10.0, 12.0, 14.0, 13.0, 20.0, 30.0, 25.0])
    history = np.tile(week, 4) + rng.normal(0, 0.5, 28)
    actual = week + rng.normal(0, 0.5, 7)
    forecast = week + 1.0
    m = season_length("D")
    assert m == 7
    weekly = mase(actual, forecast, history, m)
    daily = mase(actual, forecast, history, 1)
    assert weekly == pytest.approx(
        loop_mase(actual.tolist(), forecast.tolist(), [None] * 7, {None: history.tolist()}, 7)
    )
    assert weekly == pytest.approx(
        np.mean(np.abs(actual - forecast)) / np.mean(np.abs(history[7:] - history[:-7]))
    )
    assert weekly > 1.0 > daily  # the same errors: worse than weekly naive, better than daily naive
    # The seasonal naive forecast itself (last week repeated) scores about 1 in-sample scale.
    assert mase(actual, history[-7:], history, m) == pytest.approx(1.0, abs=0.5)


def test_mase_falls_back_to_m_1_when_the_history_is_too_short() -> None:
    history = [10.0, 12.0, 11.0, 15.0, 14.0, 13.0]  # six days: not more than m = 7
    actual, forecast = [16.0, 12.0], [14.0, 14.0]
    assert mase(actual, forecast, history, 7) == mase(actual, forecast, history, 1)
    # Naive error at m = 1: |2| + |1| + |4| + |1| + |1| = 9 over 5 → 1.8; MAE 2 → 2 / 1.8.
    assert mase(actual, forecast, history, 7) == pytest.approx(2 / 1.8)
    assert seasonal_naive_scale(history, 6) == pytest.approx(1.8)  # 6 points, m = 6: falls back
    assert seasonal_naive_scale(history, 5) == pytest.approx(3.0)  # |13 − 10|: one pair at m = 5


def test_seasonal_naive_scale_by_hand() -> None:
    assert seasonal_naive_scale([1.0, 2.0, 4.0, 7.0], 1) == pytest.approx((1 + 2 + 3) / 3)
    assert seasonal_naive_scale([1.0, 2.0, 4.0, 7.0], 2) == pytest.approx((3 + 5) / 2)
    # A missing value drops the pairs it is in: only (3, 4) is left.
    assert seasonal_naive_scale([1.0, math.nan, 3.0, 4.0], 1) == pytest.approx(1.0)
    assert math.isnan(seasonal_naive_scale([5.0], 1))
    assert math.isnan(seasonal_naive_scale([], 3))
    with pytest.raises(ValueError, match="season must be at least 1"):
        seasonal_naive_scale([1.0, 2.0], 0)


def test_mase_leaves_out_items_with_a_zero_naive_error() -> None:
    ids = ["flat", "flat", "moving", "moving"]
    history = {"flat": [3.0, 3.0, 3.0], "moving": [1.0, 3.0, 5.0]}
    # moving: MAE (1 + 3) / 2 = 2, naive error 2 → 1.0; flat (naive error 0) is left out.
    assert mase([3.0, 3.0, 7.0, 9.0], [4.0, 2.0, 6.0, 6.0], history, 1, ids) == pytest.approx(1.0)
    assert math.isnan(mase([3.0], [4.0], {"flat": [3.0, 3.0]}, 1, ["flat"]))
    assert math.isnan(mase([3.0], [4.0], [3.0], 1))  # one point of history: no pair


def test_mase_needs_the_history_of_every_scored_item() -> None:
    with pytest.raises(ValueError, match="No history for item 'B'"):
        mase(Y, MEAN, {"A": HISTORY["A"]}, 1, IDS)
    with pytest.raises(ValueError, match="map each item id"):
        mase(Y, MEAN, [1.0, 2.0, 3.0], 1, IDS)


def test_missing_actuals_are_not_scored_and_forecasts_must_be_finite() -> None:
    y = [2.0, math.nan, 6.0]
    mean = [3.0, math.nan, 3.0]  # a NaN forecast where the actual is missing is fine
    assert rmse(y, mean) == pytest.approx(math.sqrt((1 + 9) / 2))
    assert wape(y, mean) == pytest.approx(4 / 8)
    assert quantile_coverage(y, {"p50": mean}) == {"p50": 0.5}
    with pytest.raises(ValueError, match="mean forecast is not finite"):
        rmse([1.0, 2.0], [1.0, math.inf])
    with pytest.raises(ValueError, match="p10 forecast is not finite"):
        weighted_quantile_loss([1.0, 2.0], [math.nan, 1.0], "p10")
    with pytest.raises(ValueError, match="actual values must be finite"):
        wape([math.inf], [1.0])
    with pytest.raises(ValueError, match="has 2 values; the actuals have 3"):
        wape([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="item_ids has 2 values"):
        mape([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], ["a", "b"])
    with pytest.raises(ValueError, match="one-dimensional"):
        rmse([[1.0]], [[1.0]])
    # Nothing observed: NaN, not 0.
    nothing = score_forecasts([math.nan], [1.0], {"p50": [1.0]}, history=[1.0, 2.0])
    assert all(math.isnan(v) for v in nothing.values())


def test_composite_item_keys_group_like_single_keys() -> None:
    tuples = [
        ("s1", "north"),
        ("s1", "north"),
        ("s1", "north"),
        ("s1", "south"),
        ("s1", "south"),
        ("s1", "south"),
    ]
    history = {("s1", "north"): HISTORY["A"], ("s1", "south"): HISTORY["B"]}
    assert mape(Y, MEAN, tuples) == pytest.approx(HAND_MAPE)
    assert mase(Y, MEAN, history, 2, tuples) == pytest.approx(HAND_MASE[2])
    # Numeric ids in a NumPy array look up int keys.
    numbers = np.array([7, 7, 7, 8, 8, 8])
    assert mase(Y, MEAN, {7: HISTORY["A"], 8: HISTORY["B"]}, 1, numbers) == pytest.approx(5 / 6)


# --- averaging over windows ------------------------------------------------------------------


def test_average_over_windows() -> None:
    windows = [
        {"RMSE": 1.0, "MASE": 0.8, "MAPE": math.nan, "WAPE": 0.2},
        {"RMSE": 3.0, "MASE": 1.2, "MAPE": 0.4, "WAPE": 0.4},
        {"RMSE": 2.0, "MASE": math.nan, "MAPE": 0.1, "WAPE": 0.3},
    ]
    assert average_over_windows(windows) == pytest.approx(
        {"RMSE": 2.0, "MASE": 1.0, "MAPE": 0.25, "WAPE": 0.3}
    )
    assert list(average_over_windows(windows)) == ["RMSE", "MASE", "MAPE", "WAPE"]
    assert math.isnan(average_over_windows([{"MAPE": math.nan}, {"MAPE": math.nan}])["MAPE"])
    assert average_over_windows([]) == {}
    # Two windows of the hand-worked example (the second shifted up by 1): a plain mean.
    first = score_forecasts(Y, MEAN, QUANTILES, item_ids=IDS, history=HISTORY, season=1)
    y2 = [v + 1 for v in Y]
    second = score_forecasts(y2, MEAN, QUANTILES, item_ids=IDS, history=HISTORY, season=1)
    both = average_over_windows([first, second])
    for name in first:
        assert both[name] == pytest.approx((first[name] + second[name]) / 2), name
    # The second window: y = 3, 5, 7, 1, 2, 4 (Σ 22), |e| = 0, 1, 4, 0, 1, 2 (Σ 8).
    assert second["WAPE"] == pytest.approx(8 / 22)


# --- quantile names and coverage -----------------------------------------------------------


def test_quantile_names_round_trip() -> None:
    for percent in range(1, 100):
        name = f"p{percent}"
        level = quantile_level(name)
        assert level == percent / 100
        assert quantile_name(level) == name
        assert quantile_name(percent / 100 + 1e-12) == name  # float noise is forgiven
    assert quantile_level("p10") == 0.1
    assert quantile_name(0.9) == "p90"
    assert [quantile_level(q) for q in DEFAULT_QUANTILES] == [0.1, 0.5, 0.9]
    assert wql_name("p10") == wql_name(0.1) == "wQL[0.1]"
    assert wql_name("p1") == "wQL[0.01]"
    assert wql_name(0.99) == "wQL[0.99]"


@pytest.mark.parametrize("bad", ["p0", "p100", "p05", "P10", "10", "p1.5", "p", "", " p10"])
def test_bad_quantile_names_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="is not one of p1 … p99"):
        quantile_level(bad)


@pytest.mark.parametrize("bad", [0.0, 1.0, 0.105, -0.1, 0.001, 1.5])
def test_bad_quantile_levels_are_rejected(bad: float) -> None:
    with pytest.raises(ConfigError, match="not a whole percent"):
        quantile_name(bad)


def test_coverage_of_calibrated_quantiles_is_close_to_their_level() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(0, 1, 50_000)
    z = {"p10": -1.2816, "p50": 0.0, "p90": 1.2816}
    coverage = quantile_coverage(y, {name: np.full_like(y, v) for name, v in z.items()})
    assert coverage == pytest.approx({"p10": 0.1, "p50": 0.5, "p90": 0.9}, abs=0.01)
    # Against a loop: the share of actuals at or below each forecast.
    q = rng.normal(0, 1, 50_000)
    below = sum(a <= b for a, b in zip(y, q, strict=True))
    assert quantile_coverage(y, {"p30": q})["p30"] == below / len(y)
    # "At or below": an intermittent series at 0 with a 0 forecast is covered.
    assert quantile_coverage([0.0, 0.0, 1.0], {"p90": [0.0, 0.0, 0.0]}) == {
        "p90": pytest.approx(2 / 3)
    }


# --- season from the frequency ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "m"),
    [
        # The benchmark's pandas aliases.
        ("MS", 12),
        ("QS-JAN", 4),
        ("W-FRI", 52),
        ("D", 7),
        ("h", 24),
        ("30min", 48),
        # Autopilot's ForecastFrequency strings.
        ("Y", 1),
        ("1Y", 1),
        ("M", 12),
        ("3M", 4),
        ("6M", 2),
        ("5M", 1),  # 12 months hold no whole number of 5-month steps
        ("W", 52),
        ("2W", 26),
        ("4W", 13),
        ("3W", 1),
        ("1D", 7),
        ("6D", 1),
        ("H", 24),
        ("12H", 2),
        ("5H", 1),
        ("1min", 1440),
        ("15min", 96),
        ("59min", 1),
        # Other pandas spellings.
        ("ME", 12),
        ("YE", 1),
        ("A", 1),
        ("Q", 4),
        ("QE-MAR", 4),
        ("BMS", 12),
        ("WOM-1MON", 12),
        ("SMS", 24),
        ("B", 5),
        ("T", 1440),
        ("15T", 96),
        ("7D", 1),
        ("24h", 7),  # a day's step, as days
        ("1h30min", 16),
        ("s", 60),  # a day (86,400) and an hour (3,600) are over 1,440 steps: by the minute
        ("5s", 720),
        ("BH", 1),
    ],
)
def test_season_length_table(freq: str, m: int) -> None:
    assert season_length(freq) == m


def test_season_length_takes_offsets_and_rejects_nonsense() -> None:
    import pandas as pd

    assert season_length(pd.offsets.Week(weekday=4)) == 52
    assert season_length(pd.offsets.MonthBegin(3)) == 4
    with pytest.raises(ConfigError, match="Unknown forecast frequency 'fortnight'"):
        season_length("fortnight")
    with pytest.raises(ConfigError, match="must step forward"):
        season_length("0D")


# --- the registry ----------------------------------------------------------------------------


def test_forecast_objectives_resolve_without_a_problem_type() -> None:
    assert forecast_metric_names() == [
        "RMSE",
        "AverageWeightedQuantileLoss",
        "MASE",
        "MAPE",
        "WAPE",
    ]
    assert default_forecast_objective() == "AverageWeightedQuantileLoss"
    for name in forecast_metric_names():
        metric = get_metric(name)
        assert metric is get_forecast_metric(name)
        assert metric.direction == "Minimize"
        assert metric.in_metric_enum
        assert metric.is_better(0.04, 0.05)
        assert objective_block(name, 0.05) == {
            "Type": "Minimize",
            "Value": 0.05,
            "MetricName": name,
            "StandardMetricName": name,
        }
    assert get_metric("RMSE").problem_types == frozenset({ProblemType.REGRESSION})
    assert get_metric("MASE").problem_types == frozenset()
    assert [
        d["MetricName"] for d in metric_data({"AverageWeightedQuantileLoss": 0.05, "WAPE": 0.1})
    ] == [
        "AverageWeightedQuantileLoss",
        "WAPE",
    ]


@pytest.mark.parametrize("problem_type", list(ProblemType))
@pytest.mark.parametrize("name", ["AverageWeightedQuantileLoss", "MASE", "MAPE", "WAPE"])
def test_tabular_problem_types_reject_forecast_only_metrics(
    name: str, problem_type: ProblemType
) -> None:
    with pytest.raises(ConfigError) as info:
        get_metric(name, problem_type)
    message = str(info.value)
    assert f"{name!r} does not apply to {problem_type.value}" in message
    assert all(valid in message for valid in metric_names(problem_type))


def test_forecasting_rejects_tabular_only_metrics_and_lists_its_own() -> None:
    with pytest.raises(ConfigError) as info:
        get_forecast_metric("MSE")
    message = str(info.value)
    assert f"'MSE' does not apply to {TIME_SERIES_FORECASTING}" in message
    assert all(name in message for name in forecast_metric_names())
    with pytest.raises(
        ConfigError, match=r"Unknown objective metric 'wQL'.*AverageWeightedQuantileLoss"
    ):
        get_forecast_metric("wQL")  # per-quantile losses have no enum name: not objectives
    # The problem type's name routes get_metric and metric_names the same way.
    assert get_metric("MASE", TIME_SERIES_FORECASTING) is get_metric("MASE")
    assert get_metric("RMSE", TIME_SERIES_FORECASTING) is get_metric("RMSE", ProblemType.REGRESSION)
    with pytest.raises(ConfigError, match="'F1' does not apply to TimeSeriesForecasting"):
        get_metric("F1", TIME_SERIES_FORECASTING)
    assert metric_names(TIME_SERIES_FORECASTING) == forecast_metric_names()
    # The tabular names are unchanged, and an unknown name without a problem type lists both.
    assert len(metric_names()) == 15
    assert not set(metric_names()) & {"AverageWeightedQuantileLoss", "MASE", "MAPE", "WAPE"}
    with pytest.raises(ConfigError, match=r"Unknown objective metric 'Bogus'.*MSE.*MASE"):
        get_metric("Bogus")
