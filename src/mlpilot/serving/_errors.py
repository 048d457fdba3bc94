"""Errors of the data plane, each with the SageMaker error code the service answers with."""

from __future__ import annotations

from mlpilot.errors import MlpilotError

__all__ = [
    "ContainerFailure",
    "EndpointRuntimeError",
    "EndpointStartError",
    "EndpointUnavailableError",
    "InvocationError",
    "TransformError",
    "UnknownVariantError",
]


class InvocationError(MlpilotError):
    """A request the model container refuses, with the HTTP status it answers.

    400 bad rows or content keys, 406 unsupported ``Accept``, 413 payload too large,
    415 unsupported ``Content-Type``, 500 an internal failure while predicting.
    """

    code = "ModelError"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EndpointRuntimeError(MlpilotError):
    """Something the endpoint runtime itself could not do."""

    code = "ValidationError"


class UnknownVariantError(EndpointRuntimeError):
    """A target variant (or a variant to update) that the endpoint does not have."""

    code = "ValidationError"


class EndpointStartError(EndpointRuntimeError):
    """Instances did not come up (exited, or no answer to ``/ping`` in time); the message is the
    endpoint's ``FailureReason``."""

    code = "ValidationError"


class EndpointUnavailableError(EndpointRuntimeError):
    """No instance can take the request now (stopped endpoint, all weights 0, all dead)."""

    code = "ServiceUnavailable"


class ContainerFailure(EndpointRuntimeError):
    """The container gave no HTTP answer: it timed out, crashed mid-request or refused the
    connection. InvokeEndpoint reports it as ``ModelError`` (``OriginalStatusCode`` = ``status``,
    0 when there was no answer)."""

    code = "ModelError"

    def __init__(self, message: str, *, variant: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.variant = variant
        self.status = status


class TransformError(MlpilotError):
    """A batch transform failed; the message (naming the input object and line) is the job's
    ``FailureReason``."""

    code = "ValidationException"
