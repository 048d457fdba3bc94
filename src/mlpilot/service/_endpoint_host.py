"""The endpoints themselves: :class:`EndpointHost` runs one
:class:`~mlpilot.serving.EndpointRuntime` per endpoint in the service process (its variants made
of ``serve-model`` container processes), starts, updates and removes them in the background,
answers InvokeEndpoint, and starts again the endpoints that were in service when the service
stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mlpilot._crash import crash_point
from mlpilot.service._config import ServiceConfig
from mlpilot.service._deploy import ENDPOINT, ENDPOINT_CONFIG, MODEL, _now
from mlpilot.service._errors import InvocationError
from mlpilot.service._store import Store

if TYPE_CHECKING:
    from mlpilot.serving import DataCapture

__all__ = ["EndpointHost"]

log = logging.getLogger("mlpilot.service")

#: The largest InvokeEndpoint body (BodyBlob's max).
MAX_BODY = 6 * 1024 * 1024
_SERVING_STATES = ("Creating", "Updating", "SystemUpdating", "InService", "RollingBack")


def _check_inference_id(value: str) -> None:
    """InvokeEndpoint's InferenceId as botocore's shape has it: 1 to 64 printable characters,
    the first not a space."""
    if not 0 < len(value) <= 64 or value[0].isspace() or not value.isprintable():
        raise InvocationError(
            "ValidationError",
            f"InferenceId {value[:80]!r} must be 1 to 64 printable characters, the first "
            "not a space",
            400,
        )


class EndpointHost:
    """The running endpoints of this service."""

    def __init__(self, config: ServiceConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self._runtimes: dict[str, Any] = {}
        #: Whether each running endpoint's configuration has an ExplainerConfig.
        self._explainers: dict[str, bool] = {}
        #: The data capture of each running endpoint whose configuration enables it.
        self._captures: dict[str, DataCapture] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    # -- lifecycle ------------------------------------------------------------------------
    def restore(self) -> None:
        """Start again the endpoints that were serving when the service stopped."""
        page = self.store.list_resources(ENDPOINT, limit=10_000)
        for record in page.rows:
            status = record.get("EndpointStatus")
            if status == "Deleting":
                self.store.delete_resource(ENDPOINT, record["EndpointName"])
            elif status in _SERVING_STATES:
                record = {**record, "EndpointStatus": "Creating", "LastModifiedTime": _now()}
                self.store.put_resource(ENDPOINT, record["EndpointName"], record)
                self.launch(record["EndpointName"])

    def close(self) -> None:
        with self._guard:
            runtimes = list(self._runtimes.values())
            self._runtimes.clear()
        for runtime in runtimes:
            with contextlib.suppress(Exception):
                runtime.stop()
        # After the runtimes: no invocation is answered now, so the last flush holds them all.
        with self._guard:
            captures = list(self._captures.values())
            self._captures.clear()
        for capture in captures:
            capture.close()

    def config_of(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The endpoint's configuration, or, when it has been deleted (SageMaker allows that
        while an endpoint uses it), the copy the endpoint kept."""
        name = record.get("EndpointConfigName", "")
        found = self.store.get_resource(ENDPOINT_CONFIG, name)
        kept = record.get("Mlpilot", {}).get("Config")
        if found is None and kept and kept.get("EndpointConfigName") == name:
            return dict(kept)
        return found

    @staticmethod
    def _keep(record: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
        return {**record.get("Mlpilot", {}), "Config": config}

    # -- variants -------------------------------------------------------------------------
    def _specs(self, config: dict[str, Any], weights: dict[str, Any] | None = None) -> list[Any]:
        from mlpilot.serving import EXPLAINER_VARIABLE, VariantSpec

        explainer = (config.get("ExplainerConfig") or {}).get("ClarifyExplainerConfig")
        specs = []
        for variant in config["ProductionVariants"]:
            model = self.store.get_resource(MODEL, variant["ModelName"])
            if model is None:
                raise ValueError(f"model {variant['ModelName']} no longer exists")
            container = model.get("PrimaryContainer") or model["Containers"][0]
            desired = (weights or {}).get(variant["VariantName"], {})
            environment = dict(container.get("Environment") or {})
            if explainer is not None:
                # The container computes the explanations, next to the model.
                environment[EXPLAINER_VARIABLE] = json.dumps(explainer)
            specs.append(
                VariantSpec(
                    name=variant["VariantName"],
                    model=container["ModelDataUrl"],
                    environment=environment,
                    instance_count=int(
                        desired.get("DesiredInstanceCount", variant["InitialInstanceCount"])
                    ),
                    weight=float(
                        desired.get("DesiredWeight", variant.get("InitialVariantWeight", 1.0))
                    ),
                )
            )
        return specs

    # -- data capture ---------------------------------------------------------------------
    def set_capture(self, name: str, config: dict[str, Any]) -> None:
        """Start the capture ``config`` asks for (none when it has no DataCaptureConfig or
        disables it), in place of the endpoint's previous one, which writes what it holds."""
        from mlpilot.serving import CaptureSettings, DataCapture

        settings = config.get("DataCaptureConfig") or {}
        capture = None
        if settings and settings.get("EnableCapture", True):
            try:
                parsed = CaptureSettings.from_config(settings)
                key = None
                if parsed.kms_key_id is not None:
                    key = self.config.keyring.get(parsed.kms_key_id)
                capture = DataCapture(name, parsed, key=key)
            except Exception as exc:
                # The endpoint serves without it; DescribeEndpoint says CaptureStatus Stopped.
                log.error("endpoint %s: data capture cannot start: %s", name, exc)
        with self._guard:
            old = self._captures.pop(name, None)
            if capture is not None:
                self._captures[name] = capture
        if old is not None:
            old.close()

    def capture_summary(self, name: str, config: dict[str, Any]) -> dict[str, Any] | None:
        """DescribeEndpoint's DataCaptureConfig (a DataCaptureConfigSummary), or None when the
        endpoint's configuration has no DataCaptureConfig."""
        settings = config.get("DataCaptureConfig")
        if not settings:
            return None
        capture = self._captures.get(name)
        summary = {
            "EnableCapture": bool(settings.get("EnableCapture", True)),
            "CaptureStatus": "Started" if capture is not None and capture.started else "Stopped",
            "CurrentSamplingPercentage": int(settings["InitialSamplingPercentage"]),
            "DestinationS3Uri": settings["DestinationS3Uri"],
        }
        if settings.get("KmsKeyId"):
            summary["KmsKeyId"] = settings["KmsKeyId"]
        return summary

    def summaries(self, name: str, config: dict[str, Any], runtime: Any) -> list[dict[str, Any]]:
        running = {v["VariantName"]: v for v in runtime.variants()} if runtime else {}
        out = []
        for variant in config["ProductionVariants"]:
            model = self.store.get_resource(MODEL, variant["ModelName"]) or {}
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            image = container.get("Image", "")
            digest = hashlib.sha256(
                f"{image}|{container.get('ModelDataUrl', '')}".encode()
            ).hexdigest()
            now = running.get(variant["VariantName"], {})
            summary = {
                "VariantName": variant["VariantName"],
                "DeployedImages": [
                    {
                        "SpecifiedImage": image,
                        "ResolvedImage": f"{image.split(':')[0]}@sha256:{digest}",
                        "ResolutionTime": config.get("CreationTime", _now()),
                    }
                ],
                "CurrentWeight": float(now.get("CurrentWeight", 0.0)),
                "DesiredWeight": float(
                    now.get("CurrentWeight", variant.get("InitialVariantWeight", 1.0))
                ),
                "CurrentInstanceCount": int(now.get("CurrentInstanceCount", 0)),
                "DesiredInstanceCount": int(
                    now.get("CurrentInstanceCount", variant["InitialInstanceCount"])
                ),
            }
            out.append(summary)
        return out

    def set_record(self, name: str, **changes: Any) -> dict[str, Any] | None:
        record = self.store.get_resource(ENDPOINT, name)
        if record is None:
            return None
        record = {**record, **changes, "LastModifiedTime": _now()}
        for key, value in list(record.items()):
            if value is None:
                del record[key]
        self.store.put_resource(ENDPOINT, name, record)
        return record

    def _background(self, target: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    def launch(self, name: str) -> threading.Thread:
        return self._background(self._launch, name)

    def _launch(self, name: str) -> None:
        from mlpilot.serving import EndpointRuntime

        with self._lock(name):
            record = self.store.get_resource(ENDPOINT, name)
            if record is None:
                return
            config = self.config_of(record)
            runtime = EndpointRuntime(
                cache_dir=self.config.data_dir / "models",
                work_dir=self.config.data_dir / "endpoints" / name,
            )
            try:
                if config is None:
                    raise ValueError(
                        f"endpoint configuration {record['EndpointConfigName']} no longer exists"
                    )
                runtime.start(self._specs(config, record.get("Mlpilot", {}).get("Desired")))
                crash_point("endpoint-create")
            except Exception as exc:
                with contextlib.suppress(Exception):
                    runtime.stop()
                self.set_record(name, EndpointStatus="Failed", FailureReason=str(exc)[:1024])
                return
            with self._guard:
                self._runtimes[name] = runtime
                self._explainers[name] = config.get("ExplainerConfig") is not None
            self.set_capture(name, config)
            self.set_record(
                name,
                EndpointStatus="InService",
                FailureReason=None,
                ProductionVariants=self.summaries(name, config, runtime),
                Mlpilot=self._keep(record, config),
            )

    def update(self, name: str, config_name: str) -> threading.Thread:
        return self._background(self._update, name, config_name)

    def _update(self, name: str, config_name: str) -> None:
        with self._lock(name):
            runtime = self._runtimes.get(name)
            config = self.store.get_resource(ENDPOINT_CONFIG, config_name)
            old = self.store.get_resource(ENDPOINT, name) or {}
            try:
                if runtime is None or config is None:
                    raise ValueError("the endpoint is not running")
                runtime.update_variants(self._specs(config))
                self._explainers[name] = config.get("ExplainerConfig") is not None
                self.set_capture(name, config)
            except Exception as exc:
                # The old variants keep serving, as SageMaker rolls a failed update back.
                self.set_record(
                    name,
                    EndpointStatus="InService" if runtime is not None else "Failed",
                    FailureReason=f"Update to {config_name} failed: {exc}"[:1024],
                    EndpointConfigName=old.get("EndpointConfigName"),
                )
                return
            mlpilot = {**self._keep(old, config), "Desired": None}
            self.set_record(
                name,
                EndpointStatus="InService",
                FailureReason=None,
                EndpointConfigName=config_name,
                ProductionVariants=self.summaries(name, config, runtime),
                Mlpilot={k: v for k, v in mlpilot.items() if v is not None},
            )

    def reweigh(self, name: str, desired: list[dict[str, Any]]) -> threading.Thread:
        return self._background(self._reweigh, name, desired)

    def _reweigh(self, name: str, desired: list[dict[str, Any]]) -> None:
        with self._lock(name):
            runtime = self._runtimes.get(name)
            record = self.store.get_resource(ENDPOINT, name) or {}
            config = self.config_of(record)
            try:
                if runtime is None or config is None:
                    raise ValueError("the endpoint is not running")
                runtime.update_weights_and_capacities(desired)
            except Exception as exc:
                self.set_record(
                    name,
                    EndpointStatus="InService" if runtime is not None else "Failed",
                    FailureReason=f"UpdateEndpointWeightsAndCapacities failed: {exc}"[:1024],
                )
                return
            # Remembered so that a restart brings the endpoint back as it was last set.
            kept = dict(record.get("Mlpilot", {}).get("Desired") or {})
            for item in desired:
                kept[item["VariantName"]] = {**kept.get(item["VariantName"], {}), **item}
            self.set_record(
                name,
                EndpointStatus="InService",
                FailureReason=None,
                ProductionVariants=self.summaries(name, config, runtime),
                Mlpilot={**record.get("Mlpilot", {}), "Desired": kept},
            )

    def remove(self, name: str) -> threading.Thread:
        return self._background(self._remove, name)

    def _remove(self, name: str) -> None:
        with self._lock(name):
            with self._guard:
                runtime = self._runtimes.pop(name, None)
                capture = self._captures.pop(name, None)
            if runtime is not None:
                with contextlib.suppress(Exception):
                    runtime.stop()
            if capture is not None:
                capture.close()
            self.store.delete_resource(ENDPOINT, name)

    def wait(self, thread: threading.Thread, seconds: float) -> None:
        thread.join(timeout=seconds)

    # -- data plane -----------------------------------------------------------------------
    def runtime(self, name: str) -> Any:
        return self._runtimes.get(name)

    async def invoke(self, name: str, request: Request, body: bytes) -> Response:
        from mlpilot.serving import (
            ContainerFailure,
            EndpointUnavailableError,
            UnknownVariantError,
        )

        account = self.config.account_id
        runtime = self._runtimes.get(name)
        if runtime is None:
            record = self.store.get_resource(ENDPOINT, name)
            if record is None:
                raise InvocationError(
                    "ValidationError", f"Endpoint {name} of account {account} not found.", 400
                )
            raise InvocationError(
                "ValidationError",
                f"Endpoint {name} of account {account} is {record.get('EndpointStatus')}; it "
                "can be invoked once it is InService.",
                400,
            )
        if len(body) > MAX_BODY:
            raise InvocationError(
                "ValidationError",
                f"Request body of {len(body)} bytes is over the limit of {MAX_BODY} bytes (6 MB)",
                400,
            )
        headers = request.headers
        enable = headers.get("x-amzn-sagemaker-enable-explanations")
        if enable is not None:
            self._check_explanations(name, enable)
        inference_id = headers.get("x-amzn-sagemaker-inference-id")
        if inference_id is not None:
            _check_inference_id(inference_id)
        try:
            result = await runtime.ainvoke(
                body,
                content_type=headers.get("content-type"),
                accept=headers.get("accept"),
                target_variant=headers.get("x-amzn-sagemaker-target-variant"),
                custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
                enable_explanations=enable,
            )
        except UnknownVariantError as exc:
            raise InvocationError("ValidationError", f"Endpoint {name}: {exc}", 400) from None
        except EndpointUnavailableError as exc:
            raise InvocationError("ServiceUnavailable", f"Endpoint {name}: {exc}", 503) from None
        except ContainerFailure as exc:
            raise InvocationError(
                "ModelError",
                f'Received server error (0) from primary with message "{exc}"',
                424,
                OriginalStatusCode=0,
                OriginalMessage=str(exc),
            ) from None
        if not result.ok:
            kind = "client" if result.status < 500 else "server"
            raise InvocationError(
                "ModelError",
                f"Received {kind} error ({result.status}) from primary with message "
                f'"{result.message}". See the endpoint\'s logs in {self.config.data_dir}.',
                424,
                OriginalStatusCode=result.status,
                OriginalMessage=result.message,
            )
        capture = self._captures.get(name)
        if capture is not None:
            capture.offer(
                result.variant,
                input_body=body,
                input_type=headers.get("content-type"),
                output_body=result.body,
                output_type=result.content_type,
                inference_id=inference_id,
            )
        return Response(
            result.body,
            status_code=200,
            media_type=result.content_type,
            headers={"x-Amzn-Invoked-Production-Variant": result.variant},
        )

    def _check_explanations(self, name: str, expression: str) -> None:
        from mlpilot.serving import compile_enable_explanations

        if not self._explainers.get(name):
            raise InvocationError(
                "ValidationError",
                f"Endpoint {name} of account {self.config.account_id} has no ExplainerConfig: "
                "EnableExplanations can only be used with an endpoint whose endpoint "
                "configuration has an ExplainerConfig.",
                400,
            )
        try:
            compile_enable_explanations(expression)
        except ValueError as exc:
            raise InvocationError("ValidationError", str(exc), 400) from None

    def metrics(self, name: str) -> dict[str, Any] | None:
        runtime = self._runtimes.get(name)
        if runtime is None:
            return None
        return {"EndpointName": name, "Variants": runtime.stats()}
