"""The model container's HTTP app: ``GET /ping``, ``POST /invocations``,
``GET /execution-parameters`` for one model, loaded before the app is built."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlpilot.serving._codec import ERROR_CONTENT_TYPE, InvocationResult, ServingSettings
from mlpilot.serving._explainer import EXPLANATIONS_HEADER
from mlpilot.serving._handlers import explainer_for, handler_for

__all__ = ["INLINE_BYTES", "create_app"]

#: Bodies up to this size are predicted on the event loop: a thread hop costs more than the
#: few milliseconds such a prediction blocks the loop. Larger ones go to the thread pool, so
#: ``/ping`` stays answered while a big batch is predicted.
INLINE_BYTES = 64 * 1024


def _response(result: InvocationResult) -> Response:
    return Response(
        result.body, status_code=result.status, headers={"content-type": result.content_type}
    )


def _too_large(size: int, limit: int) -> Response:
    message = f"payload of {size:,} bytes is over the limit of {limit:,} bytes"
    return Response(message, status_code=413, headers={"content-type": ERROR_CONTENT_TYPE})


def create_app(model: Any, settings: ServingSettings | None = None) -> Starlette:
    """A Starlette app serving ``model`` (a tabular or a forecasting package) with ``settings``
    (from the process environment when omitted). The model is ready when this returns, so
    ``/ping`` answers 200 at once."""
    predictor = handler_for(model, settings)
    explainer = explainer_for(predictor)
    limit = predictor.settings.max_payload_bytes
    parameters = predictor.settings.execution_parameters()

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def execution_parameters(request: Request) -> Response:
        return JSONResponse(parameters)

    async def invocations(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return _too_large(int(declared), limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:  # chunked upload over the limit: stop reading
                return _too_large(size, limit)
            chunks.append(chunk)
        body = b"".join(chunks)
        content_type = request.headers.get("content-type")
        accept = request.headers.get("accept")
        enable = request.headers.get(EXPLANATIONS_HEADER)
        if explainer is not None:
            if len(body) <= INLINE_BYTES:
                result = explainer.handle(body, content_type, accept, enable)
            else:
                result = await run_in_threadpool(
                    explainer.handle, body, content_type, accept, enable
                )
            return _response(result)
        if enable is not None:
            message = (
                f"{EXPLANATIONS_HEADER} was sent, but this container has no explainer: "
                "deploy it with an ExplainerConfig"
            )
            return Response(message, status_code=400, headers={"content-type": ERROR_CONTENT_TYPE})
        if len(body) <= INLINE_BYTES:
            result = predictor.handle(body, content_type, accept)
        else:
            result = await run_in_threadpool(predictor.handle, body, content_type, accept)
        return _response(result)

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/execution-parameters", execution_parameters, methods=["GET"]),
        ]
    )
    app.state.predictor = predictor
    return app
