"""The model package: save, load (with version checks) and predict."""

from mlpilot.package._model import (
    ARCHIVE,
    PIPELINE,
    InferenceModel,
    ModelVersionWarning,
    load_model,
    package_bytes,
)
from mlpilot.package._versions import compare_versions, installed_versions

__all__ = [
    "ARCHIVE",
    "PIPELINE",
    "InferenceModel",
    "ModelVersionWarning",
    "compare_versions",
    "installed_versions",
    "load_model",
    "package_bytes",
]
