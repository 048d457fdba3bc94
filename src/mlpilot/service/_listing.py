"""The List operations' requests read into a store :class:`~mlpilot.service._store.Listing`:
the same filters, order and paging for AutoML jobs, models, endpoints and transform jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlpilot.service._errors import validation
from mlpilot.service._store import Listing, decode_token

__all__ = ["listing", "page_offset"]


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


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise validation(f"Cannot read the timestamp {value!r}") from None
