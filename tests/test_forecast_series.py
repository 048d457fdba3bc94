"""Forecast frequencies and the preparation of series: parsing Autopilot's and pandas' frequency
strings, grids that land where pandas puts them, and a long table turned into regular series
(aggregation, filling, future rows, composite keys) or refused with a one-line error."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helpers_data import AIR_PASSENGERS, M4_HOURLY, TOURISM, VICTORIA
from mlpilot.config import parse_transformations
from mlpilot.data import Frequency, infer_frequency, parse_frequency, read_table
from mlpilot.errors import ConfigError, DataError
from mlpilot.metrics import season_length
from mlpilot.problems.forecasting import SERIES, SeriesSet, prepare_series

# -- frequencies ---------------------------------------------------------------------------------

#: ForecastFrequency's pattern in botocore's model.
AUTOPILOT_PATTERN = re.compile(
    r"1Y|Y|([1-9]|1[0-1])M|M|[1-4]W|W|[1-6]D|D|([1-9]|1[0-9]|2[0-3])H|H|([1-9]|[1-5][0-9])min"
)


@pytest.mark.parametrize(
    ("text", "alias", "autopilot", "season"),
    [
        # Autopilot's ForecastFrequency pattern, at the ends of each range.
        ("1Y", "YS-JAN", "Y", 1),
        ("Y", "YS-JAN", "Y", 1),
        ("11M", "11MS", "11M", 1),
        ("M", "MS", "M", 12),
        ("3M", "3MS", "3M", 4),
        ("4W", "4W-SUN", "4W", 13),
        ("W", "W-SUN", "W", 52),
        ("6D", "6D", "6D", 1),
        ("D", "D", "D", 7),
        ("23H", "23h", "23H", 1),
        ("2H", "2h", "2H", 12),
        ("H", "h", "H", 24),
        ("59min", "59min", "59min", 1),
        ("30min", "30min", "30min", 48),
        ("1min", "min", "1min", 1440),
        # pandas aliases, anchored ones included.
        ("MS", "MS", "M", 12),
        ("ME", "ME", "M", 12),
        ("2MS", "2MS", "2M", 6),
        ("QS-JAN", "QS-JAN", "3M", 4),
        ("QS", "QS-JAN", "3M", 4),
        ("QS-APR", "QS-JAN", "3M", 4),  # the same grid as QS-JAN
        ("QS-FEB", "QS-FEB", "3M", 4),
        ("Q-DEC", "QE-DEC", "3M", 4),
        ("QE", "QE-DEC", "3M", 4),
        ("2QS-JAN", "2QS-JAN", "6M", 2),
        ("W-FRI", "W-FRI", "W", 52),
        ("2W-FRI", "2W-FRI", "2W", 26),
        ("h", "h", "H", 24),
        ("T", "min", "1min", 1440),
        ("15T", "15min", "15min", 96),
        ("YS", "YS-JAN", "Y", 1),
        ("AS", "YS-JAN", "Y", 1),
        ("A-JUN", "YE-JUN", "Y", 1),
        ("YE-DEC", "YE-DEC", "Y", 1),
    ],
)
def test_frequency_strings(text: str, alias: str, autopilot: str, season: int) -> None:
    freq = parse_frequency(text)
    assert (freq.alias, freq.autopilot, season_length(freq.alias)) == (alias, autopilot, season)
    assert freq.offset == pd.tseries.frequencies.to_offset(alias)
    assert parse_frequency(freq) is freq
    assert AUTOPILOT_PATTERN.fullmatch(freq.autopilot)
    again = parse_frequency(freq.autopilot)
    assert again.shortest_period == freq.shortest_period or freq.unit == "Q"


def test_every_autopilot_frequency_and_no_neighbour() -> None:
    ranges = {"M": 11, "W": 4, "D": 6, "H": 23, "min": 59}
    allowed = ["Y", "1Y", "M", "W", "D", "H"]
    allowed += [f"{n}{unit}" for unit, most in ranges.items() for n in range(1, most + 1)]
    for text in allowed:
        assert AUTOPILOT_PATTERN.fullmatch(text)
        canonical = (
            text[1:] if text[0] == "1" and text[1:] in ("Y", "M", "W", "D", "H") else text
        )  # 1D is D
        assert parse_frequency(text).autopilot == canonical
    for unit, most in [*ranges.items(), ("Y", 1)]:
        assert not AUTOPILOT_PATTERN.fullmatch(f"{most + 1}{unit}")
        with pytest.raises(ConfigError, match="overlaps the next larger unit"):
            parse_frequency(f"{most + 1}{unit}")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("60min", "use 1H"),
        ("7D", "use 1W"),
        ("12M", "use 1Y"),
        ("24H", "use 1D"),
        ("13M", "months take a multiple from 1 to 11"),
        ("5W", "weeks take a multiple from 1 to 4"),
        ("2Y", "years take a multiple of 1 only"),
        ("4QS", "use 1Y"),
        ("0D", "without leading zeros"),
        ("01M", "without leading zeros"),
        ("ms", "is not a frequency"),
        ("S", "is not a frequency"),
        ("B", "is not a frequency"),
        ("BMS", "is not a frequency"),
        ("1.5H", "is not a frequency"),
        ("", "is not a frequency"),
        ("W-XYZ", "XYZ is not a weekday"),
        ("QS-FOO", "FOO is not a month"),
        ("MS-JAN", "MS takes no anchor"),
    ],
)
def test_frequency_rejected(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_frequency(text)
    message = str(err.value)
    assert says in message and repr(text) in message and "\n" not in message


def test_frequency_fields_checked() -> None:
    with pytest.raises(ConfigError, match="from 1 to 23"):
        Frequency("h", 24)
    with pytest.raises(ConfigError, match="no side"):
        Frequency("D", side="start")
    with pytest.raises(ConfigError, match="no anchor"):
        Frequency("W", anchor="JAN")


@pytest.mark.parametrize(
    ("alias", "start"),
    [
        ("QS-JAN", "1998-01-01"),
        ("QS-FEB", "1998-02-01"),
        ("QE-DEC", "1998-03-31"),
        ("W-FRI", "2020-01-03"),
        ("2W-FRI", "2020-01-03"),
        ("MS", "1949-01-01"),
        ("ME", "2000-01-31"),
        ("2MS", "2000-03-01"),
        ("YS-JUL", "2000-07-01"),
        ("30min", "2011-12-31 13:00"),
        ("h", "2000-01-01 00:30"),
        ("D", "2020-02-27 06:00"),
    ],
)
def test_grid_lands_where_pandas_puts_it(alias: str, start: str) -> None:
    freq = parse_frequency(alias)
    expected = pd.date_range(start, periods=60, freq=alias)
    assert freq.range(start, 60).equals(expected)
    origins = np.repeat(expected[:1].to_numpy(), 60)
    positions, on = freq.positions(expected.to_numpy(), origins)
    assert on.all() and (positions == np.arange(60)).all()


def test_grid_positions_off_the_grid() -> None:
    origin = np.datetime64("2020-01-03", "ns")  # a Friday
    stamps = pd.to_datetime(["2020-01-10 00:00", "2020-01-13 00:00", "2020-01-17 06:00"]).to_numpy()
    _, on = parse_frequency("W-FRI").positions(stamps, np.repeat(origin, 3))
    assert on.tolist() == [True, False, False]
    stamps = pd.to_datetime(["1998-04-01", "1998-05-01", "1998-04-15"]).to_numpy()
    _, on = parse_frequency("QS-JAN").positions(stamps, np.repeat(np.datetime64("1998-01-01"), 3))
    assert on.tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("text", "data", "resolved"),
    [
        ("W", pd.date_range("2020-01-06", periods=9, freq="W-MON"), "W-MON"),
        ("2W", pd.date_range("2020-01-01", periods=9, freq="2W-WED"), "2W-WED"),
        ("M", pd.date_range("2000-01-31", periods=9, freq="ME"), "ME"),
        ("M", pd.date_range("2000-01-01", periods=9, freq="MS"), "MS"),
        ("Q", pd.date_range("2000-02-01", periods=9, freq="QS-FEB"), "QS-FEB"),
        ("Q", pd.date_range("2000-01-31", periods=9, freq="QE-JAN"), "QE-OCT"),  # one grid
        ("QS", pd.date_range("2000-03-01", periods=9, freq="QS-MAR"), "QS-MAR"),
        ("Y", pd.date_range("2000-07-01", periods=9, freq="YS-JUL"), "YS-JUL"),
        ("Y", pd.date_range("2000-06-30", periods=9, freq="YE-JUN"), "YE-JUN"),
        # Finer data show no anchor: the defaults.
        ("W", pd.date_range("2020-01-01", periods=40, freq="D"), "W-SUN"),
        ("M", pd.date_range("2020-01-01", periods=40, freq="D"), "MS"),
        ("Y", pd.date_range("2020-01-01", periods=40, freq="D"), "YS-JAN"),
        ("W-FRI", pd.date_range("2020-01-06", periods=9, freq="W-MON"), "W-FRI"),
    ],
)
def test_anchors_read_from_the_data(text: str, data: pd.DatetimeIndex, resolved: str) -> None:
    assert parse_frequency(text).resolve(data).alias == resolved


@pytest.mark.parametrize(
    ("data", "inferred"),
    [
        (pd.date_range("2000-01-01", periods=12, freq="MS"), "MS"),
        (pd.date_range("2000-01-31", periods=12, freq="ME"), "ME"),
        (pd.date_range("2000-02-01", periods=12, freq="QS-FEB"), "QS-FEB"),
        (pd.date_range("2000-01-01", periods=12, freq="YS"), "YS-JAN"),
        (pd.date_range("2020-01-03", periods=12, freq="W-FRI"), "W-FRI"),
        (pd.date_range("2020-01-03", periods=12, freq="2D"), "2D"),
        (pd.date_range("2020-01-03", periods=12, freq="30min"), "30min"),
        (pd.date_range("2020-01-03", periods=12, freq="3h"), "3h"),
        (
            pd.date_range("2020-01-03", periods=3, freq="2W-FRI").append(
                pd.DatetimeIndex(["2020-03-06"])
            ),
            "2W-FRI",
        ),
    ],
)
def test_infer_frequency(data: pd.DatetimeIndex, inferred: str) -> None:
    found = infer_frequency(data)
    assert found is not None and found.alias == inferred


def test_infer_frequency_per_series_and_unknown() -> None:
    a = pd.date_range("2020-01-01", periods=5, freq="D")
    b = pd.date_range("2021-06-01 12:00", periods=5, freq="D")
    stamps = np.concatenate([a.to_numpy(), b.to_numpy()])
    found = infer_frequency(stamps, np.repeat([0, 1], 5))
    assert found is not None and found.alias == "D"
    assert infer_frequency(pd.DatetimeIndex(["2020-01-01"])) is None
    assert infer_frequency(pd.date_range("2020-01-01", periods=5, freq="7s")) is None
    assert infer_frequency(pd.date_range("2020-01-01", periods=5, freq="35D")) is None


@pytest.mark.parametrize(
    "alias", ["h", "D", "W-FRI", "W-SUN", "MS", "ME", "QS-JAN", "QE-DEC", "YS"]
)
def test_period_labels_match_pandas_resample(alias: str) -> None:
    stamps = pd.date_range("2019-11-03 05:30", "2021-02-11", freq="7h")
    values = pd.Series(np.arange(len(stamps), dtype=float), index=stamps)
    expected = values.resample(alias).sum()
    labels = parse_frequency(alias).labels(stamps.to_numpy())
    mine = values.groupby(labels).sum()
    expected = expected[expected.index.isin(mine.index)]
    pd.testing.assert_series_equal(mine, expected, check_names=False, check_freq=False)


# -- test data -----------------------------------------------------------------------------------


@cache
def _table(path: str) -> pd.DataFrame:
    return read_table(path)


def table(path: Any) -> pd.DataFrame:
    """A test data set as the job reads it (raw strings), a fresh copy each time."""
    return _table(str(path)).copy()


def air() -> pd.DataFrame:
    frame = table(AIR_PASSENGERS)
    frame.insert(0, "item", "passengers")
    return frame


def tourism(**kwargs: Any) -> SeriesSet:
    options: dict[str, Any] = {
        "target": "Trips",
        "timestamp": "timestamp",
        "item_id": "item_id",
        "frequency": "QS-JAN",
        "horizon": 8,
    }
    return prepare_series(table(TOURISM), **(options | kwargs))


def m4(frame: pd.DataFrame | None = None, **kwargs: Any) -> SeriesSet:
    options: dict[str, Any] = {
        "target": "target",
        "timestamp": "timestamp",
        "item_id": "item_id",
        "frequency": "h",
        "horizon": 48,
    }
    return prepare_series(table(M4_HOURLY) if frame is None else frame, **(options | kwargs))


def victoria(**kwargs: Any) -> SeriesSet:
    frame = table(VICTORIA)
    frame["site"] = "vic"
    options: dict[str, Any] = {
        "target": "Demand",
        "timestamp": "Time",
        "item_id": "site",
        "frequency": "30min",
        "horizon": 96,
    }
    return prepare_series(frame, **(options | kwargs))


def long(rows: list[tuple[Any, ...]], columns: str = "item,ts,y", **kwargs: Any) -> SeriesSet:
    """A small table from rows (strings, as a CSV reads them) through prepare_series."""
    frame = pd.DataFrame(rows, columns=columns.split(","), dtype=object)
    options: dict[str, Any] = {
        "target": "y",
        "timestamp": "ts",
        "item_id": "item",
        "frequency": "D",
        "horizon": 1,
    }
    return prepare_series(frame, **(options | kwargs))


def days(item: str, start: str, values: list[Any], **extra: list[Any]) -> list[tuple[Any, ...]]:
    stamps = pd.date_range(start, periods=len(values), freq="D").strftime("%Y-%m-%d")
    columns = [values, *extra.values()]
    return [(item, t, *row) for t, *row in zip(stamps, *columns, strict=True)]


def series_of(result: SeriesSet, column: str, series: int = 0) -> list[Any]:
    frame = result.history
    return frame.loc[frame[SERIES] == series, column].tolist()


# -- the real series -----------------------------------------------------------------------------


def test_air_passengers_monthly() -> None:
    frame = air()
    result = prepare_series(
        frame, target="Passengers", timestamp="Month", item_id="item", frequency="MS", horizon=12
    )
    assert result.n_series == 1 and result.lengths.tolist() == [144]
    assert result.notes == () and not result.target_filled.any()
    assert result.history["Month"].equals(
        pd.Series(pd.date_range("1949-01-01", periods=144, freq="MS"), name="Month")
    )
    assert result.values(0).tolist() == frame["Passengers"].astype(float).tolist()
    assert result.future["Month"].tolist() == list(
        pd.date_range("1961-01-01", periods=12, freq="MS")
    )
    assert result.keys.to_dict("list") == {"item": ["passengers"]}
    # Autopilot's "M" reads the month start from the data; "ME" does not fit it.
    assert (
        prepare_series(
            frame, target="Passengers", timestamp="Month", item_id="item", frequency="M", horizon=12
        ).frequency.alias
        == "MS"
    )
    with pytest.raises(DataError, match=r"off its ME grid .*look like MS"):
        prepare_series(
            frame,
            target="Passengers",
            timestamp="Month",
            item_id="item",
            frequency="ME",
            horizon=12,
        )


def test_tourism_quarters_and_static_attributes() -> None:
    source = table(TOURISM)
    result = tourism()
    assert result.n_series == 9 and set(result.lengths) == {80}
    assert result.frequency.alias == "QS-JAN" and season_length(result.frequency.alias) == 4
    assert result.static_columns == dict.fromkeys(("Region", "State", "Purpose"), "categorical")
    assert result.covariates == {}
    assert result.keys["item_id"].tolist() == sorted(source["item_id"].unique())
    assert result.static.loc[8, "Region"] == "Kangaroo Island"
    future = result.future[result.future[SERIES] == 0]["timestamp"]
    assert future.tolist() == list(pd.date_range("2018-01-01", periods=8, freq="QS-JAN"))
    # Each series' values as the source has them, zeros and all.
    for i in range(result.n_series):
        rows = source[source["item_id"] == result.keys.loc[i, "item_id"]]
        assert result.values(i).tolist() == rows["Trips"].astype(float).tolist()
    summary = result.summary()
    assert summary["Series"] == 9 and summary["ForecastFrequency"] == "3M"


def test_intermittent_series_kept_as_is() -> None:
    result = tourism()
    i = result.keys.index[result.keys["item_id"].str.startswith("Kangaroo")][0]
    values = result.values(i)
    assert (values == 0).mean() == pytest.approx(0.8) and len(values) == 80
    assert not result.target_filled.any()
    assert not any("zeros only" in note for note in result.notes)


def test_grouping_columns_make_a_composite_key() -> None:
    result = tourism(item_id="Region", grouping=["Purpose"])
    assert result.key_columns == ("Region", "Purpose")
    assert result.keys.columns.tolist() == ["Region", "Purpose"]
    assert result.n_series == 9 and set(result.lengths) == {80}
    assert result.keys.iloc[0].tolist() == ["Adelaide", "Business"]
    assert result.key_text(8) == "Region='Kangaroo Island', Purpose='Other'"
    assert "State" in result.static_columns and "item_id" in result.static_columns
    forecast = result.with_keys(result.future)
    assert forecast.columns[:3].tolist() == ["Region", "Purpose", "timestamp"]
    assert len(forecast) == 9 * 8
    with pytest.raises(
        DataError,
        match=r"Duplicate \(item, timestamp\) rows: 480, e\.g\. Region='Adelaide' at 1998",
    ):
        tourism(item_id="Region")


def test_m4_series_of_different_lengths() -> None:
    result = m4()
    assert result.keys["item_id"].tolist() == ["H1", "H170", "H171", "H2"]
    assert result.lengths.tolist() == [748, 1008, 1008, 748]
    assert season_length(result.frequency.alias) == 24
    ends = result.history.groupby(SERIES)["timestamp"].max()
    starts = result.future.groupby(SERIES)["timestamp"].min()
    assert ((starts - ends) == pd.Timedelta("1h")).all()
    assert (result.future.groupby(SERIES).size() == 48).all()
    assert result.offsets.tolist() == [0, 748, 1756, 2764, 3512]


def test_different_start_dates() -> None:
    frame = table(M4_HOURLY)
    late = frame.index[frame["item_id"] == "H170"][:100]
    frame = frame.drop(late)
    result = m4(frame)
    starts = result.history.groupby(SERIES)["timestamp"].min()
    assert starts[1] == pd.Timestamp("2000-01-05 04:00") and starts[0] == pd.Timestamp("2000-01-01")
    assert result.lengths.tolist() == [748, 908, 1008, 748]
    assert not result.target_filled.any()


def test_horizon_rule_uses_the_longest_series() -> None:
    assert m4(horizon=252).horizon == 252  # 1,008 / 4
    with pytest.raises(DataError, match=r"longest series \(1008 time steps at h\), so at most 252"):
        m4(horizon=253)
    with pytest.raises(ConfigError, match="ForecastHorizon 501 is out of range: 1 to 500"):
        m4(horizon=501)
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="ForecastHorizon"):
            m4(horizon=bad)


def test_rows_in_any_order_give_the_same_series() -> None:
    shuffled = table(M4_HOURLY).sample(frac=1.0, random_state=3).reset_index(drop=True)
    a, b = m4(), m4(shuffled)
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.future, b.future)
    pd.testing.assert_frame_equal(a.keys, b.keys)


def test_typed_columns_as_parquet_gives_them() -> None:
    stamps = pd.date_range("2020-01-01", periods=8, freq="D", tz="Europe/Paris")
    frame = pd.DataFrame(
        {
            "store": np.repeat([7, 3], 8),
            "day": np.tile(stamps, 2),
            "sales": np.arange(16, dtype=float),
            "opened": np.repeat(pd.to_datetime(["2019-05-01", "2018-02-01"]), 8),
            "promo": np.tile([True, False], 8),
        }
    )
    result = prepare_series(
        frame, target="sales", timestamp="day", item_id="store", frequency="D", horizon=2
    )
    assert result.keys["store"].tolist() == [3, 7]
    assert result.timezone == "Europe/Paris"
    assert result.history["day"].iloc[0] == pd.Timestamp("2019-12-31 23:00")
    assert result.values(0).tolist() == list(np.arange(8.0, 16.0))
    assert result.static_columns == {"opened": "categorical"}
    assert result.static["opened"].tolist() == ["2018-02-01", "2019-05-01"]
    assert result.covariates == {"promo": "numeric"}


def test_reserved_and_empty_columns() -> None:
    rows = days("a", "2020-01-01", ["1", "2", "3", "4"], p=["", "", "", ""])
    result = long(rows, columns="item,ts,y,p")
    assert result.covariates == {} and result.static_columns == {}
    assert "Column 'p' has no values: left out" in result.notes
    with pytest.raises(DataError, match="Column name '_series' is reserved"):
        long(rows, columns="item,ts,y,_series")


def test_victoria_time_zone_and_covariates() -> None:
    result = victoria()
    assert result.timezone == "UTC"
    assert any("kept as UTC" in note for note in result.notes)
    assert result.history["Time"].iloc[0] == pd.Timestamp("2011-12-31 13:00")
    assert result.covariates == {
        "Temperature": "numeric",
        "Date": "categorical",
        "Holiday": "categorical",
    }
    assert result.history["Holiday"].iloc[0] == "TRUE"
    # No future rows: Temperature's horizon is its median, the categories stay missing.
    median = float(np.median(result.history["Temperature"]))
    assert (result.future["Temperature"] == median).all()
    assert result.future["Holiday"].isna().all()
    assert result.future_given == {"Temperature": 0.0, "Date": 0.0, "Holiday": 0.0}


@pytest.mark.parametrize(
    ("frequency", "method", "pandas_method"),
    [("h", None, "sum"), ("h", "avg", "mean"), ("D", "max", "max"), ("D", "first", "first")],
)
def test_aggregation_of_finer_timestamps(
    frequency: str, method: str | None, pandas_method: str
) -> None:
    aggregation = None if method is None else {"Demand": method}
    result = victoria(frequency=frequency, horizon=2, aggregation=aggregation)
    raw = table(VICTORIA)
    stamps = pd.to_datetime(raw["Time"]).dt.tz_localize(None)
    demand = raw["Demand"].astype(float).groupby(stamps.dt.floor(frequency))
    expected = getattr(demand, pandas_method)()
    assert result.history["Time"].tolist() == expected.index.tolist()
    np.testing.assert_allclose(result.values(0), expected.to_numpy())
    temperature = raw["Temperature"].astype(float).groupby(stamps.dt.floor(frequency)).mean()
    np.testing.assert_allclose(result.history["Temperature"], temperature.to_numpy())
    holiday = raw["Holiday"].groupby(stamps.dt.floor(frequency)).first()
    assert result.history["Holiday"].astype(str).tolist() == holiday.tolist()
    assert any("aggregated" in note for note in result.notes)


@pytest.mark.parametrize("alias", ["W-FRI", "MS", "QS-JAN"])
def test_daily_data_aggregated_onto_anchored_grids(alias: str) -> None:
    stamps = pd.date_range("2019-01-01", "2021-12-31", freq="D")
    values = np.arange(len(stamps), dtype=float) % 17
    rows = list(
        zip(["a"] * len(stamps), stamps.strftime("%Y-%m-%d"), values.astype(str), strict=True)
    )
    result = long(rows, frequency=alias)
    expected = pd.Series(values, index=stamps).resample(alias).sum()
    assert result.history["ts"].tolist() == expected.index.tolist()
    np.testing.assert_allclose(result.values(0), expected.to_numpy())
    assert result.future["ts"].iloc[0] == expected.index[-1] + parse_frequency(alias).offset


def test_weekly_fridays_on_the_grid() -> None:
    stamps = pd.date_range("2020-01-03", periods=20, freq="W-FRI").strftime("%Y-%m-%d")
    rows = [("a", t, str(i + 1)) for i, t in enumerate(stamps) if i != 7]
    for frequency in ("W-FRI", "W"):
        result = long(rows, frequency=frequency)
        assert result.frequency.alias == "W-FRI"
        assert result.history["ts"].tolist() == list(
            pd.date_range("2020-01-03", periods=20, freq="W-FRI")
        )
        assert result.target_filled.tolist() == [i == 7 for i in range(20)]
    with pytest.raises(DataError, match=r"off its W-SUN grid .*look like W-FRI"):
        long(rows, frequency="W-SUN")


def test_aggregation_setting_without_finer_data_is_noted() -> None:
    rows = days("a", "2020-01-01", ["1", "2", "3", "4"])
    result = long(rows, aggregation={"y": "avg"})
    assert any("Aggregation avg not applied" in note for note in result.notes)


# -- bad input -----------------------------------------------------------------------------------


def one_line(err: pytest.ExceptionInfo[Exception]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_item_id() -> None:
    rows = [*days("a", "2020-01-01", ["1", "2", "3", "4"]), (" ", "2020-01-05", "5")]
    with pytest.raises(DataError) as err:
        long(rows)
    assert one_line(err) == "Item identifier 'item' is missing in 1 of 5 rows, e.g. data row 5"
    rows = [("a", "x", "2020-01-01", "1"), ("a", None, "2020-01-02", "2")]
    with pytest.raises(
        DataError, match=r"Grouping column 'g' is missing in 1 of 2 rows, e\.g\. data row 2"
    ):
        long(rows, columns="item,g,ts,y", grouping=["g"])


def test_unparseable_and_empty_timestamps() -> None:
    rows = [*days("a", "2020-01-01", ["1", "2", "3", "4"]), ("a", "2020-13-45", "5")]
    with pytest.raises(DataError) as err:
        long(rows)
    assert one_line(err) == (
        "Timestamp 'ts' has values that are not dates, e.g. '2020-13-45' (data row 5)"
    )
    rows[4] = ("a", "", "5")
    with pytest.raises(
        DataError, match=r"Timestamp 'ts' is empty in 1 of 5 rows, e\.g\. data row 5"
    ):
        long(rows)
    counters = [("a", str(i), "1") for i in range(1, 9)]
    with pytest.raises(DataError, match=r"not dates, e\.g\. '1'"):
        long(counters)


def test_mixed_date_formats_and_offsets() -> None:
    rows = [("a", "2020-01-01", "1"), ("a", "01/02/2020", "2"), ("a", "2020-01-03T00:00:00", "3")]
    rows += days("a", "2020-01-04", ["4", "5", "6"])
    assert long(rows).lengths.tolist() == [6]  # 01/02/2020 is read month first
    rows = [("a", "2020-01-01T01:00:00+01:00", "1"), ("a", "2020-01-02T00:00:00Z", "2")]
    rows += [("a", "2020-01-03T00:00:00Z", "3"), ("a", "2020-01-04T02:00:00+02:00", "4")]
    result = long(rows)
    assert result.history["ts"].tolist() == list(pd.date_range("2020-01-01", periods=4))
    assert result.timezone == "UTC"


def test_duplicate_rows() -> None:
    rows = [*days("a", "2020-01-01", ["1", "2", "3"]), *days("b", "2020-01-01", ["1", "2"])]
    rows.append(("b", "2020-01-02", "7"))
    with pytest.raises(DataError) as err:
        long(rows)
    assert one_line(err) == (
        "Duplicate (item, timestamp) rows: 1, e.g. item='b' at 2020-01-02 00:00:00: give one row "
        "per item and timestamp"
    )


HOURS = [f"2020-01-01 {h:02d}:00" for h in range(12)]


@pytest.mark.parametrize(
    ("stamps", "frequency", "says"),
    [
        (
            [*HOURS[:5], "2020-01-01 05:30", *HOURS[6:]],
            "h",
            "2020-01-01 05:30:00, off its h grid (1 of 12 rows off the grid)",
        ),
        (
            ["2020-01-15", "2020-02-15", "2020-03-15", "2020-04-15"],
            "MS",
            "2020-01-15 00:00:00, off its MS grid (4 of 4 rows off the grid)",
        ),
        (
            ["2020-02-01", "2020-05-01", "2020-08-01", "2020-11-01"],
            "QS-JAN",
            "2020-02-01 00:00:00, off its QS-JAN grid (4 of 4 rows off the grid; the data look "
            "like QS-FEB)",
        ),
        (
            ["2020-01-06", "2020-01-13", "2020-01-20", "2020-01-27"],
            "W-FRI",
            "2020-01-06 00:00:00, off its W-FRI grid (4 of 4 rows off the grid; the data look "
            "like W-MON)",
        ),
        (
            ["2020-01-01", "2020-01-08", "2020-01-15", "2020-02-01", "2020-02-05"],
            "W",  # most dates are Wednesdays: the Saturday is the odd one out
            "2020-02-01 00:00:00, off its W-WED grid (1 of 5 rows off the grid)",
        ),
    ],
)
def test_irregular_timestamps(stamps: list[str], frequency: str, says: str) -> None:
    rows = [("a", t, str(i + 1)) for i, t in enumerate(stamps)]
    with pytest.raises(DataError) as err:
        long(rows, frequency=frequency)
    assert one_line(err) == f"Irregular timestamps: item='a' has {says}"


def test_monthly_data_with_a_quarterly_frequency_is_aggregated() -> None:
    stamps = pd.date_range("2020-01-01", periods=24, freq="MS").strftime("%Y-%m-%d")
    result = long([("a", t, "1") for t in stamps], frequency="QS-JAN")
    assert result.values(0).tolist() == [3.0] * 8


def test_non_numeric_target() -> None:
    rows = [*days("a", "2020-01-01", ["1", "2", "NA", "4"]), ("a", "2020-01-05", "lots")]
    with pytest.raises(DataError) as err:
        long(rows)
    assert one_line(err) == "Target 'y' is not numeric: 'lots' in data row 5"
    rows[4] = ("a", "2020-01-05", "5")
    result = long(rows)  # "NA" is a missing value: filled
    assert series_of(result, "y") == [1.0, 2.0, 0.0, 4.0, 5.0]


def test_zero_series() -> None:
    zeros = days("a", "2020-01-01", ["0", "0", "0", "0"])
    with pytest.raises(DataError) as err:
        long([*zeros, *days("b", "2020-01-01", ["0", "0", "", "0"])])
    assert one_line(err) == (
        "Target 'y' is zero in every row of every series: there is nothing to forecast"
    )
    result = long([*zeros, *days("b", "2020-01-01", ["0", "3", "0", "0"])])
    assert result.n_series == 2 and series_of(result, "y", 0) == [0.0] * 4
    assert "Series with a target of zeros only (kept): 1, e.g. item='a'" in result.notes


def test_target_without_values() -> None:
    rows = days("a", "2020-01-01", ["", "NA", ""])
    with pytest.raises(DataError, match="Target 'y' has no values"):
        long(rows)
    result = long([*rows, *days("b", "2020-01-01", ["1", "2", "3", "4"])])
    assert result.keys["item"].tolist() == ["b"]
    assert "Series without any target value left out: 1, e.g. item='a'" in result.notes


def test_missing_columns_and_rows() -> None:
    rows = days("a", "2020-01-01", ["1", "2", "3", "4"])
    with pytest.raises(DataError, match="The data have no column 'when'"):
        long(rows, timestamp="when")
    with pytest.raises(DataError, match="The data have no rows"):
        long([])
    with pytest.raises(ConfigError, match="names a column twice"):
        long(rows, item_id="y")


# -- filling -------------------------------------------------------------------------------------

#: A series with a missing row (day 3) and a missing value (day 5): 2, 4, _, 10, _, 6.
GAPPY = [
    ("a", "2020-01-01", "2"),
    ("a", "2020-01-02", "4"),
    ("a", "2020-01-04", "10"),
    ("a", "2020-01-05", ""),
    ("a", "2020-01-06", "6"),
]


@pytest.mark.parametrize(
    ("middlefill", "filled"),
    [
        (None, 0.0),
        ({"middlefill": "zero"}, 0.0),
        ({"middlefill": "value", "middlefill_value": "-1.5"}, -1.5),
        ({"middlefill": "median"}, 5.0),
        ({"middlefill": "mean"}, 5.5),
        ({"middlefill": "min"}, 2.0),
        ({"middlefill": "max"}, 10.0),
    ],
)
def test_target_middlefill(middlefill: dict[str, str] | None, filled: float) -> None:
    filling = None if middlefill is None else {"y": {"frontfill": "none", **middlefill}}
    result = long(GAPPY, filling=filling)
    assert series_of(result, "y") == [2.0, 4.0, filled, 10.0, filled, 6.0]
    assert result.target_filled.tolist() == [False, False, True, False, True, False]
    assert result.history["ts"].tolist() == list(pd.date_range("2020-01-01", periods=6))
    assert any("2 missing values in 1 series filled" in note for note in result.notes)


def test_target_backfill_extends_to_the_last_timestamp() -> None:
    rows = [*GAPPY, *days("b", "2020-01-03", ["1", "2", "3", "4", "5", "6", "7"])]
    result = long(rows)  # no backfill: each series ends at its last value
    assert result.lengths.tolist() == [6, 7]
    assert result.future["ts"].tolist() == [pd.Timestamp("2020-01-07"), pd.Timestamp("2020-01-10")]
    filling = {"y": {"backfill": "value", "backfill_value": "9"}}
    result = long(rows, filling=filling)
    assert result.lengths.tolist() == [9, 7]
    assert series_of(result, "y")[-4:] == [6.0, 9.0, 9.0, 9.0]
    assert result.future["ts"].tolist() == [pd.Timestamp("2020-01-10")] * 2
    result = long(rows, filling={"y": {"backfill": "max"}})
    assert series_of(result, "y")[-3:] == [10.0, 10.0, 10.0]


def test_rows_before_the_first_target_value_are_dropped() -> None:
    rows = [("a", "2019-12-30", ""), ("a", "2019-12-31", ""), *GAPPY]
    result = long(rows)
    assert result.history["ts"].iloc[0] == pd.Timestamp("2020-01-01")
    assert "2 rows before their series' first target value dropped (frontfill none)" in result.notes


def test_covariates_filling_and_future_rows() -> None:
    rows = [
        ("a", "2020-01-01", "1", "10", "x"),
        ("a", "2020-01-02", "2", "", "y"),
        ("a", "2020-01-03", "3", "30", ""),
        ("a", "2020-01-04", "4", "40", "x"),
        ("a", "2020-01-05", "", "50", "y"),  # the future, given
        ("a", "2020-01-07", "", "70", "x"),  # beyond a horizon of 2
        *days(
            "b",
            "2020-01-01",
            list("12345678"),
            p=["1", "3", "5", "7", "9", "11", "13", "15"],
            q=["x"] * 8,
        ),
    ]
    result = long(rows, columns="item,ts,y,price,promo", horizon=2)
    assert result.covariates == {"price": "numeric", "promo": "categorical"}
    assert series_of(result, "price") == [10.0, 35.0, 30.0, 40.0]  # median of a's 10, 30, 40, 50
    assert series_of(result, "promo") == ["x", "y", np.nan, "x"]
    future = result.with_keys(result.future)
    assert future["price"].tolist() == [50.0, 35.0, 8.0, 8.0]
    stamps = ["2020-01-05", "2020-01-06", "2020-01-09", "2020-01-10"]
    assert future["ts"].tolist() == list(pd.to_datetime(stamps))
    assert future["promo"].tolist() == ["y", np.nan, np.nan, np.nan]
    assert result.future_given == {"price": 0.25, "promo": 0.25}
    assert "1 future-dated rows beyond the horizon of 2 steps dropped" in result.notes
    filling = {
        "price": {"middlefill": "value", "middlefill_value": "0.5", "futurefill": "max"},
        "promo": {
            "middlefill": "value",
            "middlefill_value": "none",
            "futurefill": "value",
            "futurefill_value": "x",
        },
    }
    result = long(rows, columns="item,ts,y,price,promo", horizon=2, filling=filling)
    assert series_of(result, "price") == [10.0, 0.5, 30.0, 40.0]
    assert series_of(result, "promo") == ["x", "y", "none", "x"]
    assert result.future["price"].tolist() == [50.0, 50.0, 15.0, 15.0]
    assert result.future["promo"].tolist() == ["y", "x", "x", "x"]
    with pytest.raises(ConfigError, match="'promo': futurefill 'mean' needs a numeric column"):
        long(
            rows,
            columns="item,ts,y,price,promo",
            horizon=2,
            filling={"promo": {"futurefill": "mean"}},
        )


def test_statistic_falls_back_to_every_series() -> None:
    rows = [
        *days("a", "2020-01-01", ["1", "2", "3", "4"], p=["4", "8", "4", "8"]),
        *days("b", "2020-01-01", ["1", "2", "3", "4"], p=["", "", "", ""]),
    ]
    result = long(rows, columns="item,ts,y,p", filling={"p": {"middlefill": "mean"}})
    assert series_of(result, "p", 1) == [6.0] * 4
    assert any("1 series have no value of their own" in note for note in result.notes)


def test_feature_specification() -> None:
    rows = days(
        "a", "2020-01-01", ["1", "2", "3", "4"], p=["1", "2", "3", "4"], q=["5", "6", "7", "8"]
    )
    result = long(rows, columns="item,ts,y,p,q", features=["p"], feature_types={"p": "categorical"})
    assert result.covariates == {"p": "categorical"}
    with pytest.raises(ConfigError, match="names 'ts', a TimeSeriesConfig column"):
        long(rows, columns="item,ts,y,p,q", features=["ts"])
    with pytest.raises(DataError, match="names 'r'; the data have no such column"):
        long(rows, columns="item,ts,y,p,q", features=["r"])
    rows[1] = ("a", "2020-01-02", "2", "two", "6")
    with pytest.raises(DataError, match="Column 'p' is not numeric: 'two' in data row 2"):
        long(rows, columns="item,ts,y,p,q", feature_types={"p": "numeric"})
    assert long(rows, columns="item,ts,y,p,q").covariates == {"p": "categorical", "q": "numeric"}


@pytest.mark.parametrize(
    ("filling", "aggregation", "says"),
    [
        (
            {"p": {"frontfill": "none"}},
            None,
            "frontfill takes only 'none', for the target column only",
        ),
        ({"y": {"frontfill": "zero"}}, None, "frontfill takes only 'none'"),
        ({"y": {"futurefill": "zero"}}, None, "futurefill applies to covariates, not the target"),
        (
            {"y": {"middlefill": "value"}},
            None,
            "middlefill 'value' and middlefill_value go together",
        ),
        ({"y": {"backfill_value": "2"}}, None, "backfill_value needs backfill 'value'"),
        (
            {"y": {"backfill": "zero", "backfill_value": "2"}},
            None,
            "backfill_value needs backfill 'value'",
        ),
        (
            {"y": {"middlefill": "value", "middlefill_value": "two"}},
            None,
            "middlefill_value 'two' is not a number",
        ),
        ({"y": {"sidefill": "zero"}}, None, "unknown key 'sidefill'"),
        ({"y": {"middlefill": "nan"}}, None, "middlefill 'nan' is not one of zero, value"),
        ({"ts": {"middlefill": "zero"}}, None, "Filling cannot name 'ts'"),
        (None, {"p": "sum"}, "Aggregation applies to the target column only"),
        (None, {"y": "median"}, "Aggregation 'median' for 'y' is not one of sum, avg, first"),
    ],
)
def test_transformations_rejected(
    filling: dict[str, dict[str, str]] | None, aggregation: dict[str, str] | None, says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_transformations(filling, aggregation, target="y", reserved=("ts", "item"))
    assert says in one_line(err)


def test_filling_for_an_absent_column() -> None:
    with pytest.raises(DataError, match="Filling names 'price'; the data have no such column"):
        long(GAPPY, filling={"price": {"middlefill": "zero"}})


def test_frequency_finer_than_the_data_is_noted() -> None:
    rows = [
        (t[0], t[1] + " 00:00", t[2]) for t in days("a", "2020-01-01", ["", "1", "2", "3", "4"])
    ]
    result = long(rows, frequency="6h")
    assert result.lengths.tolist() == [13]
    assert any("finer than the data (they look like D)" in note for note in result.notes)


def test_filling_a_real_series_with_gaps_and_blanks() -> None:
    """Victoria's half-hours with ten hours of rows missing and blank temperatures: the target
    and the covariate filled as Filling says, the filled target values marked."""
    frame = table(VICTORIA)
    frame["site"] = "vic"
    frame = frame.drop(frame.index[100:120])  # 20 half-hours gone
    frame.loc[frame.index[200:210], "Temperature"] = ""  # rows there, no temperature
    filling = {
        "Demand": {"middlefill": "mean"},
        "Temperature": {"middlefill": "value", "middlefill_value": "-5"},
    }
    result = prepare_series(
        frame,
        target="Demand",
        timestamp="Time",
        item_id="site",
        frequency="30min",
        horizon=96,
        filling=filling,
    )
    assert result.lengths.tolist() == [1344]  # the grid has every half-hour again
    demand = frame["Demand"].astype(float)
    filled = np.flatnonzero(result.target_filled)
    assert filled.tolist() == list(range(100, 120))
    np.testing.assert_allclose(result.values(0)[filled], demand.mean())
    temperature = result.history["Temperature"].to_numpy()
    assert (temperature[100:120] == -5).all() and (temperature[220:230] == -5).all()
    given = frame["Temperature"].replace("", np.nan).astype(float).dropna()
    assert (temperature != -5).sum() == len(given) == 1344 - 30
    assert "Target 'Demand': 20 missing values in 1 series filled with mean (middlefill)" in (
        result.notes
    )
