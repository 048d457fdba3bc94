"""Ways to send one payload to a model, for batch transform: in-process, over HTTP to a
``serve-model`` container, or through an :class:`~mlpilot.serving.EndpointRuntime`.

An invoker is any callable ``(body, content_type, accept) -> InvocationResult``; an error
status is returned, a missing answer raises :class:`ContainerFailure`. An optional
``execution_parameters()`` method answers like ``GET /execution-parameters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from mlpilot.serving._codec import InvocationResult, ServingSettings
from mlpilot.serving._errors import ContainerFailure, EndpointUnavailableError
from mlpilot.serving._handlers import handler_for

__all__ = ["EndpointInvoker", "HttpInvoker", "Invoker", "ModelInvoker"]


class Invoker(Protocol):
    def __call__(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> InvocationResult: ...


class ModelInvoker:
    """A model package (:class:`~mlpilot.package.InferenceModel` or
    :class:`~mlpilot.package.SeriesModel`) in this process, behind the same codec as the
    container. ``environment`` is the container environment (content keys, default ``Accept``,
    ``SAGEMAKER_MAX_PAYLOAD_IN_MB``...); the process environment is not read."""

    def __init__(self, model: Any, environment: Mapping[str, str] | None = None) -> None:
        self.predictor = handler_for(model, ServingSettings.from_environment(environment or {}))
        #: For a forecasting model, the columns keying a series (batch transform keeps each
        #: series whole in one payload); None for a tabular one.
        self.series_keys: tuple[str, ...] | None = getattr(self.predictor, "series_keys", None)

    def __call__(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> InvocationResult:
        return self.predictor.handle(body, content_type, accept)

    def execution_parameters(self) -> dict[str, Any]:
        return self.predictor.settings.execution_parameters()


class HttpInvoker:
    """A ``serve-model`` (or any SageMaker-style) container at ``url``.

    ``timeout`` is ``ModelClientConfig.InvocationsTimeoutInSeconds`` (600 by default).
    """

    def __init__(self, url: str, *, timeout: float = 600.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))

    def __call__(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> InvocationResult:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        try:
            response = self._client.post(f"{self.url}/invocations", content=body, headers=headers)
        except httpx.TimeoutException:
            raise ContainerFailure(f"{self.url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise ContainerFailure(f"{self.url} gave no answer ({type(exc).__name__})") from None
        return InvocationResult(
            response.status_code, response.content, response.headers.get("content-type", "")
        )

    def execution_parameters(self) -> dict[str, Any] | None:
        """The container's ``/execution-parameters``, or None if it has none."""
        try:
            response = self._client.get(f"{self.url}/execution-parameters", timeout=5.0)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            parameters = response.json()
        except ValueError:
            return None
        return parameters if isinstance(parameters, dict) else None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpInvoker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EndpointInvoker:
    """A running :class:`~mlpilot.serving.EndpointRuntime` (its routing picks the instance)."""

    def __init__(self, runtime: Any, *, target_variant: str | None = None) -> None:
        self.runtime = runtime
        self.target_variant = target_variant

    def __call__(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> InvocationResult:
        try:
            result: InvocationResult = self.runtime.invoke(
                body, content_type=content_type, accept=accept, target_variant=self.target_variant
            )
        except EndpointUnavailableError as exc:
            raise ContainerFailure(str(exc)) from None
        return result
