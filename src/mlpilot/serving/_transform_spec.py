"""What a batch transform is asked to do: :class:`TransformSpec` (CreateTransformJob's fields,
read and checked), SageMaker's payload limits, and what a run reports
(:class:`TransformProgress`, :class:`TransformResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlpilot.errors import ConfigError
from mlpilot.serving._codec import CSV, JSON, is_parquet, media_type
from mlpilot.serving._jsonpath import compile_path
from mlpilot.serving._transform_records import RECORD_TYPES

__all__ = ["MAX_PAYLOAD_MB", "MIB", "TransformProgress", "TransformResult", "TransformSpec"]

MIB = 2**20
#: SageMaker's limits: MaxPayloadInMB ≤ 100, and × MaxConcurrentTransforms ≤ 100.
MAX_PAYLOAD_MB = 100
_CHOICES = {
    "S3DataType": ("S3Prefix", "ManifestFile"),
    "CompressionType": ("None", "Gzip"),
    "SplitType": ("None", "Line"),
    "BatchStrategy": ("MultiRecord", "SingleRecord"),
    "AssembleWith": ("None", "Line"),
    "JoinSource": ("None", "Input"),
}
_WHY_UNSUPPORTED = {
    "AugmentedManifestFile": "is not valid for batch transform",
    "Converse": "is not supported by tabular models",
    "RecordIO": "is not supported: mlpilot models read CSV and JSON, split them by Line",
    "TFRecord": "is not supported: mlpilot models read CSV and JSON, split them by Line",
}


def _choice(name: str, value: Any, default: str) -> str:
    text = default if value is None else str(value)
    if text in _CHOICES[name]:
        return text
    if text in _WHY_UNSUPPORTED:
        raise ConfigError(f"{name} {text!r} {_WHY_UNSUPPORTED[text]}")
    raise ConfigError(f"{name} {text!r}: use {' or '.join(_CHOICES[name])}")


def _whole(name: str, value: Any, low: int, high: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} {value!r} must be a whole number")
    if value < low or (high is not None and value > high):
        bound = f"{low}-{high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} {value} is out of range ({bound})")
    return value


@dataclass(frozen=True)
class TransformSpec:
    """What ``CreateTransformJob`` asks for (the fields the data plane uses).

    ``batch_strategy``, ``max_payload_mb`` and ``max_concurrent`` left None take the model's
    ``/execution-parameters``, else MultiRecord, 6 and 1. ``max_payload_mb`` 0 (chunked
    transfer) is refused: mlpilot containers take whole payloads.
    """

    input_uri: str
    output_path: str
    data_type: str = "S3Prefix"
    content_type: str | None = None
    compression: str = "None"
    split_type: str = "None"
    batch_strategy: str | None = None
    max_payload_mb: int | None = None
    max_concurrent: int | None = None
    accept: str | None = None
    assemble_with: str = "None"
    input_filter: str | None = None
    join_source: str = "None"
    output_filter: str | None = None
    invocations_timeout: float = 600.0
    max_retries: int = 3
    environment: Mapping[str, str] = field(default_factory=dict)
    #: TransformOutput.KmsKeyId: each output object is written encrypted under this key.
    kms_key_id: str | None = None

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> TransformSpec:
        """Read a CreateTransformJob request (SageMaker's field names); checks it.

        Raises :class:`ConfigError` naming the first bad field.
        """
        source = (request.get("TransformInput") or {}).get("DataSource", {}).get(
            "S3DataSource"
        ) or {}
        tin = request.get("TransformInput") or {}
        tout = request.get("TransformOutput") or {}
        processing = request.get("DataProcessing") or {}
        client = request.get("ModelClientConfig") or {}
        if not source.get("S3Uri"):
            raise ConfigError("TransformInput.DataSource.S3DataSource.S3Uri is required")
        if not tout.get("S3OutputPath"):
            raise ConfigError("TransformOutput.S3OutputPath is required")
        timeout = _whole(
            "ModelClientConfig.InvocationsTimeoutInSeconds",
            client.get("InvocationsTimeoutInSeconds"),
            1,
            3600,
        )
        retries = _whole(
            "ModelClientConfig.InvocationsMaxRetries", client.get("InvocationsMaxRetries"), 0, 3
        )
        concurrent = _whole("MaxConcurrentTransforms", request.get("MaxConcurrentTransforms"), 0)
        spec = cls(
            input_uri=str(source["S3Uri"]),
            output_path=str(tout["S3OutputPath"]),
            data_type=_choice("S3DataType", source.get("S3DataType"), "S3Prefix"),
            content_type=tin.get("ContentType") or None,
            compression=_choice("CompressionType", tin.get("CompressionType"), "None"),
            split_type=_choice("SplitType", tin.get("SplitType"), "None"),
            batch_strategy=(
                _choice("BatchStrategy", request["BatchStrategy"], "MultiRecord")
                if request.get("BatchStrategy")
                else None
            ),
            max_payload_mb=request.get("MaxPayloadInMB"),
            max_concurrent=concurrent or None,
            accept=tout.get("Accept") or None,
            assemble_with=_choice("AssembleWith", tout.get("AssembleWith"), "None"),
            input_filter=processing.get("InputFilter") or None,
            join_source=_choice("JoinSource", processing.get("JoinSource"), "None"),
            output_filter=processing.get("OutputFilter") or None,
            invocations_timeout=float(timeout or 600),
            max_retries=3 if retries is None else retries,
            environment=dict(request.get("Environment") or {}),
            kms_key_id=tout.get("KmsKeyId") or None,
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        """Check the settings and how they combine; raises :class:`ConfigError`."""
        _choice("S3DataType", self.data_type, "S3Prefix")
        _choice("CompressionType", self.compression, "None")
        _choice("SplitType", self.split_type, "None")
        if self.batch_strategy is not None:
            _choice("BatchStrategy", self.batch_strategy, "MultiRecord")
        _choice("AssembleWith", self.assemble_with, "None")
        _choice("JoinSource", self.join_source, "None")
        if self.max_payload_mb == 0:
            raise ConfigError(
                "MaxPayloadInMB 0 (chunked transfer encoding) is not supported: use 1-100"
            )
        _whole("MaxPayloadInMB", self.max_payload_mb, 1, MAX_PAYLOAD_MB)
        _whole("MaxConcurrentTransforms", self.max_concurrent, 0)
        if (
            self.max_concurrent
            and (self.max_concurrent * (self.max_payload_mb or 6)) > MAX_PAYLOAD_MB
        ):
            raise ConfigError(
                f"MaxConcurrentTransforms × MaxPayloadInMB = {self.max_concurrent} × "
                f"{self.max_payload_mb or 6} is over {MAX_PAYLOAD_MB}"
            )
        _whole("InvocationsMaxRetries", self.max_retries, 0, 3)
        if self.split_type == "Line" and is_parquet(self.content_type):
            # A Parquet file has no lines: each object goes whole, as one payload.
            raise ConfigError(f"ContentType {self.content_type} needs SplitType 'None', not 'Line'")
        compile_path(self.input_filter)
        compile_path(self.output_filter)
        if not self.processing:
            return
        kind = self.record_type
        if kind is None:
            raise ConfigError(
                f"DataProcessing needs ContentType text/csv, application/json or "
                f"application/jsonlines, not {self.content_type!r}"
            )
        if kind != JSON and self.split_type != "Line":
            raise ConfigError(f"DataProcessing on {kind} needs SplitType 'Line'")
        if self.join_source == "Input":
            accept = media_type(self.accept)[0]
            if self.accept and RECORD_TYPES.get(accept) != kind:
                raise ConfigError(
                    f"JoinSource 'Input' needs Accept equal to ContentType ({self.content_type}), "
                    f"not {self.accept!r}"
                )
            if self.assemble_with != self.split_type:
                raise ConfigError(
                    f"JoinSource 'Input' needs AssembleWith equal to SplitType "
                    f"({self.split_type!r}), not {self.assemble_with!r}"
                )

    @property
    def processing(self) -> bool:
        """Whether records are parsed: a filter other than ``$`` or a join."""
        return (
            not compile_path(self.input_filter).is_root
            or not compile_path(self.output_filter).is_root
            or self.join_source == "Input"
        )

    @property
    def record_type(self) -> str | None:
        """CSV, JSON or JSONLINES for the input content type (CSV when unset), else None."""
        kind = media_type(self.content_type)[0]
        return RECORD_TYPES.get(kind or CSV)

    def container_environment(self) -> dict[str, str]:
        """What batch adds to the model container's environment: ``SAGEMAKER_BATCH`` and the
        settings given in the request, then the request's ``Environment``."""
        env = {"SAGEMAKER_BATCH": "true"}
        if self.max_payload_mb:
            env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(self.max_payload_mb)
        if self.batch_strategy:
            env["SAGEMAKER_BATCH_STRATEGY"] = (
                "MULTI_RECORD" if self.batch_strategy == "MultiRecord" else "SINGLE_RECORD"
            )
        if self.max_concurrent:
            env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(self.max_concurrent)
        env.update(self.environment)
        return env


@dataclass(frozen=True)
class TransformProgress:
    """Where a transform is: objects done of all, records sent so far, the current object."""

    files_total: int
    files_done: int
    records_done: int
    current: str | None


@dataclass
class TransformResult:
    """``status`` is ``Completed`` or ``Stopped``; ``outputs`` maps each input object to its
    output object (none are left after a stop), ``records`` counts the records sent."""

    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    records: int = 0
    files: int = 0
