"""The JSONPath subset of batch transform's ``InputFilter`` and ``OutputFilter``.

``$`` the record; ``.name`` / ``['name']`` a key; ``['a','b']`` an object with those keys;
``*`` / ``[*]`` every item; ``[i]`` one item and ``[i,j,...]`` several (negative counts from the
end); ``[start:end]`` items start to end **inclusive**, either bound optional (``$[1:]`` drops the
first). A CSV row is a JSON array of its fields. Selecting several items gives a list; a key or a
single index gives the value itself. A key or index the record lacks is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlpilot.errors import ConfigError

__all__ = ["JsonPath", "JsonPathError", "JsonPathMismatch", "compile_path"]


class JsonPathError(ConfigError):
    """A filter outside the supported subset."""


class JsonPathMismatch(ValueError):
    """A record the filter cannot be applied to (missing key, index out of range)."""


_NAME = re.compile(r"[A-Za-z_$@][\w\-$@]*")
_INT = re.compile(r"\s*(-?\d+)\s*")
_QUOTED = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*""")

# A step maps one node to (values, several?).
_Step = Callable[[Any], tuple[list[Any], bool]]


def _key(name: str) -> _Step:
    def step(node: Any) -> tuple[list[Any], bool]:
        if not isinstance(node, dict):
            raise JsonPathMismatch(f"key {name!r} asked of a {_kind(node)}")
        if name not in node:
            raise JsonPathMismatch(f"the record has no key {name!r}")
        return [node[name]], False

    return step


def _keys(names: list[str]) -> _Step:
    def step(node: Any) -> tuple[list[Any], bool]:
        if not isinstance(node, dict):
            raise JsonPathMismatch(f"keys {names} asked of a {_kind(node)}")
        missing = [n for n in names if n not in node]
        if missing:
            raise JsonPathMismatch(f"the record has no key {missing[0]!r}")
        return [{n: node[n] for n in names}], False

    return step


def _every(node: Any) -> tuple[list[Any], bool]:
    if isinstance(node, dict):
        return list(node.values()), True
    if isinstance(node, list):
        return list(node), True
    raise JsonPathMismatch(f"'*' asked of a {_kind(node)}")


def _indices(indices: list[int]) -> _Step:
    def step(node: Any) -> tuple[list[Any], bool]:
        if not isinstance(node, list):
            raise JsonPathMismatch(f"index asked of a {_kind(node)}")
        out = []
        for i in indices:
            if not -len(node) <= i < len(node):
                raise JsonPathMismatch(f"index {i} is outside the record ({len(node)} item(s))")
            out.append(node[i])
        return out, len(indices) > 1

    return step


def _slice(start: int | None, end: int | None) -> _Step:
    def step(node: Any) -> tuple[list[Any], bool]:
        if not isinstance(node, list):
            raise JsonPathMismatch(f"slice asked of a {_kind(node)}")
        n = len(node)
        first = 0 if start is None else (start + n if start < 0 else start)
        last = n - 1 if end is None else (end + n if end < 0 else end)
        return node[max(first, 0) : max(last + 1, 0)], True

    return step


def _kind(node: Any) -> str:
    if isinstance(node, dict):
        return "JSON object"
    if isinstance(node, list):
        return "list"
    return f"value ({type(node).__name__})"


@dataclass(frozen=True)
class JsonPath:
    """A compiled filter; :meth:`apply` selects from one record."""

    text: str
    steps: tuple[_Step, ...]

    @property
    def is_root(self) -> bool:
        """``$``: the record unchanged."""
        return not self.steps

    def apply(self, record: Any) -> Any:
        """The selection; raises :class:`JsonPathMismatch`."""
        nodes, several = [record], False
        for step in self.steps:
            found: list[Any] = []
            for node in nodes:
                values, many = step(node)
                found.extend(values)
                several = several or many
            nodes = found
        return nodes if several else nodes[0]


def _bracket(text: str, body: str) -> _Step:
    body_stripped = body.strip()
    if body_stripped == "*":
        return _every
    if ":" in body_stripped:
        parts = body_stripped.split(":")
        if len(parts) != 2:
            raise JsonPathError(f"unsupported slice [{body}] in {text!r} (no step allowed)")
        bounds: list[int | None] = []
        for part in parts:
            if not part.strip():
                bounds.append(None)
            elif _INT.fullmatch(part):
                bounds.append(int(part))
            else:
                raise JsonPathError(f"slice bound {part.strip()!r} in {text!r} is not a number")
        return _slice(bounds[0], bounds[1])
    items = body.split(",")
    if all(_INT.fullmatch(item) for item in items):
        return _indices([int(item) for item in items])
    names = []
    for item in _split_quoted(text, body):
        match = _QUOTED.fullmatch(item)
        if not match:
            raise JsonPathError(f"unsupported selector [{body}] in {text!r}")
        raw = match.group(1) if match.group(1) is not None else match.group(2)
        names.append(re.sub(r"\\(.)", r"\1", raw))
    if any("." in n or "[" in n for n in names) and len(names) > 1:
        raise JsonPathError(f"nested names in [{body}] of {text!r} are not supported")
    return _key(names[0]) if len(names) == 1 else _keys(names)


def _split_quoted(text: str, body: str) -> list[str]:
    """Split ``'a','b,c'`` on the commas outside quotes."""
    items, current, quote = [], "", ""
    for ch in body:
        if quote:
            current += ch
            if ch == quote and not current.endswith("\\" + quote):
                quote = ""
        elif ch in "'\"":
            quote = ch
            current += ch
        elif ch == ",":
            items.append(current)
            current = ""
        else:
            current += ch
    if quote:
        raise JsonPathError(f"unclosed quote in {text!r}")
    items.append(current)
    return items


def compile_path(text: str | None) -> JsonPath:
    """Parse a filter (``None`` or empty means ``$``); raises :class:`JsonPathError`."""
    source = (text or "$").strip()
    if not source.startswith("$"):
        raise JsonPathError(f"JSONPath {source!r} must start with '$'")
    steps: list[_Step] = []
    i = 1
    while i < len(source):
        ch = source[i]
        if ch == ".":
            if source.startswith("..", i):
                raise JsonPathError(f"deep scan '..' in {source!r} is not supported")
            if source.startswith(".*", i):
                steps.append(_every)
                i += 2
                continue
            match = _NAME.match(source, i + 1)
            if not match:
                raise JsonPathError(f"expected a key name after '.' at {i} in {source!r}")
            steps.append(_key(match.group(0)))
            i = match.end()
        elif ch == "[":
            end = _closing(source, i)
            body = source[i + 1 : end]
            if "[" in body.replace("'[", "").replace('"[', ""):
                raise JsonPathError(f"nested brackets in {source!r} are not supported")
            if body.strip().startswith("?") or body.strip().startswith("("):
                raise JsonPathError(f"filter expressions in {source!r} are not supported")
            steps.append(_bracket(source, body))
            i = end + 1
        else:
            raise JsonPathError(f"unexpected {ch!r} at {i} in JSONPath {source!r}")
    return JsonPath(source, tuple(steps))


def _closing(text: str, start: int) -> int:
    quote = ""
    for j in range(start + 1, len(text)):
        ch = text[j]
        if quote:
            if ch == quote and text[j - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "]":
            return j
    raise JsonPathError(f"unclosed '[' in JSONPath {text!r}")
