"""A global gradient-boosted model: one LightGBM regressor over every series, on lags, rolling
means and the position in the season, forecasting one step at a time (recursively).

Each series is divided by its mean absolute value before training, so series of any scale
share one model. Quantiles are conformal: the model forecasts the last horizon of each series
from the history before it, and the spread of those errors at each step ahead (in the series'
own scale) is added to the forecast. Learns across series, so it suits collections of many
related series better than a model per series.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlpilot.problems.forecasting.models._base import Forecast, Forecaster, ForecastTimeout

__all__ = ["GlobalGBM"]

#: Training rows at most (the latest of each series are kept first).
MAX_ROWS = 200_000


class GlobalGBM(Forecaster):
    name = "gbm"
    description = "Global LightGBM over lags, rolling means and season position (recursive)"

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

    # -- features ----------------------------------------------------------------------------
    def _rows(self, past: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Features of the next value of each row of ``past`` (the ``depth`` values before
        it, scaled, NaN where the series had not started) at season ``position``."""
        columns = [past[:, -lag] for lag in self.lags]
        for w in self.windows:
            window = past[:, -w:]
            seen = ~np.isnan(window)
            count = seen.sum(axis=1)
            total = np.where(seen, window, 0.0).sum(axis=1)
            columns.append(np.divide(total, count, out=np.full(len(past), np.nan), where=count > 0))
        columns.append(position.astype("float64"))
        return np.column_stack(columns)

    def _training_rows(self, history: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        blocks, targets = [], []
        budget = MAX_ROWS
        for y in sorted(history, key=len):  # every series contributes before long ones fill up
            n = len(y)
            if n < 2:
                continue
            padded = np.concatenate([np.full(self.depth, np.nan), y])
            windows = np.lib.stride_tricks.sliding_window_view(padded[:-1], self.depth)
            keep = min(n - 1, max(1, budget // max(1, len(history))))
            rows = np.arange(n - keep, n)
            blocks.append(self._rows(windows[rows], rows % self.season_length))
            targets.append(y[rows])
            budget -= keep
        return np.vstack(blocks), np.concatenate(targets)

    # -- fit and forecast -----------------------------------------------------------------
    def fit(self, history: Sequence[np.ndarray], deadline: float | None = None) -> None:
        scaled = [y / _scale(y) for y in history]
        h = self.horizon_fit
        # Conformal errors: a model fit without each series' last horizon forecasts it.
        held = [y for y in scaled if len(y) > h + 2]
        if held:
            self.model = self._train([y[:-h] for y in held], deadline)
            forecast = self._recursive([y[:-h] for y in held], h)
            self.residuals = np.array([y[-h:] for y in held]) - forecast
        self.model = self._train(scaled, deadline)

    def _train(self, series: Sequence[np.ndarray], deadline: float | None) -> Any:
        import lightgbm

        if deadline is not None and time.monotonic() > deadline:
            raise ForecastTimeout(f"{self.name} had no time left to train")
        X, y = self._training_rows(series)
        model = lightgbm.LGBMRegressor(
            n_estimators=int(self.params.get("n_estimators", 300)),
            learning_rate=float(self.params.get("learning_rate", 0.05)),
            num_leaves=int(self.params.get("num_leaves", 31)),
            min_child_samples=int(self.params.get("min_child_samples", 20)),
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        )
        model.fit(X, y)
        return model

    def _recursive(self, series: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        """Scaled forecasts, (len(series), horizon), each step fed back as the next lag."""
        past = np.full((len(series), self.depth), np.nan)
        for i, y in enumerate(series):
            tail = y[-self.depth :]
            past[i, self.depth - len(tail) :] = tail
        lengths = np.array([len(y) for y in series])
        out = np.empty((len(series), horizon))
        for step in range(horizon):
            position = (lengths + step) % self.season_length
            out[:, step] = self.model.predict(self._rows(past, position))
            past = np.column_stack([past[:, 1:], out[:, step]])
        return out

    def _forecast(
        self, history: list[np.ndarray], horizon: int, q: Sequence[float], deadline: float | None
    ) -> Forecast:
        if self.model is None:
            raise RuntimeError("GlobalGBM forecasts after fit")
        scales = np.array([_scale(y) for y in history])
        mean = self._recursive([y / s for y, s in zip(history, scales, strict=True)], horizon)
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


def _scale(y: np.ndarray) -> float:
    scale = float(np.mean(np.abs(y))) if len(y) else 0.0
    return scale if scale > 0 else 1.0
