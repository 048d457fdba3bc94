"""Batch transform's records: a line of input as sent (:class:`Record`), records packed into
one payload (:class:`Batch`), and the record formats (CSV, JSON, JSON Lines): parsing a record,
writing one, joining an output to its input, and cutting the model's answer into one output
per record."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from mlpilot.serving._codec import CSV, JSON, JSONLINES, InvocationResult, media_type

__all__ = [
    "RECORD_TYPES",
    "Batch",
    "Record",
    "dump_record",
    "join_record",
    "parse_record",
    "split_outputs",
]

#: The record format of each content type batch transform can parse.
RECORD_TYPES = {
    CSV: CSV,
    JSON: JSON,
    JSONLINES: JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-jsonlines": JSONLINES,
}


@dataclass(slots=True)
class Record:
    """One input record: its line number, what is sent, and the parsed input for a join."""

    line: int
    data: bytes  # what is sent (after the input filter)
    original: Any = None  # the parsed input, kept for JoinSource=Input


@dataclass
class Batch:
    """Records sent as one payload (one record a line)."""

    records: list[Record]
    payload: bytes
    #: What messages call the batch instead of its line range (a forecast's series).
    label: str = ""

    def lines(self) -> str:
        if self.label:
            return self.label
        first, last = self.records[0].line, self.records[-1].line
        return f"line {first}" if first == last else f"lines {first}-{last}"


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


def parse_record(kind: str, text: str) -> Any:
    """A record of ``kind`` (CSV fields or a JSON value); ValueError when it is malformed."""
    if kind == CSV:
        return _csv_fields(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None


def dump_record(kind: str, value: Any) -> str:
    """``value`` written as one record of ``kind``."""
    return _csv_line(value) if kind == CSV else json.dumps(value)


def join_record(kind: str, original: Any, output: Any) -> Any:
    """An output joined to its input record (JoinSource=Input): appended to a CSV row, under
    ``SageMakerOutput`` in JSON."""
    if kind == CSV:
        return [*original, *(output if isinstance(output, list) else [output])]
    if isinstance(original, dict):
        if "SageMakerOutput" in original:
            raise ValueError("the input record already has the reserved key 'SageMakerOutput'")
        return {**original, "SageMakerOutput": output}
    return {"SageMakerInput": original, "SageMakerOutput": output}


def split_outputs(
    result: InvocationResult, accept: str | None, count: int
) -> tuple[str, list[Any]]:
    """The model's answer for a batch as one parsed output per record."""
    kind = RECORD_TYPES.get(media_type(result.content_type)[0] or media_type(accept)[0] or CSV)
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
        outputs = [parse_record(kind, line) for line in text.splitlines() if line.strip()]
    if len(outputs) != count:
        raise ValueError(f"the model returned {len(outputs)} output(s) for {count} record(s)")
    return kind, outputs
