"""Forecasting models and backtests, at the model seam: series in, ordered quantile forecasts
out; backtest windows at the end of each series."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mlpilot.problems.forecasting._backtest import WindowForecast, plan_backtests, run_backtest
from mlpilot.problems.forecasting._ensemble import QuantileSpread
from mlpilot.problems.forecasting.models import (
    AUTOPILOT_ALGORITHMS,
    FORECASTERS,
    Forecast,
    ForecastTimeout,
    LocalForecaster,
    get_forecaster,
    quantile_levels,
)
from mlpilot.problems.forecasting.models.npts import weighted_quantile

QUANTILES = (0.1, 0.5, 0.9)


def seasonal(n: int, season: int = 12, seed: int = 0, noise: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.3 * t + 10 * np.sin(2 * np.pi * t / season) + noise * rng.normal(size=n)


def test_quantiles_map_to_the_bounds_of_central_intervals() -> None:
    assert quantile_levels([0.1, 0.5, 0.9, 0.25]) == {
        0.1: ("lo", 80.0),
        0.5: ("mean", 0.0),
        0.9: ("hi", 80.0),
        0.25: ("lo", 50.0),
    }
    with pytest.raises(ValueError):
        quantile_levels([1.0])


@pytest.mark.parametrize("name", list(FORECASTERS))
def test_every_model_forecasts_every_series_with_ordered_quantiles(name: str) -> None:
    model = get_forecaster(name)(season_length=12, params={"horizon": 6})
    history = [seasonal(60, seed=1), seasonal(36, seed=2), np.full(30, 7.0), np.array([3.0, 4.0])]
    model.fit(history)
    forecast = model.forecast(history, 6, QUANTILES)
    assert forecast.mean.shape == (4, 6) and forecast.horizon == 6
    for q in QUANTILES:
        assert forecast.quantiles[q].shape == (4, 6)
        assert np.isfinite(forecast.quantiles[q]).all()
    assert np.isfinite(forecast.mean).all()
    assert (forecast.quantiles[0.1] <= forecast.quantiles[0.5]).all()
    assert (forecast.quantiles[0.5] <= forecast.quantiles[0.9]).all()
    # A constant series is forecast as that constant (a global model, learning from the
    # rising series beside it too, within 1 %; the network, which learns their trend, 5 %).
    tolerance = {"gbm": 0.07, "quantile-net": 0.35}.get(name, 1e-6)
    assert np.allclose(forecast.mean[2], 7.0, atol=tolerance)


def test_statistical_models_follow_a_clear_season_better_than_its_mean() -> None:
    y = seasonal(96, noise=0.5)
    history, future = y[:-12], y[-12:]
    flat = np.abs(future - history.mean()).mean()
    for name in ("seasonal-naive", "ets", "arima", "theta", "gbm"):
        model = get_forecaster(name)(season_length=12, params={"horizon": 12})
        model.fit([history])
        forecast = model.forecast([history], 12, QUANTILES)
        error = np.abs(future - forecast.mean[0]).mean()
        assert error < flat / 2, (name, error, flat)
    # NPTS draws on past values, so it follows a season but not a trend.
    level = (
        50 + 10 * np.sin(2 * np.pi * np.arange(96) / 12) + np.random.default_rng(4).normal(size=96)
    )
    forecast = get_forecaster("npts")(season_length=12).forecast([level[:-12]], 12, QUANTILES)
    flat = np.abs(level[-12:] - level[:-12].mean()).mean()
    assert np.abs(level[-12:] - forecast.mean[0]).mean() < flat / 2


def test_seasonal_naive_and_npts_repeat_an_exact_season() -> None:
    pattern = np.array([1.0, 5.0, 2.0, 8.0])
    y = np.tile(pattern, 6)
    for name in ("seasonal-naive", "npts"):
        forecast = get_forecaster(name)(season_length=4).forecast([y], 6, (0.5,))
        assert np.allclose(forecast.mean[0], np.tile(pattern, 2)[:6]), name


def test_npts_forecasts_an_intermittent_series_as_often_zero() -> None:
    y = np.zeros(60)
    y[::6] = 12.0  # a spike every sixth step, no season given
    forecast = get_forecaster("npts")(season_length=1, params={"decay": 0.0}).forecast(
        [y], 3, (0.5, 0.9)
    )
    assert np.allclose(forecast.quantiles[0.5], 0.0)
    assert np.allclose(forecast.mean, 12.0 / 6)
    assert np.allclose(forecast.quantiles[0.9], 12.0)


def test_weighted_quantile_equals_the_quantile_of_the_repeated_values() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=9)
    counts = rng.integers(1, 5, size=9)
    repeated = np.sort(np.repeat(values, counts))
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        # The smallest value whose cumulative share reaches q.
        expected = repeated[int(np.ceil(q * len(repeated))) - 1]
        assert weighted_quantile(values, counts.astype(float), q) == pytest.approx(expected)


def test_crossed_quantiles_are_put_in_order() -> None:
    crossed = Forecast(np.zeros((1, 2)), {0.1: np.array([[3.0, 0.0]]), 0.9: np.array([[1.0, 2.0]])})
    ordered = crossed.ordered()
    assert ordered.quantiles[0.1].tolist() == [[1.0, 0.0]]
    assert ordered.quantiles[0.9].tolist() == [[3.0, 2.0]]


def test_a_model_past_its_deadline_stops() -> None:
    model = get_forecaster("ets")(season_length=12)
    with pytest.raises(ForecastTimeout, match="0 of 2 series"):
        model.forecast([seasonal(48), seasonal(48)], 3, QUANTILES, deadline=time.monotonic() - 1)


class SlowNaive(LocalForecaster):
    """The last value, taking ``seconds`` per series: a model too slow for its time."""

    name = "slow-naive"
    description = "the last value, slowly"
    seconds = 0.2

    def __init__(self, season_length: int = 1) -> None:
        super().__init__(season_length)
        self.calls = 0

    def forecast_one(self, y: np.ndarray, horizon: int, quantiles: Sequence[float]) -> Forecast:
        self.calls += 1
        time.sleep(self.seconds)
        last = np.full((1, horizon), y[-1])
        return Forecast(last, {q: last for q in quantiles})


def test_a_local_model_too_slow_for_its_time_gives_up_at_its_pace_not_its_deadline() -> None:
    model = SlowNaive()
    series = [np.arange(10.0) + i for i in range(60)]
    with pytest.raises(ForecastTimeout, match=r"would need about \d+ s more for the 57 series"):
        model.forecast(series, 2, QUANTILES, deadline=time.monotonic() + 6.0)
    # 60 series at 0.2 s cannot fit in 6 s: judged after the first series and two more.
    assert model.calls == 3


def test_a_local_model_too_slow_for_the_backtest_gives_up_in_its_first_window() -> None:
    model = SlowNaive()
    model.seconds = 0.1
    series = [np.arange(40.0) + i for i in range(10)]
    plan = plan_backtests([len(s) for s in series], horizon=4, max_windows=5)
    assert plan.windows == 5
    # 50 forecasts of 0.1 s need 5 s: the first window's share of the 3 s runs out first.
    with pytest.raises(ForecastTimeout):
        run_backtest(model, series, plan, QUANTILES, deadline=time.monotonic() + 3.0)
    assert model.calls <= len(series)


def test_autopilot_names_map_onto_registered_models() -> None:
    assert set(AUTOPILOT_ALGORITHMS.values()) <= set(FORECASTERS)


def test_backtest_windows_hold_out_the_end_of_each_series() -> None:
    series = [np.arange(40.0), np.arange(100.0, 124.0), np.arange(8.0)]
    plan = plan_backtests([len(s) for s in series], horizon=4, max_windows=3)
    assert plan.windows == 3 and "3 backtest window(s) of 4 steps" in plan.reason
    windows = run_backtest(get_forecaster("seasonal-naive")(1), series, plan, (0.5,))
    # A global model is fit on each window's history only.
    gbm = get_forecaster("gbm")(1, params={"horizon": 4, "n_estimators": 20})
    assert len(run_backtest(gbm, series, plan, (0.1, 0.9))) == 3
    assert [w.window for w in windows] == [0, 1, 2]
    latest = windows[0]
    # The 8-step series has one horizon of history before the latest window only.
    assert latest.series == (0, 1, 2)
    assert latest.actual[0].tolist() == [36.0, 37.0, 38.0, 39.0]
    assert latest.actual[2].tolist() == [4.0, 5.0, 6.0, 7.0]
    assert windows[1].series == (0, 1) and windows[1].actual[1].tolist() == [116, 117, 118, 119]
    # Naive forecasts repeat the last value before each window.
    assert windows[1].forecast.mean[0].tolist() == [31.0] * 4
    short = plan_backtests([6, 7], horizon=4)
    assert short.windows == 1  # always at least one window


def test_the_global_model_learns_across_series_of_any_scale() -> None:
    # Ten series of one seasonal shape at scales 1 to 1000: one model forecasts them all.
    shape = seasonal(72, noise=0.2)
    history = [shape[:-12] * scale for scale in np.logspace(0, 3, 10)]
    model = get_forecaster("gbm")(season_length=12, params={"horizon": 12})
    model.fit(history)
    forecast = model.forecast(history, 12, QUANTILES)
    for i, scale in enumerate(np.logspace(0, 3, 10)):
        error = np.abs(forecast.mean[i] - shape[-12:] * scale).mean() / scale
        assert error < 3.0, (i, error)
    # Conformal bands: the held-out errors put p10 below p90, widening with the scale.
    width = (forecast.quantiles[0.9] - forecast.quantiles[0.1]).mean(axis=1)
    assert (width > 0).all() and width[-1] > 100 * width[0]


def _average_wql(window: WindowForecast, forecast: Forecast) -> float:
    """Average weighted quantile loss, written out independently of mlpilot.metrics."""
    actual = window.actual
    total = 0.0
    for q, band in forecast.quantiles.items():
        diff = actual - band
        total += 2 * np.sum(np.maximum(q * diff, (q - 1) * diff)) / np.sum(np.abs(actual))
    return total / len(forecast.quantiles)


def test_forward_selection_blends_models_and_never_loses_to_the_best_single() -> None:
    from mlpilot.problems.forecasting._ensemble import blend_forecasts, select_ensemble

    series = [seasonal(96, seed=s, noise=2.0) for s in range(6)]
    plan = plan_backtests([len(s) for s in series], horizon=12, max_windows=2)
    backtests = {
        name: run_backtest(
            get_forecaster(name)(12, params={"horizon": 12}), series, plan, QUANTILES
        )
        for name in ("seasonal-naive", "ets", "npts")
    }
    selection = select_ensemble(backtests, _average_wql)
    assert sum(selection.weights.values()) == pytest.approx(1.0)
    assert selection.loss <= selection.best_single_loss + 1e-12
    assert len(selection.window_losses) == 2
    assert selection.loss == pytest.approx(np.mean(selection.window_losses))
    # The blend is the weighted average of each model's mean and quantiles.
    window = {n: backtests[n][0].forecast for n in backtests}
    blended = blend_forecasts(window, {"ets": 0.75, "npts": 0.25})
    expected = 0.75 * window["ets"].mean + 0.25 * window["npts"].mean
    assert np.allclose(blended.mean, expected)
    # NPTS cannot follow the trend: the selection gives it little or no weight.
    assert selection.weights.get("npts", 0.0) <= 0.2


def test_a_trial_backtests_scores_and_keeps_its_forecasts(tmp_path: Path) -> None:
    from mlpilot.problems.forecasting._trial import (
        BacktestData,
        ForecastTask,
        load_backtests,
        load_series,
        run_forecast_trial,
        save_series,
    )

    series = [seasonal(72, seed=s) for s in range(3)] + [np.arange(10.0)]
    save_series(tmp_path / "series.npz", series)
    loaded = load_series(tmp_path / "series.npz")
    assert all(np.array_equal(a, b) for a, b in zip(loaded, series, strict=True))
    plan = plan_backtests([len(s) for s in series], horizon=6, max_windows=2)
    data = BacktestData(str(tmp_path / "series.npz"), plan, QUANTILES, 12, str(tmp_path))
    task = ForecastTask(1, "job-ets-001", "ets", {}, data)
    result = run_forecast_trial(task)
    assert result.status == "Completed", result.failure_reason
    assert len(result.window_metrics) == 2
    assert set(result.metrics) >= {"RMSE", "AverageWeightedQuantileLoss", "MASE", "MAPE", "WAPE"}
    assert task.output_path == str(tmp_path / "job-ets-001.npz")
    windows = load_backtests(task.output_path, QUANTILES)
    # The latest window: its RMSE is the forecasts' against the last six values of each series
    # (the 10-step series has too little history before it to take part).
    latest = windows[0]
    assert latest.series == (0, 1, 2)
    errors = latest.actual - latest.forecast.mean
    assert result.window_metrics[0]["RMSE"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert np.mean([w["RMSE"] for w in result.window_metrics]) == pytest.approx(
        result.metrics["RMSE"]
    )
    # Past its time limit the model stops and the trial says why.
    slow = run_forecast_trial(replace(task, time_limit=-1.0))
    assert slow.status == "Failed" and "stopped at its time limit" in slow.failure_reason
    broken = run_forecast_trial(replace(task, model="prophecy"))
    assert (
        broken.status == "Failed"
        and "Unknown forecasting model 'prophecy'" in broken.failure_reason
    )


def test_a_series_never_below_zero_is_not_forecast_below_zero() -> None:
    falling = np.linspace(40.0, 0.0, 48)  # heading below zero, never there
    crossing = np.linspace(40.0, -5.0, 48)
    for name in ("ets", "theta", "npts", "gbm"):
        model = get_forecaster(name)(season_length=12, params={"horizon": 12})
        model.fit([falling, crossing])
        forecast = model.forecast([falling, crossing], 12, QUANTILES)
        assert (forecast.mean[0] >= 0).all() and (forecast.quantiles[0.1][0] >= 0).all(), name
    trend = get_forecaster("ets")(season_length=1).forecast([crossing], 12, QUANTILES)
    assert (trend.quantiles[0.1][0] < 0).any()  # a series that went negative may again


@pytest.mark.parametrize(
    "objective", ["AverageWeightedQuantileLoss", "RMSE", "WAPE", "MASE", "MAPE"]
)
def test_the_selection_objective_equals_the_scored_metric(objective: str) -> None:
    from mlpilot.problems.forecasting._training import window_objective
    from mlpilot.problems.forecasting._trial import score_windows

    series = [seasonal(60, seed=s) for s in range(4)]
    plan = plan_backtests([len(s) for s in series], horizon=6, max_windows=2)
    for window in run_backtest(get_forecaster("ets")(12), series, plan, QUANTILES):
        scored = score_windows([window], series, plan, 12)[0][objective]
        fast = window_objective(objective, window, window.forecast, series, plan, 12)
        assert fast == pytest.approx(scored, rel=1e-12)


def _gaussian_windows(band_sd: float, windows: int = 4) -> list[WindowForecast]:
    """Backtest windows whose actuals are N(100, 10) around a median of 100, forecast with
    p10/p90 bands as if the spread were ``band_sd``."""
    rng = np.random.default_rng(7)
    out = []
    z = 1.2815515655446004
    for w in range(windows):
        actual = 100 + 10 * rng.standard_normal((50, 12))
        centre = np.full_like(actual, 100.0)
        bands = {0.1: centre - z * band_sd, 0.5: centre, 0.9: centre + z * band_sd}
        out.append(WindowForecast(w, tuple(range(50)), actual, Forecast(centre, bands)))
    return out


@pytest.mark.parametrize("band_sd", [5.0, 20.0])
def test_quantile_spread_rescales_bands_to_the_backtests(band_sd: float) -> None:
    spread = QuantileSpread.fit(_gaussian_windows(band_sd))
    # The true spread is 10: bands half (or twice) as wide are stretched (or shrunk) to it.
    assert spread.factors[0.5] == 1.0
    for q in (0.1, 0.9):
        assert spread.factors[q] == pytest.approx(10.0 / band_sd, rel=0.15)
    window = _gaussian_windows(band_sd)[0]
    fitted = spread.apply(window.forecast)
    np.testing.assert_array_equal(fitted.quantiles[0.5], window.forecast.quantiles[0.5])
    assert (fitted.quantiles[0.1] <= fitted.quantiles[0.5]).all()
    below = float(np.mean(window.actual < fitted.quantiles[0.1]))
    assert 0.05 <= below <= 0.15


def test_quantile_spread_leaves_calibrated_bands_alone() -> None:
    spread = QuantileSpread.fit(_gaussian_windows(10.0))
    assert spread.factors == {0.1: 1.0, 0.5: 1.0, 0.9: 1.0}
    window = _gaussian_windows(10.0)[0]
    assert spread.apply(window.forecast) is window.forecast


def test_conformal_origins_reach_back_only_for_few_series() -> None:
    from mlpilot.problems.forecasting.models.gbm import MIN_RESIDUALS, conformal_origins

    # Many series: each one's last horizon.
    many = conformal_origins([100] * 50, 10)
    assert many == [(i, 90) for i in range(50)]
    # One long series: origins half a horizon apart, enough errors per step.
    one = conformal_origins([5000], 10)
    assert len(one) >= MIN_RESIDUALS and one[:3] == [(0, 4990), (0, 4985), (0, 4980)]
    # One short series: no further back than one more horizon (or a tenth of it).
    short = conformal_origins([60], 12)
    assert [c for _, c in short] == [48, 42, 36]
    # Too short for any held-out horizon: none.
    assert conformal_origins([10], 12) == []


def test_the_global_model_on_one_series_has_bands_of_its_errors() -> None:
    # One noisy seasonal series: the conformal band comes from many origins, so p10 and p90
    # differ and hold most of what follows.
    y = seasonal(600, season=24, noise=3.0, seed=4)
    history, future = y[:-24], y[-24:]
    model = get_forecaster("gbm")(season_length=24, params={"horizon": 24})
    model.fit([history])
    forecast = model.forecast([history], 24, QUANTILES)
    assert model.residuals is not None and model.residuals.shape[0] >= 5
    width = forecast.quantiles[0.9] - forecast.quantiles[0.1]
    assert (width > 1.0).all()
    inside = (future >= forecast.quantiles[0.1][0]) & (future <= forecast.quantiles[0.9][0])
    assert inside.mean() >= 0.5


def test_every_algorithm_name_the_config_accepts_has_a_model() -> None:
    from mlpilot.config._forecasting import ALGORITHMS

    assert set(ALGORITHMS) == set(AUTOPILOT_ALGORITHMS)
    assert all(model in FORECASTERS for model in AUTOPILOT_ALGORITHMS.values())
