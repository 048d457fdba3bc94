"""Small forecasting packages, built from a predictor fitted directly on prepared series (no
job): for the predictor's tests and the CLI's.

The job folder :func:`job_folder` writes holds only what ``mlpilot predict`` reads of a job
(``job.json`` naming the best candidate's package), until forecasting jobs write their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot.config import ForecastingConfig
from mlpilot.data import Frequency, read_table
from mlpilot.package import SeriesModel
from mlpilot.problems.forecasting import ForecastPredictor, SeriesSettings

#: The tourism set's settings: nine quarterly series, forecast two years ahead.
TOURISM_SETTINGS: dict[str, Any] = {
    "target": "Trips",
    "timestamp": "timestamp",
    "item_id": "item_id",
    "frequency": "QS-JAN",
    "horizon": 8,
}


@cache
def _table(path: str) -> pd.DataFrame:
    return read_table(path)


def table(path: Any) -> pd.DataFrame:
    """A test data set as a job reads it (raw strings), a fresh copy each time."""
    return _table(str(path)).copy()


def fit_predictor(
    frame: pd.DataFrame, weights: Mapping[str, float], **settings: Any
) -> ForecastPredictor:
    """A predictor of ``weights``' models fitted on ``frame`` (``settings``: ForecastingConfig's
    fields)."""
    config = ForecastingConfig(**settings)
    series = SeriesSettings.of(config, Frequency.parse(config.frequency)).prepare(frame)
    return ForecastPredictor.fit(config, series, weights, params={"gbm": {"n_estimators": 50}})


def save_package(predictor: ForecastPredictor, directory: Path, name: str = "best") -> Path:
    """The predictor as a forecasting package at ``directory``."""
    return SeriesModel.build(predictor, candidate={"CandidateName": name}).save(directory)


def job_folder(root: Path, package: Path, name: str = "sales") -> Path:
    """A completed job's folder whose best candidate is ``package``."""
    root.mkdir(parents=True, exist_ok=True)
    record = {
        "AutoMLJobName": name,
        "AutoMLJobStatus": "Completed",
        "BestCandidate": {"CandidateName": "best", "Mlpilot": {"FinalModel": str(package)}},
    }
    (root / "job.json").write_text(json.dumps(record))
    return root
