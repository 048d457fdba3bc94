"""Data capture (an endpoint configuration's ``DataCaptureConfig``): InvokeEndpoint's requests
and answers, sampled, written as JSON lines in SageMaker Model Monitor's layout::

    {DestinationS3Uri}/{EndpointName}/{VariantName}/yyyy/mm/dd/hh/{mm-ss-fff}-{uuid}.jsonl

one line per captured invocation::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "...", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<InferenceId>",
                       "inferenceTime": "2026-12-07T09:15:02Z"},
     "eventVersion": "0"}

The request path only samples and appends a reference to the bodies to a buffer; a writer thread
turns the buffer into lines and writes one new file per variant and hour every
:data:`FLUSH_SECONDS` (a file is never appended to, as S3 objects cannot be), and once more
when the capture is closed, so a clean shutdown loses nothing. Local files appear whole (written
beside, then renamed). A file that cannot be written is tried again at the next flush; while
that fails the capture reports ``Stopped``, and past :data:`MAX_PENDING_BYTES` of waiting
bodies new invocations are not captured (SageMaker likewise pauses capture when its disk fills).
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import uuid
from base64 import b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from mlpilot.package import EncryptingWriter
from mlpilot.serving._codec import media_type
from mlpilot.serving._storage import Location, locate, one_line

__all__ = [
    "FLUSH_SECONDS",
    "MAX_PENDING_BYTES",
    "CaptureSettings",
    "DataCapture",
    "capture_record",
]

log = logging.getLogger("mlpilot.serving")

#: How often the buffered captures are written out.
FLUSH_SECONDS = 1.0
#: Bodies held waiting to be written (a destination that fails makes them pile up) past which
#: new invocations are not captured.
MAX_PENDING_BYTES = 64 * 1024 * 1024
#: What each CaptureMode captures: (input, output).
_MODES = {"Input": (True, False), "Output": (False, True), "InputAndOutput": (True, True)}


@dataclass(frozen=True)
class CaptureSettings:
    """A ``DataCaptureConfig`` as the writer uses it."""

    destination: str
    sampling_percentage: int
    capture_input: bool
    capture_output: bool
    #: Media types (lower case, without parameters) captured as text, encoding CSV / JSON;
    #: any other body is captured BASE64, as SageMaker does.
    csv_types: frozenset[str] = frozenset()
    json_types: frozenset[str] = frozenset()
    kms_key_id: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CaptureSettings:
        modes = [_MODES[option["CaptureMode"]] for option in config["CaptureOptions"]]
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=str(config["DestinationS3Uri"]),
            sampling_percentage=int(config["InitialSamplingPercentage"]),
            capture_input=any(mode[0] for mode in modes),
            capture_output=any(mode[1] for mode in modes),
            csv_types=frozenset(t.lower() for t in header.get("CsvContentTypes") or ()),
            json_types=frozenset(t.lower() for t in header.get("JsonContentTypes") or ()),
            kms_key_id=config.get("KmsKeyId") or None,
        )

    def encoding(self, content_type: str) -> str:
        kind = media_type(content_type)[0] if content_type else ""
        if kind in self.csv_types:
            return "CSV"
        if kind in self.json_types:
            return "JSON"
        return "BASE64"


class _Event(NamedTuple):
    """One sampled invocation (a tuple: the cheapest thing to make on the request path)."""

    variant: str
    time: float
    inference_id: str | None
    input_body: bytes
    input_type: str
    output_body: bytes
    output_type: str


def _payload(settings: CaptureSettings, content_type: str, mode: str, body: bytes) -> Any:
    encoding = settings.encoding(content_type)
    data = None
    if encoding != "BASE64":
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if data is None:
        data = b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_record(
    settings: CaptureSettings,
    *,
    input_body: bytes,
    input_type: str,
    output_body: bytes,
    output_type: str,
    inference_id: str | None,
    when: float,
) -> dict[str, Any]:
    """One capture line's object, for an invocation answered at ``when`` (epoch seconds)."""
    data = {}
    if settings.capture_input:
        data["endpointInput"] = _payload(settings, input_type, "INPUT", input_body)
    if settings.capture_output:
        data["endpointOutput"] = _payload(settings, output_type, "OUTPUT", output_body)
    metadata = {"eventId": str(uuid.uuid4())}
    if inference_id:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    return {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}


class DataCapture:
    """The capture of one endpoint: :meth:`offer` on the request path, files written by a
    thread of its own until :meth:`close`.

    Sampling is deterministic: the n-th invocation is captured when ``n · p // 100`` moves
    past ``(n − 1) · p // 100``, so exactly ``p`` of every 100 invocations are (all at 100,
    none at 0), evenly spread."""

    def __init__(
        self,
        endpoint: str,
        settings: CaptureSettings,
        *,
        key: bytes | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.kms_key_id is not None and key is None:
            raise ValueError(f"no key for DataCaptureConfig.KmsKeyId {settings.kms_key_id}")
        self.endpoint = endpoint
        self.settings = settings
        self.root: Location = locate(settings.destination, what="DestinationS3Uri")
        self._key = key
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending: list[_Event] = []
        self._pending_bytes = 0
        self._invocations = 0
        #: Invocations captured (written), and left out because the buffer was full.
        self.written = 0
        self.dropped = 0
        #: Why the last write failed, while writes fail.
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"data-capture-{endpoint}", daemon=True
        )
        self._thread.start()

    # -- the request path ---------------------------------------------------------------
    def offer(
        self,
        variant: str,
        *,
        input_body: bytes,
        input_type: str | None,
        output_body: bytes,
        output_type: str | None,
        inference_id: str | None = None,
    ) -> bool:
        """Count one answered invocation; keep it for writing if it is sampled. Whether it
        was kept."""
        percentage = self.settings.sampling_percentage
        size = len(input_body) + len(output_body)
        with self._lock:
            self._invocations += 1
            n = self._invocations
            if n * percentage // 100 == (n - 1) * percentage // 100:
                return False
            if self._pending_bytes + size > MAX_PENDING_BYTES:
                self.dropped += 1
                return False
            self._pending.append(
                _Event(
                    variant,
                    self._clock(),
                    inference_id,
                    input_body,
                    input_type or "",
                    output_body,
                    output_type or "",
                )
            )
            self._pending_bytes += size
        return True

    @property
    def started(self) -> bool:
        """Capture is working: not closed, and its last write (if any) succeeded."""
        return not self._stop.is_set() and self.failure is None

    # -- the writer -----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()

    def flush(self) -> int:
        """Write what is buffered: one file per variant and hour. How many invocations were
        written; those that could not be are kept for the next flush."""
        with self._flushing:
            with self._lock:
                events, self._pending, self._pending_bytes = self._pending, [], 0
            groups: dict[tuple[str, str], list[_Event]] = {}
            for event in events:
                hour = time.strftime("%Y/%m/%d/%H", time.gmtime(event.time))
                groups.setdefault((event.variant, hour), []).append(event)
            written, failed = 0, []
            for (variant, hour), group in groups.items():
                try:
                    self._write(variant, hour, group)
                except Exception as exc:
                    failed.extend(group)
                    if self.failure is None:
                        log.warning(
                            "data capture of endpoint %s cannot write to %s: %s",
                            self.endpoint,
                            self.root.uri,
                            one_line(exc),
                        )
                    self.failure = one_line(exc)
                else:
                    written += len(group)
            if failed:
                with self._lock:
                    self._pending[:0] = failed
                    self._pending_bytes += sum(
                        len(e.input_body) + len(e.output_body) for e in failed
                    )
            elif groups:
                self.failure = None
            self.written += written
            return written

    def _write(self, variant: str, hour: str, group: list[_Event]) -> None:
        lines = io.BytesIO()
        for event in group:
            record = capture_record(
                self.settings,
                input_body=event.input_body,
                input_type=event.input_type,
                output_body=event.output_body,
                output_type=event.output_type,
                inference_id=event.inference_id,
                when=event.time,
            )
            lines.write(json.dumps(record, separators=(",", ":")).encode())
            lines.write(b"\n")
        data = lines.getvalue()
        if self._key is not None and self.settings.kms_key_id is not None:
            sealed = io.BytesIO()
            writer = EncryptingWriter(sealed, self.settings.kms_key_id, self._key)
            writer.write(data)
            writer.finish()
            data = sealed.getvalue()
        first = group[0].time
        stamp = time.strftime("%M-%S", time.gmtime(first)) + f"-{int(first * 1000) % 1000:03d}"
        target = self.root.child(f"{self.endpoint}/{variant}/{hour}/{stamp}-{uuid.uuid4()}.jsonl")
        if self.root.remote:
            target.fs.pipe_file(target.path, data)
            return
        folder = os.path.dirname(target.path)
        os.makedirs(folder, exist_ok=True)
        partial = os.path.join(folder, f".{os.path.basename(target.path)}.partial")
        with open(partial, "wb") as out:
            out.write(data)
        os.replace(partial, target.path)

    def close(self) -> None:
        """Stop the writer and write what is left."""
        self._stop.set()
        self._thread.join()
        self.flush()
        with self._lock:
            left = len(self._pending)
        if left:
            log.error(
                "data capture of endpoint %s: %d invocation(s) could not be written to %s: %s",
                self.endpoint,
                left,
                self.root.uri,
                self.failure,
            )
