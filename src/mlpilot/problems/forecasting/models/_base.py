"""What every forecasting model is: series in, mean and quantile forecasts out."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mlpilot.errors import MlpilotError
from mlpilot.problems.forecasting.models._features import SeriesFeatures

__all__ = ["Forecast", "ForecastTimeout", "Forecaster", "check_features", "quantile_levels"]


class ForecastTimeout(MlpilotError):
    """The model could not forecast every series before its deadline."""


@dataclass(frozen=True)
class Forecast:
    """Forecasts of several series, ``horizon`` steps each: ``mean`` and ``quantiles`` are
    ``(n_series, horizon)`` arrays, the quantiles keyed by their level (0.1 for p10) and
    ordered along the level for every point."""

    mean: np.ndarray
    quantiles: dict[float, np.ndarray]

    @property
    def horizon(self) -> int:
        return int(self.mean.shape[1])

    def at_least(self, floor: np.ndarray) -> Forecast:
        """The forecast with every value raised to ``floor`` (broadcast per series)."""
        return Forecast(
            np.maximum(self.mean, floor),
            {q: np.maximum(v, floor) for q, v in self.quantiles.items()},
        )

    def ordered(self) -> Forecast:
        """The same forecast with quantiles sorted point by point (models that produce each
        quantile separately can cross them; a forecast's quantiles must not)."""
        levels = sorted(self.quantiles)
        if len(levels) < 2:
            return self
        stacked = np.sort(np.stack([self.quantiles[q] for q in levels]), axis=0)
        return Forecast(self.mean, {q: stacked[i] for i, q in enumerate(levels)})


def quantile_levels(quantiles: Sequence[float]) -> dict[float, tuple[str, float]]:
    """For each quantile, the side and the central interval level (in %) whose bound it is:
    0.1 → ("lo", 80.0), 0.9 → ("hi", 80.0), 0.5 → ("mean", 0.0)."""
    out: dict[float, tuple[str, float]] = {}
    for q in quantiles:
        if not 0 < q < 1:
            raise ValueError(f"quantile {q} is not between 0 and 1")
        if abs(q - 0.5) < 1e-12:
            out[q] = ("mean", 0.0)
        else:
            out[q] = ("lo" if q < 0.5 else "hi", round(abs(2 * q - 1) * 100, 6))
    return out


class Forecaster(ABC):
    """A forecasting model.

    Local models (:class:`LocalForecaster`: a model per series, such as ETS) learn nothing
    across series: forecasting fits each history it is given, so a history sent to an endpoint
    is forecast the same way as one seen in training. Global models learn one model over all
    series in :meth:`fit` and forecast any history with it.
    """

    #: The name jobs and leaderboards know the model by.
    name: ClassVar[str]
    description: ClassVar[str]
    #: One model per series, fit when forecasting (no state from :meth:`fit`).
    local: ClassVar[bool] = False
    #: Reads :class:`SeriesFeatures` (through :meth:`_forecast_with`).
    uses_features: ClassVar[bool] = False
    #: Trains for as long as its deadline allows, keeping its best state so far (a network
    #: trained in epochs): a backtest gives each window's fit a share of the time left.
    anytime: ClassVar[bool] = False
    #: Modules fitting it imports that take seconds: a job's workers import them as they
    #: start, so that the first backtest's time does not pay for them.
    fit_imports: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, season_length: int, params: dict[str, Any] | None = None, seed: int = 0
    ) -> None:
        self.season_length = max(1, int(season_length))
        self.params = dict(params or {})
        self.seed = seed

    def minimum_seconds(self, n_series: int, windows: int) -> float:
        """Seconds a backtest of ``n_series`` series in ``windows`` windows needs at the least;
        a job skips the model when its budget cannot give that much (0: no estimate)."""
        return 0.0

    def fit(
        self,
        history: Sequence[np.ndarray],
        deadline: float | None = None,
        features: SeriesFeatures | None = None,
    ) -> None:
        """Learn from every series' history (regular steps, no missing values), with
        ``features`` of the same series and lengths. Local models have nothing to learn ahead
        of forecasting."""
        return None

    def forecast(
        self,
        history: Sequence[np.ndarray],
        horizon: int,
        quantiles: Sequence[float],
        deadline: float | None = None,
        features: SeriesFeatures | None = None,
    ) -> Forecast:
        """Every series' forecast, ``horizon`` steps after its last value, quantiles in
        order; ``features`` has the same series and lengths, and at least ``horizon`` future
        steps. A series that never went below zero (counts, sales, demand) is not forecast
        below zero either."""
        arrays = [np.asarray(y, dtype="float64") for y in history]
        if self.uses_features:
            if features is not None:
                check_features(features, arrays, horizon)
            forecast = self._forecast_with(arrays, horizon, quantiles, deadline, features)
        else:
            forecast = self._forecast(arrays, horizon, quantiles, deadline)
        floor = np.array([0.0 if len(y) and np.nanmin(y) >= 0 else -np.inf for y in arrays])
        return forecast.at_least(floor[:, None]).ordered()

    @abstractmethod
    def _forecast(
        self, history: list[np.ndarray], horizon: int, q: Sequence[float], deadline: float | None
    ) -> Forecast: ...

    def _forecast_with(
        self,
        history: list[np.ndarray],
        horizon: int,
        q: Sequence[float],
        deadline: float | None,
        features: SeriesFeatures | None,
    ) -> Forecast:
        """The forecast of a model that reads features (:attr:`uses_features`)."""
        return self._forecast(history, horizon, q, deadline)


def check_features(
    features: SeriesFeatures, history: Sequence[np.ndarray], horizon: int | None = None
) -> None:
    """:class:`ValueError` unless ``features`` describe these histories (and ``horizon``
    future steps)."""
    lengths = [len(y) for y in history]
    if features.lengths.tolist() != lengths:
        raise ValueError("The features do not describe these series (their lengths differ)")
    if horizon is not None and features.horizon < horizon:
        raise ValueError(
            f"The features reach {features.horizon} steps ahead, not the {horizon} to forecast"
        )


#: A local model's pace is judged once this many series after the first are done, and it
#: gives up when the rest would take more than PACE_SLACK times the time left.
PACE_AFTER_SERIES = 2
PACE_SLACK = 1.5

#: The most recent values a local model is fit on: a model per series gains little from
#: years of half-hourly history, and fitting ETS or ARIMA on all of it would take minutes.
MAX_LOCAL_HISTORY = 2500


class LocalForecaster(Forecaster):
    """A model fit to each series on its own, when it is forecast, on the last
    :data:`MAX_LOCAL_HISTORY` values of the series (more for a long season: at least ten
    seasons)."""

    local: ClassVar[bool] = True

    @property
    def max_history(self) -> int:
        return max(MAX_LOCAL_HISTORY, 10 * self.season_length)

    @abstractmethod
    def forecast_one(self, y: np.ndarray, horizon: int, quantiles: Sequence[float]) -> Forecast:
        """One series' forecast (``mean`` and quantiles of shape ``(1, horizon)``)."""

    def _forecast(
        self, history: list[np.ndarray], horizon: int, q: Sequence[float], deadline: float | None
    ) -> Forecast:
        means: list[np.ndarray] = []
        bands: dict[float, list[np.ndarray]] = {level: [] for level in q}
        paced_from = 0.0  # when the first series was done (it may load caches: not timed)
        for done, y in enumerate(history):
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise ForecastTimeout(
                    f"{self.name} forecast {done} of {len(history)} series before its deadline"
                )
            if deadline is not None and done > PACE_AFTER_SERIES:
                # Give up as soon as the pace so far cannot finish in time, not at the deadline:
                # the job's other models get the time.
                pace = (now - paced_from) / (done - 1)
                need = pace * (len(history) - done)
                if need > PACE_SLACK * (deadline - now):
                    raise ForecastTimeout(
                        f"{self.name} would need about {need:.0f} s more for the "
                        f"{len(history) - done} series left ({pace:.2f} s each); "
                        f"{max(0.0, deadline - now):.0f} s were left"
                    )
            one = self.forecast_one(y[-self.max_history :], horizon, q)
            if done == 0:
                paced_from = time.monotonic()
            means.append(one.mean[0])
            for level in q:
                bands[level].append(one.quantiles[level][0])
        return Forecast(
            np.array(means).reshape(len(history), horizon),
            {level: np.array(v).reshape(len(history), horizon) for level, v in bands.items()},
        )
