"""Batch transform: every object under an input prefix (or in a manifest) through a model, one
``<key relative to the input prefix>.out`` per object under the output path.

Streams: lines are read one at a time, packed into payloads of at most ``MaxPayloadInMB``, and
the model's answers are written to a temporary file as they come, so memory stays bounded by
``MaxConcurrentTransforms × MaxPayloadInMB`` whatever the size of the input. An output object
appears only once its whole input succeeded (a rename, or an upload at the end of the object).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mlpilot.data import list_objects
from mlpilot.errors import ConfigError, DataError
from mlpilot.serving._codec import CSV, JSON, JSONLINES, InvocationResult, media_type
from mlpilot.serving._errors import ContainerFailure, TransformError
from mlpilot.serving._jsonpath import JsonPath, JsonPathMismatch, compile_path
from mlpilot.serving._storage import Location, locate, one_line

__all__ = ["TransformProgress", "TransformResult", "TransformSpec", "run_transform"]

MIB = 2**20
#: SageMaker's limits: MaxPayloadInMB ≤ 100, and × MaxConcurrentTransforms ≤ 100.
MAX_PAYLOAD_MB = 100
_RECORD_TYPES = {
    CSV: CSV,
    JSON: JSON,
    JSONLINES: JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-jsonlines": JSONLINES,
}
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
            if self.accept and _RECORD_TYPES.get(accept) != kind:
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
        return _RECORD_TYPES.get(kind or CSV)

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


class _Stopped(Exception):
    pass


class _GaveUp(Exception):
    """Every attempt at a payload got a 5xx or no answer."""


@dataclass(slots=True)
class _Record:
    line: int
    data: bytes  # what is sent (after the input filter)
    original: Any = None  # the parsed input, kept for JoinSource=Input


@dataclass
class _Batch:
    records: list[_Record]
    payload: bytes

    def lines(self) -> str:
        first, last = self.records[0].line, self.records[-1].line
        return f"line {first}" if first == last else f"lines {first}-{last}"


# -- records -------------------------------------------------------------------------------------
def _csv_fields(text: str) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise ValueError(f"malformed CSV ({exc})") from None
    return rows[0] if rows else []


def _csv_line(values: Any) -> str:
    if isinstance(values, dict):
        raise ValueError("a JSON object cannot be written as a CSV row")
    fields = values if isinstance(values, list) else [values]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(
        [json.dumps(v) if isinstance(v, (dict, list)) else v for v in fields]
    )
    return buffer.getvalue()


def _parse(kind: str, text: str) -> Any:
    if kind == CSV:
        return _csv_fields(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None


def _dump(kind: str, value: Any) -> str:
    return _csv_line(value) if kind == CSV else json.dumps(value)


def _join(kind: str, original: Any, output: Any) -> Any:
    if kind == CSV:
        return [*original, *(output if isinstance(output, list) else [output])]
    if isinstance(original, dict):
        if "SageMakerOutput" in original:
            raise ValueError("the input record already has the reserved key 'SageMakerOutput'")
        return {**original, "SageMakerOutput": output}
    return {"SageMakerInput": original, "SageMakerOutput": output}


def _split_outputs(
    result: InvocationResult, accept: str | None, count: int
) -> tuple[str, list[Any]]:
    """The model's answer for a batch as one parsed output per record."""
    kind = _RECORD_TYPES.get(media_type(result.content_type)[0] or media_type(accept)[0] or CSV)
    if kind is None:
        raise ValueError(
            f"the model answered {result.content_type!r}; OutputFilter and JoinSource need "
            "text/csv, application/json or application/jsonlines"
        )
    text = result.body.decode("utf-8", errors="replace")
    if kind == JSON:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the model's answer is not JSON ({exc.msg})") from None
        items = document.get("predictions") if isinstance(document, dict) else document
        if isinstance(items, list) and len(items) == count:
            outputs = items
        elif count == 1:
            outputs = [document]
        else:
            outputs = items if isinstance(items, list) else [document]
    else:
        outputs = [_parse(kind, line) for line in text.splitlines() if line.strip()]
    if len(outputs) != count:
        raise ValueError(f"the model returned {len(outputs)} output(s) for {count} record(s)")
    return kind, outputs


# -- the engine ----------------------------------------------------------------------------------
class _Run:
    def __init__(
        self,
        spec: TransformSpec,
        invoke: Callable[[bytes, str | None, str | None], InvocationResult],
        stop_event: threading.Event | None,
        progress: Callable[[TransformProgress], None] | None,
    ) -> None:
        self.spec = spec
        self.invoke = invoke
        self.stop_event = stop_event
        self.report = progress
        parameters = _execution_parameters(invoke)
        strategy = spec.batch_strategy or {
            "MULTI_RECORD": "MultiRecord",
            "SINGLE_RECORD": "SingleRecord",
        }.get(str(parameters.get("BatchStrategy", "")).upper(), "MultiRecord")
        self.multi = strategy == "MultiRecord"
        payload_mb = spec.max_payload_mb or _int(parameters.get("MaxPayloadInMB")) or 6
        self.max_bytes = min(payload_mb, MAX_PAYLOAD_MB) * MIB
        concurrent = spec.max_concurrent or _int(parameters.get("MaxConcurrentTransforms")) or 1
        self.concurrent = max(1, min(concurrent, MAX_PAYLOAD_MB // max(1, payload_mb)))
        self.kind = spec.record_type or CSV
        self.accept = spec.accept
        if spec.join_source == "Input" and not spec.accept:
            self.accept = spec.content_type  # the join writes records of the input's type
        self.input_filter: JsonPath = compile_path(spec.input_filter)
        self.output_filter: JsonPath = compile_path(spec.output_filter)
        self.join = spec.join_source == "Input"
        self.processing = spec.processing
        self.line_end = b"\n" if spec.assemble_with == "Line" else b""
        self.records = 0
        self.files_done = 0
        self.files_total = 0

    def stopped(self) -> bool:
        return self.stop_event is not None and self.stop_event.is_set()

    def tell(self, current: str | None) -> None:
        if self.report is not None:
            self.report(TransformProgress(self.files_total, self.files_done, self.records, current))

    # -- reading ----------------------------------------------------------------------------------
    def records_of(self, stream: IO[bytes], uri: str) -> Iterator[_Record]:
        if self.spec.split_type == "None":
            data = stream.read(self.max_bytes + 1)
            if len(data) > self.max_bytes:
                raise TransformError(
                    f"{uri}: the object is over MaxPayloadInMB ({self.max_bytes // MIB} MB) and "
                    "SplitType is None; split it by Line"
                )
            if data.strip():
                yield self.record(1, data, uri)
            return
        number = 0
        limit = self.max_bytes + 2
        while True:
            line = stream.readline(limit)
            if not line:
                return
            number += 1
            if len(line) >= limit and not line.endswith(b"\n"):
                raise TransformError(
                    f"{uri} line {number}: the record is over MaxPayloadInMB "
                    f"({self.max_bytes // MIB} MB)"
                )
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield self.record(number, line, uri)

    def record(self, number: int, data: bytes, uri: str) -> _Record:
        if not self.processing:
            return _Record(number, data)
        try:
            original = _parse(self.kind, data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise TransformError(f"{uri} line {number}: unreadable record: {exc}") from None
        if self.input_filter.is_root:
            return _Record(number, data, original if self.join else None)
        try:
            sent = _dump(self.kind, self.input_filter.apply(original)).encode("utf-8")
        except (ValueError, JsonPathMismatch) as exc:
            raise TransformError(
                f"{uri} line {number}: InputFilter {self.input_filter.text}: {exc}"
            ) from None
        return _Record(number, sent, original if self.join else None)

    def batches(self, records: Iterator[_Record], uri: str) -> Iterator[_Batch]:
        pending: list[_Record] = []
        size = 0
        for record in records:
            if len(record.data) > self.max_bytes:
                raise TransformError(
                    f"{uri} line {record.line}: the record is over MaxPayloadInMB "
                    f"({self.max_bytes // MIB} MB)"
                )
            if pending and (not self.multi or size + 1 + len(record.data) > self.max_bytes):
                yield _Batch(pending, b"\n".join(r.data for r in pending))
                pending, size = [], 0
            size += len(record.data) + (1 if pending else 0)
            pending.append(record)
        if pending:
            yield _Batch(pending, b"\n".join(r.data for r in pending))

    # -- calling the model ------------------------------------------------------------------------
    def call(self, payload: bytes) -> InvocationResult:
        """One payload, retried on 5xx or no answer (``InvocationsMaxRetries``); raises
        :class:`_GaveUp` when every attempt failed so."""
        problem = ""
        for _ in range(self.spec.max_retries + 1):
            try:
                result = self.invoke(payload, self.spec.content_type, self.accept)
            except ContainerFailure as exc:
                problem = str(exc)
                continue
            if result.status < 500:
                return result
            problem = f"status {result.status}: {result.message.strip()}"
        raise _GaveUp(problem)

    def answer(self, batch: _Batch, uri: str) -> InvocationResult:
        try:
            result = self.call(batch.payload)
            if result.ok:
                return result
            if result.status in (400, 422) and len(batch.records) > 1:
                self.blame(batch, uri)
            if result.status == 413:
                raise TransformError(
                    f"{uri} {batch.lines()}: the model refused a payload of "
                    f"{len(batch.payload):,} bytes as too large: lower MaxPayloadInMB or give "
                    "the container SAGEMAKER_MAX_PAYLOAD_IN_MB"
                )
            raise TransformError(f"{uri} {batch.lines()}: {_refusal(result)}")
        except _GaveUp as exc:
            raise TransformError(
                f"{uri} {batch.lines()}: the model failed after "
                f"{self.spec.max_retries + 1} attempt(s): {exc}"
            ) from None

    def blame(self, batch: _Batch, uri: str) -> None:
        """Bisect a refused batch to the first record the model refuses alone; raises."""
        records = batch.records
        while len(records) > 1:
            half = records[: len(records) // 2]
            refused = self.call(b"\n".join(r.data for r in half))
            records = half if not refused.ok else records[len(records) // 2 :]
        alone = self.call(records[0].data)
        reason = _refusal(alone) if not alone.ok else "the model refused the batch holding it"
        raise TransformError(f"{uri} line {records[0].line}: {reason}")

    # -- writing ----------------------------------------------------------------------------------
    def write(self, sink: IO[bytes], batch: _Batch, result: InvocationResult, uri: str) -> None:
        if not self.processing:
            sink.write(result.body)
            if self.line_end and result.body and not result.body.endswith(b"\n"):
                sink.write(self.line_end)
            return
        try:
            kind, outputs = _split_outputs(result, self.accept, len(batch.records))
        except ValueError as exc:
            raise TransformError(f"{uri} {batch.lines()}: {exc}") from None
        for record, output in zip(batch.records, outputs, strict=True):
            try:
                joined = _join(self.kind, record.original, output) if self.join else output
                selected = (
                    joined if self.output_filter.is_root else self.output_filter.apply(joined)
                )
                sink.write(_dump(kind, selected).encode("utf-8") + self.line_end)
            except (ValueError, JsonPathMismatch) as exc:
                step = (
                    f"OutputFilter {self.output_filter.text}"
                    if isinstance(exc, JsonPathMismatch)
                    else "output"
                )
                raise TransformError(f"{uri} line {record.line}: {step}: {exc}") from None

    def transform(self, stream: IO[bytes], sink: IO[bytes], uri: str) -> None:
        batches = self.batches(self.records_of(stream, uri), uri)
        if self.concurrent == 1:
            for batch in batches:
                if self.stopped():
                    raise _Stopped
                self.write(sink, batch, self.answer(batch, uri), uri)
                self.done(batch, uri)
            return
        # Answers are written in input order; at most `concurrent` batches are in flight.
        with ThreadPoolExecutor(self.concurrent, thread_name_prefix="transform") as pool:
            flight: deque[tuple[_Batch, Future[InvocationResult]]] = deque()
            try:
                for batch in batches:
                    if self.stopped():
                        raise _Stopped
                    flight.append((batch, pool.submit(self.answer, batch, uri)))
                    if len(flight) >= self.concurrent:
                        self.drain(flight.popleft(), sink, uri)
                while flight:
                    self.drain(flight.popleft(), sink, uri)
            except BaseException:
                for _, future in flight:
                    future.cancel()
                raise

    def drain(
        self, item: tuple[_Batch, Future[InvocationResult]], sink: IO[bytes], uri: str
    ) -> None:
        batch, future = item
        self.write(sink, batch, future.result(), uri)
        self.done(batch, uri)

    def done(self, batch: _Batch, uri: str) -> None:
        self.records += len(batch.records)
        self.tell(uri)


def _refusal(result: InvocationResult) -> str:
    return f"the model refused the record (status {result.status}): {result.message.strip()}"


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _execution_parameters(invoke: Any) -> dict[str, Any]:
    ask = getattr(invoke, "execution_parameters", None)
    if ask is None:
        return {}
    try:
        answer = ask()
    except Exception:  # optional, like the container endpoint it mirrors
        return {}
    return answer if isinstance(answer, dict) else {}


# -- inputs and outputs ---------------------------------------------------------------------------
def _is_hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _inputs(spec: TransformSpec) -> list[tuple[Location, str]]:
    """The input objects and their keys relative to the input prefix, sorted."""
    if spec.data_type == "ManifestFile":
        return _manifest_inputs(spec.input_uri)
    base = locate(spec.input_uri, what="input")
    try:
        uris = list_objects(spec.input_uri)
    except DataError as exc:
        if not (base.remote and "does not exist" in str(exc)):
            raise
        uris = _key_prefix(base)  # S3Prefix is a key prefix, not only a folder
        if not uris:
            raise DataError(f"no objects under {spec.input_uri}") from None
        root = base.path.rsplit("/", 1)[0]
    else:
        root = base.path if base.fs.isdir(base.path) else os.path.dirname(base.path)
    if base.remote:
        root = root.rstrip("/") + "/"
        pairs = [(locate(u), u[len("s3://") :][len(root) :]) for u in uris]
    else:
        pairs = [(locate(u), os.path.relpath(u, root).replace(os.sep, "/")) for u in uris]
    return pairs


def _key_prefix(base: Location) -> list[str]:
    parent = base.path.rsplit("/", 1)[0]
    if "/" not in base.path:
        return []
    try:
        found = base.fs.find(parent)
    except FileNotFoundError:
        return []
    return sorted(
        f"s3://{p}"
        for p in found
        if p.startswith(base.path) and not _is_hidden(p[len(parent) :]) and not p.endswith("/")
    )


def _manifest_inputs(uri: str) -> list[tuple[Location, str]]:
    uris = list_objects(uri, data_type="ManifestFile")
    manifest = locate(uri, what="manifest")
    try:
        prefix = json.loads(manifest.fs.cat_file(manifest.path))[0]["prefix"]
    except Exception as exc:
        raise DataError(f"{uri} is not a valid manifest: {one_line(exc)}") from None
    base = locate(prefix, what="manifest prefix")
    pairs = []
    for item in uris:
        location = locate(item)
        if base.remote:
            root = base.path.rstrip("/") + "/"
            relative = location.path[len(root) :] if location.path.startswith(root) else item
        else:
            relative = os.path.relpath(location.path, base.path).replace(os.sep, "/")
        pairs.append((location, relative))
    return pairs


def _open_input(location: Location, gzipped: bool, stack: ExitStack) -> IO[bytes]:
    raw = stack.enter_context(location.fs.open(location.path, "rb"))
    if gzipped:
        unpacked: IO[bytes] = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[arg-type]
        return unpacked
    # fsspec's remote files read lines without a size limit; a buffer gives readline(limit).
    return stack.enter_context(io.BufferedReader(raw, buffer_size=MIB))


def run_transform(
    spec: TransformSpec,
    invoke: Callable[[bytes, str | None, str | None], InvocationResult],
    *,
    stop_event: threading.Event | None = None,
    progress: Callable[[TransformProgress], None] | None = None,
) -> TransformResult:
    """Run a batch transform to the end.

    Parameters
    ----------
    spec:
        The job (see :meth:`TransformSpec.from_request`).
    invoke:
        Sends one payload to the model (:class:`ModelInvoker`, :class:`HttpInvoker`,
        :class:`EndpointInvoker` or any callable of that shape).
    stop_event:
        Checked between payloads; once set, the run ends, removes every output it wrote and
        returns ``status="Stopped"``.
    progress:
        Called with a :class:`TransformProgress` after every payload and every object.

    Raises :class:`TransformError` naming the object and line on the first failure (outputs of
    objects finished before it stay), or :class:`ConfigError` for a bad spec.
    """
    spec.validate()
    run = _Run(spec, invoke, stop_event, progress)
    try:
        inputs = _inputs(spec)
        output_root = locate(spec.output_path, what="output path")
    except DataError as exc:
        raise TransformError(str(exc)) from None
    run.files_total = len(inputs)
    result = TransformResult("Completed", files=len(inputs))
    written: list[Location] = []
    staging_root = Path(tempfile.mkdtemp(prefix="mlpilot-transform-"))
    try:
        for source, relative in inputs:
            if run.stopped():
                raise _Stopped
            target = output_root.child(relative + ".out")
            _transform_object(run, source, target, staging_root)
            written.append(target)
            result.outputs[source.uri] = target.uri
            run.files_done += 1
            run.tell(None)
    except _Stopped:
        for location in written:
            with suppress(Exception):  # best effort: the job is Stopped either way
                location.fs.rm_file(location.path)
        return TransformResult("Stopped", records=run.records, files=len(inputs))
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    result.records = run.records
    return result


def _transform_object(run: _Run, source: Location, target: Location, staging: Path) -> None:
    """One input object to a temporary file, then published whole as ``target``."""
    if target.remote:
        folder = staging
    else:
        folder = Path(target.path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransformError(f"cannot write {target.uri}: {exc.strerror or exc}") from None
    descriptor, name = tempfile.mkstemp(
        dir=folder, prefix=f".{Path(target.path).name}.", suffix=".tmp"
    )
    temporary = Path(name)
    try:
        with open(descriptor, "wb") as handle, ExitStack() as stack:
            try:
                stream = _open_input(source, run.spec.compression == "Gzip", stack)
                run.transform(stream, handle, source.uri)
            except (TransformError, _Stopped):
                raise
            except (OSError, EOFError) as exc:
                raise TransformError(f"cannot read {source.uri}: {one_line(exc)}") from None
        try:
            if target.remote:
                target.fs.put_file(str(temporary), target.path)
            else:
                os.replace(temporary, target.path)
        except Exception as exc:
            raise TransformError(f"cannot write {target.uri}: {one_line(exc)}") from None
    finally:
        temporary.unlink(missing_ok=True)
