"""Batch transform: every object under an input prefix (or in a manifest) through a model, one
``<key relative to the input prefix>.out`` per object under the output path.

Streams: lines are read one at a time, packed into payloads of at most ``MaxPayloadInMB``, and
the model's answers are written to a temporary file as they come, so memory stays bounded by
``MaxConcurrentTransforms × MaxPayloadInMB`` whatever the size of the input. An output object
appears only once its whole input succeeded (a rename, or an upload at the end of the object).

A forecasting model (an invoker with ``series_keys``) gets payloads of whole series instead
(:mod:`._transform_series`: an object's rows are grouped by series in memory) and its answers,
forecasts, are written one after another.

With ``TransformOutput.KmsKeyId`` each object is encrypted as it is written (AES-256-GCM, the
format of an encrypted package payload, :class:`mlpilot.package.EncryptingWriter`): its
plaintext never reaches a file, staging included.

Here: the run (reading records, calling the model, writing answers, publishing each object).
The job's settings are in :mod:`._transform_spec`, the record formats in
:mod:`._transform_records`, listing and opening the inputs in :mod:`._transform_inputs`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from mlpilot._crash import crash_point
from mlpilot.errors import DataError
from mlpilot.package import EncryptingWriter, Keyring
from mlpilot.serving._codec import CSV, InvocationResult, media_type
from mlpilot.serving._errors import ContainerFailure, TransformError
from mlpilot.serving._jsonpath import JsonPath, JsonPathMismatch, compile_path
from mlpilot.serving._storage import Location, locate, one_line
from mlpilot.serving._transform_inputs import input_objects, open_input
from mlpilot.serving._transform_records import (
    RECORD_TYPES,
    Batch,
    Record,
    dump_record,
    join_record,
    parse_record,
    split_outputs,
)
from mlpilot.serving._transform_series import series_batches
from mlpilot.serving._transform_spec import (
    MAX_PAYLOAD_MB,
    MIB,
    TransformProgress,
    TransformResult,
    TransformSpec,
)

__all__ = ["remove_partial_outputs", "run_transform"]

#: Bytes read at a time when packing lines into payloads (plus the rest of the last line).
_BLOCK = MIB
_NEWLINE = ord("\n")
_BOM = b"\xef\xbb\xbf"
#: First bytes of a line that bytes.strip() might empty (a blank line is skipped).
_SPACES = np.frombuffer(b" \t\x0b\x0c", dtype=np.uint8)

#: An object's output while it is written: a dot file beside its target, renamed when whole.
_PARTIAL_SUFFIX = ".partial"
_PARTIAL = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(_PARTIAL_SUFFIX) + "$")


class _Stopped(Exception):
    pass


class _GaveUp(Exception):
    """Every attempt at a payload got a 5xx or no answer."""


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
    def records_of(self, stream: IO[bytes], uri: str) -> Iterator[Record]:
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

    def record(self, number: int, data: bytes, uri: str) -> Record:
        if not self.processing:
            return Record(number, data)
        try:
            original = parse_record(self.kind, data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise TransformError(f"{uri} line {number}: unreadable record: {exc}") from None
        if self.input_filter.is_root:
            return Record(number, data, original if self.join else None)
        try:
            sent = dump_record(self.kind, self.input_filter.apply(original)).encode("utf-8")
        except (ValueError, JsonPathMismatch) as exc:
            raise TransformError(
                f"{uri} line {number}: InputFilter {self.input_filter.text}: {exc}"
            ) from None
        return Record(number, sent, original if self.join else None)

    def batches(self, records: Iterator[Record], uri: str) -> Iterator[Batch]:
        pending: list[Record] = []
        size = 0
        for record in records:
            if len(record.data) > self.max_bytes:
                raise TransformError(
                    f"{uri} line {record.line}: the record is over MaxPayloadInMB "
                    f"({self.max_bytes // MIB} MB)"
                )
            if pending and (not self.multi or size + 1 + len(record.data) > self.max_bytes):
                yield Batch(pending, b"\n".join(r.data for r in pending))
                pending, size = [], 0
            size += len(record.data) + (1 if pending else 0)
            pending.append(record)
        if pending:
            yield Batch(pending, b"\n".join(r.data for r in pending))

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

    def answer(self, batch: Batch, uri: str) -> InvocationResult:
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

    def blame(self, batch: Batch, uri: str) -> None:
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
    def write(self, sink: IO[bytes], batch: Batch, result: InvocationResult, uri: str) -> None:
        if not self.processing:
            sink.write(result.body)
            if self.line_end and result.body and not result.body.endswith(b"\n"):
                sink.write(self.line_end)
            return
        try:
            kind, outputs = split_outputs(result, self.accept, len(batch.records))
        except ValueError as exc:
            raise TransformError(f"{uri} {batch.lines()}: {exc}") from None
        for record, output in zip(batch.records, outputs, strict=True):
            try:
                joined = join_record(self.kind, record.original, output) if self.join else output
                selected = (
                    joined if self.output_filter.is_root else self.output_filter.apply(joined)
                )
                sink.write(dump_record(kind, selected).encode("utf-8") + self.line_end)
            except (ValueError, JsonPathMismatch) as exc:
                step = (
                    f"OutputFilter {self.output_filter.text}"
                    if isinstance(exc, JsonPathMismatch)
                    else "output"
                )
                raise TransformError(f"{uri} line {record.line}: {step}: {exc}") from None

    def batches_of(self, stream: IO[bytes], uri: str) -> Iterator[Batch]:
        """The payloads of one input object, in order."""
        if self.spec.split_type == "Line" and self.multi and not self.processing:
            return _LinePacker(self, uri).batches(stream)
        return self.batches(self.records_of(stream, uri), uri)

    def transform(self, stream: IO[bytes], sink: IO[bytes], uri: str) -> None:
        batches = self.batches_of(stream, uri)
        if self.concurrent == 1:
            for batch in batches:
                if self.stopped():
                    raise _Stopped
                self.write(sink, batch, self.answer(batch, uri), uri)
                self.done(batch, uri)
            return
        # Answers are written in input order; at most `concurrent` batches are in flight.
        with ThreadPoolExecutor(self.concurrent, thread_name_prefix="transform") as pool:
            flight: deque[tuple[Batch, Future[InvocationResult]]] = deque()
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
        self, item: tuple[Batch, Future[InvocationResult]], sink: IO[bytes], uri: str
    ) -> None:
        batch, future = item
        self.write(sink, batch, future.result(), uri)
        self.done(batch, uri)

    def done(self, batch: Batch, uri: str) -> None:
        self.records += batch.count
        self.tell(uri)


class _LinePacker:
    """:meth:`_Run.batches` of :meth:`_Run.records_of` for ``SplitType=Line`` and
    ``MultiRecord`` without DataProcessing, a block of lines at a time: the same payloads (cut
    at the same lines), the same errors, without a Python object per line.

    A block whose lines are all plain (no carriage return, none blank or starting with
    whitespace, none over the limit, no byte-order mark) is packed from its newline positions,
    each payload a slice of consecutive lines; any other block goes line by line through the
    rules of :meth:`_Run.records_of`."""

    def __init__(self, run: _Run, uri: str) -> None:
        self.run = run
        self.uri = uri
        self.max = run.max_bytes
        self.number = 0  # lines read so far
        self.pieces: list[bytes] = []  # the pending payload's runs of lines
        self.spans: list[tuple[int, int]] = []
        self.size = 0  # the pending payload's length

    def over(self, number: int) -> TransformError:
        return TransformError(
            f"{self.uri} line {number}: the record is over MaxPayloadInMB ({self.max // MIB} MB)"
        )

    def flush(self) -> Batch:
        batch = Batch.of_lines(b"\n".join(self.pieces), self.spans)
        self.pieces, self.spans, self.size = [], [], 0
        return batch

    def batches(self, stream: IO[bytes]) -> Iterator[Batch]:
        limit = self.max + 2  # what records_of reads a line with
        while True:
            block = stream.read(_BLOCK)
            if not block:
                break
            if not block.endswith(b"\n"):
                block += stream.readline(limit)  # the block's last line, whole
            data = np.frombuffer(block, dtype=np.uint8)
            ends = np.flatnonzero(data == _NEWLINE)
            if not block.endswith(b"\n"):
                ends = np.append(ends, len(block))
            starts = np.empty_like(ends)
            starts[0], starts[1:] = 0, ends[:-1] + 1
            lengths = ends - starts
            plain = (
                b"\r" not in block
                and not (self.number == 0 and block.startswith(_BOM))
                and int(lengths.min()) > 0
                and int(lengths.max()) <= self.max
                and not np.isin(data[starts], _SPACES).any()
            )
            if plain:
                yield from self.pack(block, starts, ends)
            else:
                yield from self.one_by_one(block, starts, ends, limit)
            self.number += len(ends)
        if self.pieces:
            yield self.flush()

    def pack(self, block: bytes, starts: np.ndarray, ends: np.ndarray) -> Iterator[Batch]:
        """Plain lines: each payload takes as many whole lines as fit, as :meth:`_Run.batches`
        packs them."""
        i, count = 0, len(starts)
        while i < count:
            base = self.size + 1 if self.pieces else 0
            # Lines i..j-1 fit while base + (end of line j-1 - start of line i) <= max.
            j = int(np.searchsorted(ends, self.max - base + starts[i], side="right"))
            if j == i:
                yield self.flush()  # a line always fits an empty payload
                continue
            self.pieces.append(block[starts[i] : ends[j - 1]])
            self.spans.append((self.number + i + 1, j - i))
            self.size = base + int(ends[j - 1] - starts[i])
            i = j
            if i < count:
                yield self.flush()

    def one_by_one(
        self, block: bytes, starts: np.ndarray, ends: np.ndarray, limit: int
    ) -> Iterator[Batch]:
        """Lines with something to look at, by :meth:`_Run.records_of`'s rules."""
        for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            number = self.number + k + 1
            if end - start >= limit:
                raise self.over(number)
            line = block[start:end]
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            if len(line) > self.max:
                raise self.over(number)
            if self.pieces and self.size + 1 + len(line) > self.max:
                yield self.flush()
            self.size += len(line) + (1 if self.pieces else 0)
            self.pieces.append(line)
            self.spans.append((number, 1))


class _SeriesRun(_Run):
    """A forecasting model's run: each payload holds whole series (:func:`series_batches`),
    and the answers are forecasts, written one after another with the CSV header once."""

    def __init__(
        self,
        spec: TransformSpec,
        invoke: Callable[[bytes, str | None, str | None], InvocationResult],
        stop_event: threading.Event | None,
        progress: Callable[[TransformProgress], None] | None,
        keys: tuple[str, ...],
    ) -> None:
        super().__init__(spec, invoke, stop_event, progress)
        if self.processing:
            raise TransformError(
                "DataProcessing (InputFilter, OutputFilter, JoinSource) does not apply to a "
                "forecasting model: its output rows are forecasts, not one per input row"
            )
        self.keys = keys
        self.first_answer = True

    def batches_of(self, stream: IO[bytes], uri: str) -> Iterator[Batch]:
        if self.spec.split_type == "None":
            return super().batches_of(stream, uri)  # the whole object: its series are whole
        return series_batches(
            stream,
            uri,
            keys=self.keys,
            kind=self.kind,
            max_bytes=self.max_bytes,
            multi=self.multi,
        )

    def transform(self, stream: IO[bytes], sink: IO[bytes], uri: str) -> None:
        self.first_answer = True
        super().transform(stream, sink, uri)

    def blame(self, batch: Batch, uri: str) -> None:
        """Nothing to bisect: the model's refusal names the series."""

    def write(self, sink: IO[bytes], batch: Batch, result: InvocationResult, uri: str) -> None:
        body = result.body
        if not self.first_answer and RECORD_TYPES.get(media_type(result.content_type)[0]) == CSV:
            body = body.partition(b"\n")[2]  # one header line per output object
        self.first_answer = False
        sink.write(body)
        if self.line_end and body and not body.endswith(b"\n"):
            sink.write(self.line_end)


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


def run_transform(
    spec: TransformSpec,
    invoke: Callable[[bytes, str | None, str | None], InvocationResult],
    *,
    stop_event: threading.Event | None = None,
    progress: Callable[[TransformProgress], None] | None = None,
    series_keys: tuple[str, ...] | None = None,
    staging_dir: str | os.PathLike[str] | None = None,
    keyring: Keyring | None = None,
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
    series_keys:
        For a forecasting model, the columns keying a series (item id, then grouping): each
        payload then holds whole series and the output is the forecast. Taken from the
        invoker's ``series_keys`` (:class:`ModelInvoker` of a forecasting model) when omitted.
    staging_dir:
        Where objects bound for S3 are written before their upload (a folder of the run is
        made there and removed at the end); the system's temporary folder when omitted. A
        local output's object is written beside its target as a dot file ending in
        ``.partial``, renamed when whole (:func:`remove_partial_outputs` removes those a
        killed run left).
    keyring:
        Holds the key ``spec.kms_key_id`` names (default: the keys this process was handed,
        :meth:`Keyring.from_environment`); a key it lacks is a TransformError before any
        object is read.

    Raises :class:`TransformError` naming the object and line on the first failure (outputs of
    objects finished before it stay), or :class:`ConfigError` for a bad spec.
    """
    spec.validate()
    keys = series_keys if series_keys is not None else getattr(invoke, "series_keys", None)
    run = (
        _SeriesRun(spec, invoke, stop_event, progress, tuple(keys))
        if keys
        else _Run(spec, invoke, stop_event, progress)
    )
    try:
        inputs = input_objects(spec)
        output_root = locate(spec.output_path, what="output path")
    except DataError as exc:
        raise TransformError(str(exc)) from None
    run.files_total = len(inputs)
    key = None
    if spec.kms_key_id is not None:
        key = (keyring or Keyring.from_environment()).get(spec.kms_key_id)
        if key is None:
            raise TransformError(
                f"TransformOutput.KmsKeyId {spec.kms_key_id} is not among the keys this "
                "process was given"
            )
    result = TransformResult("Completed", files=len(inputs))
    written: list[Location] = []
    if staging_dir is not None:
        os.makedirs(staging_dir, exist_ok=True)
    staging_root = Path(tempfile.mkdtemp(prefix="mlpilot-transform-", dir=staging_dir))
    try:
        for source, relative in inputs:
            if run.stopped():
                raise _Stopped
            target = output_root.child(relative + ".out")
            _transform_object(run, source, target, staging_root, key)
            written.append(target)
            crash_point("transform")
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


def _transform_object(
    run: _Run, source: Location, target: Location, staging: Path, key: bytes | None
) -> None:
    """One input object to a temporary file (encrypted as it is written when ``key`` is
    given), then published whole as ``target``."""
    if target.remote:
        folder = staging
    else:
        folder = Path(target.path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransformError(f"cannot write {target.uri}: {exc.strerror or exc}") from None
    descriptor, name = tempfile.mkstemp(
        dir=folder, prefix=f".{Path(target.path).name}.", suffix=_PARTIAL_SUFFIX
    )
    temporary = Path(name)
    try:
        with open(descriptor, "wb") as handle, ExitStack() as stack:
            try:
                stream = open_input(source, run.spec.compression == "Gzip", stack)
                if key is None:
                    run.transform(stream, handle, source.uri)
                else:
                    assert run.spec.kms_key_id is not None
                    sealed = EncryptingWriter(handle, run.spec.kms_key_id, key)
                    run.transform(stream, cast(IO[bytes], sealed), source.uri)
                    sealed.finish()
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


def remove_partial_outputs(output_path: str | os.PathLike[str]) -> list[str]:
    """Remove the half-written objects a killed run left under a local ``output_path`` (a
    finished object is never half-written: it is renamed into place whole). Nothing to do for
    S3, where objects appear only once uploaded. Returns the paths removed."""
    try:
        root = locate(output_path, what="output path")
    except DataError:
        return []
    if root.remote or not os.path.isdir(root.path):
        return []
    removed = []
    for folder, _, names in os.walk(root.path):
        for name in names:
            if _PARTIAL.match(name):
                path = os.path.join(folder, name)
                with suppress(OSError):
                    os.unlink(path)
                    removed.append(path)
    return removed
