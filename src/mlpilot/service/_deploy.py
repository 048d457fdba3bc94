"""Models, endpoint configurations and endpoints: the control plane (CreateModel …
DeleteEndpoint), kept in the metadata store. The endpoints themselves run in
:mod:`._endpoint_host`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from mlpilot.service._config import ServiceConfig
from mlpilot.service._errors import ServiceError, validation
from mlpilot.service._kms import check_kms_key
from mlpilot.service._listing import list_answer, listing
from mlpilot.service._paths import local_path
from mlpilot.service._store import AlreadyExists, Store

if TYPE_CHECKING:
    # Only for the annotations: the host and the registry import this module.
    from mlpilot.service._endpoint_host import EndpointHost
    from mlpilot.service._registry import RegistryOperations

__all__ = ["ENDPOINT", "ENDPOINT_CONFIG", "MODEL", "DeployOperations", "check_container"]

log = logging.getLogger("mlpilot.service")

MODEL = "model"
ENDPOINT_CONFIG = "endpoint-config"
ENDPOINT = "endpoint"
#: Images mlpilot can run: its own inference container, whatever the tag.
IMAGE_REPOSITORY = "mlpilot/tabular-inference"
#: Seconds CreateEndpoint waits for the endpoint to be in service before it answers (so the
#: AWS CLI's waiter, which sleeps 30 s between polls, usually finds it ready at once).
CREATE_WAIT = 30.0
#: The members of each List operation's summaries.
_MODEL_SUMMARY = ("ModelName", "ModelArn", "CreationTime")
_CONFIG_SUMMARY = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
_ENDPOINT_SUMMARY = (
    "EndpointName",
    "EndpointArn",
    "CreationTime",
    "LastModifiedTime",
    "EndpointStatus",
)


#: Endpoint states whose instances count against ``max_endpoint_instances``.
_HOLDING = ("Creating", "Updating", "SystemUpdating", "InService", "RollingBack")


def _now() -> float:
    return round(time.time(), 3)


def _models(config: dict[str, Any]) -> list[str]:
    return [variant["ModelName"] for variant in config["ProductionVariants"]]


def _image_ok(image: str) -> bool:
    repository = image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image else image
    return repository.split("/")[-2:] == IMAGE_REPOSITORY.split("/")


def _model_data_exists(url: str) -> bool:
    from mlpilot.data import resolve_uri

    try:
        fs, path = resolve_uri(url)
        return bool(fs.exists(path))
    except Exception:
        return False


def check_container(container: dict[str, Any], where: str = "The container") -> None:
    """What mlpilot needs of a container it is to run: its own inference image and model data
    that exists (a ValidationException naming what is wrong)."""
    image, url = container.get("Image"), container.get("ModelDataUrl")
    if not image or not url:
        raise validation(f"{where} needs an Image and a ModelDataUrl")
    if not _image_ok(image):
        raise validation(
            f"Image {image!r} is not an mlpilot inference image; use the Image that "
            f"DescribeAutoMLJobV2 reports in InferenceContainers ({IMAGE_REPOSITORY}:<tag>)"
        )
    if not _model_data_exists(url):
        raise validation(f"Could not find model data at {url}.")


def package_id(url: str) -> str | None:
    """The payload checksum a model package's manifest records (what identifies the package
    in the deployments' audit trail), read from its ``model.tar.gz`` or folder; None when it
    cannot be read."""
    import tarfile

    from mlpilot.data import resolve_uri
    from mlpilot.package import MANIFEST, PIPELINE

    try:
        fs, path = resolve_uri(url)
        if fs.isdir(path):
            info = json.loads(fs.cat_file(f"{path.rstrip('/')}/{MANIFEST}"))
        else:
            # The manifest is the archive's first member: a stream read stops there.
            with fs.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
                info = None
                for member in tar:
                    if member.name == MANIFEST:
                        extracted = tar.extractfile(member)
                        info = json.loads(extracted.read()) if extracted else None
                        break
        value = (info or {}).get("checksums", {}).get(PIPELINE)
        return None if value is None else str(value)
    except Exception:
        return None


def _check_explainer(config: dict[str, Any]) -> None:
    """What SageMaker checks of an ExplainerConfig when the configuration is created (botocore
    already checked the shapes), and what mlpilot's explainer cannot do."""
    from mlpilot.serving import BASELINE_TYPES, compile_enable_explanations

    clarify = config.get("ClarifyExplainerConfig")
    if clarify is None:
        raise validation("ExplainerConfig must have a ClarifyExplainerConfig")
    expression = clarify.get("EnableExplanations")
    if expression is not None:
        try:
            compile_enable_explanations(expression)
        except ValueError as exc:
            raise validation(str(exc)) from None
    shap = clarify["ShapConfig"]
    baseline = shap["ShapBaselineConfig"]
    if baseline.get("ShapBaseline") is not None and baseline.get("ShapBaselineUri") is not None:
        raise validation(
            "ShapBaselineConfig takes either ShapBaseline or ShapBaselineUri, not both"
        )
    kind = baseline.get("MimeType")
    if kind is not None and kind not in BASELINE_TYPES:
        raise validation(
            f"ShapBaselineConfig.MimeType {kind!r} is not supported: use "
            f"{' or '.join(BASELINE_TYPES)}"
        )
    if shap.get("TextConfig") is not None:
        raise validation(
            "ShapConfig.TextConfig is not supported: mlpilot explains each text column as a "
            "whole, not its tokens"
        )


def _check_capture(config: ServiceConfig, capture: dict[str, Any]) -> None:
    """What botocore's DataCaptureConfig shape cannot say: where mlpilot can write, content
    types listed as both CSV and JSON, and a KmsKeyId this service has."""
    destination = capture["DestinationS3Uri"]
    member = "DataCaptureConfig.DestinationS3Uri"
    path = local_path(destination)
    if path is None and not destination.startswith("s3://"):
        raise validation(f"{member} {destination!r}: give an s3:// URI or a local path")
    if path is not None and path.exists() and not path.is_dir():
        raise validation(f"{member} {destination!r} is a file: give a folder")
    header = capture.get("CaptureContentTypeHeader") or {}
    both = {t.lower() for t in header.get("CsvContentTypes") or ()} & {
        t.lower() for t in header.get("JsonContentTypes") or ()
    }
    if both:
        raise validation(
            "DataCaptureConfig.CaptureContentTypeHeader lists "
            f"{', '.join(sorted(both))} as both CSV and JSON"
        )
    check_kms_key(config, capture.get("KmsKeyId"), "DataCaptureConfig.KmsKeyId")


class DeployOperations:
    """CreateModel … DeleteEndpoint."""

    def __init__(
        self, config: ServiceConfig, store: Store, host: EndpointHost, packages: RegistryOperations
    ) -> None:
        self.config = config
        self.store = store
        self.host = host
        self.packages = packages
        # A check of the instance quota and the change it allows are one step.
        self._instances = threading.Lock()

    def _arn(self, kind: str, name: str) -> str:
        return self.config.arn(kind, name)

    # -- models ---------------------------------------------------------------------------
    def CreateModel(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ModelName"]
        arn = self._arn(MODEL, name)
        primary, containers = params.get("PrimaryContainer"), params.get("Containers")
        if (primary is None) == (containers is None):
            raise validation("Give either PrimaryContainer or Containers")
        chosen = [primary] if primary is not None else containers or []
        if len(chosen) != 1:
            raise validation(
                "mlpilot models have one container: the model package holds the whole "
                f"inference pipeline (got {len(chosen)} containers)"
            )
        container = chosen[0]
        if container.get("ModelPackageName") is not None:
            # The package's container, with this one's Environment over the package's.
            resolved = self.packages.container(container)
            if primary is not None:
                primary = resolved
            else:
                containers = [resolved]
        else:
            check_container(container)
        if container.get("Mode", "SingleModel") != "SingleModel":
            raise validation("Only SingleModel containers are supported")
        params = {**params, "PrimaryContainer": primary, "Containers": containers}
        record = {
            "ModelName": name,
            "ModelArn": arn,
            "CreationTime": _now(),
            "EnableNetworkIsolation": bool(params.get("EnableNetworkIsolation", False)),
        }
        for key in (
            "PrimaryContainer",
            "Containers",
            "ExecutionRoleArn",
            "VpcConfig",
            "InferenceExecutionConfig",
        ):
            if params.get(key) is not None:
                record[key] = params[key]
        self._insert(MODEL, name, arn, record, "model")
        return {"ModelArn": arn}

    def DescribeModel(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._get(MODEL, params["ModelName"], "model")

    def DeleteModel(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete(MODEL, params["ModelName"], "model")

    def ListModels(self, params: dict[str, Any]) -> dict[str, Any]:
        page = self.store.list_resources(MODEL, **listing(params))
        return list_answer("Models", page.rows, page.next_token, _MODEL_SUMMARY)

    # -- endpoint configurations ------------------------------------------------------------
    def CreateEndpointConfig(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        arn = self._arn(ENDPOINT_CONFIG, name)
        variants = params["ProductionVariants"]
        if params.get("DataCaptureConfig") is not None:
            _check_capture(self.config, params["DataCaptureConfig"])
        seen = set()
        for variant in variants:
            vname = variant["VariantName"]
            if vname in seen:
                raise validation(f"Variant name {vname} appears more than once")
            seen.add(vname)
            if variant.get("ServerlessConfig") is not None:
                raise validation(
                    f"Variant {vname}: serverless variants are not supported; give "
                    "InitialInstanceCount and InstanceType"
                )
            for key in ("ModelName", "InitialInstanceCount", "InstanceType"):
                if variant.get(key) is None:
                    raise validation(f"Variant {vname}: {key} is required")
            if self.store.get_resource(MODEL, variant["ModelName"]) is None:
                raise validation(
                    f'Could not find model "{self._arn(MODEL, variant["ModelName"])}".'
                )
            weight = variant.get("InitialVariantWeight", 1.0)
            if weight < 0:
                raise validation(f"Variant {vname}: InitialVariantWeight must not be negative")
        if params.get("ShadowProductionVariants"):
            raise validation("ShadowProductionVariants are not supported")
        if params.get("AsyncInferenceConfig"):
            raise validation("Asynchronous inference is not supported")
        if params.get("ExplainerConfig") is not None:
            _check_explainer(params["ExplainerConfig"])
        record = {
            "EndpointConfigName": name,
            "EndpointConfigArn": arn,
            "ProductionVariants": [
                {"InitialVariantWeight": 1.0, **variant} for variant in variants
            ],
            "CreationTime": _now(),
        }
        for key in (
            "DataCaptureConfig",
            "KmsKeyId",
            "ExecutionRoleArn",
            "EnableNetworkIsolation",
            "ExplainerConfig",
        ):
            if params.get(key) is not None:
                record[key] = params[key]
        self._insert(ENDPOINT_CONFIG, name, arn, record, "endpoint configuration")
        return {"EndpointConfigArn": arn}

    def DescribeEndpointConfig(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._config(params["EndpointConfigName"])

    def DeleteEndpointConfig(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete(ENDPOINT_CONFIG, params["EndpointConfigName"], "endpoint configuration")

    def ListEndpointConfigs(self, params: dict[str, Any]) -> dict[str, Any]:
        page = self.store.list_resources(ENDPOINT_CONFIG, **listing(params))
        return list_answer("EndpointConfigs", page.rows, page.next_token, _CONFIG_SUMMARY)

    # -- endpoints ------------------------------------------------------------------------
    def _config(self, name: str) -> dict[str, Any]:
        return self._get(ENDPOINT_CONFIG, name, "endpoint configuration")

    def _instances_in_use(self, besides: str) -> int:
        """Instances the endpoints other than ``besides`` hold (their variants' desired
        counts, as their records say: a deleted configuration does not hide them)."""
        total = 0
        for record in self.store.list_resources(ENDPOINT, limit=10_000).rows:
            if record["EndpointName"] == besides or record.get("EndpointStatus") not in _HOLDING:
                continue
            for variant in record.get("ProductionVariants") or []:
                total += int(variant.get("DesiredInstanceCount") or 0)
        return total

    def _check_instances(self, name: str, wanted: int) -> None:
        limit = self.config.max_endpoint_instances
        used = self._instances_in_use(name)
        if used + wanted > limit:
            raise ServiceError(
                "ResourceLimitExceeded",
                f"The account-level service limit 'endpoint instances' is {limit} Instances, "
                f"with current utilization of {used} Instances and a request delta of "
                f"{wanted} Instances (mlpilot serve --max-endpoint-instances).",
            )

    @staticmethod
    def _wanted(config: dict[str, Any]) -> int:
        return sum(int(v["InitialInstanceCount"]) for v in config["ProductionVariants"])

    def create_endpoint(self, name: str, config_name: str, *, wait: float) -> str:
        arn = self._arn(ENDPOINT, name)
        config = self._config(config_name)
        self.packages.check_deployable(_models(config))
        now = _now()
        record = {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": config_name,
            "EndpointStatus": "Creating",
            "ProductionVariants": self.host.summaries(name, config, None),
            "CreationTime": now,
            "LastModifiedTime": now,
        }
        with self._instances:
            if self.store.get_resource(ENDPOINT, name) is None:
                self._check_instances(name, self._wanted(config))
            self._insert(ENDPOINT, name, arn, record, "endpoint")
        self._record_deployments(name, config, "CreateEndpoint")
        self.host.wait(self.host.launch(name), wait)
        return arn

    def _record_deployments(self, endpoint: str, config: dict[str, Any], action: str) -> None:
        """Add the audit trail's rows: one per variant of ``config`` put on ``endpoint``."""
        rows = []
        now = _now()
        for variant in config["ProductionVariants"]:
            model = self.store.get_resource(MODEL, variant["ModelName"]) or {}
            containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
            url = str(containers[0].get("ModelDataUrl", ""))
            rows.append(
                {
                    "package_id": package_id(url) if url else None,
                    "model_data_url": url,
                    "model_name": variant["ModelName"],
                    "endpoint": endpoint,
                    "variant": variant["VariantName"],
                    "endpoint_config": config["EndpointConfigName"],
                    "action": action,
                    "time": now,
                }
            )
        self.store.add_deployments(rows)

    def CreateEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = self.create_endpoint(
            params["EndpointName"], params["EndpointConfigName"], wait=CREATE_WAIT
        )
        return {"EndpointArn": arn}

    def DescribeEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        record = self._get(ENDPOINT, name, "endpoint")
        runtime = self.host.runtime(name)
        if runtime is not None and record.get("EndpointStatus") == "InService":
            config = self.host.config_of(record)
            if config is not None:
                record["ProductionVariants"] = self.host.summaries(name, config, runtime)
        config = self.host.config_of(record)
        capture = self.host.capture_summary(name, config) if config is not None else None
        if capture is not None:
            record["DataCaptureConfig"] = capture
        return record

    def _serving(self, name: str) -> dict[str, Any]:
        record = self.DescribeEndpoint({"EndpointName": name})
        if record["EndpointStatus"] != "InService":
            raise validation(
                f'Cannot update in-progress endpoint "{record["EndpointArn"]}": it is '
                f"{record['EndpointStatus']}"
            )
        return record

    def UpdateEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        with self._instances:
            record = self._serving(name)
            config = self._config(params["EndpointConfigName"])
            self.packages.check_deployable(_models(config))
            self._check_instances(name, self._wanted(config))
            self.host.set_record(name, EndpointStatus="Updating")
        self._record_deployments(name, config, "UpdateEndpoint")
        self.host.wait(self.host.update(name, params["EndpointConfigName"]), CREATE_WAIT)
        return {"EndpointArn": record["EndpointArn"]}

    def UpdateEndpointWeightsAndCapacities(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        with self._instances:
            record = self._reweighable(name, params["DesiredWeightsAndCapacities"])
            self.host.set_record(name, EndpointStatus="Updating")
        desired = [
            {k: v for k, v in item.items() if k != "ServerlessUpdateConfig"}
            for item in params["DesiredWeightsAndCapacities"]
        ]
        self.host.wait(self.host.reweigh(name, desired), CREATE_WAIT)
        return {"EndpointArn": record["EndpointArn"]}

    def _reweighable(self, name: str, wanted: list[dict[str, Any]]) -> dict[str, Any]:
        record = self._serving(name)
        known = {v["VariantName"] for v in record["ProductionVariants"]}
        for item in wanted:
            if item["VariantName"] not in known:
                raise validation(
                    f'The variant(s) "[{item["VariantName"]}]" is/are not present in the '
                    f'endpoint "{record["EndpointArn"]}".'
                )
            if "DesiredWeight" not in item and "DesiredInstanceCount" not in item:
                raise validation(
                    f"Variant {item['VariantName']}: give DesiredWeight or DesiredInstanceCount"
                )
            if item.get("ServerlessUpdateConfig"):
                raise validation("Serverless variants are not supported")
        counts = {
            v["VariantName"]: int(v.get("DesiredInstanceCount") or 0)
            for v in record["ProductionVariants"]
        }
        for item in wanted:
            if "DesiredInstanceCount" in item:
                counts[item["VariantName"]] = int(item["DesiredInstanceCount"])
        self._check_instances(name, sum(counts.values()))
        return record

    def DeleteEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        self._get(ENDPOINT, name, "endpoint")
        self.host.set_record(name, EndpointStatus="Deleting")
        self.host.wait(self.host.remove(name), 10.0)
        return {}

    def ListEndpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        page = self.store.list_resources(ENDPOINT, **listing(params))
        return list_answer("Endpoints", page.rows, page.next_token, _ENDPOINT_SUMMARY)

    # -- helpers --------------------------------------------------------------------------
    def _insert(self, kind: str, name: str, arn: str, record: dict[str, Any], noun: str) -> None:
        try:
            self.store.insert_resource(kind, name, arn, record)
        except AlreadyExists:
            raise validation(f'Cannot create already existing {noun} "{arn}".') from None

    def _get(self, kind: str, name: str, noun: str) -> dict[str, Any]:
        record = self.store.get_resource(kind, name)
        if record is None:
            raise self._missing(kind, name, noun)
        return record

    def _delete(self, kind: str, name: str, noun: str) -> dict[str, Any]:
        if not self.store.delete_resource(kind, name):
            raise self._missing(kind, name, noun)
        return {}

    def _missing(self, kind: str, name: str, noun: str) -> ServiceError:
        return validation(f'Could not find {noun} "{self._arn(kind, name)}".')
