"""The HTTP front: SageMaker's control plane (AWS JSON 1.1, ``POST /`` with ``X-Amz-Target``)
and, beside it, the runtime's ``POST /endpoints/{name}/invocations``.

Each control-plane call: authenticate → parse → validate against botocore's input shape →
run the operation (in a thread: operations touch the database and the file system) → keep only
the output shape's members → JSON. Errors come back in the shapes AWS clients parse.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlpilot.errors import storage_failure
from mlpilot.service._auth import verify_signature
from mlpilot.service._automl import AutoMLOperations
from mlpilot.service._config import ServiceConfig
from mlpilot.service._deploy import DeployOperations
from mlpilot.service._endpoint_host import EndpointHost
from mlpilot.service._errors import InvocationError, ServiceError
from mlpilot.service._jobs import JobManager
from mlpilot.service._kms import export_keys
from mlpilot.service._limits import BodyDeadline, Throttle
from mlpilot.service._paths import check_request_uris
from mlpilot.service._policies import RetrainPolicies
from mlpilot.service._registry import RegistryOperations
from mlpilot.service._retrain import APPROVAL_HEADER
from mlpilot.service._shapes import (
    MAX_REQUEST_BYTES,
    conform_output,
    parse_body,
    validate_input,
)
from mlpilot.service._store import Store
from mlpilot.service._transforms import TransformManager, TransformOperations

__all__ = [
    "POLICIES",
    "QUEUE_LENGTH",
    "QUEUE_POSITION",
    "RESUMES",
    "RESUME_MAX_CANDIDATES",
    "RESUME_SECONDS",
    "RESUME_TIME",
    "Service",
    "create_app",
]

log = logging.getLogger("mlpilot.service")
JSON_11 = "application/x-amz-json-1.1"
#: Response headers of DescribeAutoMLJob[V2] for a queued job: its place (1 = next to start)
#: and how many wait in all. boto3 shows them in ``ResponseMetadata["HTTPHeaders"]``.
QUEUE_POSITION = "x-mlpilot-queue-position"
QUEUE_LENGTH = "x-mlpilot-queue-length"
#: Response headers of DescribeAutoMLJob[V2] for a job resumed at least once (AddTags with
#: mlpilot:ResumeWithSeconds): how many resumes (the running one included), and the latest
#: one's added seconds, its cap on new candidates (if it set one) and when it was asked for or
#: began (epoch seconds).
RESUMES = "x-mlpilot-resumes"
RESUME_SECONDS = "x-mlpilot-resume-seconds"
RESUME_MAX_CANDIDATES = "x-mlpilot-resume-max-candidates"
RESUME_TIME = "x-mlpilot-resume-time"
_DESCRIBE_JOB = ("DescribeAutoMLJob", "DescribeAutoMLJobV2")
#: mlpilot's own routes for retraining policies (no SageMaker operation holds them).
POLICIES = "/mlpilot/retrain-policies"


class Service:
    """The service's parts, wired together; :func:`create_app` puts HTTP in front."""

    def __init__(self, config: ServiceConfig) -> None:
        # A new data folder is the service user's alone: it holds data, models and logs.
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.config = config
        export_keys(config)
        self.store = Store(config.database_url)
        self.jobs = JobManager(config, self.store)
        self.endpoints = EndpointHost(config, self.store)
        self.transforms = TransformManager(config, self.store)
        self.registry = RegistryOperations(config, self.store)
        self.deploy = DeployOperations(config, self.store, self.endpoints, self.registry)
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.add_operations(AutoMLOperations(config, self.store, self.jobs))
        self.add_operations(self.deploy)
        self.add_operations(self.registry)
        self.add_operations(TransformOperations(config, self.store, self.transforms, self.registry))
        self.jobs.on_deploy = self._deploy_job
        self.policies = RetrainPolicies(self)
        self._deploying: set[str] = set()
        self._deploy_lock = threading.Lock()

    def add_operations(self, handler: Any) -> None:
        for name in dir(handler):
            if name[:1].isupper():
                self.operations[name] = getattr(handler, name)

    def open(self) -> None:
        self.jobs.open()
        self.transforms.open()
        self.endpoints.restore()
        self.policies.open()

    def close(self) -> None:
        self.policies.close()
        self.jobs.close(stop_jobs=True)
        self.transforms.close()
        self.endpoints.close()
        self.store.close()

    # -- ModelDeployConfig ----------------------------------------------------------------
    def _deploy_job(self, row: dict[str, Any]) -> None:
        with self._deploy_lock:
            if row["name"] in self._deploying:
                return
            self._deploying.add(row["name"])
        threading.Thread(target=self._deploy, args=(row,), daemon=True).start()

    def _deploy(self, row: dict[str, Any]) -> None:
        """Deploy a completed job's best candidate (model, endpoint configuration, endpoint),
        then report the job Completed with ModelDeployResult, or ModelDeploymentError."""
        name = row["name"]
        record = dict(row["record"])
        settings = record.get("ModelDeployConfig") or {}
        endpoint = settings.get("EndpointName") or f"{name}-endpoint"
        secondary, note = "Completed", ""
        try:
            container = record["BestCandidate"]["InferenceContainers"][0]
            model = f"{endpoint}-model"[:63].rstrip("-")
            config = f"{endpoint}-config"[:63].rstrip("-")
            self.call(
                "CreateModel",
                {
                    "ModelName": model,
                    "PrimaryContainer": {
                        k: container[k] for k in ("Image", "ModelDataUrl", "Environment")
                    },
                    "ExecutionRoleArn": record["RoleArn"],
                },
            )
            self.call(
                "CreateEndpointConfig",
                {
                    "EndpointConfigName": config,
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "ModelName": model,
                            "InitialInstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                            "InitialVariantWeight": 1.0,
                        }
                    ],
                },
            )
            self.deploy.create_endpoint(endpoint, config, wait=300.0)
            described = self.call("DescribeEndpoint", {"EndpointName": endpoint})
            if described["EndpointStatus"] != "InService":
                raise RuntimeError(described.get("FailureReason") or described["EndpointStatus"])
        except Exception as exc:
            secondary = "ModelDeploymentError"
            note = f"Deploying the best candidate to endpoint {endpoint} failed: {exc}"
        now = round(time.time(), 3)
        record["AutoMLJobStatus"] = "Completed"
        record["AutoMLJobSecondaryStatus"] = secondary
        record["EndTime"] = now
        record["LastModifiedTime"] = now
        if secondary == "Completed":
            record["ModelDeployResult"] = {"EndpointName": endpoint}
        else:
            record.setdefault("PartialFailureReasons", [])
            record["PartialFailureReasons"] = [
                *record["PartialFailureReasons"][:4],
                {"PartialFailureMessage": note[:1024]},
            ]
        self.store.update_job(
            name,
            status="Completed",
            secondary_status=secondary,
            modified=now,
            ended=now,
            record=record,
            deploy_state="done" if secondary == "Completed" else "failed",
        )
        with self._deploy_lock:
            self._deploying.discard(name)

    def answer(
        self, operation: str, params: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """:meth:`call`, with the mlpilot extension headers that go beside its answer (SageMaker's
        shapes have no member for them): a queued job's place in the queue, a job's resumes,
        and what requires a model package's approval before it may be deployed."""
        result = self.call(operation, params)
        headers: dict[str, str] = {}
        if operation in _DESCRIBE_JOB and result.get("AutoMLJobSecondaryStatus") == "Starting":
            place = self.jobs.queue_place(result["AutoMLJobName"])
            if place is not None:
                headers = {QUEUE_POSITION: str(place[0]), QUEUE_LENGTH: str(place[1])}
        if operation in _DESCRIBE_JOB:
            headers.update(self._resume_headers(params["AutoMLJobName"]))
        if operation == "DescribeModelPackage":
            versioned = result.get("ModelPackageVersion") is not None
            rule = self.registry.approval_rule(
                result.get("ModelPackageGroupName") if versioned else None
            )
            if rule is not None:
                headers[APPROVAL_HEADER] = rule
        return result, headers

    def _resume_headers(self, name: str) -> dict[str, str]:
        """The latest resume of job ``name`` (the one running, else the last one ended)."""
        row = self.store.get_job(name)
        notes = {} if row is None else row["record"].get("Mlpilot", {})
        done = notes.get("Resumes", [])
        latest = notes.get("Resuming") or (done[-1] if done else None)
        if not latest:
            return {}
        headers = {
            RESUMES: str(len(done) + bool(notes.get("Resuming"))),
            RESUME_SECONDS: f"{float(latest['AddedSeconds']):g}",
            RESUME_TIME: f"{float(latest.get('StartTime') or latest['RequestTime']):.3f}",
        }
        if latest.get("MaxNewCandidates") is not None:
            headers[RESUME_MAX_CANDIDATES] = str(latest["MaxNewCandidates"])
        return headers

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one operation as the HTTP front would (validation and output shape included)."""
        handler = self.operations.get(operation)
        if handler is None:
            raise ServiceError(
                "UnknownOperationException", f"mlpilot does not implement {operation}"
            )
        cleaned = validate_input(operation, params)
        check_request_uris(operation, cleaned, self.config.uri_roots)
        return conform_output(operation, handler(cleaned))


def _json(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(
        json.dumps(body, allow_nan=False, default=str),
        status_code=status,
        media_type=JSON_11,
        headers={"x-amzn-RequestId": str(uuid.uuid4()), **headers},
    )


async def _read_body(request: Request) -> bytes:
    """The request body, refused with 413 past :data:`MAX_REQUEST_BYTES` (before reading it
    all when the client says its length)."""
    too_large = ServiceError(
        "RequestEntityTooLargeException",
        f"The request body is over the limit of {MAX_REQUEST_BYTES} bytes",
        413,
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(config: ServiceConfig, service: Service | None = None) -> Starlette:
    service = service or Service(config)

    async def authenticate(request: Request, body: bytes) -> None:
        verify_signature(
            config.access_keys,
            method=request.method,
            raw_path=request.scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0],
            query=request.url.query,
            headers=request.headers,
            body=body,
        )

    async def control_plane(request: Request) -> Response:
        operation = "?"
        try:
            body = await _read_body(request)
            await authenticate(request, body)
            target = request.headers.get("x-amz-target", "")
            prefix, _, operation = target.partition(".")
            if prefix != "SageMaker" or not operation:
                raise ServiceError(
                    "UnknownOperationException",
                    f"Missing or unknown X-Amz-Target {target!r}; expected SageMaker.<Operation>",
                )
            params = parse_body(body)
            result, headers = await run_in_threadpool(service.answer, operation, params)
            return _json(result, 200, **headers)
        except ServiceError as exc:
            return _json(exc.body(), exc.status)
        except Exception as exc:
            full = storage_failure(exc, config.data_dir)
            if full is not None:
                # Not a bug to trace: the operator frees space, the client retries then.
                log.error("%s failed: %s", operation, full)
                error = ServiceError(
                    "ResourceLimitExceeded",
                    f"{operation} failed: the service cannot write to its data directory: "
                    f"{full.reason}. Retry once space is freed.",
                )
                return _json(error.body(), error.status)
            log.exception("%s failed", operation)
            error = ServiceError("InternalFailure", f"{operation} failed inside mlpilot", 500)
            return _json(error.body(), 500)

    async def invoke(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            body = await request.body()
            try:
                await authenticate(request, body)
            except ServiceError as exc:
                raise InvocationError(exc.code, exc.message, exc.status) from None
            result: Response = await service.endpoints.invoke(name, request, body)
            return result
        except InvocationError as exc:
            return Response(
                json.dumps(exc.body()),
                status_code=exc.status,
                media_type="application/json",
                headers={"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": str(uuid.uuid4())},
            )

    async def ping(request: Request) -> Response:
        return Response(b"", status_code=200)

    async def metrics(request: Request) -> Response:
        """Per-variant invocations, errors and model latency of an endpoint (what SageMaker
        publishes to CloudWatch), as JSON: for A/B comparisons."""
        name = request.path_params["name"]
        try:
            body = await request.body()
            await authenticate(request, body)
        except ServiceError as exc:
            return _json(exc.body(), exc.status)
        found = service.endpoints.metrics(name)
        if found is None:
            error = ServiceError(
                "ValidationException", f"Endpoint {name} is not in service on this mlpilot"
            )
            return _json(error.body(), 400)
        return Response(
            json.dumps(found, allow_nan=False, default=str), media_type="application/json"
        )

    async def policies(request: Request) -> Response:
        """mlpilot's retraining policies (docs/retrain.md): ``/mlpilot/retrain-policies``
        (GET: list), ``…/{endpoint}`` (PUT: create or replace; GET; DELETE),
        ``…/{endpoint}/run`` (POST: a round now), ``…/history`` and
        ``…/{endpoint}/history`` (GET: the audit log; POST on the latter: the steps of a round
        a client ran itself)."""
        endpoint: str = request.path_params.get("endpoint", "")
        action = request.path_params.get("action")
        try:
            body = await _read_body(request)
            await authenticate(request, body)
            keeper = service.policies
            if action == "history" and request.method == "POST":
                settings = parse_body(body)
                return _json(await run_in_threadpool(keeper.record, endpoint, settings))
            if action == "history" or (endpoint == "history" and request.method == "GET"):
                name = endpoint if action == "history" else None
                events = await run_in_threadpool(keeper.history, name)
                return _json({"Events": events})
            if action == "run" and request.method == "POST":
                return _json(await run_in_threadpool(keeper.run, endpoint))
            if action is not None:
                raise ServiceError("UnknownOperationException", f"No retraining action {action}")
            if not endpoint:
                return _json({"Policies": await run_in_threadpool(keeper.every)})
            if request.method == "PUT":
                settings = parse_body(body)
                return _json(await run_in_threadpool(keeper.put, endpoint, settings))
            if request.method == "DELETE":
                await run_in_threadpool(keeper.delete, endpoint)
                return _json({})
            return _json(await run_in_threadpool(keeper.get, endpoint))
        except ServiceError as exc:
            return _json(exc.body(), exc.status)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(service.open)
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    # The throttle answers before any body is read; then the body arrives within its deadline.
    middleware = [Middleware(BodyDeadline, seconds=config.body_timeout)]
    if config.max_requests_per_second or config.max_job_creations_per_minute:
        middleware.insert(
            0,
            Middleware(
                Throttle,
                requests_per_second=config.max_requests_per_second,
                creations_per_minute=config.max_job_creations_per_minute,
            ),
        )
    app = Starlette(
        middleware=middleware,
        routes=[
            Route("/", control_plane, methods=["POST"]),
            Route("/endpoints/{name:path}/invocations", invoke, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/endpoints/{name}/metrics", metrics, methods=["GET"]),
            Route(POLICIES, policies, methods=["GET"]),
            Route(POLICIES + "/{endpoint}", policies, methods=["GET", "PUT", "DELETE"]),
            Route(POLICIES + "/{endpoint}/{action}", policies, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app
