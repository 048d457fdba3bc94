"""What a model container reads and writes on ``POST /invocations``.

Requests (``Content-Type``):

- ``text/csv``: one row per line, the training columns without the target (RFC 4180 quoting).
  The first line is a header when every value in it is a training column name (or
  ``;header=present`` says so; ``;header=absent`` says it is not): columns are then matched by
  name, in any order, extra ones ignored. Without one, values are in training order.
- ``application/json``: ``{"instances": [row, ...]}``, a list of rows, or a single row, where a
  row is a list of values in training order, an object keyed by column name, or
  ``{"features": [values]}``. Several JSON documents separated by newlines are read as JSON lines.
- ``application/jsonlines``: one row (or one document of the forms above) per line.
- ``application/x-parquet``: a Parquet file, columns matched by name.

Columns the model does not use (identifiers the profile dropped) may be left out everywhere.

Responses (``Accept``) carry the content keys of ``SAGEMAKER_INFERENCE_OUTPUT`` for each row:
``text/csv`` (values in key order, lists as quoted Python-style lists), ``application/json``
(``{"predictions": [{...}, ...]}``) or ``application/jsonlines`` (one object per line).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from mlpilot.data import is_header_row
from mlpilot.errors import ConfigError, PredictionInputError
from mlpilot.features import Coded
from mlpilot.profile import label_key
from mlpilot.serving._errors import InvocationError

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
PARQUET = "application/x-parquet"
#: InvokeEndpoint's body limit, and the container's default one.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
CONTENT_KEYS = (
    "predicted_label",
    "probability",
    "probabilities",
    "labels",
    "probabilities_by_label",
)
ERROR_CONTENT_TYPE = "text/plain; charset=utf-8"

_REQUEST_TYPES = {
    CSV: CSV,
    "text/plain": CSV,
    JSON: JSON,
    JSONLINES: JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/json-lines": JSONLINES,
}
#: Binary bodies: the row codec reads them, the forecast codec does not.
_BINARY_TYPES = {
    PARQUET: PARQUET,
    "application/parquet": PARQUET,
    "application/vnd.apache.parquet": PARQUET,
}
_RESPONSE_TYPES = {
    CSV: CSV,
    JSON: JSON,
    JSONLINES: JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-jsonlines": JSONLINES,
}
_WILDCARDS = {"text/*": CSV, "application/*": JSON}
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class InvocationResult:
    """One answer to an invocation: HTTP status, body and its content type, and (through an
    endpoint) the variant that served it. ``status`` ≥ 400 is the container's error."""

    status: int
    body: bytes
    content_type: str
    variant: str = ""

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def message(self) -> str:
        """The body as text (an error's message)."""
        return self.body.decode("utf-8", errors="replace")


def media_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``"text/csv; Header=present"`` → ``("text/csv", {"header": "present"})``."""
    if not value:
        return "", {}
    main, *params = value.split(";")
    parsed = {}
    for param in params:
        key, _, val = param.partition("=")
        parsed[key.strip().lower()] = val.strip().strip('"').lower()
    return main.strip().lower(), parsed


def is_parquet(content_type: str | None) -> bool:
    """Whether ``content_type`` names a Parquet body."""
    return media_type(content_type)[0] in _BINARY_TYPES


def parse_output_keys(value: str | None) -> tuple[str, ...]:
    """``SAGEMAKER_INFERENCE_OUTPUT`` as a tuple of keys (``predicted_label`` when unset).

    Raises :class:`InvocationError` (400) naming an unknown key.
    """
    keys = tuple(k.strip().lower() for k in (value or "").split(",") if k.strip())
    if not keys:
        return ("predicted_label",)
    unknown = [k for k in keys if k not in CONTENT_KEYS]
    if unknown:
        raise InvocationError(
            400,
            f"unknown content key {unknown[0]!r} in SAGEMAKER_INFERENCE_OUTPUT={value!r}: "
            f"use {', '.join(CONTENT_KEYS)}",
        )
    return keys


def choose_accept(accept: str | None, default: str = CSV) -> str:
    """The response type for an ``Accept`` header: the first supported type by preference
    (``q``), with ``*/*`` or no header meaning ``default``. Raises :class:`InvocationError` (406)
    when nothing offered is supported."""
    offers: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept or "").split(",")):
        kind, params = media_type(part)
        if not kind:
            continue
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality > 0:
            offers.append((-quality, position, kind))
    if not offers:
        offers = [(-1.0, 0, "*/*")]
    for _, _, kind in sorted(offers):
        if kind == "*/*":
            wanted = media_type(default)[0]
            if wanted in _RESPONSE_TYPES:
                return _RESPONSE_TYPES[wanted]
            raise InvocationError(
                406,
                f"the default response type {default!r} (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT) is "
                f"not supported: use {CSV}, {JSON} or {JSONLINES}",
            )
        if kind in _RESPONSE_TYPES:
            return _RESPONSE_TYPES[kind]
        if kind in _WILDCARDS:
            return _WILDCARDS[kind]
    raise InvocationError(406, f"unsupported Accept {accept!r}: use {CSV}, {JSON} or {JSONLINES}")


# -- requests ------------------------------------------------------------------------------------
def _shown_columns(columns: Sequence[str]) -> str:
    if len(columns) <= 8:
        return ", ".join(columns)
    return ", ".join([*columns[:4], "...", *columns[-3:]])


@dataclass
class _Rows:
    """Rows read from a body: values in training order, and where each row came from."""

    columns: Sequence[str]
    target: str | None
    values: list[list[Any]] = field(default_factory=list)
    #: The columns the model uses (training order), when some input columns are not used
    #: (identifiers, constants): rows may also give just these.
    used: Sequence[str] | None = None
    #: A hint for a count error: the first line names the columns but was not taken as a header.
    hint: str = ""

    @property
    def required(self) -> Sequence[str]:
        """The columns a row keyed by name must give: those the model uses."""
        return self.columns if self.used is None else self.used

    def where(self, index: int) -> str:
        return f"row {index + 1}: " if len(self.values) > 1 else ""

    def add_list(self, row: Sequence[Any]) -> None:
        self.values.append(list(row))

    def check(self) -> None:
        expected = len(self.columns)
        used = self.used
        if (
            used is not None
            and len(used) != expected
            and self.values
            and all(len(row) == len(used) for row in self.values)
        ):
            # Rows of the used features only (e.g. without an id column the model ignores):
            # the ignored columns are left empty.
            index_of = {name: i for i, name in enumerate(used)}
            self.values = [
                [row[index_of[c]] if c in index_of else None for c in self.columns]
                for row in self.values
            ]
        for i, row in enumerate(self.values):
            if len(row) != expected:
                hint = ""
                if self.target and len(row) == expected + 1:
                    hint = f"; leave out the target column {self.target!r}"
                elif used is not None and len(used) != expected:
                    hint = f" (or {len(used)}: {_shown_columns(used)})"
                hint += self.hint
                raise InvocationError(
                    400,
                    f"{self.where(i)}expected {expected} values ({_shown_columns(self.columns)}), "
                    f"got {len(row)}{hint}",
                )
            for position, value in enumerate(row):
                if not isinstance(value, _SCALARS):
                    raise InvocationError(
                        400,
                        f"{self.where(i)}column {self.columns[position]!r} holds a "
                        f"{type(value).__name__}; values must be numbers, strings, booleans "
                        "or null",
                    )


def _is_header(record: Sequence[str], rows: _Rows, header: str | None) -> bool:
    """``header=present|absent`` as it says; else :func:`~mlpilot.data.is_header_row` decides
    (the rule ``mlpilot predict`` applies too)."""
    if header == "present":
        return True
    if header == "absent":
        return False
    if header is not None:
        raise InvocationError(
            400, f"unknown header={header!r} in the Content-Type: use header=present or absent"
        )
    return is_header_row(record, [*rows.columns, *([rows.target] if rows.target else [])])


def _by_name(names: Sequence[str], rows: _Rows, what: str) -> list[int | None]:
    """Where each training column is among ``names`` (None: not sent, and not used by the
    model); raises a 400 naming the used columns missing."""
    missing = [c for c in rows.required if c not in names]
    if missing:
        raise InvocationError(400, f"{what} lacks column(s) {_shown_columns(missing)}")
    position: dict[str, int] = {}
    for i, name in enumerate(names):
        position.setdefault(name, i)
    return [position.get(c) for c in rows.columns]


def _csv_rows(text: str, rows: _Rows, header: str | None) -> None:
    reader = csv.reader(io.StringIO(text), strict=True)
    names: list[str] | None = None
    positions: list[int | None] = []
    first = True
    try:
        for record in reader:
            if not record:
                continue  # blank line
            if first:
                first = False
                if _is_header(record, rows, header):
                    names = [n.strip() for n in record]
                    positions = _by_name(names, rows, "the CSV header")
                    continue
                if header is None and set(rows.required) <= {v.strip() for v in record}:
                    rows.hint = (
                        "; the first line names columns that are not training columns: "
                        "send text/csv;header=present to read it as a header"
                    )
            if names is not None:
                if len(record) != len(names):
                    raise InvocationError(
                        400,
                        f"line {reader.line_num}: expected {len(names)} values as in the header, "
                        f"got {len(record)}",
                    )
                rows.add_list([None if p is None else record[p] for p in positions])
            else:
                rows.add_list(record)
    except csv.Error as exc:
        raise InvocationError(400, f"line {reader.line_num}: malformed CSV ({exc})") from None


def _row_values(item: Any, rows: _Rows, index: int) -> list[Any]:
    if isinstance(item, list):
        return item
    if isinstance(item, dict):
        features = item.get("features")
        if isinstance(features, list) and "features" not in rows.columns:
            return features
        missing = [c for c in rows.required if c not in item]
        if missing:
            raise InvocationError(
                400, f"row {index + 1}: missing column(s) {_shown_columns(missing)}"
            )
        return [item.get(c) for c in rows.columns]
    raise InvocationError(
        400,
        f"row {index + 1} is a {type(item).__name__}: a row is a list of values, an object "
        'keyed by column name, or {"features": [values]}',
    )


def _document_rows(document: Any, rows: _Rows) -> None:
    if isinstance(document, dict) and "instances" in document and "instances" not in rows.columns:
        items = document["instances"]
        if not isinstance(items, list):
            raise InvocationError(400, '"instances" must be a list of rows')
    elif isinstance(document, list) and document and all(isinstance(v, _SCALARS) for v in document):
        items = [document]  # one row given as a flat list
    elif isinstance(document, list):
        items = document
    elif isinstance(document, dict):
        items = [document]
    else:
        raise InvocationError(
            400,
            f'a JSON {type(document).__name__} is not a row: send {{"instances": [...]}}, '
            "a list of rows, or one row",
        )
    for item in items:
        rows.add_list(_row_values(item, rows, len(rows.values)))


def _jsonlines_rows(text: str, rows: _Rows) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvocationError(400, f"line {number}: invalid JSON ({exc.msg})") from None
        _document_rows(document, rows)


def _parquet_rows(body: bytes, rows: _Rows) -> None:
    try:
        table = pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # pyarrow raises several types for a file it cannot read
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvocationError(400, f"the body is not a readable Parquet file ({reason})") from None
    names = [str(c) for c in table.columns]
    positions = _by_name(names, rows, "the Parquet body")
    columns = []
    for position in positions:
        if position is None:
            columns.append([None] * len(table))
            continue
        column = table.iloc[:, position]
        if column.dtype.kind in "mM":  # as a CSV would carry them
            column = column.astype(str).where(column.notna(), None)
        columns.append(column.astype(object).where(column.notna(), None).tolist())
    rows.values = [list(values) for values in zip(*columns, strict=True)]


def request_text(body: bytes, content_type: str | None, send: str) -> tuple[str, str]:
    """A request body's format (CSV, JSON or JSON lines; CSV without a ``Content-Type``) and its
    text. Raises :class:`InvocationError`: 415 for an unsupported type, 400 for a body that is
    not UTF-8 or is empty (``send`` says what to send instead)."""
    fmt = _REQUEST_TYPES.get(media_type(content_type)[0] or CSV)
    if fmt is None:
        raise InvocationError(
            415, f"unsupported Content-Type {content_type!r}: use {CSV}, {JSON} or {JSONLINES}"
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvocationError(
            400, f"the body is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    if not text.strip():
        raise InvocationError(400, f"empty request body: {send}")
    return fmt, text


def decode_rows(
    body: bytes,
    content_type: str | None,
    columns: Sequence[str],
    *,
    target: str | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
    used_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The rows of a request body as a DataFrame with ``columns`` (values as sent: strings for
    CSV, JSON scalars for JSON). A missing ``Content-Type`` means CSV.

    Raises :class:`InvocationError`: 413 over ``max_bytes``, 415 unsupported type, 400 empty or
    unreadable body, wrong number of values (naming the row, expected and got).
    """
    if len(body) > max_bytes:
        raise InvocationError(
            413, f"payload of {len(body):,} bytes is over the limit of {max_bytes:,} bytes"
        )
    kind, params = media_type(content_type)
    rows = _Rows(columns, target, used=used_columns)
    if kind in _BINARY_TYPES:
        if not body:
            raise InvocationError(400, "empty request body: send a Parquet file")
        _parquet_rows(body, rows)
        fmt, text = PARQUET, ""
    else:
        fmt, text = request_text(body, content_type, "send at least one row")
    if fmt == CSV:
        _csv_rows(text, rows, header=params.get("header"))
    elif fmt == JSONLINES:
        _jsonlines_rows(text, rows)
    elif fmt == JSON:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise InvocationError(
                    400, f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
                ) from None
            _jsonlines_rows(text, rows)  # several documents: JSON lines (MultiRecord batches)
        else:
            _document_rows(document, rows)
    if not rows.values:
        raise InvocationError(400, "the request holds no rows")
    rows.check()
    if len(rows.values) <= _FEW_ROWS:
        # One object block filled value by value (values kept as sent): pandas' list-of-lists
        # path checks each column on its own, a third of decoding one row.
        block = np.empty((len(rows.values), len(columns)), dtype=object)
        for i, row in enumerate(rows.values):
            for j, value in enumerate(row):
                block[i, j] = value
        return pd.DataFrame(block, columns=list(columns), copy=False)
    return pd.DataFrame(rows.values, columns=list(columns), dtype=object)


#: Up to this many rows :func:`decode_rows` builds its DataFrame from one object block.
_FEW_ROWS = 64


# -- large CSV bodies, column by column ----------------------------------------------------------
#: From this many bytes a CSV body is first offered to :func:`bulk_csv_columns` (a payload of a
#: batch transform); below it the row reader costs less than setting the bulk reader up.
BULK_BYTES = 16 * 1024
#: Up to this many rows the model reads values one by one (its small-batch path), so bodies of
#: so few rows keep the row reader.
BULK_MIN_ROWS = 64
_BOM = b"\xef\xbb\xbf"
_TEXT = pa.dictionary(pa.int32(), pa.string())


def bulk_csv_columns(
    body: bytes,
    content_type: str | None,
    columns: Sequence[str],
    needed: Sequence[str],
    *,
    target: str | None = None,
    used_columns: Sequence[str] | None = None,
) -> dict[str, Coded] | None:
    """The ``needed`` columns of a large CSV body, read by pyarrow's CSV reader as dictionary-
    encoded text (:class:`~mlpilot.features.Coded`: each column's distinct strings and a code
    per row), with the header rule and column matching of :func:`decode_rows`.

    None when the body is not one this reader takes exactly as the row reader would: not CSV,
    quoted fields, carriage returns or NUL bytes, a blank first line, bytes that are not UTF-8,
    rows of unequal length, too few rows (``BULK_MIN_ROWS``), or anything the row reader would
    refuse. The caller then reads it row by row, which also words the error.
    """
    kind, params = media_type(content_type)
    if _REQUEST_TYPES.get(kind or CSV) != CSV or not needed:
        return None
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    if not body or body.startswith(b"\n") or any(c in body for c in (b'"', b"\r", b"\x00")):
        return None
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    end = body.find(b"\n")
    # Without quotes or carriage returns, csv.reader splits a line exactly at its commas.
    record = (body if end < 0 else body[:end]).decode("utf-8").split(",")
    rows = _Rows(columns, target, used=used_columns)
    try:
        header = _is_header(record, rows, params.get("header"))
    except InvocationError:
        return None
    if header:
        order = [n.strip() for n in record]
        if any(c not in order for c in rows.required):
            return None
    elif len(record) == len(columns):
        order = list(columns)
    elif used_columns is not None and len(record) == len(used_columns):
        order = list(used_columns)
    else:
        return None
    if any(c not in order for c in needed):
        return None
    names = [f"c{i}" for i in range(len(record))]
    position = {c: order.index(c) for c in needed}  # the first of repeated names, as _by_name
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(body),
            read_options=pa_csv.ReadOptions(
                column_names=names,
                skip_rows=1 if header else 0,
                use_threads=False,
                block_size=len(body) + 1,  # one chunk: one dictionary per column
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=",",
                quote_char=False,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: _TEXT for n in names},
                include_columns=[names[i] for i in sorted(set(position.values()))],
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # e.g. a row of another length: the row reader names it
    if table.num_rows <= BULK_MIN_ROWS:
        return None
    out: dict[str, Coded] = {}
    for name, i in position.items():
        column = table.column(names[i])
        if column.num_chunks != 1 or column.null_count:
            return None
        chunk = column.chunk(0)
        values = chunk.dictionary.to_numpy(zero_copy_only=False).astype(object)
        out[name] = Coded(chunk.indices.to_numpy(zero_copy_only=False), values)
    return out


# -- responses -----------------------------------------------------------------------------------
def _records(
    raw: np.ndarray,
    labels: Sequence[Any],
    keys: Sequence[str],
    classification: bool,
    decide: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    if not classification:
        bad = [k for k in keys if k != "predicted_label"]
        if bad:
            raise InvocationError(
                400,
                f"content key {bad[0]!r} is not available for a regression model "
                "(supported: predicted_label)",
            )
        return [{"predicted_label": v} for v in np.asarray(raw, dtype=float).tolist()]
    names = [label_key(v) for v in labels]
    proba = np.asarray(raw, dtype=float)
    best = (proba.argmax(axis=1) if decide is None else np.asarray(decide(proba))).tolist()
    rows = proba.tolist()
    out = []
    for i, b in enumerate(best):
        record: dict[str, Any] = {}
        for key in keys:
            if key == "predicted_label":
                record[key] = names[b]
            elif key == "probability":
                record[key] = rows[i][b]
            elif key == "probabilities":
                record[key] = rows[i]
            elif key == "probabilities_by_label":
                record[key] = dict(zip(names, rows[i], strict=True))
            else:
                record[key] = names
        out.append(record)
    return out


#: What makes csv.writer quote a field (QUOTE_MINIMAL, "\\n" line ends).
_CSV_SPECIAL = frozenset(',"\r\n')


def _csv_lines(
    raw: np.ndarray,
    labels: Sequence[Any],
    keys: Sequence[str],
    classification: bool,
    decide: Callable[[np.ndarray], np.ndarray] | None,
) -> bytes | None:
    """The CSV answer for the plain keys (``predicted_label``, ``probability``) a column at a
    time: what csv.writer writes for :func:`_records`' dicts (floats as ``repr``, labels that
    need no quoting), without a dict per row. None for other keys or labels needing quotes."""
    if classification:
        if not set(keys) <= {"predicted_label", "probability"}:
            return None
        names = [label_key(v) for v in labels]
        if any(not n or not _CSV_SPECIAL.isdisjoint(n) for n in names):
            return None
        proba = np.asarray(raw, dtype=float)
        best = proba.argmax(axis=1) if decide is None else np.asarray(decide(proba))
        label_of = np.asarray(names, dtype=object)
        fields: dict[str, list[str]] = {}
        for key in keys:
            if key not in fields:
                fields[key] = (
                    label_of[best].tolist()
                    if key == "predicted_label"
                    else list(map(repr, proba[np.arange(len(proba)), best].tolist()))
                )
    else:
        if any(k != "predicted_label" for k in keys):
            return None
        fields = {"predicted_label": list(map(repr, np.asarray(raw, dtype=float).tolist()))}
    columns = [fields[k] for k in keys]
    rows = columns[0] if len(columns) == 1 else map(",".join, zip(*columns, strict=True))
    text = "\n".join(rows)
    return (text + "\n").encode("utf-8") if text else b""


def _csv_value(value: Any) -> Any:
    return str(value) if isinstance(value, (list, dict)) else value


def encode_predictions(
    raw: np.ndarray,
    *,
    labels: Sequence[Any],
    classification: bool,
    keys: Sequence[str],
    accept: str,
    decide: Callable[[np.ndarray], np.ndarray] | None = None,
) -> bytes:
    """The response body for ``raw`` (``predict_raw``'s output) in the response type ``accept``
    (one of :data:`CSV`, :data:`JSON`, :data:`JSONLINES`).

    ``probability`` is that of ``predicted_label``; labels are written as strings. ``decide``
    turns probabilities into class positions (the model's decision threshold; default arg-max).
    """
    if accept == CSV and len(raw) > BULK_MIN_ROWS:  # a few rows: the dicts cost less
        lines = _csv_lines(raw, labels, keys, classification, decide)
        if lines is not None:
            return lines
    records = _records(raw, labels, keys, classification, decide)
    if accept == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([_csv_value(r[k]) for k in keys] for r in records)
        return buffer.getvalue().encode("utf-8")
    if accept == JSONLINES:
        return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    return json.dumps({"predictions": records}).encode("utf-8")


# -- the whole request ---------------------------------------------------------------------------
def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None
    if number < 0:
        raise ConfigError(f"{name}={value!r} must not be negative")
    return number


@dataclass(frozen=True)
class ServingSettings:
    """A container's settings, from its environment (``ContainerDefinition.Environment``).

    ``SAGEMAKER_INFERENCE_OUTPUT`` content keys; ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` the
    response type when ``Accept`` is missing or ``*/*``; the body limit is
    ``MAX_CONTENT_LENGTH`` bytes or ``SAGEMAKER_MAX_PAYLOAD_IN_MB`` MiB, whichever is larger
    (6 MiB when neither is set); ``SAGEMAKER_BATCH_STRATEGY``, ``SAGEMAKER_MAX_PAYLOAD_IN_MB``
    and ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS`` are echoed by ``/execution-parameters``.
    """

    output: str = "predicted_label"
    default_accept: str = CSV
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    batch_strategy: str = "MULTI_RECORD"
    max_payload_mb: int = 6
    max_concurrent_transforms: int = 1
    #: ``MLPILOT_CLARIFY_EXPLAINER``: an endpoint's ClarifyExplainerConfig as JSON (empty: none).
    explainer: str = ""

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ServingSettings:
        """Read the settings; raises :class:`ConfigError` for a malformed number or strategy."""
        env = os.environ if env is None else env
        content_length = _positive_int(env, "MAX_CONTENT_LENGTH")
        payload_mb = _positive_int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB")
        limits = [n for n in (content_length, (payload_mb or 0) * 2**20) if n]
        strategy = (env.get("SAGEMAKER_BATCH_STRATEGY") or "MULTI_RECORD").strip().upper()
        if strategy not in ("MULTI_RECORD", "SINGLE_RECORD"):
            raise ConfigError(
                f"SAGEMAKER_BATCH_STRATEGY={strategy!r}: use MULTI_RECORD or SINGLE_RECORD"
            )
        concurrent = _positive_int(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS")
        return cls(
            output=env.get("SAGEMAKER_INFERENCE_OUTPUT") or "predicted_label",
            default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or CSV,
            max_payload_bytes=max(limits) if limits else MAX_PAYLOAD_BYTES,
            batch_strategy=strategy,
            max_payload_mb=payload_mb or 6,
            # Predictions hold the GIL most of the time: a few requests in flight keep the
            # container busy while the caller packs the next batch.
            max_concurrent_transforms=concurrent or max(1, min(4, os.cpu_count() or 1)),
            explainer=env.get("MLPILOT_CLARIFY_EXPLAINER") or "",
        )

    def execution_parameters(self) -> dict[str, Any]:
        """What ``GET /execution-parameters`` answers."""
        return {
            "MaxConcurrentTransforms": self.max_concurrent_transforms,
            "BatchStrategy": self.batch_strategy,
            "MaxPayloadInMB": self.max_payload_mb,
        }


class Predictor:
    """One model behind the container contract: body in, body out.

    Parameters
    ----------
    model:
        An :class:`~mlpilot.package.InferenceModel` (anything with ``predict_raw``, ``labels``,
        ``input_columns``, ``problem_type`` and ``info``).
    settings:
        The container's settings; :meth:`ServingSettings.from_environment` of the process
        environment when omitted.
    """

    def __init__(self, model: Any, settings: ServingSettings | None = None) -> None:
        self.model = model
        self.settings = settings or ServingSettings.from_environment()
        self.columns = list(model.input_columns)
        used = [c for c in getattr(model, "feature_columns", self.columns) if c in self.columns]
        self.used_columns = used if len(used) != len(self.columns) else None
        self.target = model.info.get("target")
        self.labels = list(model.labels)
        self.classification = bool(model.problem_type.is_classification)
        try:
            self.keys: tuple[str, ...] | None = parse_output_keys(self.settings.output)
            self._key_error: InvocationError | None = None
        except InvocationError as exc:
            self.keys, self._key_error = None, exc
        #: The columns a large CSV body is read for (the model's features), when the model
        #: predicts column-wise input (``predict_coded``); None: every body is read by row.
        self._bulk_columns: list[str] | None = None
        if callable(getattr(model, "predict_coded", None)):
            features = getattr(model, "feature_columns", self.columns)
            self._bulk_columns = [c for c in features if c in self.columns]

    def invoke(
        self, body: bytes, content_type: str | None = None, accept: str | None = None
    ) -> tuple[bytes, str]:
        """The response body and its type; raises :class:`InvocationError` with the status."""
        if len(body) >= BULK_BYTES and self._bulk_columns is not None:
            response_type = self._check(body, content_type, accept)
            payload = self._bulk(body, content_type, response_type)
            if payload is not None:
                return payload, response_type
        _, _, payload, response_type = self.predict_body(body, content_type, accept)
        return payload, response_type

    def _bulk(self, body: bytes, content_type: str | None, response_type: str) -> bytes | None:
        """A large CSV body read column by column (:func:`bulk_csv_columns`) and predicted by
        the model's ``predict_coded``: the answer the row path gives, or None to take it."""
        assert self._bulk_columns is not None and self.keys is not None
        columns = bulk_csv_columns(
            body,
            content_type,
            self.columns,
            self._bulk_columns,
            target=self.target,
            used_columns=self.used_columns,
        )
        if columns is None:
            return None
        try:
            raw = self.model.predict_coded(columns)
        except PredictionInputError:
            return None  # the row path finds the row and words the error
        return encode_predictions(
            raw,
            labels=self.labels,
            classification=self.classification,
            keys=self.keys,
            accept=response_type,
            decide=getattr(self.model, "decide", None),
        )

    def _check(self, body: bytes, content_type: str | None, accept: str | None) -> str:
        """The request's checks before reading it (size, type, Accept, content keys); the
        response type."""
        if len(body) > self.settings.max_payload_bytes:
            raise InvocationError(
                413,
                f"payload of {len(body):,} bytes is over the limit of "
                f"{self.settings.max_payload_bytes:,} bytes",
            )
        kind = media_type(content_type)[0]
        if kind and kind not in _REQUEST_TYPES and kind not in _BINARY_TYPES:
            raise InvocationError(
                415,
                f"unsupported Content-Type {content_type!r}: use {CSV}, {JSON}, {JSONLINES} "
                f"or {PARQUET}",
            )
        response_type = choose_accept(accept, self.settings.default_accept)
        if self._key_error is not None:
            raise self._key_error
        return response_type

    def predict_body(
        self,
        body: bytes,
        content_type: str | None = None,
        accept: str | None = None,
        predict: Callable[[pd.DataFrame], np.ndarray] | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray, bytes, str]:
        """The rows read, their ``predict_raw`` output, the response body and its type
        (what :meth:`invoke` answers, with what it was made from). ``predict``: computes the
        model's ``predict_raw`` in the caller's own way (e.g. keeping the cleaned rows)."""
        response_type = self._check(body, content_type, accept)
        assert self.keys is not None
        frame = decode_rows(
            body,
            content_type,
            self.columns,
            target=self.target,
            max_bytes=self.settings.max_payload_bytes,
            used_columns=self.used_columns,
        )
        raw = self._predict(frame, predict or self.model.predict_raw)
        payload = encode_predictions(
            raw,
            labels=self.labels,
            classification=self.classification,
            keys=self.keys,
            accept=response_type,
            decide=getattr(self.model, "decide", None),
        )
        return frame, raw, payload, response_type

    def handle(
        self, body: bytes, content_type: str | None = None, accept: str | None = None
    ) -> InvocationResult:
        """Like :meth:`invoke`, with errors as a result (status ≥ 400, message as text)."""
        try:
            payload, response_type = self.invoke(body, content_type, accept)
        except InvocationError as exc:
            return InvocationResult(exc.status, exc.message.encode("utf-8"), ERROR_CONTENT_TYPE)
        except Exception as exc:  # a bug or a broken model: the caller sees a 500, not a crash
            message = f"internal error while predicting: {type(exc).__name__}: {exc}"
            return InvocationResult(500, message.encode("utf-8"), ERROR_CONTENT_TYPE)
        return InvocationResult(200, payload, response_type)

    def _predict(
        self, frame: pd.DataFrame, predict: Callable[[pd.DataFrame], np.ndarray]
    ) -> np.ndarray:
        try:
            raw: np.ndarray = predict(frame)
        except PredictionInputError as exc:
            if len(frame) == 1:
                raise InvocationError(400, str(exc)) from None
            index, message = self._first_bad_row(frame, str(exc))
            raise InvocationError(400, f"row {index + 1}: {message}") from None
        return raw

    def _first_bad_row(self, frame: pd.DataFrame, message: str) -> tuple[int, str]:
        """Bisect to the first row the model refuses on its own (rows are independent), so the
        error names it; costs about one more prediction of the payload, on the error path only."""
        lo, hi = 0, len(frame)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                self.model.predict_raw(frame.iloc[lo:mid])
            except PredictionInputError as exc:
                hi, message = mid, str(exc)
            else:
                lo = mid
        try:
            self.model.predict_raw(frame.iloc[lo : lo + 1])
        except PredictionInputError as exc:
            message = str(exc)
        return lo, message
