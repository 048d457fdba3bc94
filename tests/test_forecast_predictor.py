"""The forecasting job's final model: a ForecastPredictor fitted on real series, saved as a
package, loaded back through mlpilot.package, and forecasting from its training history or from
a history table (new items, future covariate rows, grouping columns, time zones, bad input)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlpilot
from helpers_data import AIR_PASSENGERS, M4_HOURLY, TOURISM
from helpers_forecast import TOURISM_SETTINGS, fit_predictor, save_package, table
from helpers_models import with_recorded_version
from mlpilot.errors import ConfigError, ModelPackageError, PredictionInputError
from mlpilot.package import (
    FORECASTING,
    InferenceModel,
    ModelVersionWarning,
    SeriesModel,
    installed_versions,
)
from mlpilot.problems.forecasting import MIN_HISTORY, ForecastPredictor

QUANTILES = ["p10", "p50", "p90"]
M4_SETTINGS: dict[str, Any] = {
    "target": "target",
    "timestamp": "timestamp",
    "item_id": "item_id",
    "frequency": "h",
    "horizon": 48,
}


@pytest.fixture(scope="module")
def tourism_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    predictor = fit_predictor(
        table(TOURISM), {"ets": 0.5, "seasonal-naive": 0.5}, **TOURISM_SETTINGS
    )
    return save_package(predictor, tmp_path_factory.mktemp("forecast") / "tourism")


@pytest.fixture(scope="module")
def tourism(tourism_package: Path) -> SeriesModel:
    loaded = mlpilot.load_model(tourism_package)
    assert isinstance(loaded, SeriesModel)
    return loaded


@pytest.fixture(scope="module")
def m4(tmp_path_factory: pytest.TempPathFactory) -> SeriesModel:
    """A global model (fitted, pickled) blended with a local one, loaded from the archive."""
    predictor = fit_predictor(table(M4_HOURLY), {"gbm": 0.5, "seasonal-naive": 0.5}, **M4_SETTINGS)
    package = save_package(predictor, tmp_path_factory.mktemp("forecast") / "m4")
    loaded = mlpilot.load_model(package / "model.tar.gz")
    assert isinstance(loaded, SeriesModel)
    return loaded


def check_forecast(frame: pd.DataFrame, keys: list[str], timestamp: str, horizon: int) -> None:
    """Columns and their order, ``horizon`` rows per series, quantiles ordered, the mean inside
    the p10-p90 band nearly everywhere."""
    assert frame.columns.tolist() == [*keys, timestamp, "mean", *QUANTILES]
    assert (frame.groupby(keys, sort=False).size() == horizon).all()
    assert not frame[["mean", *QUANTILES]].isna().any().any()
    assert (frame["p10"] <= frame["p50"]).all() and (frame["p50"] <= frame["p90"]).all()
    inside = (frame["p10"] <= frame["mean"]) & (frame["mean"] <= frame["p90"])
    assert inside.mean() > 0.9


# -- the package ---------------------------------------------------------------------------------


def test_manifest_records_what_a_reader_needs(tourism_package: Path, tourism: SeriesModel) -> None:
    info = json.loads((tourism_package / "mlpilot-model.json").read_text())
    assert info["problem_type"] == FORECASTING == "TimeSeriesForecasting"
    assert info["key_columns"] == ["item_id"] and info["timestamp"] == "timestamp"
    assert info["target"] == "Trips"
    assert info["frequency"] == "QS-JAN" and info["forecast_frequency"] == "3M"
    assert info["horizon"] == 8 and info["quantiles"] == QUANTILES
    assert info["output_columns"] == ["item_id", "timestamp", "mean", *QUANTILES]
    assert info["weights"] == {"ets": 0.5, "seasonal-naive": 0.5}
    assert info["season_length"] == 4 and info["series"] == 9 and info["history_rows"] == 720
    assert info["candidate"] == {"CandidateName": "best"}
    # The static attributes are listed though neither model reads them: new data must hold them.
    assert info["covariates"] == {} and info["feature_columns"] == ["Region", "State", "Purpose"]
    assert info["versions"]["statsforecast"] == installed_versions()["statsforecast"]
    facts = tourism.facts
    assert facts.key_columns == ("item_id",) and facts.timestamp == "timestamp"
    assert list(facts.quantiles) == list(QUANTILES) and facts.horizon == 8
    assert facts.frequency == "QS-JAN" and facts.candidate_name == "best"
    assert tourism.problem_type == FORECASTING and facts.target == "Trips"
    assert sorted(p.name for p in tourism_package.iterdir()) == [
        "mlpilot-model.json",
        "model.tar.gz",
        "pipeline.joblib",
    ]


def test_loaders_dispatch_and_refuse_the_other_kind(tourism_package: Path, tmp_path: Path) -> None:
    assert isinstance(SeriesModel.load(tourism_package / "model.tar.gz"), SeriesModel)
    with pytest.raises(ModelPackageError, match="holds a TimeSeriesForecasting model"):
        InferenceModel.load(tourism_package)
    tabular = InferenceModel([], {"problem_type": "Regression", "versions": {}})
    tabular.save(tmp_path / "tabular", archive=False)
    assert isinstance(mlpilot.load_model(tmp_path / "tabular"), InferenceModel)
    with pytest.raises(ModelPackageError, match="holds a Regression model, not a"):
        SeriesModel.load(tmp_path / "tabular")


def test_version_differences_warn_or_refuse(
    tourism_package: Path, tourism: SeriesModel, tmp_path: Path
) -> None:
    package = with_recorded_version(tourism_package, tmp_path / "old", "statsforecast", "1.0.0")
    with pytest.warns(ModelVersionWarning, match="statsforecast: saved with 1.0.0"):
        loaded = mlpilot.load_model(package)
    pd.testing.assert_frame_equal(loaded.forecast(), tourism.forecast())
    with pytest.raises(ModelPackageError, match="statsforecast"):
        SeriesModel.load(package, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelVersionWarning)
        SeriesModel.load(tourism_package, strict=True)


# -- forecasting ---------------------------------------------------------------------------------


def test_tourism_from_its_history_on_quarter_starts(tourism: SeriesModel) -> None:
    source = table(TOURISM)
    frame = tourism.forecast()
    check_forecast(frame, ["item_id"], "timestamp", 8)
    assert frame["item_id"].tolist() == list(np.repeat(sorted(source["item_id"].unique()), 8))
    stamps = pd.DatetimeIndex(frame["timestamp"])
    assert (stamps.day == 1).all() and set(stamps.month) == {1, 4, 7, 10}
    assert (stamps.hour == 0).all()
    expected = pd.date_range("2018-01-01", periods=8, freq="QS-JAN")
    for _, rows in frame.groupby("item_id"):
        assert rows["timestamp"].tolist() == list(expected)
    # The table it was trained on gives the same forecast as the stored history.
    pd.testing.assert_frame_equal(tourism.forecast(source), frame)


def test_tourism_from_a_shorter_history(tourism: SeriesModel) -> None:
    """A history that ends earlier is forecast from its own end; its length need not fit the
    training's horizon rule (four horizons)."""
    source = table(TOURISM)
    stamps = pd.to_datetime(source["timestamp"])
    recent = source[(stamps >= "2010-01-01") & (stamps < "2014-01-01")]  # 16 quarters
    frame = tourism.forecast(recent)
    check_forecast(frame, ["item_id"], "timestamp", 8)
    assert frame["timestamp"].min() == pd.Timestamp("2014-01-01")
    assert frame["timestamp"].max() == pd.Timestamp("2015-10-01")


def test_m4_hourly_steps_continue_each_series(m4: SeriesModel) -> None:
    source = table(M4_HOURLY)
    frame = m4.forecast(source)
    check_forecast(frame, ["item_id"], "timestamp", 48)
    last = pd.to_datetime(source["timestamp"]).groupby(source["item_id"]).max()
    assert frame["item_id"].unique().tolist() == ["H1", "H170", "H171", "H2"]
    for item, rows in frame.groupby("item_id"):
        expected = pd.date_range(last[item] + pd.Timedelta("1h"), periods=48, freq="h")
        assert rows["timestamp"].tolist() == list(expected)
    pd.testing.assert_frame_equal(m4.forecast(), frame)
    # The global model learnt the daily cycle: forecasts follow the last day's shape.
    h1 = frame.loc[frame["item_id"] == "H1", "mean"].to_numpy()
    day = source.loc[source["item_id"] == "H1", "target"].astype(float).to_numpy()[-24:]
    assert np.corrcoef(h1[:24], day)[0, 1] > 0.8


def test_new_items_are_forecast(tourism: SeriesModel) -> None:
    source = table(TOURISM)
    one = source[source["item_id"] == source["item_id"].iloc[0]].copy()
    one["item_id"] = "Somewhere new"
    frame = tourism.forecast(one)
    check_forecast(frame, ["item_id"], "timestamp", 8)
    assert frame["item_id"].unique().tolist() == ["Somewhere new"]
    known = tourism.forecast(source[source["item_id"] == source["item_id"].iloc[0]])
    assert np.allclose(frame["mean"], known["mean"])
    # A request of zeros only is forecast (the job's rule against it is a training rule).
    zeros = tourism.forecast(one.assign(Trips="0"))
    assert (zeros[["mean", *QUANTILES]] == 0).all().all()


def test_too_short_items_are_named(tourism: SeriesModel) -> None:
    source = table(TOURISM)
    first, second = sorted(source["item_id"].unique())[:2]
    rows = source[source["item_id"] == first]
    short = pd.concat([source[source["item_id"] == second], rows.tail(MIN_HISTORY - 1)])
    with pytest.raises(
        PredictionInputError, match=rf"Too little history to forecast item_id='{first}': 3 target"
    ):
        tourism.forecast(short)
    # Four values are enough, missing ones (filled) do not count.
    assert len(tourism.forecast(rows.tail(MIN_HISTORY))) == 8
    gap = rows.tail(MIN_HISTORY).copy()
    gap.iloc[1, gap.columns.get_loc("Trips")] = ""
    with pytest.raises(PredictionInputError, match="3 target value"):
        tourism.forecast(gap)
    # An item with future-dated rows only has nothing to forecast from.
    future = rows.tail(2).assign(item_id="only future", Trips="")
    with pytest.raises(PredictionInputError, match="item_id='only future' has no target values"):
        tourism.forecast(pd.concat([rows, future]))


def test_future_covariate_rows_are_accepted(tmp_path: Path) -> None:
    """A known covariate in the history and in future-dated rows with an empty target: the
    forecast starts after the last target value, not after the future rows."""
    history = table(AIR_PASSENGERS)
    history.insert(0, "route", "passengers")
    history["fare"] = [str(100 + i % 12) for i in range(len(history))]
    future = pd.DataFrame(
        {
            "route": "passengers",
            "Month": pd.date_range("1961-01-01", periods=12, freq="MS").strftime("%Y-%m"),
            "Passengers": "",
            "fare": [str(100 + i) for i in range(12)],
        }
    )
    settings = {"target": "Passengers", "timestamp": "Month", "item_id": "route", "horizon": 12}
    predictor = fit_predictor(history, {"ets": 1.0}, frequency="M", **settings)
    package = mlpilot.load_model(save_package(predictor, tmp_path / "air"))
    assert package.info["frequency"] == "MS"  # Autopilot's M, anchored as the data are
    with_future = package.forecast(pd.concat([history, future], ignore_index=True))
    check_forecast(with_future, ["route"], "Month", 12)
    assert with_future["Month"].tolist() == list(pd.date_range("1961-01-01", periods=12, freq="MS"))
    pd.testing.assert_frame_equal(with_future, package.forecast())
    # The seasonal peak of the summer months comes back in the forecast.
    by_month = with_future.set_index("Month")["mean"]
    assert by_month["1961-07-01"] > by_month["1961-11-01"] * 1.2


def test_grouping_columns_name_the_series(tmp_path: Path) -> None:
    frame = table(TOURISM).drop(columns=["item_id"])
    settings = {**TOURISM_SETTINGS, "item_id": "Region", "grouping": ("Purpose",)}
    predictor = fit_predictor(frame, {"seasonal-naive": 1.0}, **settings)
    model = mlpilot.load_model(save_package(predictor, tmp_path / "grouped"))
    assert model.info["key_columns"] == ["Region", "Purpose"]
    forecast = model.forecast()
    check_forecast(forecast, ["Region", "Purpose"], "timestamp", 8)
    assert forecast[["Region", "Purpose"]].drop_duplicates().shape[0] == 9
    assert forecast.iloc[0][["Region", "Purpose"]].tolist() == ["Adelaide", "Business"]
    # Seasonal naive repeats the last year: its mean is the history of four quarters before.
    adelaide = frame[(frame["Region"] == "Adelaide") & (frame["Purpose"] == "Business")]
    last_year = adelaide["Trips"].astype(float).to_numpy()[-4:]
    assert np.allclose(forecast["mean"].to_numpy()[:8], np.tile(last_year, 2))


def test_time_zones_come_back_as_given(tmp_path: Path) -> None:
    hours = pd.date_range("2024-03-01", periods=24 * 14, freq="h", tz="UTC")
    level = (10 + 5 * np.sin(2 * np.pi * np.arange(len(hours)) / 24)).round(3)
    frame = pd.DataFrame({"site": "a", "when": hours.strftime("%Y-%m-%dT%H:%M:%SZ"), "load": level})
    predictor = fit_predictor(
        frame,
        {"seasonal-naive": 1.0},
        target="load",
        timestamp="when",
        item_id="site",
        frequency="h",
        horizon=24,
    )
    model = mlpilot.load_model(save_package(predictor, tmp_path / "tz"))
    forecast = model.forecast(frame)
    stamps = pd.DatetimeIndex(forecast["when"])
    assert str(stamps.tz) == "UTC"
    assert stamps[0] == pd.Timestamp("2024-03-15 00:00", tz="UTC")
    assert np.allclose(forecast["mean"], level[-24:])


def test_bad_input_is_a_prediction_input_error(tourism: SeriesModel) -> None:
    source = table(TOURISM)
    with pytest.raises(PredictionInputError, match="must be a pandas DataFrame"):
        tourism.forecast(source.to_dict("list"))  # type: ignore[arg-type]
    with pytest.raises(PredictionInputError, match="No rows"):
        tourism.forecast(source.head(0))
    with pytest.raises(PredictionInputError, match="no column 'Trips'"):
        tourism.forecast(source.drop(columns=["Trips"]))
    with pytest.raises(PredictionInputError, match="Duplicate"):
        tourism.forecast(pd.concat([source, source.tail(1)]))
    with pytest.raises(PredictionInputError, match="off its QS-JAN grid"):
        tourism.forecast(
            source.assign(timestamp=source["timestamp"].str.replace("-01-01", "-02-01"))
        )


def test_predictor_checks_its_parts() -> None:
    frame = table(AIR_PASSENGERS).assign(item="x")
    settings = {"target": "Passengers", "timestamp": "Month", "item_id": "item", "horizon": 12}
    with pytest.raises(ConfigError, match="positive weight"):
        fit_predictor(frame, {"ets": 0.0}, frequency="MS", **settings)
    predictor = fit_predictor(frame, {"ets": 1.0}, frequency="MS", **settings)
    with pytest.raises(ConfigError, match="not given"):
        ForecastPredictor(predictor.settings, predictor.models, {"theta": 1.0}, _series(frame))
    renamed = frame.rename(columns={"item": "mean"})
    with pytest.raises(ConfigError, match="'mean' would name a key"):
        fit_predictor(renamed, {"ets": 1.0}, frequency="MS", **{**settings, "item_id": "mean"})


def _series(frame: pd.DataFrame) -> Any:
    from mlpilot.problems.forecasting import prepare_series

    return prepare_series(
        frame, target="Passengers", timestamp="Month", item_id="item", frequency="MS", horizon=12
    )
