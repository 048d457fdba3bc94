"""The forecasting model package: a trained forecaster of series, read without the training
stack.

The payload is the job's predictor (``mlpilot.problems.forecasting.ForecastPredictor``), pickled
whole: this layer sits below ``problems`` and knows it only by :class:`SeriesPredictor`, the
two methods it calls. The manifest records what a reader needs without unpickling it: the
series settings (key columns, timestamp, target, frequency, horizon, quantiles), the models and
their weights, the output columns and the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from mlpilot.errors import ModelPackageError
from mlpilot.package._files import FORECASTING, manifest, publish, read_package

__all__ = ["SeriesModel", "SeriesPredictor"]


class SeriesPredictor(Protocol):
    """What a forecasting package's payload does."""

    def forecast(self, table: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per series and forecast timestamp: the key columns, the timestamp, ``mean``
        and one column per quantile; from ``table`` (the training schema) or, with None, from
        the training history."""
        ...

    def describe(self) -> dict[str, Any]:
        """The settings a reader of the manifest needs (JSON-ready)."""
        ...


@dataclass(frozen=True)
class SeriesFacts:
    """A forecasting package's facts, as its manifest gives them."""

    #: The item id column, then the grouping columns.
    key_columns: tuple[str, ...]
    timestamp: str
    target: str
    #: The quantile columns of a forecast (``p10``…), lowest level first.
    quantiles: tuple[str, ...]
    horizon: int
    #: The pandas offset alias of the series' grid.
    frequency: str
    candidate_name: str

    @classmethod
    def of(cls, info: dict[str, Any]) -> SeriesFacts:
        return cls(
            tuple(info["key_columns"]),
            str(info["timestamp"]),
            str(info["target"]),
            tuple(info["quantiles"]),
            int(info["horizon"]),
            str(info["frequency"]),
            str(info["candidate"].get("CandidateName", "")),
        )


class SeriesModel:
    """A trained forecaster, ready to forecast from a history table (or from the history it
    was trained on).

    Parameters
    ----------
    predictor:
        The unpickled payload.
    info:
        The manifest: ``problem_type`` ``TimeSeriesForecasting``, the predictor's
        :meth:`~SeriesPredictor.describe` (``key_columns``, ``timestamp``, ``target``,
        ``frequency``, ``horizon``, ``quantiles``, ``output_columns``, ``weights``…), the
        candidate, library versions.
    """

    def __init__(self, predictor: SeriesPredictor, info: dict[str, Any]) -> None:
        self.predictor = predictor
        self.info = info

    @classmethod
    def build(cls, predictor: SeriesPredictor, *, candidate: dict[str, Any]) -> SeriesModel:
        return cls(predictor, manifest(FORECASTING, candidate, **predictor.describe()))

    # -- facts ----------------------------------------------------------------------------
    @property
    def problem_type(self) -> str:
        return FORECASTING

    @property
    def facts(self) -> SeriesFacts:
        """What the manifest says of the forecasts (columns, quantiles, horizon, grid)."""
        return SeriesFacts.of(self.info)

    # -- forecasting ----------------------------------------------------------------------
    def forecast(self, table: pd.DataFrame | None = None) -> pd.DataFrame:
        """``horizon`` rows per series, after its last target value: the key columns, the
        timestamp, ``mean`` and the quantile columns. ``table`` holds history rows (and
        future-dated rows with an empty target carrying known covariates) in the training
        schema; None forecasts from the training history. Raises
        :class:`~mlpilot.errors.PredictionInputError` for a table it cannot forecast from."""
        return self.predictor.forecast(table)

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path, *, archive: bool = True) -> Path:
        """Write the package atomically: a half-written package is never visible."""
        return publish(Path(directory), self.info, self.predictor, archive=archive)

    @classmethod
    def load(cls, directory: str | Path, *, strict: bool = False) -> SeriesModel:
        """Load a forecasting package folder (or its ``model.tar.gz``), checking library
        versions as :meth:`InferenceModel.load` does; a tabular package is a
        :class:`ModelPackageError`."""
        info, predictor = read_package(directory, strict=strict, accept=_forecasting_only)
        return cls(predictor, info)


def _forecasting_only(path: Path, info: dict[str, Any]) -> None:
    if info.get("problem_type") != FORECASTING:
        raise ModelPackageError(
            f"{path} holds a {info.get('problem_type', 'tabular')} model, not a {FORECASTING} "
            "one: load it with mlpilot.load_model"
        )
