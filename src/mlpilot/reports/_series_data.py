"""What a forecasting job keeps of its prepared series for the notebook and reports.

The job deletes its working data when it ends, so the white box writes, from the series the job
prepared (:class:`~mlpilot.problems.forecasting.SeriesSet`), into ``data-sample/``:

``series.json``
    The facts: columns, frequency, horizon, season length, backtest plan, covariates and static
    attributes with their kinds, the share of future covariate values the data gave, what the
    preparation aggregated, dropped and filled.
``series-items.parquet``
    One row per series, every series, by series code (:data:`SERIES`): first and last
    timestamp, length, filled target values and the longest run of them, share of zeros, the
    average interval between non-zero values, mean, spread and the autocorrelation at the
    season's lag; ``sampled`` says whether its rows are in the history and future files.
``series-keys.parquet``
    One row per series, by series code: its key columns and static attributes (apart from the
    statistics, so a column of the user's never meets one of them).
``series-history.parquet`` / ``series-future.parquet``
    The prepared history (grid, target, covariates, and :data:`SERIES_FILLED`: whether the
    target value was filled) and the horizon's covariate rows of every series, or of a seeded
    sample of series when there are more than :data:`SAMPLE_HISTORY_ROWS` history rows. The
    series code column :data:`SERIES` numbers the series as ``series-items.parquet`` does.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.errors import JobNotFoundError
from mlpilot.metrics import season_length
from mlpilot.problems.forecasting import SERIES, SeriesSet

__all__ = [
    "SAMPLE_HISTORY_ROWS",
    "SERIES_FILLED",
    "SeriesSample",
    "item_statistics",
    "load_series_sample",
    "save_series_sample",
    "series_key_text",
]

#: History rows kept for the notebook and the report's plots (whole series, seeded).
SAMPLE_HISTORY_ROWS = 500_000
FACTS = "series.json"
ITEMS = "series-items.parquet"
KEYS = "series-keys.parquet"
HISTORY = "series-history.parquet"
#: The history's column saying whether the target value was filled (not in the data).
SERIES_FILLED = "_series_filled"
FUTURE = "series-future.parquet"


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the sample from other readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _longest_runs(flags: np.ndarray, series: np.ndarray, n: int) -> np.ndarray:
    """Per series, the longest run of consecutive True ``flags`` (rows in series order)."""
    out = np.zeros(n, dtype=np.int64)
    if not flags.any():
        return out
    starts = np.r_[True, (flags[1:] != flags[:-1]) | (series[1:] != series[:-1])]
    run = np.cumsum(starts) - 1
    lengths = np.bincount(run)
    first = np.flatnonzero(starts)
    flagged = flags[first]
    np.maximum.at(out, series[first][flagged], lengths[flagged])
    return out


def item_statistics(series: SeriesSet) -> pd.DataFrame:
    """The statistics of every series (``series-items.parquet``), computed on all rows at
    once."""
    n = series.n_series
    lengths = series.lengths.astype(np.int64)
    starts = series.offsets[:-1]
    code = np.repeat(np.arange(n), lengths)
    y = series.history[series.target].to_numpy(np.float64)
    stamps = series.history[series.timestamp].to_numpy("datetime64[ns]")
    filled = np.asarray(series.target_filled, dtype=bool)
    given = ~filled

    def per_series(values: np.ndarray) -> np.ndarray:
        return np.bincount(code, weights=values, minlength=n)

    observed = per_series(given.astype(float))
    zeros = per_series((given & (y == 0)).astype(float))
    nonzero = observed - zeros
    mean = per_series(np.nan_to_num(y)) / lengths
    centred = y - mean[code]
    squares = per_series(centred**2)
    season = season_length(series.frequency.alias)
    # Autocorrelation at the season's lag: pairs (t, t - m) inside one series.
    position = np.arange(len(y)) - np.repeat(starts, lengths)
    later = np.flatnonzero(position >= season)
    products = np.bincount(
        code[later], weights=centred[later] * centred[later - season], minlength=n
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        acf = np.where((squares > 0) & (lengths > season + 2), products / squares, np.nan)
        interval = np.where(nonzero > 0, observed / nonzero, np.inf)
        zero_share = np.where(observed > 0, zeros / observed, np.nan)
    items = pd.DataFrame({SERIES: np.arange(n)})
    items["start"] = stamps[starts]
    items["end"] = stamps[starts + lengths - 1]
    items["length"] = lengths
    items["filled"] = per_series(filled.astype(float)).astype(np.int64)
    items["longest_gap"] = _longest_runs(filled, code, n)
    items["zero_share"] = zero_share
    items["mean_interval"] = interval
    items["mean"] = mean
    items["std"] = np.sqrt(squares / lengths)
    items["season_acf"] = acf
    return items


def save_series_sample(
    series: SeriesSet, out_dir: Path, *, seed: int, facts: dict[str, Any]
) -> None:
    """Write the facts, the per-series table and the (sampled) series under ``out_dir``.
    ``facts`` adds the job's own (backtest plan, quantiles, objective)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = item_statistics(series)
    lengths = series.lengths.astype(np.int64)
    if lengths.sum() <= SAMPLE_HISTORY_ROWS:
        chosen = np.arange(series.n_series)
    else:
        order = np.random.default_rng(seed).permutation(series.n_series)
        keep = np.cumsum(lengths[order]) <= SAMPLE_HISTORY_ROWS
        keep[0] = True  # at least one series, however long
        chosen = np.sort(order[keep])
    items["sampled"] = np.isin(np.arange(series.n_series), chosen)
    history = series.history[np.isin(series.history[SERIES].to_numpy(), chosen)]
    history = history.assign(
        **{SERIES_FILLED: np.asarray(series.target_filled)[history.index.to_numpy()]}
    )
    future = series.future[np.isin(series.future[SERIES].to_numpy(), chosen)]
    document = {
        "target": series.target,
        "timestamp": series.timestamp,
        "key_columns": list(series.key_columns),
        "frequency": series.frequency.alias,
        "forecast_frequency": series.frequency.autopilot,
        "horizon": series.horizon,
        "season_length": season_length(series.frequency.alias),
        "series": series.n_series,
        "history_rows": int(lengths.sum()),
        "sampled_series": len(chosen),
        "covariates": dict(series.covariates),
        "static_attributes": dict(series.static_columns),
        "future_given": dict(series.future_given),
        "filled_target_values": int(np.asarray(series.target_filled).sum()),
        "timezone": series.timezone,
        "notes": list(series.notes),
        **facts,
    }
    keys = series.keys.reset_index(drop=True).copy()
    for column in series.static.columns:
        keys[column] = series.static[column].reset_index(drop=True)
    keys.insert(0, SERIES, np.arange(series.n_series))
    _write_parquet(items, out_dir / ITEMS)
    _write_parquet(keys, out_dir / KEYS)
    _write_parquet(history.reset_index(drop=True), out_dir / HISTORY)
    _write_parquet(future.reset_index(drop=True), out_dir / FUTURE)
    text = json.dumps(document, indent=1, default=str)
    fd, tmp = tempfile.mkstemp(prefix=f".{FACTS}.", dir=out_dir)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out_dir / FACTS)


class SeriesSample:
    """What :func:`save_series_sample` wrote, read back."""

    def __init__(
        self,
        facts: dict[str, Any],
        items: pd.DataFrame,
        keys: pd.DataFrame,
        history: pd.DataFrame,
        future: pd.DataFrame,
    ) -> None:
        self.facts = facts
        #: Statistics per series, by series code.
        self.items = items
        #: Key columns and static attributes per series, by series code.
        self.keys = keys
        self.history = history
        self.future = future

    @property
    def key_columns(self) -> list[str]:
        return list(self.facts["key_columns"])

    @property
    def target(self) -> str:
        return str(self.facts["target"])

    @property
    def timestamp(self) -> str:
        return str(self.facts["timestamp"])

    @property
    def season_length(self) -> int:
        return int(self.facts.get("season_length") or 1)

    def key_text(self) -> pd.Series:
        """Each series' key as one string (``a | b`` for composite keys), by series code."""
        return series_key_text(self.keys, self.key_columns)

    def table(self, codes: Any) -> pd.DataFrame:
        """The training-schema table of the sampled series ``codes``: key columns, timestamp,
        target, covariates, static attributes; future-dated rows with an empty target carry the
        covariates over the horizon (what a trained model forecasts from)."""
        codes = np.asarray(list(codes), dtype=np.int64)
        past = self.history[self.history[SERIES].isin(codes)].drop(columns=[SERIES_FILLED])
        ahead = self.future[self.future[SERIES].isin(codes)]
        rows = pd.concat([past, ahead], ignore_index=True, sort=False)
        out = rows.merge(self.keys, on=SERIES, how="left").drop(columns=SERIES)
        for column in out.columns:
            if isinstance(out[column].dtype, pd.CategoricalDtype):
                out[column] = out[column].astype(object)
        ordered = [*self.key_columns, self.timestamp, self.target]
        return out[[*ordered, *[c for c in out.columns if c not in ordered]]]


def series_key_text(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Each row's key columns as one string (``a | b`` for a composite key)."""
    text = frame[columns[0]].astype(str)
    for column in columns[1:]:
        text = text + " | " + frame[column].astype(str)
    return text


def load_series_sample(sample_dir: Path) -> SeriesSample:
    path = sample_dir / FACTS
    if not path.exists():
        raise JobNotFoundError(f"No series sample at {sample_dir} (the job did not save one)")
    facts = json.loads(path.read_text())
    return SeriesSample(
        facts,
        pd.read_parquet(sample_dir / ITEMS),
        pd.read_parquet(sample_dir / KEYS),
        pd.read_parquet(sample_dir / HISTORY),
        pd.read_parquet(sample_dir / FUTURE),
    )
