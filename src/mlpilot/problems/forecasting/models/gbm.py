"""A global gradient-boosted model: one LightGBM regressor over every series, on lags, rolling
means and the position in the season, forecasting one step at a time (recursively).

Lags: the last ``lags`` steps (7), one and two seasons back.

Given :class:`SeriesFeatures` in :meth:`GlobalGBM.fit`, each step also has its calendar features
(those that vary at the frequency: hour of day, day of week, day of month, week of year, month,
quarter), its holiday features (when the job has a holiday calendar), the covariates' values at
that step and the series' static attributes; categorical ones are LightGBM categorical features,
matched by their category names when another table is forecast. The future steps' features come
from the features' future rows, so a covariate known ahead is read at the step forecast.

Each series is divided by its mean absolute value before training, so series of any scale
share one model (covariates keep their own units). Quantiles are conformal: the model forecasts
the last horizon of each series from the history before it (from several origins when the
series are few), and the spread of those errors at each step ahead (in the series' own scale)
is added to the forecast. Learns across series, so it
suits collections of many related series better than a model per series.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpilot.errors import PredictionInputError
from mlpilot.problems.forecasting.models._base import (
    Forecast,
    Forecaster,
    ForecastTimeout,
    check_features,
)
from mlpilot.problems.forecasting.models._features import (
    SeriesFeatures,
    calendar_columns,
    calendar_values,
)

__all__ = ["GlobalGBM"]

#: Conformal errors wanted per step ahead, and the most origins one series gives towards them.
MIN_RESIDUALS = 40
MAX_ORIGINS = 40
#: Training rows at most (the latest of each series are kept first).
MAX_ROWS = 200_000


@dataclass(frozen=True)
class _Exogenous:
    """Which features besides the target the model was trained on, in its column order: the
    calendar, the holidays, then the covariates and static attributes (categorical ones with
    their training categories)."""

    calendar: tuple[str, ...]
    holidays: tuple[str, ...]
    columns: tuple[str, ...]
    #: Categorical column → its categories in training (the codes the model learnt).
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, features: SeriesFeatures) -> _Exogenous:
        columns = (*features.covariate_names, *features.static_names)
        return cls(
            calendar=calendar_columns(features.frequency),
            holidays=features.holiday_names,
            columns=columns,
            categories={c: features.categories[c] for c in columns if features.is_categorical(c)},
        )

    @property
    def names(self) -> list[str]:
        return [*self.calendar, *self.holidays, *self.columns]

    @property
    def categorical(self) -> list[int]:
        """Positions of the categorical columns among :attr:`names`."""
        first = len(self.calendar) + len(self.holidays)
        return [first + i for i, c in enumerate(self.columns) if c in self.categories]

    def matrix(self, features: SeriesFeatures) -> np.ndarray:
        """``(steps, len(names))``: these features at every step of ``features``' timelines."""
        spans = features.spans
        out = [calendar_values(name, features.time) for name in self.calendar]
        for name in self.holidays:
            if name not in features.holiday_names:
                raise PredictionInputError(
                    f"The model was trained with {name!r} from a holiday calendar; these series "
                    "have none"
                )
            out.append(features.holidays[:, features.holiday_names.index(name)])
        for name in self.columns:
            if name in features.covariate_names:
                values = features.covariates[:, features.covariate_names.index(name)]
            elif name in features.static_names:
                values = np.repeat(features.static[:, features.static_names.index(name)], spans)
            else:
                raise PredictionInputError(
                    f"The history has no column {name!r}: the model was trained with it"
                )
            out.append(self._recoded(name, values, features))
        return np.column_stack(out) if out else np.empty((int(spans.sum()), 0))

    def _recoded(self, name: str, values: np.ndarray, features: SeriesFeatures) -> np.ndarray:
        """A categorical column's codes in the training categories (NaN for new ones)."""
        trained = self.categories.get(name)
        given = features.categories.get(name)
        if (trained is None) != (given is None):
            kind = "categorical" if trained is not None else "numeric"
            raise PredictionInputError(
                f"Column {name!r} was {kind} in training; the history has it otherwise"
            )
        if trained is None or given is None or trained == given:
            return values
        position = {c: i for i, c in enumerate(trained)}
        mapping = np.array([position.get(c, np.nan) for c in given] + [np.nan], dtype=np.float64)
        codes = np.where(np.isnan(values), len(given), values).astype(np.int64)
        return mapping[codes]


class GlobalGBM(Forecaster):
    name = "gbm"
    description = (
        "Global LightGBM over lags, rolling means, season position, calendar, holidays, "
        "covariates and static attributes (recursive)"
    )
    uses_features = True

    def __init__(
        self, season_length: int, params: dict[str, Any] | None = None, seed: int = 0
    ) -> None:
        super().__init__(season_length, params, seed)
        m = self.season_length
        lags = set(range(1, int(self.params.get("lags", 7)) + 1))
        if m > 1:
            lags |= {m, 2 * m}
        self.lags = sorted(lags)
        self.windows = sorted({w for w in (3, m, 2 * m) if w > 1})
        self.depth = max([*self.lags, *self.windows])
        self.model: Any = None
        #: Scaled errors of the held-out forecasts, (n, horizon); None before fit.
        self.residuals: np.ndarray | None = None
        self.horizon_fit = int(self.params.get("horizon", 1))
        #: The features besides the target, when fit with :class:`SeriesFeatures`.
        self.exogenous: _Exogenous | None = None

    @property
    def feature_names(self) -> list[str]:
        """The model's features, in its column order."""
        names = [f"lag_{lag}" for lag in self.lags] + [f"mean_{w}" for w in self.windows]
        names.append("season_position")
        return names + (self.exogenous.names if self.exogenous is not None else [])

    # -- features ----------------------------------------------------------------------------
    def _rows(
        self, past: np.ndarray, position: np.ndarray, exogenous: np.ndarray | None = None
    ) -> np.ndarray:
        """Features of the next value of each row of ``past`` (the ``depth`` values before
        it, scaled, NaN where the series had not started) at season ``position``, with its
        ``exogenous`` features."""
        columns = [past[:, -lag] for lag in self.lags]
        for w in self.windows:
            window = past[:, -w:]
            seen = ~np.isnan(window)
            count = seen.sum(axis=1)
            total = np.where(seen, window, 0.0).sum(axis=1)
            columns.append(np.divide(total, count, out=np.full(len(past), np.nan), where=count > 0))
        columns.append(position.astype("float64"))
        rows = np.column_stack(columns)
        return rows if exogenous is None else np.hstack([rows, exogenous])

    def _training_rows(
        self, history: Sequence[np.ndarray], exo: _Steps | None
    ) -> tuple[np.ndarray, np.ndarray]:
        blocks, targets = [], []
        budget = MAX_ROWS
        # Every series contributes before long ones fill up.
        for i in sorted(range(len(history)), key=lambda k: len(history[k])):
            y = history[i]
            n = len(y)
            if n < 2:
                continue
            padded = np.concatenate([np.full(self.depth, np.nan), y])
            windows = np.lib.stride_tricks.sliding_window_view(padded[:-1], self.depth)
            keep = min(n - 1, max(1, budget // max(1, len(history))))
            rows = np.arange(n - keep, n)
            extra = None if exo is None else exo.values[exo.starts[i] + rows]
            blocks.append(self._rows(windows[rows], rows % self.season_length, extra))
            targets.append(y[rows])
            budget -= keep
        return np.vstack(blocks), np.concatenate(targets)

    # -- fit and forecast -----------------------------------------------------------------
    def fit(
        self,
        history: Sequence[np.ndarray],
        deadline: float | None = None,
        features: SeriesFeatures | None = None,
    ) -> None:
        if features is not None:
            check_features(features, history)
        self.exogenous = None if features is None else _Exogenous.of(features)
        scaled = [np.asarray(y, dtype="float64") / _scale(y) for y in history]
        h = self.horizon_fit
        # Conformal errors: a model fit on the history before the held-out stretch forecasts
        # each of its origins.
        origins = conformal_origins([len(y) for y in scaled], h)
        if origins:
            first: dict[int, int] = {}
            for i, cutoff in origins:
                first[i] = min(first.get(i, cutoff), cutoff)
            kept = sorted(first)
            train_exo = None
            if features is not None:
                train_exo = self._steps(features.cut(kept, [first[i] for i in kept], h))
            self.model = self._train([scaled[i][: first[i]] for i in kept], deadline, train_exo)
            exo = None
            if features is not None:
                exo = self._steps(features.cut([i for i, _ in origins], [c for _, c in origins], h))
            forecast = self._recursive([scaled[i][:c] for i, c in origins], h, exo)
            self.residuals = np.array([scaled[i][c : c + h] for i, c in origins]) - forecast
        self.model = self._train(scaled, deadline, self._steps(features))

    def _steps(self, features: SeriesFeatures | None) -> _Steps | None:
        if self.exogenous is None or features is None:
            return None
        return _Steps(self.exogenous.matrix(features), features.offsets[:-1], features.lengths)

    def _train(
        self, series: Sequence[np.ndarray], deadline: float | None, exo: _Steps | None
    ) -> Any:
        import lightgbm

        if deadline is not None and time.monotonic() > deadline:
            raise ForecastTimeout(f"{self.name} had no time left to train")
        X, y = self._training_rows(series, exo)
        model = lightgbm.LGBMRegressor(
            n_estimators=int(self.params.get("n_estimators", 300)),
            learning_rate=float(self.params.get("learning_rate", 0.05)),
            num_leaves=int(self.params.get("num_leaves", 31)),
            min_child_samples=int(self.params.get("min_child_samples", 20)),
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        )
        shift = len(self.lags) + len(self.windows) + 1
        categorical = [] if self.exogenous is None else self.exogenous.categorical
        model.fit(X, y, categorical_feature=[shift + c for c in categorical] or "auto")
        return model

    def _recursive(
        self, series: Sequence[np.ndarray], horizon: int, exo: _Steps | None
    ) -> np.ndarray:
        """Scaled forecasts, (len(series), horizon), each step fed back as the next lag."""
        past = np.full((len(series), self.depth), np.nan)
        for i, y in enumerate(series):
            tail = y[-self.depth :]
            past[i, self.depth - len(tail) :] = tail
        lengths = np.array([len(y) for y in series])
        out = np.empty((len(series), horizon))
        for step in range(horizon):
            position = (lengths + step) % self.season_length
            extra = None if exo is None else exo.values[exo.starts + exo.lengths + step]
            out[:, step] = self.model.predict(self._rows(past, position, extra))
            past = np.column_stack([past[:, 1:], out[:, step]])
        return out

    def _forecast(
        self, history: list[np.ndarray], horizon: int, q: Sequence[float], deadline: float | None
    ) -> Forecast:
        return self._forecast_with(history, horizon, q, deadline, None)

    def _forecast_with(
        self,
        history: list[np.ndarray],
        horizon: int,
        q: Sequence[float],
        deadline: float | None,
        features: SeriesFeatures | None,
    ) -> Forecast:
        if self.model is None:
            raise RuntimeError("GlobalGBM forecasts after fit")
        if self.exogenous is not None and features is None:
            raise ValueError("GlobalGBM was fit with features: it forecasts with them")
        scales = np.array([_scale(y) for y in history])
        scaled = [y / s for y, s in zip(history, scales, strict=True)]
        mean = self._recursive(scaled, horizon, self._steps(features))
        bands = {level: mean + self._error_quantile(level, horizon) for level in q}
        return Forecast(
            mean * scales[:, None], {level: v * scales[:, None] for level, v in bands.items()}
        )

    def _error_quantile(self, q: float, horizon: int) -> np.ndarray:
        """The ``q`` quantile of the held-out scaled errors at each step ahead (the last
        step's spread for steps beyond those held out; none without held-out errors)."""
        if self.residuals is None or self.residuals.size == 0:
            return np.zeros(horizon)
        per_step = np.quantile(self.residuals, q, axis=0)
        if len(per_step) < horizon:
            per_step = np.concatenate([per_step, np.full(horizon - len(per_step), per_step[-1])])
        return per_step[:horizon]


def conformal_origins(lengths: Sequence[int], horizon: int) -> list[tuple[int, int]]:
    """Where the conformal errors are measured: ``(series, cutoff)`` pairs, each forecasting
    ``[cutoff, cutoff + horizon)``. Each series' last horizon; with few series, more origins
    back from the end (half a horizon apart, reaching back at most one more horizon or a tenth
    of the series: a model fit on much less than the series, of a trending series, errs more
    than the final one will), so that a long single series still gives :data:`MIN_RESIDUALS`
    errors per step to take quantiles of."""
    eligible = [i for i, n in enumerate(lengths) if n > horizon + 2]
    if not eligible:
        return []
    per_series = min(MAX_ORIGINS, -(-MIN_RESIDUALS // len(eligible)))
    stride = max(1, horizon // 2)
    out = []
    for i in eligible:
        n = lengths[i]
        for j in range(per_series):
            cutoff = n - horizon - j * stride
            if j and cutoff < max(n - horizon - max(horizon, n // 10), horizon + 2):
                break
            out.append((i, cutoff))
    return out


def _scale(y: np.ndarray) -> float:
    scale = float(np.mean(np.abs(y))) if len(y) else 0.0
    return scale if scale > 0 else 1.0


@dataclass(frozen=True)
class _Steps:
    """The exogenous features at every timeline step, and where each series' timeline starts
    and its history ends."""

    values: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
