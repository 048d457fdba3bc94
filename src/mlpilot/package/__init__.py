"""The model package: save, load (with version checks), predict rows (:class:`InferenceModel`)
or forecast series (:class:`SeriesModel`); :func:`load_model` gives whichever a package holds."""

from mlpilot.package._files import (
    ARCHIVE,
    FORECASTING,
    PIPELINE,
    ModelVersionWarning,
    UnverifiedPackageWarning,
)
from mlpilot.package._load import load_model
from mlpilot.package._model import InferenceModel, package_bytes
from mlpilot.package._series import SeriesFacts, SeriesModel, SeriesPredictor
from mlpilot.package._versions import compare_versions, installed_versions

__all__ = [
    "ARCHIVE",
    "FORECASTING",
    "PIPELINE",
    "InferenceModel",
    "ModelVersionWarning",
    "SeriesFacts",
    "SeriesModel",
    "SeriesPredictor",
    "UnverifiedPackageWarning",
    "compare_versions",
    "installed_versions",
    "load_model",
    "package_bytes",
]
