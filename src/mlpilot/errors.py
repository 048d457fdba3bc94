"""Errors that mlpilot raises on purpose.

Every error a user can cause is a :class:`MlpilotError` with a one-line message that names the
problem; the CLI prints that line, and the service maps each class to a SageMaker error code.
"""

from __future__ import annotations

import errno
import sys

__all__ = [
    "ConfigError",
    "DataError",
    "ExportError",
    "JobNotFoundError",
    "MlpilotError",
    "ModelPackageError",
    "PredictionInputError",
    "StorageFullError",
    "storage_failure",
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


class ExportError(MlpilotError):
    """A model cannot be written in the format asked for (a step without a converter, a
    missing optional library, an output that already exists)."""


class PredictionInputError(MlpilotError, ValueError):
    """Rows handed to a model do not match its input schema."""


class StorageFullError(MlpilotError):
    """A write was refused for want of space: a full disk, a quota, or the file-size limit."""

    code = "ResourceLimitExceeded"

    def __init__(self, message: str, errno: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.errno = errno
        #: What ran out, without the path (for an answer that should not name server paths).
        self.reason = reason or message


# What each errno means to a user, and what to do about it.
_STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (over the file-size limit)",
}


def storage_failure(exc: BaseException, where: object = None) -> StorageFullError | None:
    """The :class:`StorageFullError` behind ``exc`` (itself, or what it was raised from), or
    None when ``exc`` is not about space. ``where`` names the location when the error does not."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFullError):
            return current
        if isinstance(current, OSError) and current.errno in _STORAGE_ERRNOS:
            path = current.filename or where
            text = _STORAGE_ERRNOS[current.errno]
            message = f"{text} while writing {path}" if path else f"{text} while writing"
            message = message[0].upper() + message[1:]
            return StorageFullError(message, current.errno, text)
        if _sqlite_full(current):
            text = "the database is full (no space left on the device, or its size limit)"
            message = f"{text} while writing {where}" if where else text
            return StorageFullError(message[0].upper() + message[1:], errno.ENOSPC, text)
        current = current.__cause__ or current.__context__
    return None


def _sqlite_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full"): it reports ENOSPC so, not as OSError."""
    sqlite3 = sys.modules.get("sqlite3")  # not imported: not what raised ``exc``
    if sqlite3 is None or not isinstance(exc, sqlite3.OperationalError):
        return False
    return getattr(exc, "sqlite_errorcode", None) == 13 or "database or disk is full" in str(exc)
