"""Batch transform's payloads for a forecasting model: the rows of an input object grouped into
series by their key columns (item id, then grouping), and series packed into payloads whole.

A forecast needs all of a series' history at once, so a series is never cut across payloads:
rows are grouped wherever they sit in the object (one object is held in memory while it is
grouped), payloads are cut only between series, and a series that alone exceeds the payload
limit fails the transform with its name. CSV objects start with a header line, which every
payload repeats; JSON objects hold one record (an object keyed by column name) per line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from mlpilot.serving._codec import CSV
from mlpilot.serving._errors import TransformError
from mlpilot.serving._transform_records import Batch, Record
from mlpilot.serving._transform_spec import MIB

__all__ = ["series_batches"]


@dataclass
class _Series:
    key: tuple[str, ...]
    records: list[Record] = field(default_factory=list)
    #: Bytes of its lines, one newline each.
    size: int = 0


def _name(keys: Sequence[str], key: tuple[str, ...]) -> str:
    return ", ".join(f"{column}={value!r}" for column, value in zip(keys, key, strict=True))


def _lines(stream: IO[bytes], uri: str, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their numbers, without line ends (and without a leading BOM)."""
    limit = max_bytes + 2
    number = 0
    while True:
        line = stream.readline(limit)
        if not line:
            return
        number += 1
        if len(line) >= limit and not line.endswith(b"\n"):
            raise TransformError(
                f"{uri} line {number}: the record is over MaxPayloadInMB ({max_bytes // MIB} MB)"
            )
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield number, line


def _csv_fields(data: bytes, uri: str, number: int) -> list[str]:
    try:
        return next(csv.reader([data.decode("utf-8")], strict=True), [])
    except (csv.Error, UnicodeDecodeError) as exc:
        raise TransformError(f"{uri} line {number}: unreadable CSV record: {exc}") from None


def _json_key(data: bytes, keys: Sequence[str], uri: str, number: int) -> tuple[str, ...]:
    try:
        record = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TransformError(f"{uri} line {number}: unreadable JSON record: {exc}") from None
    if not isinstance(record, dict):
        raise TransformError(
            f"{uri} line {number}: a forecasting model's JSON record is an object keyed by "
            f"column name, not a {type(record).__name__}"
        )
    missing = [k for k in keys if record.get(k) is None]
    if missing:
        raise TransformError(f"{uri} line {number}: the record lacks series column(s) {missing}")
    return tuple(str(record[k]) for k in keys)


def _group(
    lines: Iterator[tuple[int, bytes]], keys: Sequence[str], kind: str, uri: str
) -> tuple[bytes | None, list[_Series]]:
    """The header line (CSV) and the series, in the order they first appear."""
    header: bytes | None = None
    positions: list[int] = []
    groups: dict[tuple[str, ...], _Series] = {}
    for number, data in lines:
        if kind == CSV and header is None:
            names = [n.strip() for n in _csv_fields(data, uri, number)]
            missing = [k for k in keys if k not in names]
            if missing:
                raise TransformError(
                    f"{uri} line {number}: the header lacks the series column(s) {missing}: a "
                    "forecasting model's CSV input starts with a header line in the training "
                    "schema"
                )
            header, positions = data, [names.index(k) for k in keys]
            continue
        if kind == CSV:
            fields = _csv_fields(data, uri, number)
            if len(fields) <= max(positions):
                raise TransformError(
                    f"{uri} line {number}: {len(fields)} value(s), too few to hold the series "
                    f"column(s) {list(keys)}"
                )
            key = tuple(fields[p] for p in positions)
        else:
            key = _json_key(data, keys, uri, number)
        series = groups.get(key)
        if series is None:
            series = groups[key] = _Series(key)
        series.records.append(Record(number, data))
        series.size += len(data) + 1
    return header, list(groups.values())


def _batch(header: bytes | None, pending: list[_Series], keys: Sequence[str]) -> Batch:
    lines = [header] if header is not None else []
    records = [r for s in pending for r in s.records]
    lines.extend(r.data for r in records)
    first = _name(keys, pending[0].key)
    label = f"series {first}" + (f" and {len(pending) - 1} more" if len(pending) > 1 else "")
    return Batch(records, b"\n".join(lines), label=label)


def series_batches(
    stream: IO[bytes],
    uri: str,
    *,
    keys: Sequence[str],
    kind: str,
    max_bytes: int,
    multi: bool,
) -> Iterator[Batch]:
    """The payloads of one object: whole series, as many as fit in ``max_bytes`` (one each
    when not ``multi``), in the order the series first appear.

    Raises :class:`TransformError` naming the line or the series: a CSV header without the key
    columns, an unreadable record, a series over ``max_bytes`` on its own.
    """
    header, groups = _group(_lines(stream, uri, max_bytes), keys, kind, uri)
    overhead = len(header) + 1 if header is not None else 0
    pending: list[_Series] = []
    size = overhead
    for series in groups:
        if overhead + series.size > max_bytes:
            raise TransformError(
                f"{uri}: series {_name(keys, series.key)} ({overhead + series.size:,} bytes on "
                f"{len(series.records):,} lines) is over MaxPayloadInMB "
                f"({max_bytes // MIB} MB); a series is never split across payloads, so raise "
                "MaxPayloadInMB or send less of its history"
            )
        if pending and (not multi or size + series.size > max_bytes):
            yield _batch(header, pending, keys)
            pending, size = [], overhead
        pending.append(series)
        size += series.size
    if pending:
        yield _batch(header, pending, keys)
