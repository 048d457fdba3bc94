"""Batch transform's records: a line of input as sent (:class:`Record`), records packed into
one payload (:class:`Batch`), and the record formats (CSV, JSON, JSON Lines): parsing a record,
writing one, joining an output to its input, and cutting the model's answer into one output
per record."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from itertools import chain
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


class Batch:
    """Records sent as one payload (one record a line).

    A batch of consecutive lines (:meth:`of_lines`) keeps only its payload and line numbers;
    its :attr:`records` are cut from the payload when asked for (to bisect a refused batch)."""

    __slots__ = ("_records", "label", "payload", "spans")

    def __init__(self, records: list[Record], payload: bytes, label: str = "") -> None:
        self._records: list[Record] | None = records
        self.payload = payload
        #: What messages call the batch instead of its line range (a forecast's series).
        self.label = label
        #: For :meth:`of_lines`: ``(first line number, lines)`` of each run of the payload.
        self.spans: list[tuple[int, int]] = []

    @classmethod
    def of_lines(cls, payload: bytes, spans: list[tuple[int, int]]) -> Batch:
        """Runs of consecutive lines (``(first line number, count)`` each), joined by newlines
        as ``payload``."""
        batch = cls([], payload)
        batch._records, batch.spans = None, spans
        return batch

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            numbers = chain.from_iterable(range(first, first + n) for first, n in self.spans)
            data = self.payload.split(b"\n")
            self._records = [Record(n, d) for n, d in zip(numbers, data, strict=True)]
        return self._records

    @property
    def count(self) -> int:
        """How many records it holds."""
        if self._records is None:
            return sum(n for _, n in self.spans)
        return len(self._records)

    def lines(self) -> str:
        if self.label:
            return self.label
        if self._records is None:
            first, (start, n) = self.spans[0][0], self.spans[-1]
            last = start + n - 1
        else:
            first, last = self._records[0].line, self._records[-1].line
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
