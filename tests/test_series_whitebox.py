"""The forecasting white box without a job: what it keeps of the prepared series, the
exploration notebook's analysis (SeriesExploration, no kernel), and the model-quality report
written from hand-made backtests and a small fitted package."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers_forecast import fit_predictor, save_package
from mlpilot._layout import JobLayout
from mlpilot.metrics import quantile_coverage
from mlpilot.notebooks import SeriesExploration
from mlpilot.problems.forecasting import (
    BacktestPlan,
    WindowForecast,
    prepare_series,
    write_backtest_results,
)
from mlpilot.problems.forecasting.models import Forecast
from mlpilot.reports import load_series_sample, save_series_sample
from mlpilot.reports._forecast_quality import write_forecast_insights
from mlpilot.reports._series_data import item_statistics

MONTHS = pd.date_range("2019-01-01", periods=36, freq="MS")


def _table() -> pd.DataFrame:
    """Three monthly series: a seasonal one, one with a three-month gap, one mostly zeros;
    a covariate given for the history and half the horizon; a static attribute."""
    rng = np.random.default_rng(0)
    seasonal = 100 + 20 * np.sin(2 * np.pi * np.arange(36) / 12) + rng.normal(0, 1, 36)
    gappy = 50 + np.arange(36.0)
    sparse = np.where(np.arange(36) % 4 == 0, 5.0, 0.0)
    rows = []
    for name, values, shop in (("a", seasonal, "big"), ("b", gappy, "big"), ("c", sparse, "small")):
        for i, (month, value) in enumerate(zip(MONTHS, values, strict=True)):
            if name == "b" and 10 <= i < 13:
                continue  # three months missing: filled
            rows.append({"item": name, "month": month, "sales": value, "price": 1.0 + i % 3,
                         "shop": shop})  # fmt: skip
        for step in range(2):  # two of the three future months give the price
            month = MONTHS[-1] + pd.DateOffset(months=step + 1)
            rows.append({"item": name, "month": month, "sales": np.nan, "price": 2.0,
                         "shop": shop})  # fmt: skip
    return pd.DataFrame(rows)


def _series() -> object:
    return prepare_series(
        _table(), target="sales", timestamp="month", item_id="item", frequency="MS", horizon=3
    )


def test_item_statistics_equal_their_definitions() -> None:
    series = _series()
    items = item_statistics(series)
    assert items["length"].tolist() == [36, 36, 36]
    assert items["filled"].tolist() == [0, 3, 0]
    assert items["longest_gap"].tolist() == [0, 3, 0]
    assert items["zero_share"].tolist() == pytest.approx([0.0, 0.0, 27 / 36])
    assert items.loc[2, "mean_interval"] == pytest.approx(36 / 9)
    assert pd.Timestamp(items.loc[1, "start"]) == MONTHS[0]
    assert pd.Timestamp(items.loc[1, "end"]) == MONTHS[-1]
    for code in range(3):
        y = series.values(code)
        x = y - y.mean()
        acf = np.sum(x[12:] * x[:-12]) / np.sum(x**2)
        assert items.loc[code, "season_acf"] == pytest.approx(acf)
    # The sine repeats every 12 months: near the most 24 pairs of 36 values allow (24/36).
    assert items.loc[0, "season_acf"] > 0.6


def test_the_sample_round_trips_and_rebuilds_the_training_table(tmp_path: Path) -> None:
    series = _series()
    save_series_sample(series, tmp_path, seed=0, facts={"backtest": "3 windows"})
    sample = load_series_sample(tmp_path)
    assert sample.facts["backtest"] == "3 windows"
    assert sample.facts["future_given"] == {"price": pytest.approx(2 / 3)}
    assert sample.items["sampled"].all()
    table = sample.table([1, 2])
    assert list(table.columns[:3]) == ["item", "month", "sales"]
    assert set(table.columns) == {"item", "month", "sales", "price", "shop"}
    again = prepare_series(
        table, target="sales", timestamp="month", item_id="item", frequency="MS", horizon=3
    )
    # The same series (their filled values included) and the same future covariate rows.
    np.testing.assert_array_equal(again.values(0), series.values(1))
    np.testing.assert_array_equal(again.values(1), series.values(2))
    assert again.future["price"].tolist() == series.future["price"].tolist()[3:]


def test_a_large_set_keeps_whole_series_of_a_seeded_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlpilot.reports._series_data.SAMPLE_HISTORY_ROWS", 80)
    series = _series()
    save_series_sample(series, tmp_path, seed=1, facts={})
    sample = load_series_sample(tmp_path)
    kept = set(sample.history["_series"].unique())
    assert len(kept) == 2 and sample.facts["sampled_series"] == 2
    assert sample.items["sampled"].sum() == 2
    assert len(sample.history) == 72  # whole series, 36 rows each
    assert len(sample.items) == 3  # statistics for every series


def test_series_exploration_answers_from_the_sample(tmp_path: Path) -> None:
    save_series_sample(_series(), tmp_path / "data-sample", seed=0, facts={})
    exploration = SeriesExploration.load(tmp_path)
    summary = exploration.summary()
    assert summary.loc["Series", "value"].startswith("3 ")
    assert summary.loc["Season length", "value"] == "12 steps"
    gaps = exploration.gaps()
    assert list(gaps.index) == ["b"] and gaps.loc["b", "longest gap (steps)"] == 3
    zeros = exploration.zeros()
    assert zeros.loc["Intermittent series (interval > 1.32)", "series"] == 1
    assert list(exploration.intermittent().index) == ["c"]
    seasonality = exploration.seasonality()
    assert seasonality.loc["Season length (steps)", "value"] == "12"
    covariates = exploration.covariates()
    assert covariates.loc["price", "future values given"] == "66.7%"
    assert covariates.loc["shop", "role"].startswith("static")
    assert "on the MS grid" in exploration.duplicates()["aggregation"].iloc[0]
    titles = [i.title for i in exploration.insights()]
    assert titles[0] == "Covariates without future values"  # high severity first
    assert {"Filled target values", "Intermittent series"} <= set(titles)
    for plot in (exploration.plot_series, exploration.plot_lengths, exploration.plot_coverage):
        assert plot() is not None


def test_exploration_reports_what_the_preparation_aggregated(tmp_path: Path) -> None:
    days = pd.date_range("2020-01-01", periods=120, freq="D")
    table = pd.DataFrame({"item": "x", "day": days, "units": 1.0})
    series = prepare_series(
        table, target="units", timestamp="day", item_id="item", frequency="MS", horizon=1
    )
    save_series_sample(series, tmp_path / "data-sample", seed=0, facts={})
    notes = SeriesExploration.load(tmp_path).duplicates()["aggregation"].tolist()
    assert len(notes) == 1 and "120 rows aggregated into 4 periods" in notes[0]


def test_forecast_report_from_backtests(tmp_path: Path) -> None:
    """The report's numbers against their own computation, its figures, and the forecast after
    the history drawn from the packaged model."""
    table = _table()
    settings = {"target": "sales", "timestamp": "month", "item_id": "item", "frequency": "MS",
                "horizon": 3}  # fmt: skip
    layout = JobLayout(tmp_path / "job", "sales")
    package = save_package(
        fit_predictor(table, {"seasonal-naive": 1.0}, **settings), layout.final_model("best")
    )
    series = prepare_series(table, **settings)
    save_series_sample(series, layout.data_sample, seed=0, facts={})
    plan = BacktestPlan(horizon=3, windows=2, reason="2 windows")
    windows = []
    for w in range(2):
        actual = np.array([series.values(s)[33 - 3 * w : 36 - 3 * w] for s in range(3)])
        mean = actual * (1.1 + 0.1 * w)
        bands = {0.1: mean * 0.8, 0.5: mean, 0.9: mean * 1.3}
        windows.append(WindowForecast(w, (0, 1, 2), actual, Forecast(mean, bands)))
    directory = write_backtest_results(
        layout.backtest_results_for("best"), "best", series, plan, windows, ["p10", "p50", "p90"],
        season=12,
    )  # fmt: skip
    candidate = {
        "CandidateName": "best",
        "CandidateStatus": "Completed",
        "FinalAutoMLJobObjectiveMetric": {"Value": 0.1},
        "CandidateProperties": {"CandidateArtifactLocations": {"BacktestResults": str(directory)}},
        "Mlpilot": {"Algorithm": "seasonal-naive", "FinalModel": str(package)},
    }
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.candidates_log.write_text(json.dumps(candidate) + "\n")
    record = {"ResolvedAttributes": {"AutoMLJobObjective": {"MetricName": "RMSE"}}}
    stats = write_forecast_insights(layout, record, candidate, model_dir=package)

    out = layout.model_insights_for("best")
    accuracy = pd.read_csv(directory / "accuracy-metrics-values" / "best_part0.csv")
    average = accuracy[accuracy["backtest_window"] == "Average"].iloc[0]
    metrics = stats["time_series_forecasting_metrics"]
    assert metrics["RMSE"]["value"] == pytest.approx(average["RMSE"])
    per_window = accuracy[accuracy["backtest_window"] != "Average"]["RMSE"]
    assert metrics["RMSE"]["standard_deviation"] == pytest.approx(per_window.std(ddof=1))
    y = np.concatenate([w.actual.ravel() for w in windows])
    bands = {q: np.concatenate([w.forecast.quantiles[lv].ravel() for w in windows])
             for q, lv in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9))}  # fmt: skip
    assert stats["mlpilot"]["quantile_coverage"] == pytest.approx(quantile_coverage(y, bands))
    # Three items: every one is drawn, worst first.
    drawn = [d["item"] for d in stats["mlpilot"]["items_drawn"]]
    assert sorted(drawn) == ["a", "b", "c"] and "notes" not in stats["mlpilot"]
    html = (out / "report.html").read_text()
    assert len(re.findall(r"data:image/png;base64", html)) == 1 + 3  # coverage + items
    assert "Accuracy per backtest window" in html and "Quantile coverage" in html
    assert (out / "report.pdf").stat().st_size > 0
    assert json.loads((out / "statistics.json").read_text())["mlpilot"]["candidate"] == "best"
