"""Captured invocations joined with their ground truth by inference id: the table a later
evaluation scores a model on (the captured input rows, what the model answered, the true
label).

Captures are the JSON lines :mod:`._capture` writes (SageMaker's data capture layout), under a
local folder or an ``s3://`` prefix, encrypted ones included when given their keys. Labels are
SageMaker Model Monitor's ground-truth records, one JSON line per inference::

    {"groundTruthData": {"data": "1", "encoding": "CSV"},
     "eventMetadata": {"eventId": "<the InferenceId the invocation was given>"},
     "eventVersion": "0"}

(a file, or a folder / prefix of ``.jsonl`` files, as Model Monitor keeps them), or a CSV with
the columns ``inference_id`` and one label column. As in Model Monitor, a label's ``eventId``
matches the capture's ``inferenceId``, or its ``eventId`` when the invocation had none.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from base64 import b64decode
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot.errors import DataError
from mlpilot.package import MAGIC, Keyring, decrypt_file
from mlpilot.serving._codec import CSV, JSON, JSONLINES, decode_rows, media_type
from mlpilot.serving._errors import InvocationError
from mlpilot.serving._storage import Location, locate, one_line

__all__ = ["CAPTURE_COLUMNS", "join_ground_truth", "read_captures", "read_ground_truth"]

#: The columns :func:`join_ground_truth` adds beside the input columns and the label.
CAPTURE_COLUMNS = (
    "inference_id",
    "event_id",
    "inference_time",
    "endpoint",
    "variant",
    "predicted_label",
    "output",
)
#: Path parts from the variant's folder to a capture file: variant/yyyy/mm/dd/hh/file.
_VARIANT_DEPTH = 6


def _files(root: Location, suffixes: tuple[str, ...]) -> Iterator[str]:
    if root.fs.isfile(root.path):
        yield root.path
        return
    if not root.fs.exists(root.path):
        raise DataError(f"{root.uri} does not exist")
    for path in sorted(root.fs.find(root.path)):
        name = path.rsplit("/", 1)[-1]
        if name.endswith(suffixes) and not name.startswith("."):
            yield path


def _read(root: Location, path: str, keyring: Keyring | None) -> bytes:
    data: bytes = root.fs.cat_file(path)
    if not data.startswith(MAGIC):
        return data
    if keyring is None:
        raise DataError(f"{path} is encrypted under a KmsKeyId: give its key (--kms-key)")
    with tempfile.TemporaryDirectory() as scratch:
        sealed, plain = Path(scratch, "sealed"), Path(scratch, "plain")
        sealed.write_bytes(data)
        decrypt_file(sealed, plain, keyring)
        return plain.read_bytes()


def _json_lines(data: bytes, where: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where} line {number} is not JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise DataError(f"{where} line {number} is not a JSON object")
        yield value


def _payload_bytes(payload: dict[str, Any]) -> bytes:
    data = str(payload.get("data", ""))
    if payload.get("encoding") == "BASE64":
        return b64decode(data)
    return data.encode("utf-8")


@dataclass(frozen=True)
class _Invocation:
    inference_id: str | None
    event_id: str | None
    inference_time: str | None
    endpoint: str | None
    variant: str | None
    input_type: str | None
    input: bytes | None
    output_type: str | None
    output: bytes | None


def _hour_of(parts: list[str]) -> float | None:
    """When the hour folder ``yyyy/mm/dd/hh`` of a capture file's path starts (epoch
    seconds), or None for a path outside the layout."""
    try:
        year, month, day, hour = (int(p) for p in parts[-5:-1])
        return datetime(year, month, day, hour, tzinfo=UTC).timestamp()
    except ValueError:  # not four numbers, or not a date
        return None


def _epoch(inference_time: Any) -> float | None:
    try:
        return (
            datetime.strptime(str(inference_time), "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=UTC)
            .timestamp()
        )
    except ValueError:
        return None


def _invocations(
    capture: str | os.PathLike[str], keyring: Keyring | None, since: float | None = None
) -> Iterator[_Invocation]:
    root = locate(capture, what="capture location")
    for path in _files(root, (".jsonl",)):
        parts = path.replace(os.sep, "/").split("/")
        hour = _hour_of(parts) if since is not None else None
        if since is not None and hour is not None and hour + 3600 <= since:
            continue  # an hour folder wholly before the window: not read
        endpoint = parts[-_VARIANT_DEPTH - 1] if len(parts) > _VARIANT_DEPTH else None
        variant = parts[-_VARIANT_DEPTH] if len(parts) >= _VARIANT_DEPTH else None
        for record in _json_lines(_read(root, path, keyring), path):
            data = record.get("captureData") or {}
            meta = record.get("eventMetadata") or {}
            when = _epoch(meta.get("inferenceTime")) if since is not None else None
            if since is not None and (when is None or when < since):
                continue
            given, answered = data.get("endpointInput"), data.get("endpointOutput")
            yield _Invocation(
                inference_id=meta.get("inferenceId"),
                event_id=meta.get("eventId"),
                inference_time=meta.get("inferenceTime"),
                endpoint=endpoint,
                variant=variant,
                input_type=(given or {}).get("observedContentType"),
                input=None if given is None else _payload_bytes(given),
                output_type=(answered or {}).get("observedContentType"),
                output=None if answered is None else _payload_bytes(answered),
            )


def read_captures(
    capture: str | os.PathLike[str], *, keyring: Keyring | None = None
) -> pd.DataFrame:
    """One row per captured invocation under ``capture`` (the DestinationS3Uri, or any folder
    or file below it): ``inference_id``, ``event_id``, ``inference_time``, ``endpoint``,
    ``variant`` (from the capture's path), ``input_type``, ``input`` and ``output_type``,
    ``output`` (the bodies, bytes; None when not captured)."""
    rows = [asdict(invocation) for invocation in _invocations(capture, keyring)]
    return pd.DataFrame(rows, columns=[f.name for f in fields(_Invocation)])


def _label_values(truth: dict[str, Any], where: str) -> list[Any]:
    """A ground-truth record's labels: one per line of CSV data, a JSON list's items, or
    the one value."""
    data = _payload_bytes(truth).decode("utf-8")
    if truth.get("encoding") == "JSON":
        try:
            value = json.loads(data)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: groundTruthData is not JSON ({exc.msg})") from None
        return list(value) if isinstance(value, list) else [value]
    return [line for line in data.splitlines() if line.strip()] or [data]


def read_ground_truth(labels: str | os.PathLike[str]) -> dict[str, list[Any]]:
    """Labels by inference id, from Model Monitor ground-truth JSON lines (a file, folder or
    prefix) or a CSV of ``inference_id`` and a label column. A later label for the same id
    replaces an earlier one."""
    root = locate(labels, what="labels location")
    found: dict[str, list[Any]] = {}
    paths = list(_files(root, (".jsonl", ".json", ".csv")))
    if not paths:
        raise DataError(f"no .jsonl or .csv labels under {root.uri}")
    for path in paths:
        data = root.fs.cat_file(path)
        if path.endswith(".csv"):
            found.update(_csv_labels(data, path))
            continue
        for number, record in enumerate(_json_lines(data, path), start=1):
            truth = record.get("groundTruthData")
            event = (record.get("eventMetadata") or {}).get("eventId")
            if not isinstance(truth, dict) or not event:
                raise DataError(
                    f"{path} line {number} is not a ground-truth record: it needs "
                    'groundTruthData {"data", "encoding"} and eventMetadata.eventId'
                )
            found[str(event)] = _label_values(truth, f"{path} line {number}")
    return found


def _csv_labels(data: bytes, path: str) -> dict[str, list[Any]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    header = next(reader, None)
    if header is None or len(header) != 2 or "inference_id" not in header:
        raise DataError(
            f"{path}: a labels CSV has a header and two columns, inference_id and the label "
            f"(got {header})"
        )
    at = header.index("inference_id")
    return {row[at]: [row[1 - at]] for row in reader if len(row) == 2 and row[at]}


def _input_rows(body: bytes, content_type: str, columns: Sequence[str] | None) -> pd.DataFrame:
    kind = media_type(content_type)[0] or CSV
    if columns is None:
        if kind not in (CSV, "text/plain"):
            raise DataError(
                f"captured {kind} input needs the model's input columns to be read: give "
                "columns (mlpilot capture join --columns or --model)"
            )
        first = next(csv.reader(io.StringIO(body.decode("utf-8"))), [])
        columns = [f"column_{i}" for i in range(1, len(first) + 1)]
    return decode_rows(body, content_type or CSV, list(columns), max_bytes=len(body) + 1)


def _output_rows(body: bytes, content_type: str) -> list[tuple[Any, str]]:
    """(predicted label, the row's answer as text) per answered row."""
    kind = media_type(content_type)[0]
    text = body.decode("utf-8")
    if kind == JSON:
        document = json.loads(text)
        predictions = document.get("predictions") if isinstance(document, dict) else document
        if isinstance(predictions, dict) and "data" in predictions:
            # A Clarify explanation's answer: the model's own answer is inside.
            return _output_rows(
                str(predictions["data"]).encode(), str(predictions.get("content_type", CSV))
            )
        items = predictions if isinstance(predictions, list) else [predictions]
        return [(_label_of(item), json.dumps(item)) for item in items]
    if kind == JSONLINES:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [(_label_of(item), json.dumps(item)) for item in items]
    lines = [line for line in text.splitlines() if line.strip()]
    return [(next(csv.reader([line]), [None])[0], line) for line in lines]


def _label_of(item: Any) -> Any:
    return item.get("predicted_label") if isinstance(item, dict) else item


def join_ground_truth(
    capture: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    target: str = "label",
    keyring: Keyring | None = None,
    since: float | None = None,
) -> pd.DataFrame:
    """The captured invocations under ``capture`` that have a label in ``labels``, one row
    per input row: the input columns (``columns``, the model's input columns, in training
    order; without them CSV values are ``column_1``, ``column_2``, …), the columns of
    :data:`CAPTURE_COLUMNS` and ``target``, the true label (as the labels give it: text for
    CSV-encoded ground truth).

    An invocation of several rows needs as many labels (CSV lines, or a JSON list), in the same
    order. Invocations captured without their input, or without a label, are left out, and
    with ``since`` (epoch seconds) those captured before it (hour folders wholly before it are
    not read). Raises :class:`DataError` naming the capture or label that cannot be read.
    """
    truth = read_ground_truth(labels)
    frames = []
    for event in _invocations(capture, keyring, since):
        key = event.inference_id or event.event_id
        if key is None or key not in truth or event.input is None:
            continue
        where = f"inference {key}"
        try:
            rows = _input_rows(event.input, event.input_type or "", columns)
        except (InvocationError, UnicodeDecodeError) as exc:
            raise DataError(
                f"{where}: the captured input cannot be read: {one_line(exc)}"
            ) from None
        clash = sorted(set(rows.columns) & {*CAPTURE_COLUMNS, target})
        if clash:
            raise DataError(
                f"input column(s) {', '.join(clash)} share a name with the joined table's own "
                f"columns ({', '.join(CAPTURE_COLUMNS)} and the label's, {target!r})"
            )
        values = truth[key]
        if len(values) != len(rows):
            raise DataError(f"{where}: {len(rows)} captured row(s) but {len(values)} label(s)")
        answers: list[tuple[Any, str | None]] = [(None, None)] * len(rows)
        if event.output is not None:
            try:
                answers = list(_output_rows(event.output, event.output_type or ""))
            except (ValueError, UnicodeDecodeError) as exc:
                raise DataError(f"{where}: the captured output cannot be read: {exc}") from None
            if len(answers) != len(rows):
                raise DataError(
                    f"{where}: {len(rows)} captured row(s) but {len(answers)} answer(s)"
                )
        rows.insert(0, "inference_id", event.inference_id)
        rows.insert(1, "event_id", event.event_id)
        rows.insert(2, "inference_time", event.inference_time)
        rows.insert(3, "endpoint", event.endpoint)
        rows.insert(4, "variant", event.variant)
        rows["predicted_label"] = [answer[0] for answer in answers]
        rows["output"] = [answer[1] for answer in answers]
        rows[target] = values
        frames.append(rows)
    if not frames:
        return pd.DataFrame(
            columns=[*CAPTURE_COLUMNS[:5], *(columns or ()), *CAPTURE_COLUMNS[5:], target]
        )
    return pd.concat(frames, ignore_index=True)
