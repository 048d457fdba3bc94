"""Loading whichever model a job or package holds."""

from __future__ import annotations

from pathlib import Path

from mlpilot._layout import model_location
from mlpilot.errors import JobNotFoundError
from mlpilot.package._crypto import Keyring
from mlpilot.package._files import FORECASTING, read_package
from mlpilot.package._model import InferenceModel
from mlpilot.package._series import SeriesModel

__all__ = ["load_model"]


def load_model(
    path: str | Path,
    *,
    candidate: str | None = None,
    strict: bool = False,
    keyring: Keyring | None = None,
) -> InferenceModel | SeriesModel:
    """Load a model from a job's output folder (its best candidate, or ``candidate``), a model
    package folder, or a ``model.tar.gz``.

    The manifest's ``problem_type`` decides what comes back: a :class:`SeriesModel` (which
    forecasts) for a ``TimeSeriesForecasting`` package, else an :class:`InferenceModel` (which
    predicts rows). An encrypted package is decrypted with ``keyring`` (by default the keys
    the service handed this process).
    """
    root = Path(path)
    if (root / "job.json").exists():
        location = model_location(root, candidate)
    elif candidate is not None:
        raise JobNotFoundError(f"{root} is not a job folder (no job.json); cannot pick a candidate")
    elif not root.exists():
        raise JobNotFoundError(f"No job or model at {root}")
    else:
        location = root
    info, payload = read_package(location, strict=strict, keyring=keyring)
    if info.get("problem_type") == FORECASTING:
        return SeriesModel(payload, info)
    return InferenceModel(payload, info)
