"""The global quantile network (Autopilot's cnn-qr and deepar) and Prophet, at the model seam;
and how a job skips a model its budget cannot afford."""

from __future__ import annotations

import itertools
import pickle
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from helpers_data import TOURISM
from helpers_forecast import TOURISM_SETTINGS, table
from mlpilot.config import ForecastingConfig, JobConfig
from mlpilot.data import Frequency
from mlpilot.problems.forecasting import SeriesSettings
from mlpilot.problems.forecasting._backtest import plan_backtests, run_backtest
from mlpilot.problems.forecasting._trial import score_windows
from mlpilot.problems.forecasting.models import (
    AUTOPILOT_ALGORITHMS,
    Forecast,
    Forecaster,
    ForecastTimeout,
    get_forecaster,
)

QUANTILES = (0.1, 0.5, 0.9)
#: A small network that trains in well under a second.
SMALL = {"hidden": 32, "max_epochs": 6, "batches_per_epoch": 8, "batch_size": 64}


def seasonal(n: int, season: int = 12, seed: int = 0, level: float = 50.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.3 * t + 10 * np.sin(2 * np.pi * t / season) + rng.normal(size=n)


def network(seed: int = 0, **params: Any) -> Forecaster:
    return get_forecaster("quantile-net")(12, {"horizon": 6, **SMALL, **params}, seed)


def test_autopilot_network_names_map_to_the_quantile_network() -> None:
    assert AUTOPILOT_ALGORITHMS["cnn-qr"] == AUTOPILOT_ALGORITHMS["deepar"] == "quantile-net"
    assert AUTOPILOT_ALGORITHMS["prophet"] == "prophet"


def test_the_network_forecasts_ordered_quantiles_and_levels_it_did_not_learn() -> None:
    full = [seasonal(66, seed=s, level=10.0 * (s + 1)) * 10**s for s in range(5)]
    history = [y[:60] for y in full] + [np.array([4.0])]
    model = network(quantiles=[0.1, 0.9])
    model.fit(history)
    forecast = model.forecast(history, 6, (0.1, 0.25, 0.5, 0.9))
    assert forecast.mean.shape == (6, 6)
    bands = [forecast.quantiles[q] for q in (0.1, 0.25, 0.5, 0.9)]
    assert all(np.isfinite(b).all() for b in bands)
    assert all((lo <= hi).all() for lo, hi in itertools.pairwise(bands))
    # The mean is the median; 0.25 lies between the learned 0.1 and 0.5.
    assert np.array_equal(forecast.mean, forecast.quantiles[0.5])
    assert (forecast.quantiles[0.9] - forecast.quantiles[0.1]).mean() > 0
    # Series of any scale (1 to 10,000) share the network: each is forecast near its future.
    for s in range(5):
        assert abs(forecast.mean[s].mean() / full[s][60:].mean() - 1) < 0.2, s


def test_the_network_forecasts_beyond_the_horizon_it_learned() -> None:
    history = [seasonal(60, seed=s) for s in range(3)]
    model = network()
    model.fit(history)
    forecast = model.forecast(history, 15, QUANTILES)
    assert forecast.mean.shape == (3, 15) and np.isfinite(forecast.mean).all()
    # The first six steps are the direct forecast, whatever the horizon asked for.
    assert np.allclose(forecast.mean[:, :6], model.forecast(history, 6, QUANTILES).mean)


def test_the_network_is_deterministic_given_its_seed() -> None:
    history = [seasonal(48, seed=s) for s in range(4)]
    runs = []
    for seed in (3, 3, 4):
        model = network(seed)
        model.fit(history)
        runs.append(model.forecast(history, 6, QUANTILES))
    assert np.array_equal(runs[0].mean, runs[1].mean)
    assert np.array_equal(runs[0].quantiles[0.9], runs[1].quantiles[0.9])
    assert not np.array_equal(runs[0].mean, runs[2].mean)


def test_the_network_stops_at_its_deadline() -> None:
    history = [seasonal(48, seed=s) for s in range(4)]
    with pytest.raises(ForecastTimeout, match="no time left to train"):
        network().fit(history, deadline=time.monotonic() - 1)
    # A deadline that allows a few epochs of many: it stops early, and forecasts with the
    # best weights it had.
    model = network(max_epochs=100_000, patience=100_000)
    model.fit(history, deadline=time.monotonic() + 0.5)
    assert 1 <= model.epochs_run < 100_000  # type: ignore[attr-defined]
    assert np.isfinite(model.forecast(history, 6, QUANTILES).mean).all()


def test_the_network_pickles_as_weights_and_forecasts_the_same() -> None:
    history = [seasonal(48, seed=s) for s in range(3)]
    model = network()
    model.fit(history)
    before = model.forecast(history, 6, QUANTILES)
    data = pickle.dumps(model)
    assert b"torch" not in data  # NumPy weights only: loading needs no torch internals
    after = pickle.loads(data).forecast(history, 6, QUANTILES)
    assert np.array_equal(before.mean, after.mean)
    assert np.array_equal(before.quantiles[0.1], after.quantiles[0.1])


def test_the_network_beats_seasonal_naive_on_the_tourism_backtests() -> None:
    config = ForecastingConfig(**TOURISM_SETTINGS)
    prepared = SeriesSettings.of(config, Frequency.parse(config.frequency)).prepare(table(TOURISM))
    series = [prepared.values(i).astype("float64") for i in range(prepared.n_series)]
    plan = plan_backtests([len(y) for y in series], config.horizon, max_windows=3)

    def wql(name: str, params: dict[str, Any]) -> float:
        model = get_forecaster(name)(4, {"horizon": config.horizon, **params})
        windows = run_backtest(model, series, plan, QUANTILES)
        scores = score_windows(windows, series, plan, 4)
        return float(np.mean([s["AverageWeightedQuantileLoss"] for s in scores]))

    naive = wql("seasonal-naive", {})
    net = wql("quantile-net", {"hidden": 64, "max_epochs": 10, "batches_per_epoch": 20})
    assert net < 0.95 * naive, (net, naive)


class _Recorder(Forecaster):
    """A global model that records the deadlines its fits are given."""

    name = "recorder"
    description = "records deadlines"
    anytime: ClassVar[bool] = True
    deadlines: ClassVar[list[float | None]] = []

    def fit(self, history: Any, deadline: float | None = None, features: Any = None) -> None:
        self.deadlines.append(deadline)

    def _forecast(self, history: Any, horizon: int, q: Any, deadline: Any) -> Forecast:
        zeros = np.zeros((len(history), horizon))
        return Forecast(zeros, {level: zeros for level in q})


def test_a_backtest_gives_an_anytime_model_a_share_of_the_time_per_window() -> None:
    series = [np.arange(50.0) for _ in range(2)]
    plan = plan_backtests([50, 50], horizon=5, max_windows=4)
    _Recorder.deadlines = []
    start = time.monotonic()
    deadline = start + 100.0
    run_backtest(_Recorder(1), series, plan, (0.5,), deadline)
    shares = [d - start for d in _Recorder.deadlines if d is not None]
    assert len(shares) == 4
    # About a quarter of the time (less the tenth kept for forecasting) for the first window,
    # and never past the trial's deadline.
    assert 20.0 < shares[0] < 23.0
    assert all(a < b for a, b in itertools.pairwise(shares)) and shares[-1] <= 100.0


def test_prophet_follows_trend_and_season_deterministically() -> None:
    y = seasonal(96)
    history, future = y[:-12], y[-12:]
    model = get_forecaster("prophet")(season_length=12, seed=1)
    first = model.forecast([history, np.array([2.0, 3.0])], 12, QUANTILES)
    again = model.forecast([history], 12, QUANTILES)
    assert np.array_equal(first.quantiles[0.9][:1], again.quantiles[0.9])
    error = np.abs(future - first.mean[0]).mean()
    assert error < np.abs(future - history.mean()).mean() / 3
    assert (first.quantiles[0.1][0] < first.mean[0]).all()
    assert (first.mean[0] < first.quantiles[0.9][0]).all()
    # A series too short for a trend carries its last value on.
    assert np.allclose(first.mean[1], 3.0)
    assert model.minimum_seconds(1000, 5) > 60


@pytest.mark.slow
def test_a_job_skips_a_model_its_budget_cannot_afford_and_runs_one_network(
    tmp_path: Path,
) -> None:
    from mlpilot.jobs import AutoMLJob

    config = JobConfig(
        name="tourism-nn",
        training_data=str(TOURISM),
        output_path=str(tmp_path / "job"),
        problem=ForecastingConfig(
            **{**TOURISM_SETTINGS, "horizon": 4}, algorithms=("npts", "cnn-qr", "deepar")
        ),
        max_runtime=10,
        parallelism=2,
    )
    job = AutoMLJob(config)
    record = job.run()
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    networks = [c for c in job.candidates.values() if c["Mlpilot"]["Algorithm"] == "quantile-net"]
    assert len(networks) == 1  # cnn-qr and deepar are one model
    reason = networks[0]["FailureReason"]
    assert networks[0]["CandidateStatus"] == "Failed"
    assert reason.startswith("skipped: its backtest needs about") and "s left" in reason
