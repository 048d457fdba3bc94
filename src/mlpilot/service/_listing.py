"""The List operations: requests read into a store :class:`~mlpilot.service._store.Listing`
(the same filters, order and paging for AutoML jobs, models, endpoints and transform jobs), and
their answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mlpilot.service._errors import validation
from mlpilot.service._store import Listing, decode_token

__all__ = ["list_answer", "listing", "page_offset"]


def page_offset(params: dict[str, Any]) -> int:
    """Where the page asked for by ``NextToken`` starts."""
    try:
        return decode_token(params.get("NextToken"))
    except ValueError as exc:
        raise validation(str(exc)) from None


def listing(params: dict[str, Any], default_sort: str = "CreationTime") -> Listing:
    """``NameContains``, ``StatusEquals``, the time bounds, ``SortBy`` (``default_sort`` when
    absent), ``SortOrder`` (descending when absent), ``NextToken`` and ``MaxResults``."""
    return {
        "name_contains": params.get("NameContains"),
        "status": params.get("StatusEquals"),
        "created_after": _time(params.get("CreationTimeAfter")),
        "created_before": _time(params.get("CreationTimeBefore")),
        "modified_after": _time(params.get("LastModifiedTimeAfter")),
        "modified_before": _time(params.get("LastModifiedTimeBefore")),
        "sort_by": params.get("SortBy", default_sort),
        "descending": params.get("SortOrder", "Descending") == "Descending",
        "offset": page_offset(params),
        "limit": params.get("MaxResults", 10),
    }


def list_answer(
    key: str,
    records: list[dict[str, Any]],
    next_token: str | None,
    fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A List operation's answer: ``records`` under ``key`` (each cut down to the ``fields`` it
    has, when given) and the ``NextToken`` of the next page, if any."""
    if fields is not None:
        records = [{k: r[k] for k in fields if k in r} for r in records]
    out: dict[str, Any] = {key: records}
    if next_token:
        out["NextToken"] = next_token
    return out


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise validation(f"Cannot read the timestamp {value!r}") from None
