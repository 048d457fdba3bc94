"""Errors as the SageMaker APIs return them: a code (``__type``), a message, an HTTP status."""

from __future__ import annotations

from typing import Any

__all__ = ["InvocationError", "ServiceError", "in_use", "not_found", "validation"]

_MAX_MESSAGE = 4096


class ServiceError(Exception):
    """A control-plane error: ``{"__type": code, "message": ...}`` with HTTP ``status``.

    Codes are SageMaker's: ``ValidationException``, ``ResourceNotFound``, ``ResourceInUse``,
    ``ResourceLimitExceeded``; plus the protocol's own (``UnknownOperationException``,
    ``SerializationException``, signature errors).
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        # Messages quote request values; a bound keeps an error smaller than what caused it.
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 1] + "…"
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        # botocore reads "message", other SDKs "Message": send both.
        return {"__type": self.code, "message": self.message, "Message": self.message}


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFound", message)


def in_use(message: str) -> ServiceError:
    return ServiceError("ResourceInUse", message)


class InvocationError(Exception):
    """A sagemaker-runtime error: code in ``x-amzn-ErrorType``, extra members in the body."""

    def __init__(self, code: str, message: str, status: int, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "Message": self.message, **self.extra}
