"""Scoring forecasting models on a holdout, for a champion/challenger round
(:mod:`._retrain`).

A forecasting holdout is a long table in the training schema: the item id (and grouping)
columns, the timestamp, the target and the covariates. Each item's last ``ForecastHorizon``
rows (by timestamp) are the truth; the rows before them are the history both models forecast
from. The truth rows go with the history, their target emptied, so that models reading
covariates get the ones known over the horizon, as in the job's backtests. The forecasts are
matched to the truth by item and timestamp and scored with
:func:`mlpilot.metrics.score_forecasts`, the function the job's backtests use, MASE scaled by
each item's history in the holdout.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.service._retrain import RetrainError

__all__ = ["SeriesHoldout", "score_series_package", "series_columns"]


def series_columns(model: Any) -> list[str]:
    """The columns of a forecasting package's training data but its target: the key columns,
    the timestamp, then the covariates and static attributes the job read."""
    info = model.info
    features = info.get("feature_columns")
    if features is None:  # a package from before the manifest listed them
        features = [*(info.get("covariates") or {}), *(info.get("static_attributes") or {})]
    return [*info["key_columns"], str(info["timestamp"]), *features]


def _instants(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC instants (naive ones as given), NaT where unreadable."""
    stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps


def _key_text(key: tuple[str, ...]) -> str:
    return " / ".join(key)


@dataclass(frozen=True)
class SeriesHoldout:
    """A forecasting holdout, split once for both models."""

    #: What each model forecasts from: the history rows, then the truth rows with an empty
    #: target (their covariates are the known future ones).
    inputs: pd.DataFrame
    #: The truth: the key columns (as text), ``_instant`` and ``_actual`` (NaN: not scored).
    truth: pd.DataFrame
    #: Each item's target values before its truth, oldest first (MASE's scale).
    history: dict[Hashable, np.ndarray]
    key_columns: tuple[str, ...]
    timestamp: str
    horizon: int

    @property
    def items(self) -> int:
        return len(self.history)

    @property
    def points(self) -> int:
        """The truth points with a value: what is scored."""
        return int(self.truth["_actual"].notna().sum())

    @classmethod
    def of(cls, model: Any, holdout: pd.DataFrame) -> SeriesHoldout:
        """``holdout`` split for ``model``'s series settings (a :class:`SeriesModel`); raises
        :class:`RetrainError` naming what is wrong (columns, short items, timestamps, targets)."""
        from mlpilot.problems.forecasting import MIN_HISTORY

        facts = model.facts
        keys, timestamp, target = list(facts.key_columns), facts.timestamp, facts.target
        missing = [c for c in [*keys, timestamp, target] if c not in holdout.columns]
        if missing:
            raise RetrainError(
                f"The holdout lacks the forecasting column(s) {', '.join(missing)}: it must be a "
                f"long table of item ({', '.join(keys)}), timestamp ({timestamp}) and target "
                f"({target}), each item's last {facts.horizon} points the truth"
            )
        rows = holdout.reset_index(drop=True)
        instants = _instants(rows[timestamp])
        unreadable = instants.isna() & rows[timestamp].notna()
        if unreadable.any():
            raise RetrainError(
                f"The holdout's {timestamp} has value(s) that are not timestamps, such as "
                f"{rows.loc[unreadable, timestamp].iloc[0]!r}"
            )
        key_text = rows[keys].astype(str)
        order = (
            pd.concat([key_text, instants.rename("_instant")], axis=1)
            .sort_values([*keys, "_instant"], kind="stable")
            .index
        )
        rows, key_text, instants = rows.loc[order], key_text.loc[order], instants.loc[order]
        needed = facts.horizon + MIN_HISTORY
        sizes = key_text.groupby(keys, sort=False).size()
        short = sizes[sizes < needed]
        if len(short):
            first = short.index[0]
            more = f"; {len(short) - 1} more item(s) too short" if len(short) > 1 else ""
            raise RetrainError(
                f"The holdout's item {_key_text(first if isinstance(first, tuple) else (first,))} "
                f"has {int(short.iloc[0])} point(s): each item needs at least {needed} "
                f"(ForecastHorizon {facts.horizon} to score, after at least {MIN_HISTORY} of "
                f"history){more}"
            )
        position = key_text.groupby(keys, sort=False).cumcount(ascending=False)
        is_truth = (position < facts.horizon).to_numpy()
        actual = pd.to_numeric(rows[target], errors="coerce")
        given = rows[target].notna() & (rows[target].astype(str).str.strip() != "")
        bad = given & actual.isna()
        if bad.any():
            raise RetrainError(
                f"The holdout's target {target} has value(s) that are not numbers, such as "
                f"{rows.loc[bad, target].iloc[0]!r}"
            )
        future = rows[is_truth].copy()
        future[target] = np.nan
        inputs = pd.concat([rows[~is_truth], future], ignore_index=True)
        truth = key_text[is_truth].reset_index(drop=True)
        truth["_instant"] = instants[is_truth].to_numpy()
        truth["_actual"] = actual[is_truth].to_numpy(dtype=float)
        if not truth["_actual"].notna().any():
            raise RetrainError(
                f"The holdout has no value of its target {target} among each item's last "
                f"{facts.horizon} points: nothing to score"
            )
        past: dict[Hashable, list[float]] = {}
        keyed = key_text[~is_truth].itertuples(index=False, name=None)
        for key, value in zip(keyed, actual[~is_truth].to_numpy(dtype=float), strict=True):
            past.setdefault(key, []).append(value)
        history = {key: np.asarray(v, dtype=float) for key, v in past.items()}
        return cls(inputs, truth, history, tuple(keys), timestamp, facts.horizon)

    def score(self, model: Any, metric: str) -> float:
        """``metric`` (a forecasting objective) of ``model``'s forecasts of the truth."""
        from mlpilot.errors import PredictionInputError
        from mlpilot.metrics import score_forecasts, season_length

        facts = model.facts
        if (facts.key_columns, facts.timestamp, facts.horizon) != (
            self.key_columns,
            self.timestamp,
            self.horizon,
        ):
            raise RetrainError(
                f"Model {facts.candidate_name} forecasts another series layout (keys, timestamp "
                "or horizon) than the champion's"
            )
        try:
            forecast = model.forecast(self.inputs)
        except PredictionInputError as exc:
            raise RetrainError(f"The holdout cannot be forecast: {exc}") from None
        keys = list(self.key_columns)
        made = forecast[keys].astype(str)
        made["_instant"] = _instants(forecast[self.timestamp]).to_numpy()
        for column in ("mean", *facts.quantiles):
            made[column] = forecast[column].to_numpy(dtype=float)
        joined = self.truth.merge(made, on=[*keys, "_instant"], how="left", validate="one_to_one")
        unmatched = joined["mean"].isna()
        if unmatched.any():
            first = joined[unmatched].iloc[0]
            raise RetrainError(
                f"The holdout's item {_key_text(tuple(first[keys]))}: its last {self.horizon} "
                f"timestamps are not the {self.horizon} steps of the {facts.frequency} grid "
                f"after its history (no forecast for {first['_instant']})"
            )
        items = list(joined[keys].itertuples(index=False, name=None))
        season = int(model.info.get("season_length") or season_length(facts.frequency))
        scores = score_forecasts(
            joined["_actual"].to_numpy(),
            joined["mean"].to_numpy(),
            {q: joined[q].to_numpy() for q in facts.quantiles},
            item_ids=items,
            history=self.history,
            season=season,
        )
        if metric not in scores:
            raise RetrainError(
                f"The job's objective {metric} cannot be scored on a forecasting holdout by "
                f"mlpilot retrain (it scores {', '.join(scores)})"
            )
        return float(scores[metric])


def score_series_package(model: Any, holdout: pd.DataFrame, metric: str) -> float:
    """``metric`` of a forecasting package's forecasts of each item's last ``horizon`` points
    of ``holdout``, from the points before them."""
    return SeriesHoldout.of(model, holdout).score(model, metric)
