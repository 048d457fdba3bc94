"""What a forecasting job ships: the series settings, the fitted models and their ensemble
weights, and the training history, forecasting any history table in the training schema.

A forecast has ``horizon`` rows per series, on the series' grid after its last target value:
the key columns (item id, then grouping), the timestamp column (both named as the user's),
``mean``, then one column per quantile (``p10``…), lowest level first. Local models fit each
history they are given; global ones keep what they learnt from the whole training history.

Models that read features (covariates, static attributes, calendar, holidays) get them from the
history table: its future-dated rows (an empty target) give the covariates over the horizon, the
rest are filled as in training. The table's columns keep the kinds (numeric, categorical) they
had in training, and a column the models were trained with must be there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.config import ForecastingConfig
from mlpilot.data import Frequency
from mlpilot.errors import ConfigError, MlpilotError, PredictionInputError
from mlpilot.metrics import quantile_level, season_length
from mlpilot.problems.forecasting._ensemble import QuantileSpread, blend_forecasts
from mlpilot.problems.forecasting._features import HolidayCalendar, series_features
from mlpilot.problems.forecasting._series import SeriesSet, prepare_series
from mlpilot.problems.forecasting.models import (
    Forecast,
    Forecaster,
    SeriesFeatures,
    get_forecaster,
)

__all__ = ["MIN_HISTORY", "ForecastPredictor", "SeriesSettings"]

#: Target values a series must give to be forecast (Autopilot's rule for inference data).
MIN_HISTORY = 4
MEAN = "mean"


@dataclass(frozen=True)
class SeriesSettings:
    """How a table becomes series, as the job prepared its training data: the
    TimeSeriesConfig columns, the frequency (its anchors as the training data resolved them, so
    every history is put on the same grid), the horizon, the quantile names (lowest level
    first), Transformations, the feature specification and HolidayConfig's country."""

    target: str
    timestamp: str
    item_id: str
    frequency: Frequency
    horizon: int
    quantiles: tuple[str, ...]
    grouping: tuple[str, ...] = ()
    filling: dict[str, dict[str, str]] = field(default_factory=dict)
    aggregation: dict[str, str] = field(default_factory=dict)
    features: tuple[str, ...] | None = None
    feature_types: dict[str, str] | None = None
    holiday_country: str | None = None

    @classmethod
    def of(
        cls,
        config: ForecastingConfig,
        frequency: Frequency,
        *,
        features: Sequence[str] | None = None,
        feature_types: Mapping[str, str] | None = None,
    ) -> SeriesSettings:
        """The settings of ``config``, on ``frequency`` (the training series' resolved one)."""
        return cls(
            target=config.target,
            timestamp=config.timestamp,
            item_id=config.item_id,
            frequency=frequency,
            horizon=config.horizon,
            quantiles=tuple(sorted(config.quantiles, key=quantile_level)),
            grouping=tuple(config.grouping),
            filling={k: dict(v) for k, v in config.filling.items()},
            aggregation=dict(config.aggregation),
            features=None if features is None else tuple(features),
            feature_types=None if feature_types is None else dict(feature_types),
            holiday_country=config.holiday_country,
        )

    @property
    def key_columns(self) -> tuple[str, ...]:
        return (self.item_id, *self.grouping)

    @property
    def levels(self) -> list[float]:
        return [quantile_level(q) for q in self.quantiles]

    @property
    def output_columns(self) -> list[str]:
        return [*self.key_columns, self.timestamp, MEAN, *self.quantiles]

    def prepare(
        self,
        table: pd.DataFrame,
        *,
        inference: bool = False,
        kinds: Mapping[str, str] | None = None,
    ) -> SeriesSet:
        """``table`` as series; ``kinds`` (column → numeric or categorical) fix the kinds of
        those columns on top of the feature specification's."""
        # The other settings are prepare_series' arguments, by the same names.
        own = ("quantiles", "holiday_country")
        arguments = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in own}
        if kinds:
            arguments["feature_types"] = {**dict(kinds), **(self.feature_types or {})}
        return prepare_series(table, **arguments, inference=inference)

    def holiday_calendar(self) -> HolidayCalendar | None:
        return None if self.holiday_country is None else HolidayCalendar(self.holiday_country)


@dataclass(frozen=True, eq=False)
class _History:
    """Series as the models read them, and where each starts on the grid: the targets of every
    series, one after another, and their features where a model reads them (a SeriesSet
    without its frames)."""

    keys: pd.DataFrame
    values: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray
    timezone: str | None
    features: SeriesFeatures | None = None

    @classmethod
    def of(cls, series: SeriesSet, features: SeriesFeatures | None = None) -> _History:
        stamps = series.history[series.timestamp].to_numpy("datetime64[ns]")
        return cls(
            keys=series.keys.reset_index(drop=True),
            values=series.history[series.target].to_numpy(np.float64).copy(),
            lengths=series.lengths.astype(np.int64),
            starts=stamps[series.offsets[:-1]],
            timezone=series.timezone,
            features=features,
        )

    def arrays(self) -> list[np.ndarray]:
        return np.split(self.values, np.cumsum(self.lengths)[:-1])


class ForecastPredictor:
    """The forecasting job's final model.

    Parameters
    ----------
    settings:
        How tables become series (:class:`SeriesSettings`).
    models:
        Fitted models by name; global ones fitted on the whole training history.
    weights:
        The ensemble's weight of each model (a single model: ``{name: 1.0}``); models of weight
        0 are not run.
    history:
        The training series, kept (targets, and features where a model reads them) to forecast
        from when no table is given.
    features:
        ``history``'s features, where already computed (:func:`series_features`).
    spread:
        How the blended bands are rescaled (the ensemble's :class:`QuantileSpread`); None
        keeps them as the models give them.
    """

    def __init__(
        self,
        settings: SeriesSettings,
        models: Mapping[str, Forecaster],
        weights: Mapping[str, float],
        history: SeriesSet,
        features: SeriesFeatures | None = None,
        spread: QuantileSpread | None = None,
    ) -> None:
        chosen = {name: float(w) for name, w in weights.items() if w > 0}
        if not chosen:
            raise ConfigError("An ensemble needs a model of positive weight")
        missing = sorted(set(chosen) - set(models))
        if missing:
            raise ConfigError(f"Ensemble weights name models that were not given: {missing}")
        taken = set(settings.key_columns) | {settings.timestamp}
        clash = [c for c in (MEAN, *settings.quantiles) if c in taken]
        if clash:
            raise ConfigError(
                f"Column {clash[0]!r} would name a key or timestamp and a forecast column: "
                "rename it"
            )
        self.settings = settings
        self.models = {name: models[name] for name in chosen}
        self.weights = chosen
        self.spread = spread or QuantileSpread({})
        self.season_length = season_length(settings.frequency.alias)
        #: Whether some model reads features (then they are computed for every history).
        self.uses_features = any(m.uses_features for m in self.models.values())
        self.covariates = dict(history.covariates)
        self.static_columns = dict(history.static_columns)
        #: The kinds of the covariates and static attributes in training.
        self.kinds = {**self.covariates, **self.static_columns}
        if self.uses_features and features is None:
            features = series_features(history, settings.holiday_calendar())
        self._history = _History.of(history, features if self.uses_features else None)

    @classmethod
    def fit(
        cls,
        config: ForecastingConfig,
        series: SeriesSet,
        weights: Mapping[str, float],
        *,
        params: Mapping[str, dict[str, Any]] | None = None,
        seed: int = 0,
        spread: QuantileSpread | None = None,
        deadline: float | None = None,
        features: Sequence[str] | None = None,
        feature_types: Mapping[str, str] | None = None,
    ) -> ForecastPredictor:
        """The models of positive weight (registry names) fitted on every series of
        ``series`` (prepared with ``config``), each with its ``params``."""
        if (series.target, series.timestamp, series.key_columns, series.horizon) != (
            config.target,
            config.timestamp,
            config.key_columns,
            config.horizon,
        ):
            raise ConfigError("The series were not prepared with this forecasting config")
        settings = SeriesSettings.of(
            config, series.frequency, features=features, feature_types=feature_types
        )
        season = season_length(series.frequency.alias)
        arrays = [series.values(i) for i in range(series.n_series)]
        chosen = {name: get_forecaster(name) for name, weight in weights.items() if weight > 0}
        exogenous = None
        if any(model.uses_features for model in chosen.values()):
            exogenous = series_features(series, settings.holiday_calendar())
        models: dict[str, Forecaster] = {}
        for name, model_class in chosen.items():
            model = model_class(season, (params or {}).get(name), seed)
            model.fit(arrays, deadline, features=exogenous)
            models[name] = model
        return cls(settings, models, weights, series, exogenous, spread)

    # -- forecasting ------------------------------------------------------------------------------

    def forecast(self, table: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecasts of every series of ``table`` (history rows, plus future-dated rows with an
        empty target carrying known covariates, in the training schema), or of the training
        history with None. New items are forecast like any other.

        Raises :class:`PredictionInputError` for a table that cannot be read as series, and for
        a series with fewer than :data:`MIN_HISTORY` target values, naming it. (The training
        history is forecast as it was trained on, short series included.)
        """
        history = self._history if table is None else self._read(table)
        arrays = history.arrays()
        forecasts = {
            name: model.forecast(
                arrays, self.settings.horizon, self.settings.levels, features=history.features
            )
            for name, model in self.models.items()
        }
        blended = blend_forecasts(forecasts, self.weights)
        return self._frame(history, self.spread.apply(blended))

    def _read(self, table: pd.DataFrame) -> _History:
        series = self._prepare(table)
        if not self.uses_features:
            return _History.of(series)
        return _History.of(series, series_features(series, self.settings.holiday_calendar()))

    def _prepare(self, table: pd.DataFrame) -> SeriesSet:
        if not isinstance(table, pd.DataFrame):
            raise PredictionInputError("A history to forecast from must be a pandas DataFrame")
        if len(table) == 0:
            raise PredictionInputError("No rows to forecast from")
        kinds = None
        if self.uses_features:  # a column keeps its training kind whatever this table holds
            present = {str(c) for c in table.columns}
            kinds = {c: k for c, k in self.kinds.items() if c in present}
        try:
            series = self.settings.prepare(table, inference=True, kinds=kinds)
        except MlpilotError as exc:  # the request's data, whichever check it failed
            raise PredictionInputError(str(exc)) from None
        given = np.add.reduceat((~series.target_filled).astype(np.int64), series.offsets[:-1])
        short = np.flatnonzero(given < MIN_HISTORY)
        if len(short):
            first = int(short[0])
            others = f"; {len(short) - 1} more series too short" if len(short) > 1 else ""
            raise PredictionInputError(
                f"Too little history to forecast {series.key_text(first)}: {int(given[first])} "
                f"target value(s), at least {MIN_HISTORY} needed per series{others}"
            )
        return series

    def _frame(self, history: _History, forecast: Forecast) -> pd.DataFrame:
        n, horizon = forecast.mean.shape
        series = np.repeat(np.arange(n), horizon)
        steps = history.lengths[series] + np.tile(np.arange(horizon), n)
        stamps = pd.DatetimeIndex(self.settings.frequency.timestamps(history.starts[series], steps))
        if history.timezone is not None:  # back in the zone the history was given in
            stamps = stamps.tz_localize("UTC").tz_convert(history.timezone)
        out = history.keys.iloc[series].reset_index(drop=True)
        out[self.settings.timestamp] = stamps
        out[MEAN] = forecast.mean.ravel()
        for name, level in zip(self.settings.quantiles, self.settings.levels, strict=True):
            out[name] = forecast.quantiles[level].ravel()
        return out

    # -- what the package's manifest records -------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {
            "target": s.target,
            "timestamp": s.timestamp,
            "item_id": s.item_id,
            "grouping": list(s.grouping),
            "key_columns": list(s.key_columns),
            "frequency": s.frequency.alias,
            "forecast_frequency": s.frequency.autopilot,
            "horizon": s.horizon,
            "quantiles": list(s.quantiles),
            "output_columns": s.output_columns,
            "season_length": self.season_length,
            "weights": dict(sorted(self.weights.items())),
            "quantile_spread": {
                name: self.spread.factors.get(level, 1.0)
                for name, level in zip(s.quantiles, s.levels, strict=True)
            },
            "holiday_country": s.holiday_country,
            # What the models read besides the target (none when no model reads features).
            "covariates": self.covariates if self.uses_features else {},
            "static_attributes": self.static_columns if self.uses_features else {},
            # Every column of the training table the job read besides the series' own (what
            # new data for the same job must hold, whether or not a model reads it).
            "feature_columns": [*self.covariates, *self.static_columns],
            "series": len(self._history.lengths),
            "history_rows": int(self._history.lengths.sum()),
        }
