"""Requests validated, and responses shaped, by botocore's own service model.

botocore checks required members, types and minimums before sending, but not enums, maximums
or patterns (and raw HTTP clients check nothing), so the server walks the operation's input
shape and reports every violation the way SageMaker does::

    2 validation errors detected: Value 'x!' at 'autoMLJobName' failed to satisfy constraint:
    Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}; ...

A value of the wrong JSON type is a ``SerializationException``, as the real service answers,
and so is a body that is not a JSON object. What reaches an operation is the request as its
shape declares it: members set to null are absent (as in AWS's JSON protocol) and members the
shape does not declare are dropped, so handlers never see a value no shape allowed.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from typing import Any

import regex

from mlpilot.service._errors import ServiceError

__all__ = [
    "LOCAL_URI_PATTERNS",
    "MAX_REQUEST_BYTES",
    "SERVICE_REQUIRED",
    "conform_output",
    "parse_body",
    "service_model",
    "validate_input",
]

#: S3 URI patterns under which mlpilot also accepts ``file://`` URIs and absolute local paths.
LOCAL_URI_PATTERNS = frozenset({"(https|s3)://([^/]+)/?(.*)", "(https|s3)://([^/])/?(.*)"})
#: The largest control-plane request body read; a larger one is answered 413.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
_MAX_REPORTED = 10
#: How much of an offending value an error message quotes.
_MAX_SHOWN = 100
#: The JSON protocol's integers: 32 bits for ``integer`` shapes, 64 for ``long`` ones.
_INT_BITS = {"integer": 32, "long": 64}
#: Members botocore leaves optional (other SageMaker features do without them) that every
#: request mlpilot can serve needs: a missing one is reported like a missing required member.
SERVICE_REQUIRED: dict[str, tuple[str, ...]] = {
    "AutoMLChannel": ("DataSource",),
    "AutoMLJobChannel": ("DataSource",),
    "ProductionVariant": ("ModelName",),
}


@functools.cache
def service_model(name: str = "sagemaker") -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


@functools.cache
def _compiled(pattern: str) -> Any:
    # Java-style patterns; the ``regex`` module understands \p{L} and friends.
    return regex.compile(pattern, regex.DOTALL)


def _camel(name: str) -> str:
    """Coral's member paths start lower case: AutoMLJobName → autoMLJobName."""
    return name[:1].lower() + name[1:]


def _is_local_uri(value: str) -> bool:
    return value.startswith("file://") or value.startswith("/")


def parse_body(body: bytes) -> Any:
    """A request body as JSON (an empty body is ``{}``); anything unreadable, nested past the
    parser's recursion limit included, is a ``SerializationException``."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise ServiceError("SerializationException", "The request body is not valid JSON") from None


def validate_input(operation: str, params: Any) -> dict[str, Any]:
    """``params`` as ``operation``'s input shape declares them (nulls and undeclared members
    dropped); raise :class:`ServiceError` if they do not satisfy it."""
    shape = service_model().operation_model(operation).input_shape
    if not isinstance(params, dict):
        raise ServiceError("SerializationException", "The request body must be a JSON object")
    if shape is None:
        return {}
    errors: list[str] = []
    _check(shape, params, "", errors)
    if errors:
        count = len(errors)
        shown = "; ".join(errors[:_MAX_REPORTED])
        noun = "error" if count == 1 else "errors"
        raise ServiceError("ValidationException", f"{count} validation {noun} detected: {shown}")
    cleaned: dict[str, Any] = _declared(shape, params)
    return cleaned


def _declared(shape: Any, value: Any) -> Any:
    """``value`` (already checked) with only the members its shape declares, nulls left out."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members
        return {
            name: _declared(members[name], item)
            for name, item in value.items()
            if name in members and item is not None
        }
    if kind == "list":
        return [_declared(shape.member, item) for item in value]
    if kind == "map":
        return {key: _declared(shape.value, item) for key, item in value.items()}
    return value


def _type_error(path: str, expected: str) -> ServiceError:
    where = path or "the request"
    return ServiceError(
        "SerializationException", f"Expected {expected} for '{where}' in the request body"
    )


def _check(shape: Any, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            raise _type_error(path, "an object")
        members = shape.members
        for name in (*shape.required_members, *SERVICE_REQUIRED.get(shape.name, ())):
            if value.get(name) is None:
                at = f"{path}.{_camel(name)}" if path else _camel(name)
                errors.append(
                    f"Value null at '{at}' failed to satisfy constraint: Member must not be null"
                )
        if meta.get("union"):
            given = [k for k, v in value.items() if k in members and v is not None]
            if len(given) != 1:
                errors.append(
                    f"Value at '{path or 'request'}' failed to satisfy constraint: exactly one "
                    f"member must be set ({', '.join(members)}); got {len(given)}"
                )
        for name, item in value.items():
            if name in members and item is not None:
                at = f"{path}.{_camel(name)}" if path else _camel(name)
                _check(members[name], item, at, errors)
        return
    if kind in ("list", "map"):
        if not isinstance(value, list if kind == "list" else dict):
            raise _type_error(path, "a list" if kind == "list" else "an object")
        _length(meta, len(value), value, path, errors)
        for child, item, at in _elements(shape, value, path):
            _check(child, item, at, errors)
        return
    if kind == "string":
        if not isinstance(value, str):
            raise _type_error(path, "a string")
        _length(meta, len(value), value, path, errors)
        enum = shape.enum
        if enum and value not in enum:
            errors.append(_violation(value, path, f"satisfy enum value set: [{', '.join(enum)}]"))
        pattern = meta.get("pattern")
        local = pattern in LOCAL_URI_PATTERNS and _is_local_uri(value)
        if pattern and not enum and not local and not _compiled(pattern).fullmatch(value):
            rule = f"satisfy regular expression pattern: {pattern}"
            errors.append(_violation(value, path, rule))
        return
    if kind in ("integer", "long"):
        bits = _INT_BITS[kind]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(path, "an integer")
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise _type_error(path, f"a {bits}-bit integer")
        _range(meta, value, path, errors)
        return
    if kind in ("float", "double"):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise _type_error(path, "a number")
        _range(meta, value, path, errors)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _type_error(path, "a boolean")
        return
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _type_error(path, "a timestamp")
        return
    if kind == "blob" and not isinstance(value, str | bytes):
        raise _type_error(path, "a blob")


def _elements(shape: Any, value: Any, path: str) -> Iterator[tuple[Any, Any, str]]:
    """A list's members or a map's keys and values: (their shape, the value, its path, as
    botocore's messages name it)."""
    if isinstance(value, list):
        for i, item in enumerate(value, start=1):
            yield shape.member, item, f"{path}.{i}.member"
        return
    for key, item in value.items():
        yield shape.key, key, f"{path}.{key}.key"
        yield shape.value, item, f"{path}.{key}.value"


def _length(meta: dict[str, Any], size: int, value: Any, path: str, errors: list[str]) -> None:
    shown = value if isinstance(value, str) else "[...]" if isinstance(value, list) else "{...}"
    _bounds(meta, size, shown, "length", path, errors)


def _range(meta: dict[str, Any], value: float, path: str, errors: list[str]) -> None:
    _bounds(meta, value, value, "value", path, errors)


def _bounds(
    meta: dict[str, Any], measured: float, shown: Any, what: str, path: str, errors: list[str]
) -> None:
    """The shape's ``min`` and ``max`` checked on ``measured`` (a length, or the value)."""
    low, high = meta.get("min"), meta.get("max")
    if low is not None and measured < low:
        errors.append(_violation(shown, path, f"have {what} greater than or equal to {low}"))
    if high is not None and measured > high:
        errors.append(_violation(shown, path, f"have {what} less than or equal to {high}"))


def _violation(shown: Any, path: str, rule: str) -> str:
    text = str(shown)
    if len(text) > _MAX_SHOWN:
        text = f"{text[:_MAX_SHOWN]}… ({len(text)} characters)"
    return f"Value '{text}' at '{path}' failed to satisfy constraint: Member must {rule}"


def conform_output(
    operation: str, value: dict[str, Any], service: str = "sagemaker"
) -> dict[str, Any]:
    """Keep only the members ``operation``'s output shape declares (at every level), without
    nulls: what a client's parser would keep anyway, so raw HTTP clients see the same."""
    shape = service_model(service).operation_model(operation).output_shape
    if shape is None:
        return {}
    out = _conform(shape, value)
    return out if isinstance(out, dict) else {}


def _conform(shape: Any, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return None
        out = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is None:
                continue
            item = _conform(member, item)
            if item is not None:
                out[name] = item
        return out
    if kind == "list":
        if not isinstance(value, list):
            return None
        return [x for x in (_conform(shape.member, v) for v in value) if x is not None]
    if kind == "map":
        if not isinstance(value, dict):
            return None
        return {k: x for k, v in value.items() if (x := _conform(shape.value, v)) is not None}
    if kind in ("float", "double") and isinstance(value, float) and not math.isfinite(value):
        return None
    return value
