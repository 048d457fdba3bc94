"""What models read besides the target, on real series: covariates over the history and the
horizon, static item attributes, calendar features of the grid and holidays from HolidayConfig's
country; the global model's use of them in backtests, in workers and in the shipped predictor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import holidays
import numpy as np
import pandas as pd
import pytest

from helpers_data import TOURISM, VICTORIA
from helpers_forecast import TOURISM_SETTINGS, fit_predictor, table
from mlpilot.config import ForecastingConfig
from mlpilot.data import Frequency
from mlpilot.errors import ConfigError, PredictionInputError
from mlpilot.problems.forecasting import SeriesSet, prepare_series
from mlpilot.problems.forecasting._backtest import plan_backtests, run_backtest
from mlpilot.problems.forecasting._features import HolidayCalendar, series_features
from mlpilot.problems.forecasting._trial import (
    BacktestData,
    ForecastTask,
    run_forecast_trial,
    save_series,
)
from mlpilot.problems.forecasting.models import SeriesFeatures, get_forecaster
from mlpilot.problems.forecasting.models._features import calendar_columns, calendar_values

QUANTILES = [0.1, 0.5, 0.9]
VICTORIA_SETTINGS: dict[str, Any] = {
    "target": "Demand",
    "timestamp": "Time",
    "item_id": "site",
    "frequency": "30min",
    "horizon": 96,
}
#: Fewer trees than the model's default: the tests check behaviour, not accuracy.
SMALL_GBM = {"n_estimators": 60}


def victoria_table(columns: tuple[str, ...] = ("Temperature", "Holiday")) -> pd.DataFrame:
    """The slice as the job reads it, with an item id and only ``columns`` beside the target."""
    frame = table(VICTORIA)
    frame.insert(0, "site", "vic")
    return frame[["site", "Time", "Demand", *columns]]


def victoria(frame: pd.DataFrame | None = None, **kwargs: Any) -> SeriesSet:
    source = victoria_table() if frame is None else frame
    return prepare_series(source, **(VICTORIA_SETTINGS | kwargs))


def with_future(frame: pd.DataFrame, steps: int = 96) -> pd.DataFrame:
    """The slice with its last ``steps`` rows turned into future-dated rows (target empty,
    covariates kept): the history ends ``steps`` half-hours before the slice does."""
    out = frame.copy()
    out.loc[out.index[-steps:], "Demand"] = ""
    return out


def gbm(horizon: int = 96, **params: Any) -> Any:
    return get_forecaster("gbm")(48, {"horizon": horizon, **SMALL_GBM, **params})


# -- holidays --------------------------------------------------------------------------------------


def daily_flags(features: SeriesFeatures, name: str = "holiday") -> pd.Series:
    column = features.holidays[:, features.holiday_names.index(name)]
    return pd.Series(column, index=pd.DatetimeIndex(features.time)).groupby(level=0).max()


def test_australian_holidays_flag_their_days_in_the_grid() -> None:
    series = victoria()
    features = series_features(series, HolidayCalendar("AU"))
    assert features.holiday_names == ("holiday", "days_to_holiday", "days_since_holiday")
    assert features.holiday_country == "AU"
    # Timestamps given in UTC: the holiday is the UTC date's (documented).
    flags = daily_flags(features).resample("D").max()
    assert flags[flags > 0].index.strftime("%Y-%m-%d").tolist() == ["2012-01-01", "2012-01-26"]
    stamps = pd.DatetimeIndex(features.time)
    assert features.holidays[stamps == "2012-01-26 12:30", 0].tolist() == [1.0]
    assert features.holidays[stamps == "2012-01-26 13:00", 0].tolist() == [1.0]
    assert features.holidays[stamps == "2012-01-25 23:30", 0].tolist() == [0.0]
    at = stamps == "2012-01-20 10:00"
    assert features.holidays[at, 1:].tolist() == [[6.0, 19.0]]  # to Australia Day, since 1 Jan
    # The future steps have their holiday features too (a day past the slice, none).
    assert features.holidays.shape == (1344 + 96, 3)


def test_local_timestamps_flag_the_local_holidays() -> None:
    """Given in Melbourne's time, the flags fall on the local days the data's own Holiday column
    marks, but for 2 January: a Victorian day off, not a national holiday."""
    frame = victoria_table()
    local = pd.to_datetime(frame["Time"]).dt.tz_convert("Australia/Melbourne")
    frame["Time"] = local.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    series = victoria(frame)
    features = series_features(series, HolidayCalendar("AU"))
    history = features.lengths[0]
    stamps = pd.DatetimeIndex(features.time[:history])
    assert stamps[0] == pd.Timestamp("2012-01-01 00:00")  # local wall-clock time
    ours = pd.Series(features.holidays[:history, 0] > 0, index=stamps)
    theirs = pd.Series((frame["Holiday"] == "TRUE").to_numpy(), index=local.dt.tz_localize(None))
    differ = ours != theirs.reindex(stamps)
    assert set(stamps[differ].strftime("%Y-%m-%d")) == {"2012-01-02"}
    assert ours.groupby(stamps.date).all().sum() == 2


@pytest.mark.parametrize("alias", ["W-SUN", "MS", "ME", "QS-JAN", "2D"])
def test_holidays_counted_per_period_as_pandas_bins_them(alias: str) -> None:
    days = pd.date_range("2018-01-01", "2022-12-31", freq="D")
    us = holidays.country_holidays("US", years=range(2017, 2024))
    dates = pd.DatetimeIndex(sorted(us))
    per_period = pd.Series(1.0, index=dates).resample(alias, origin="epoch").sum()
    grid = pd.Series(0.0, index=days).resample(alias, origin="epoch").sum().index[1:-1]
    frame = pd.DataFrame({"item": "a", "ts": grid.strftime("%Y-%m-%d"), "y": np.arange(len(grid))})
    series = prepare_series(
        frame, target="y", timestamp="ts", item_id="item", frequency=alias, horizon=2
    )
    features = series_features(series, HolidayCalendar("US"))
    expected = per_period.reindex(pd.DatetimeIndex(features.time), fill_value=0.0)
    np.testing.assert_array_equal(features.holidays[:, 0], expected.to_numpy())
    assert features.holidays[:, 0].max() >= 1
    assert features.holiday_names == ("holiday",)  # no days to/since a holiday beyond daily


def test_holiday_country_checked_at_the_start() -> None:
    settings: dict[str, Any] = {
        "target": "y",
        "timestamp": "ts",
        "item_id": "item",
        "frequency": "D",
        "horizon": 2,
    }
    with pytest.raises(ConfigError, match="'XX' has no holiday calendar in the holidays package"):
        ForecastingConfig(**settings, holiday_country="XX")
    with pytest.raises(ConfigError, match="two capital letters"):
        ForecastingConfig(**settings, holiday_country="aus")
    request = {
        "ForecastFrequency": "D",
        "ForecastHorizon": 2,
        "TimeSeriesConfig": {
            "TargetAttributeName": "y",
            "TimestampAttributeName": "ts",
            "ItemIdentifierAttributeName": "item",
        },
        "HolidayConfig": [{"CountryCode": "ZZ"}],
    }
    with pytest.raises(ConfigError, match="'ZZ' has no holiday calendar"):
        ForecastingConfig.from_request(request)
    assert "Australia (AU)" in HolidayCalendar("AU").description
    assert ForecastingConfig(**settings, holiday_country="AU").holiday_country == "AU"


# -- calendar, covariates, static attributes -----------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "names"),
    [
        ("30min", ("hour_of_day", "day_of_week", "day_of_month", "week_of_year", "month")),
        ("D", ("day_of_week", "day_of_month", "week_of_year", "month")),
        ("W-SUN", ("week_of_year", "month")),
        ("MS", ("month",)),
        ("QS-JAN", ("quarter",)),
        ("YS-JAN", ()),
    ],
)
def test_calendar_features_are_those_that_vary_at_the_frequency(
    alias: str, names: tuple[str, ...]
) -> None:
    assert calendar_columns(Frequency.parse(alias)) == names


def test_calendar_values() -> None:
    stamps = pd.DatetimeIndex(["2012-01-26 13:30", "2012-12-31 00:00"]).to_numpy()
    assert calendar_values("hour_of_day", stamps).tolist() == [13.5, 0.0]
    assert calendar_values("day_of_week", stamps).tolist() == [3.0, 0.0]  # Thursday, Monday
    assert calendar_values("week_of_year", stamps).tolist() == [4.0, 1.0]  # ISO weeks
    assert calendar_values("quarter", stamps).tolist() == [1.0, 4.0]


def test_features_cover_history_and_horizon_and_cut_into_windows(tmp_path: Path) -> None:
    series = victoria(with_future(victoria_table()))
    features = series_features(series, HolidayCalendar("AU"))
    assert features.lengths.tolist() == [1248] and features.horizon == 96
    assert features.covariate_names == ("Temperature", "Holiday")
    assert features.categories == {"Holiday": ("FALSE", "TRUE")}
    raw = victoria_table()
    temperature = raw["Temperature"].astype(float).to_numpy()
    # The future rows' Temperature is the data's, not a filled value.
    np.testing.assert_array_equal(features.covariates[:, 0], temperature)
    assert series.future_given["Temperature"] == 1.0
    holiday = (raw["Holiday"] == "TRUE").astype(float).to_numpy()
    np.testing.assert_array_equal(features.covariates[:, 1], holiday)
    # A backtest window: history to the cutoff, the window's actual covariates as its future.
    window = features.cut([0], [1000], 96)
    assert window.lengths.tolist() == [1000] and window.horizon == 96
    np.testing.assert_array_equal(window.covariates, features.covariates[:1096])
    np.testing.assert_array_equal(window.time, features.time[:1096])
    with pytest.raises(ValueError, match="past a series' timeline"):
        features.cut([0], [1300], 96)
    features.save(tmp_path / "features.npz")
    loaded = SeriesFeatures.load(tmp_path / "features.npz")
    assert loaded.frequency == features.frequency and loaded.categories == features.categories
    np.testing.assert_array_equal(loaded.time, features.time)
    np.testing.assert_array_equal(loaded.holidays, features.holidays)


def test_covariates_change_the_backtest_forecasts() -> None:
    series = victoria()
    features = series_features(series, HolidayCalendar("AU"))
    values = [series.values(0)]
    plan = plan_backtests(series.lengths.tolist(), 96, max_windows=2)
    plain = run_backtest(gbm(), values, plan, QUANTILES)
    rich = run_backtest(gbm(), values, plan, QUANTILES, features=features)
    assert [w.window for w in rich] == [0, 1]
    for a, b in zip(plain, rich, strict=True):
        np.testing.assert_array_equal(a.actual, b.actual)
        assert not np.allclose(a.forecast.mean, b.forecast.mean)
    # Local models do not read features: their forecasts are the same either way.
    ets = get_forecaster("seasonal-naive")(48)
    same = run_backtest(ets, values, plan, QUANTILES, features=features)
    np.testing.assert_array_equal(
        same[0].forecast.mean, run_backtest(ets, values, plan, QUANTILES)[0].forecast.mean
    )


def test_the_global_model_reads_future_temperature() -> None:
    series = victoria(with_future(victoria_table()))
    features = series_features(series)
    model = gbm()
    model.fit([series.values(0)], features=features)
    names = model.feature_names
    assert {"hour_of_day", "day_of_week", "Temperature", "Holiday"} <= set(names)
    assert "holiday" not in names  # no holiday calendar
    base = model.forecast([series.values(0)], 96, QUANTILES, features=features)
    hotter = features.covariates.copy()
    hotter[features.lengths[0] :, 0] += 12.0  # a heatwave over the horizon only
    warm = SeriesFeatures(**{**vars(features), "covariates": hotter})
    changed = model.forecast([series.values(0)], 96, QUANTILES, features=warm)
    assert not np.allclose(base.mean, changed.mean)
    # Without features the model trained with them refuses to forecast.
    with pytest.raises(ValueError, match="fit with features"):
        model.forecast([series.values(0)], 96, QUANTILES)
    with pytest.raises(ValueError, match="reach 96 steps ahead, not the 97"):
        model.forecast([series.values(0)], 97, QUANTILES, features=features)


def test_a_trial_in_a_worker_reads_the_saved_features(tmp_path: Path) -> None:
    series = victoria()
    values = [series.values(0)]
    save_series(tmp_path / "series.npz", values)
    series_features(series, HolidayCalendar("AU")).save(tmp_path / "features.npz")
    plan = plan_backtests(series.lengths.tolist(), 96, max_windows=1)
    plain = BacktestData(str(tmp_path / "series.npz"), plan, (0.1, 0.5, 0.9), 48, str(tmp_path))
    rich = BacktestData(
        str(tmp_path / "series.npz"),
        plan,
        (0.1, 0.5, 0.9),
        48,
        str(tmp_path),
        features_path=str(tmp_path / "features.npz"),
    )
    results = [
        run_forecast_trial(ForecastTask(1, f"gbm-{i}", "gbm", {"horizon": 96, **SMALL_GBM}, data))
        for i, data in enumerate((plain, rich))
    ]
    assert all(r.status == "Completed" for r in results), [r.failure_reason for r in results]
    assert results[0].metrics["RMSE"] != results[1].metrics["RMSE"]


def test_static_attributes_are_categorical_features() -> None:
    frame = table(TOURISM)
    series = prepare_series(frame, **TOURISM_SETTINGS)
    features = series_features(series, HolidayCalendar("AU"))
    assert features.static_names == ("Region", "State", "Purpose")
    assert features.categories["Purpose"] == ("Business", "Holiday", "Other", "Visiting")
    model = get_forecaster("gbm")(4, {"horizon": 8, **SMALL_GBM})
    values = [series.values(i) for i in range(series.n_series)]
    model.fit(values, features=features)
    names = model.feature_names
    assert names[-3:] == ["Region", "State", "Purpose"]
    assert {"quarter", "holiday"} <= set(names) and "month" not in names
    categorical = [
        names[len(names) - len(model.exogenous.names) + i] for i in model.exogenous.categorical
    ]
    assert categorical == ["Region", "State", "Purpose"]
    forecast = model.forecast(values, 8, QUANTILES, features=features)
    assert forecast.mean.shape == (9, 8) and np.isfinite(forecast.mean).all()
    # A quarter counts its holidays: Q1 2018 has New Year's, Australia Day and Good Friday.
    stamps = pd.DatetimeIndex(features.time)
    q1 = (stamps == "2018-01-01") & (np.arange(len(stamps)) < features.spans[0])
    assert features.holidays[q1, 0].tolist() == [3.0]


# -- the shipped predictor -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def victoria_models() -> dict[str, Any]:
    """GBM predictors of the slice's first 26 days, with Temperature and Holiday given over the
    horizon and AU holidays, and without any covariate column."""
    training = with_future(victoria_table())
    settings = {**VICTORIA_SETTINGS, "holiday_country": "AU"}
    with_covariates = fit_predictor(training, {"gbm": 1.0}, **settings)
    bare = fit_predictor(training[["site", "Time", "Demand"]], {"gbm": 1.0}, **settings)
    return {"covariates": with_covariates, "bare": bare, "training": training}


def test_future_temperature_rows_change_the_forecast(victoria_models: dict[str, Any]) -> None:
    predictor = victoria_models["covariates"]
    training = victoria_models["training"]
    assert predictor.describe()["covariates"] == {
        "Temperature": "numeric",
        "Holiday": "categorical",
    }
    assert predictor.describe()["holiday_country"] == "AU"
    model = predictor.models["gbm"]
    assert {"Temperature", "Holiday", "holiday", "days_to_holiday"} <= set(model.feature_names)
    given = predictor.forecast(training)
    # From the training history, with the same future rows: the same forecast.
    pd.testing.assert_frame_equal(given, predictor.forecast())
    assert pd.Timestamp(given["Time"].iloc[0]) == pd.Timestamp("2012-01-26 13:00", tz="UTC")
    hot = training.copy()
    future = hot["Demand"] == ""
    hot.loc[future, "Temperature"] = (hot.loc[future, "Temperature"].astype(float) + 12).astype(str)
    warmer = predictor.forecast(hot)
    assert not np.allclose(given["mean"], warmer["mean"])
    # Without its future rows, the horizon's Temperature is filled: another forecast again.
    assert not np.allclose(given["mean"], predictor.forecast(training[~future])["mean"])
    # A model trained without covariates ignores them, however hot the horizon.
    bare = victoria_models["bare"]
    assert "Temperature" not in bare.models["gbm"].feature_names
    assert bare.describe()["covariates"] == {}
    np.testing.assert_array_equal(bare.forecast(training)["mean"], bare.forecast(hot)["mean"])


def test_an_inference_table_keeps_the_training_columns(victoria_models: dict[str, Any]) -> None:
    predictor = victoria_models["covariates"]
    training = victoria_models["training"]
    with pytest.raises(PredictionInputError, match="no column 'Temperature'"):
        predictor.forecast(training.drop(columns=["Temperature"]))
    # Australia Day alone, then its future rows: Holiday is TRUE throughout, which this table
    # codes 0; the model reads it as the training's code for TRUE.
    day = pd.to_datetime(training["Time"]).dt.strftime("%Y-%m-%d") == "2012-01-26"
    rows = training[day & (training["Holiday"] == "TRUE")]
    table_only_true = pd.concat([rows, training[training["Demand"] == ""].assign(Holiday="TRUE")])
    forecast = predictor.forecast(table_only_true)
    assert len(forecast) == 96 and np.isfinite(forecast["mean"]).all()
    series = predictor.settings.prepare(table_only_true, inference=True)
    features = series_features(series, HolidayCalendar("AU"))
    assert features.categories["Holiday"] == ("TRUE",)
    matrix = predictor.models["gbm"].exogenous.matrix(features)
    holiday = predictor.models["gbm"].exogenous.names.index("Holiday")
    assert set(matrix[:, holiday]) == {1.0}
    # A table whose Temperature holds one value per series keeps it a covariate.
    flat = training.assign(Temperature="20")
    assert np.isfinite(predictor.forecast(flat)["mean"]).all()


def test_the_cli_takes_a_holiday_country(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mlpilot.cli.main import app

    arguments = ["run", str(VICTORIA), "--problem-type", "TimeSeriesForecasting",
                 "--target", "Demand", "--timestamp", "Time", "--item-id", "site",
                 "--frequency", "30min", "--horizon", "96",
                 "--output", str(tmp_path / "job")]  # fmt: skip
    result = CliRunner().invoke(app, [*arguments, "--holiday-country", "XX"])
    assert result.exit_code != 0
    assert "'XX' has no holiday calendar in the holidays package" in result.output
    assert not (tmp_path / "job").exists()


def test_grouped_series_keep_their_other_attributes_as_features() -> None:
    """Keyed by Region and Purpose, the tourism series have State (and the old item id) as
    static attributes: the shipped global model reads them and forecasts by the composite key."""
    frame = table(TOURISM)
    settings = {**TOURISM_SETTINGS, "item_id": "Region", "grouping": ("Purpose",)}
    predictor = fit_predictor(frame, {"gbm": 1.0}, **settings)
    names = predictor.models["gbm"].feature_names
    assert names[-2:] == ["item_id", "State"] and "Purpose" not in names
    assert predictor.describe()["static_attributes"] == {
        "item_id": "categorical",
        "State": "categorical",
    }
    forecast = predictor.forecast(frame)
    assert forecast.columns[:3].tolist() == ["Region", "Purpose", "timestamp"]
    assert len(forecast) == 9 * 8 and np.isfinite(forecast["mean"]).all()
