"""Errors that mlpilot raises on purpose.

Every error a user can cause is a :class:`MlpilotError` with a one-line message that names the
problem; the CLI prints that line, and the service maps each class to a SageMaker error code.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "JobNotFoundError",
    "MlpilotError",
    "ModelPackageError",
    "PredictionInputError",
]


class MlpilotError(Exception):
    """Base class: something the user can fix, described in one line."""

    #: The SageMaker error code the service layer answers with.
    code = "ValidationException"


class ConfigError(MlpilotError, ValueError):
    """A job setting is missing, out of range or inconsistent with another."""


class DataError(MlpilotError, ValueError):
    """The input data cannot be used as given (unreadable, empty, missing target, ...)."""


class JobNotFoundError(MlpilotError, LookupError):
    """No job (or model package) at the given location."""

    code = "ResourceNotFound"


class ModelPackageError(MlpilotError):
    """A model package is incomplete, corrupt or was written by incompatible versions."""


class PredictionInputError(MlpilotError, ValueError):
    """Rows handed to a model do not match its input schema."""
