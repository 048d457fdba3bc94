"""The model package: save, load (with version checks), predict rows (:class:`InferenceModel`)
or forecast series (:class:`SeriesModel`); :func:`load_model` gives whichever a package holds."""

from mlpilot.package._card import CARD_VERSION, card_markdown, read_card
from mlpilot.package._crypto import (
    KEY_FILES_VARIABLE,
    MAGIC,
    EncryptingWriter,
    Keyring,
    check_key_name,
    decrypt_file,
    is_encrypted,
    read_key_file,
)
from mlpilot.package._files import (
    ARCHIVE,
    CARD_JSON,
    CARD_MARKDOWN,
    FORECASTING,
    MANIFEST,
    PIPELINE,
    ModelVersionWarning,
    UnverifiedPackageWarning,
    encrypt_package,
    load_payload,
    seal_files,
    verify_package,
)
from mlpilot.package._load import load_model
from mlpilot.package._model import InferenceModel, package_bytes
from mlpilot.package._series import SeriesFacts, SeriesModel, SeriesPredictor
from mlpilot.package._versions import compare_versions, installed_versions

__all__ = [
    "ARCHIVE",
    "CARD_JSON",
    "CARD_MARKDOWN",
    "CARD_VERSION",
    "FORECASTING",
    "KEY_FILES_VARIABLE",
    "MAGIC",
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
    "card_markdown",
    "check_key_name",
    "compare_versions",
    "decrypt_file",
    "encrypt_package",
    "installed_versions",
    "is_encrypted",
    "load_model",
    "load_payload",
    "package_bytes",
    "read_card",
    "read_key_file",
    "seal_files",
    "verify_package",
]
