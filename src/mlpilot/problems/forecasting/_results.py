"""The BacktestResults artifact: a forecasting candidate's backtest forecasts and their accuracy
per window, as CSV files under its ``CandidateArtifactLocations.BacktestResults`` prefix.

The layout follows Amazon Forecast's backtest export, which Autopilot's time-series jobs
inherit::

    <prefix>/forecasted-values/<candidate>_part0.csv
        one row per series, backtest window and time step: the key columns and the timestamp
        (named as in the data), the actual target (named as the target column), the window
        (``backtest_window``: 1 is the last horizon of each series, 2 the one before…), the
        window's first and last timestamp for that series, ``mean`` and one column per quantile
        (``p10``…), lowest level first.
    <prefix>/accuracy-metrics-values/<candidate>_part0.csv
        one row per window (its earliest start and latest end over the series, the series
        scored) and an ``Average`` row: RMSE, wQL per quantile, AverageWeightedQuantileLoss,
        MASE, MAPE, WAPE (:func:`mlpilot.metrics.score_forecasts`); the ``Average`` row is the
        mean over the windows, the candidate's metrics in the job record.

Timestamps are the series' own grid steps (the time zone the data gave, when they gave one).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mlpilot.metrics import average_over_windows, quantile_level
from mlpilot.problems.forecasting._backtest import BacktestPlan, WindowForecast
from mlpilot.problems.forecasting._series import SeriesSet
from mlpilot.problems.forecasting._trial import score_windows

__all__ = [
    "ACCURACY_METRICS",
    "AVERAGE",
    "FORECASTED_VALUES",
    "WINDOW",
    "WINDOW_END",
    "WINDOW_START",
    "accuracy_frame",
    "backtest_frame",
    "read_backtest_results",
    "write_backtest_results",
]

FORECASTED_VALUES = "forecasted-values"
ACCURACY_METRICS = "accuracy-metrics-values"
WINDOW = "backtest_window"
WINDOW_START = "backtestwindow_start_time"
WINDOW_END = "backtestwindow_end_time"
#: The accuracy row holding each metric's mean over the windows.
AVERAGE = "Average"
ITEMS = "item_count"
MEAN = "mean"


def _actual_column(series: SeriesSet, quantiles: Sequence[str]) -> str:
    """The target's own name, unless a forecast column already takes it."""
    taken = {*series.key_columns, series.timestamp, WINDOW, WINDOW_START, WINDOW_END, MEAN}
    taken.update(quantiles)
    name = series.target
    while name in taken:
        name = f"{name}_actual"
    return name


def _stamps(series: SeriesSet, values: np.ndarray) -> pd.DatetimeIndex:
    stamps = pd.DatetimeIndex(values)
    if series.timezone is not None:  # back in the zone the data gave
        stamps = stamps.tz_localize("UTC").tz_convert(series.timezone)
    return stamps


def backtest_frame(
    series: SeriesSet,
    plan: BacktestPlan,
    windows: Sequence[WindowForecast],
    quantiles: Sequence[str],
) -> pd.DataFrame:
    """The forecasted values of every window (module docstring), latest window first, series in
    key order, time steps in time order."""
    quantiles = sorted(quantiles, key=quantile_level)
    horizon = plan.horizon
    grid = series.history[series.timestamp].to_numpy("datetime64[ns]")
    parts = []
    for w in windows:
        members = np.asarray(w.series, dtype=np.int64)
        cutoffs = np.array([plan.cutoff(int(series.lengths[s]), w.window) for s in members])
        first = series.offsets[members] + cutoffs
        rows = (first[:, None] + np.arange(horizon)).ravel()
        stamps = grid[rows]
        part = series.keys.iloc[np.repeat(members, horizon)].reset_index(drop=True)
        part[series.timestamp] = stamps
        part[_actual_column(series, quantiles)] = np.asarray(w.actual, np.float64).ravel()
        part[WINDOW] = w.window + 1
        part[WINDOW_START] = np.repeat(grid[first], horizon)
        part[WINDOW_END] = np.repeat(grid[first + horizon - 1], horizon)
        part[MEAN] = np.asarray(w.forecast.mean, np.float64).ravel()
        for name in quantiles:
            band = w.forecast.quantiles[quantile_level(name)]
            part[name] = np.asarray(band, np.float64).ravel()
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    for column in (series.timestamp, WINDOW_START, WINDOW_END):
        if column in frame:
            frame[column] = _stamps(series, frame[column].to_numpy("datetime64[ns]"))
    return frame


def accuracy_frame(
    series: SeriesSet,
    plan: BacktestPlan,
    windows: Sequence[WindowForecast],
    window_metrics: Sequence[dict[str, float]] | None = None,
    season: int = 1,
) -> pd.DataFrame:
    """Every metric of every window, then their mean over the windows (module docstring).
    ``window_metrics`` are the trial's scores of ``windows``; without them they are computed
    (MASE's season ``season``)."""
    if window_metrics is None:
        arrays = [series.values(i).astype(np.float64) for i in range(series.n_series)]
        window_metrics = score_windows(list(windows), arrays, plan, season)
    grid = series.history[series.timestamp].to_numpy("datetime64[ns]")
    rows = []
    for w, metrics in zip(windows, window_metrics, strict=True):
        members = np.asarray(w.series, dtype=np.int64)
        cutoffs = np.array([plan.cutoff(int(series.lengths[s]), w.window) for s in members])
        first = series.offsets[members] + cutoffs
        rows.append(
            {
                WINDOW: str(w.window + 1),
                WINDOW_START: grid[first].min(),
                WINDOW_END: grid[first + plan.horizon - 1].max(),
                ITEMS: len(members),
                **metrics,
            }
        )
    frame = pd.DataFrame(rows)
    if rows:
        scored = {s for w in windows for s in w.series}
        average = {
            WINDOW: AVERAGE,
            WINDOW_START: frame[WINDOW_START].min(),
            WINDOW_END: frame[WINDOW_END].max(),
            ITEMS: len(scored),
            **average_over_windows(window_metrics),
        }
        frame = pd.concat([frame, pd.DataFrame([average])], ignore_index=True)
        for column in (WINDOW_START, WINDOW_END):
            frame[column] = _stamps(series, frame[column].to_numpy("datetime64[ns]"))
    return frame


def _as_text(stamps: pd.Series) -> pd.Series:
    """Timestamps as pandas writes them (dates alone when every one is midnight), formatted
    once per distinct value: a window's rows share few timestamps."""
    codes, uniques = pd.factorize(stamps)
    index = pd.DatetimeIndex(uniques)
    if index.tz is None and (index == index.normalize()).all():
        text = index.strftime("%Y-%m-%d")
    else:
        text = index.astype(str)
    return pd.Series(np.asarray(text, dtype=object)[codes], index=stamps.index)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` atomically; through Arrow's CSV writer, several times faster than
    pandas' on the hundred thousand rows of a large job's backtests."""
    import pyarrow as pa
    from pyarrow import csv

    frame = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
            frame[column]
        ):
            frame[column] = _as_text(frame[column])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        try:
            csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        except (pa.ArrowException, TypeError, ValueError):
            frame.to_csv(tmp, index=False)  # key columns of mixed types: pandas writes anything
        os.chmod(tmp, 0o644)  # readable like the rest of the job folder, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_backtest_results(
    directory: Path,
    candidate: str,
    series: SeriesSet,
    plan: BacktestPlan,
    windows: Sequence[WindowForecast],
    quantiles: Sequence[str],
    *,
    window_metrics: Sequence[dict[str, float]] | None = None,
    season: int = 1,
) -> Path:
    """Write the candidate's two CSV files under ``directory`` (its BacktestResults prefix);
    returns ``directory``."""
    _write_csv(
        backtest_frame(series, plan, windows, quantiles),
        directory / FORECASTED_VALUES / f"{candidate}_part0.csv",
    )
    _write_csv(
        accuracy_frame(series, plan, windows, window_metrics, season),
        directory / ACCURACY_METRICS / f"{candidate}_part0.csv",
    )
    return directory


def read_backtest_results(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The forecasted values and the accuracy metrics under a BacktestResults prefix. Key
    columns and timestamps come back as the text in the files (item ids such as ``007`` stay
    as they are); the actual values, forecasts and metrics as numbers."""
    found = []
    for folder in (FORECASTED_VALUES, ACCURACY_METRICS):
        parts = sorted((directory / folder).glob("*.csv"))
        if not parts:
            raise FileNotFoundError(f"No {folder} CSV under {directory}")
        found.append(pd.concat([pd.read_csv(p, dtype=str) for p in parts], ignore_index=True))
    forecasts, accuracy = found
    columns = list(forecasts.columns)
    window = columns.index(WINDOW)
    for column in [columns[window - 1], *columns[columns.index(MEAN) :]]:
        forecasts[column] = pd.to_numeric(forecasts[column])
    forecasts[WINDOW] = forecasts[WINDOW].astype(np.int64)
    for column in accuracy.columns[accuracy.columns.get_loc(ITEMS) :]:
        accuracy[column] = pd.to_numeric(accuracy[column])
    return forecasts, accuracy
