"""The BacktestResults writer on a hand-made example: two series (a composite key, a gap on
the grid), two backtest windows, forecasts written by hand; every row and metric is checked
against an independent computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlpilot.problems.forecasting import (
    BacktestPlan,
    WindowForecast,
    prepare_series,
    read_backtest_results,
    write_backtest_results,
)
from mlpilot.problems.forecasting.models import Forecast

SEASON = 2
A = [10.0, 12.0, 0.0, 14.0, 15.0, 11.0, 13.0, 16.0]  # 2020-03 is missing: filled with 0
B = [5.0, 7.0, 6.0, 8.0, 9.0, 4.0]


def _table() -> pd.DataFrame:
    a_months = pd.date_range("2020-01-01", periods=8, freq="MS").delete(2)
    rows = [
        {"Store": "007", "Dept": "x", "Month": m.strftime("%Y-%m-%d"), "Sales": v}
        for m, v in zip(a_months, [a for i, a in enumerate(A) if i != 2], strict=True)
    ]
    b_months = pd.date_range("2021-06-01", periods=6, freq="MS")
    rows += [
        {"Store": "012", "Dept": "y", "Month": m.strftime("%Y-%m-%d"), "Sales": v}
        for m, v in zip(b_months, B, strict=True)
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def example(tmp_path: Path) -> dict:
    series = prepare_series(
        _table(),
        target="Sales",
        timestamp="Month",
        item_id="Store",
        grouping=("Dept",),
        frequency="MS",
        horizon=2,
    )
    plan = BacktestPlan(horizon=2, windows=2, reason="by hand")
    values = [np.array(A), np.array(B)]
    windows = []
    for window in range(2):
        actual = np.array(
            [y[len(y) - 2 * (window + 1) : len(y) - 2 * window] for y in values], dtype=float
        )
        mean = actual + np.array([[1.0, -2.0], [0.5, 3.0]]) * (window + 1)
        bands = {0.1: mean - 1.5, 0.5: mean, 0.9: mean + 2.0}
        windows.append(WindowForecast(window, (0, 1), actual, Forecast(mean, bands)))
    directory = write_backtest_results(
        tmp_path / "bt", "cand-1", series, plan, windows, ["p90", "p10", "p50"], season=SEASON
    )
    forecasts, accuracy = read_backtest_results(directory)
    return {
        "series": series,
        "values": values,
        "windows": windows,
        "forecasts": forecasts,
        "accuracy": accuracy,
        "dir": directory,
    }


def test_files_are_where_the_layout_says(example: dict) -> None:
    directory = example["dir"]
    assert (directory / "forecasted-values" / "cand-1_part0.csv").exists()
    assert (directory / "accuracy-metrics-values" / "cand-1_part0.csv").exists()


def test_forecasted_values_rows_are_on_the_grid_with_the_users_columns(example: dict) -> None:
    forecasts = example["forecasts"]
    assert list(forecasts.columns) == [
        "Store", "Dept", "Month", "Sales", "backtest_window", "backtestwindow_start_time",
        "backtestwindow_end_time", "mean", "p10", "p50", "p90",
    ]  # fmt: skip
    assert len(forecasts) == 2 * 2 * 2  # windows x series x horizon
    last = forecasts[forecasts["backtest_window"] == 1]
    # Item ids stay as given ("007"); the timestamps are the series' own months.
    assert last["Store"].tolist() == ["007", "007", "012", "012"]
    assert last["Month"].tolist() == ["2020-07-01", "2020-08-01", "2021-10-01", "2021-11-01"]
    assert last["backtestwindow_start_time"].tolist() == ["2020-07-01"] * 2 + ["2021-10-01"] * 2
    assert last["backtestwindow_end_time"].tolist() == ["2020-08-01"] * 2 + ["2021-11-01"] * 2
    earlier = forecasts[forecasts["backtest_window"] == 2]
    # The filled month (2020-03, target 0) is not in a window; window 2 of series A is May-June.
    assert earlier["Month"].tolist() == ["2020-05-01", "2020-06-01", "2021-08-01", "2021-09-01"]
    assert earlier["Sales"].tolist() == [15.0, 11.0, 6.0, 8.0]
    np.testing.assert_allclose(earlier["mean"], [17.0, 7.0, 7.0, 14.0])
    np.testing.assert_allclose(earlier["p10"], earlier["mean"] - 1.5)
    np.testing.assert_allclose(earlier["p90"], earlier["mean"] + 2.0)


def _by_hand(actual: np.ndarray, mean: np.ndarray, history: list[np.ndarray]) -> dict:
    """The metrics of one window, written out from their definitions."""
    y, f = actual.ravel(), mean.ravel()
    out = {"RMSE": np.sqrt(np.mean((y - f) ** 2))}
    for tau, q in ((0.1, f - 1.5), (0.5, f), (0.9, f + 2.0)):
        loss = np.sum(tau * np.maximum(y - q, 0) + (1 - tau) * np.maximum(q - y, 0))
        out[f"wQL[{tau}]"] = 2 * loss / np.sum(np.abs(y))
    out["AverageWeightedQuantileLoss"] = np.mean(
        [out["wQL[0.1]"], out["wQL[0.5]"], out["wQL[0.9]"]]
    )
    ratios = []
    for row in range(len(actual)):
        h = history[row]
        m = SEASON if len(h) > SEASON else 1  # too short for a season: the naive step
        scale = np.mean(np.abs(h[m:] - h[:-m]))
        ratios.append(np.mean(np.abs(actual[row] - mean[row])) / scale)
    out["MASE"] = np.mean(ratios)
    out["MAPE"] = np.mean(
        [np.mean(np.abs((actual[r] - mean[r]) / actual[r])) for r in range(len(actual))]
    )
    out["WAPE"] = np.sum(np.abs(y - f)) / np.sum(np.abs(y))
    return out


def test_accuracy_metrics_equal_their_definitions(example: dict) -> None:
    accuracy = example["accuracy"]
    assert accuracy["backtest_window"].tolist() == ["1", "2", "Average"]
    expected = []
    for w in example["windows"]:
        history = [y[: len(y) - 2 * (w.window + 1)] for y in example["values"]]
        expected.append(_by_hand(w.actual, w.forecast.mean, history))
    for row, want in enumerate(expected):
        for name, value in want.items():
            assert accuracy.loc[row, name] == pytest.approx(value, rel=1e-9), name
    for name in expected[0]:
        average = np.mean([e[name] for e in expected])
        assert accuracy.loc[2, name] == pytest.approx(average, rel=1e-9), name
    assert accuracy["item_count"].tolist() == [2, 2, 2]
    # A window spans the earliest start and the latest end over its series.
    assert accuracy.loc[0, "backtestwindow_start_time"] == "2020-07-01"
    assert accuracy.loc[0, "backtestwindow_end_time"] == "2021-11-01"
    assert accuracy.loc[2, "backtestwindow_start_time"] == "2020-05-01"


def test_a_target_named_like_a_forecast_column_keeps_both(tmp_path: Path) -> None:
    table = _table().rename(columns={"Sales": "mean"})
    series = prepare_series(
        table, target="mean", timestamp="Month", item_id="Store", frequency="MS", horizon=2
    )
    plan = BacktestPlan(horizon=2, windows=1, reason="by hand")
    actual = np.array([A[-2:], B[-2:]])
    window = WindowForecast(0, (0, 1), actual, Forecast(actual + 1, {0.5: actual + 1}))
    directory = write_backtest_results(tmp_path / "bt", "c", series, plan, [window], ["p50"])
    forecasts, _ = read_backtest_results(directory)
    assert forecasts["mean_actual"].tolist() == [13.0, 16.0, 9.0, 4.0]
    assert forecasts["mean"].tolist() == [14.0, 17.0, 10.0, 5.0]


def test_timestamps_return_to_the_time_zone_given(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "id": "a",
            "ts": pd.date_range("2024-01-01 09:00", periods=12, freq="h", tz="Europe/Paris"),
            "y": np.arange(12.0) + 1,
        }
    )
    series = prepare_series(
        table, target="y", timestamp="ts", item_id="id", frequency="h", horizon=3
    )
    plan = BacktestPlan(horizon=3, windows=1, reason="by hand")
    actual = np.array([[10.0, 11.0, 12.0]])
    window = WindowForecast(0, (0,), actual, Forecast(actual, {0.5: actual}))
    directory = write_backtest_results(tmp_path / "bt", "c", series, plan, [window], ["p50"])
    forecasts, _ = read_backtest_results(directory)
    assert forecasts["ts"].tolist() == [
        "2024-01-01 18:00:00+01:00",
        "2024-01-01 19:00:00+01:00",
        "2024-01-01 20:00:00+01:00",
    ]
