"""What a forecasting model's container reads and writes on ``POST /invocations``: the sibling
of :mod:`._codec` for a :class:`~mlpilot.package.SeriesModel`.

Requests (``Content-Type``) hold a history table in the training schema: the item id (and
grouping) columns, the timestamp, the target and the covariates, with future-dated rows (empty
target) carrying known covariates; items never seen in training are forecast like the others.

- ``text/csv``: a header line naming the columns, then one row per line (the header is always
  read, with or without ``;header=present``, as Autopilot's forecasting containers do).
- ``application/json``: ``{"instances": [record, ...]}`` or a list of records, a record being an
  object keyed by column name (a missing key or null is an empty value); several documents
  separated by newlines are read as JSON lines.
- ``application/jsonlines``: one record per line.

Responses (``Accept``) hold ``horizon`` rows per series, after its last target value: the key
columns, the timestamp, ``mean`` and one column per quantile (``p10``…), lowest level first.
``text/csv`` has a header line; ``application/json`` is ``{"predictions": [record, ...]}``;
``application/jsonlines`` one record per line. Timestamps are written as ``YYYY-MM-DD`` when
every one is a midnight without a zone, else ``YYYY-MM-DD HH:MM:SS[+HH:MM]`` (as ``mlpilot
predict`` writes them). ``SAGEMAKER_INFERENCE_OUTPUT`` is a classifier's setting and is ignored.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.errors import PredictionInputError
from mlpilot.package import SeriesFacts, SeriesModel
from mlpilot.serving._codec import (
    CSV,
    ERROR_CONTENT_TYPE,
    JSONLINES,
    InvocationResult,
    ServingSettings,
    choose_accept,
    request_text,
)
from mlpilot.serving._errors import InvocationError

__all__ = ["ForecastHandler", "decode_history", "encode_forecast"]


def _shown(columns: list[str] | tuple[str, ...]) -> str:
    return ", ".join(columns)


def _csv_table(text: str) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops values) for rows longer than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                io.StringIO(text),
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                index_col=False,
                skip_blank_lines=True,
            )
    except pd.errors.ParserWarning as exc:
        raise InvocationError(400, f"malformed CSV: {str(exc).strip()}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvocationError(400, f"malformed CSV: {first}") from None


def _record_values(item: Any, index: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvocationError(
            400,
            f"record {index + 1} is a {type(item).__name__}: a forecasting request's record is "
            "an object keyed by column name",
        )
    for column, value in item.items():
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise InvocationError(
                400,
                f"record {index + 1}: column {column!r} holds a {type(value).__name__}; values "
                "must be numbers, strings, booleans or null",
            )
    return item


def _document_records(document: Any, records: list[dict[str, Any]]) -> None:
    if isinstance(document, dict) and isinstance(document.get("instances"), list):
        items = document["instances"]
    elif isinstance(document, list):
        items = document
    elif isinstance(document, dict):
        items = [document]
    else:
        raise InvocationError(
            400,
            f'a JSON {type(document).__name__} is not a record: send {{"instances": '
            "[record, ...]}, a list of records, or one record",
        )
    for item in items:
        records.append(_record_values(item, len(records)))


def _json_records(text: str, *, lines: bool) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if not lines:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise InvocationError(
                    400, f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
                ) from None
        else:
            _document_records(document, records)
            return records
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvocationError(400, f"line {number}: invalid JSON ({exc.msg})") from None
        _document_records(document, records)
    return records


def _as_text(value: Any) -> Any:
    """A JSON value as the CSV reader would give it: text, or missing for null/empty."""
    if value is None or (isinstance(value, str) and value == ""):
        return np.nan
    if isinstance(value, float) and not np.isfinite(value):
        return np.nan
    return str(value)


def decode_history(body: bytes, content_type: str | None, facts: SeriesFacts) -> pd.DataFrame:
    """The history table of a request body: columns as named, values as text (empty values
    missing), ready for :meth:`SeriesModel.forecast`. A missing ``Content-Type`` means CSV.

    Raises :class:`InvocationError`: 415 for an unsupported type, 400 for an empty or unreadable
    body or one without the item id, timestamp and target columns.
    """
    kind, text = request_text(body, content_type, "send the history to forecast from")
    if kind == CSV:
        table = _csv_table(text)
    else:
        records = _json_records(text, lines=kind == JSONLINES)
        table = pd.DataFrame.from_records(records).map(_as_text) if records else pd.DataFrame()
    needed = [*facts.key_columns, facts.timestamp, facts.target]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        where = "CSV header" if kind == CSV else "records"
        raise InvocationError(
            400,
            f"the {where} lack(s) column(s) {_shown(missing)}: send the training schema "
            f"({_shown(needed)}, then the covariates)"
            + (", with a header line first" if kind == CSV else ""),
        )
    if table.empty:
        raise InvocationError(400, "the request holds no rows to forecast from")
    return table


def _stamp_text(stamps: pd.Series) -> pd.Series:
    index = pd.DatetimeIndex(stamps)
    if index.tz is None and bool((index == index.normalize()).all()):
        return pd.Series(index.strftime("%Y-%m-%d"), index=stamps.index)
    return stamps.astype(str)


def encode_forecast(frame: pd.DataFrame, timestamp: str, accept: str) -> bytes:
    """``frame`` (a forecast: keys, timestamp, ``mean``, quantiles) as a response body of type
    ``accept`` (:data:`CSV`, :data:`JSON` or :data:`JSONLINES`)."""
    shown = frame.copy()
    if len(shown):
        shown[timestamp] = _stamp_text(shown[timestamp])
    if accept == CSV:
        return shown.to_csv(index=False, lineterminator="\n").encode("utf-8")
    records = shown.astype(object).where(shown.notna(), None).to_dict(orient="records")
    if accept == JSONLINES:
        return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    return json.dumps({"predictions": records}).encode("utf-8")


class ForecastHandler:
    """A forecasting model behind the container contract: a history in, its forecast out.

    Parameters
    ----------
    model:
        A :class:`~mlpilot.package.SeriesModel`.
    settings:
        The container's settings (the body limit, the default ``Accept``, what
        ``/execution-parameters`` answers); from the process environment when omitted.
    """

    def __init__(self, model: SeriesModel, settings: ServingSettings | None = None) -> None:
        self.model = model
        self.settings = settings or ServingSettings.from_environment()
        self.facts = model.facts

    @property
    def series_keys(self) -> tuple[str, ...]:
        """The columns that key a series (item id, then grouping): batch transform keeps the
        rows of each key in one payload."""
        return self.facts.key_columns

    def invoke(
        self, body: bytes, content_type: str | None = None, accept: str | None = None
    ) -> tuple[bytes, str]:
        """The response body and its type; raises :class:`InvocationError` with the status
        (400 naming the series for one it cannot forecast)."""
        limit = self.settings.max_payload_bytes
        if len(body) > limit:
            raise InvocationError(
                413, f"payload of {len(body):,} bytes is over the limit of {limit:,} bytes"
            )
        response_type = choose_accept(accept, self.settings.default_accept)
        table = decode_history(body, content_type, self.facts)
        try:
            forecast = self.model.forecast(table)
        except PredictionInputError as exc:
            raise InvocationError(400, str(exc)) from None
        return encode_forecast(forecast, self.facts.timestamp, response_type), response_type

    def handle(
        self, body: bytes, content_type: str | None = None, accept: str | None = None
    ) -> InvocationResult:
        """Like :meth:`invoke`, with errors as a result (status ≥ 400, message as text)."""
        try:
            payload, response_type = self.invoke(body, content_type, accept)
        except InvocationError as exc:
            return InvocationResult(exc.status, exc.message.encode("utf-8"), ERROR_CONTENT_TYPE)
        except Exception as exc:  # a bug or a broken model: the caller sees a 500, not a crash
            message = f"internal error while forecasting: {type(exc).__name__}: {exc}"
            return InvocationResult(500, message.encode("utf-8"), ERROR_CONTENT_TYPE)
        return InvocationResult(200, payload, response_type)
