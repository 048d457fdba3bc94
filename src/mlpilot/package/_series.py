"""The forecasting model package: a trained forecaster of series, read without the training
stack.

The payload is the job's predictor (``mlpilot.problems.forecasting.ForecastPredictor``), pickled
whole: this layer sits below ``problems`` and knows it only by :class:`SeriesPredictor`, the
two methods it calls. The manifest records what a reader needs without unpickling it: the
series settings (key columns, timestamp, target, frequency, horizon, quantiles), the models and
their weights, the output columns and the candidate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from mlpilot.errors import ModelPackageError
from mlpilot.package._files import FORECASTING, FORMAT_VERSION, publish, read_package
from mlpilot.package._versions import installed_versions

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
        info = {
            "format_version": FORMAT_VERSION,
            "problem_type": FORECASTING,
            **predictor.describe(),
            "candidate": candidate,
            "versions": installed_versions(),
            "created": time.time(),
        }
        return cls(predictor, info)

    # -- facts ----------------------------------------------------------------------------
    @property
    def problem_type(self) -> str:
        return FORECASTING

    @property
    def key_columns(self) -> list[str]:
        """The item id column, then the grouping columns."""
        return list(self.info["key_columns"])

    @property
    def timestamp(self) -> str:
        return str(self.info["timestamp"])

    @property
    def target(self) -> str:
        return str(self.info["target"])

    @property
    def quantiles(self) -> list[str]:
        """The quantile columns of a forecast (``p10``…), lowest level first."""
        return list(self.info["quantiles"])

    @property
    def horizon(self) -> int:
        return int(self.info["horizon"])

    @property
    def frequency(self) -> str:
        """The pandas offset alias of the series' grid."""
        return str(self.info["frequency"])

    @property
    def candidate_name(self) -> str:
        return str(self.info["candidate"].get("CandidateName", ""))

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
