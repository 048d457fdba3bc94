"""The model package: save, load (with version checks), predict rows (:class:`InferenceModel`)
or forecast series (:class:`SeriesModel`); :func:`load_model` gives whichever a package holds."""

from mlpilot.package._crypto import (
    KEY_FILES_VARIABLE,
    EncryptingWriter,
    Keyring,
    check_key_name,
    decrypt_file,
    is_encrypted,
    read_key_file,
)
from mlpilot.package._files import (
    ARCHIVE,
    FORECASTING,
    MANIFEST,
    PIPELINE,
    ModelVersionWarning,
    UnverifiedPackageWarning,
    encrypt_package,
)
from mlpilot.package._load import load_model
from mlpilot.package._model import InferenceModel, package_bytes
from mlpilot.package._series import SeriesFacts, SeriesModel, SeriesPredictor
from mlpilot.package._versions import compare_versions, installed_versions

__all__ = [
    "ARCHIVE",
    "FORECASTING",
    "KEY_FILES_VARIABLE",
    "MANIFEST",
    "PIPELINE",
    "EncryptingWriter",
    "InferenceModel",
    "Keyring",
    "ModelVersionWarning",
    "SeriesFacts",
    "SeriesModel",
    "SeriesPredictor",
    "UnverifiedPackageWarning",
    "check_key_name",
    "compare_versions",
    "decrypt_file",
    "encrypt_package",
    "installed_versions",
    "is_encrypted",
    "load_model",
    "package_bytes",
    "read_key_file",
]
