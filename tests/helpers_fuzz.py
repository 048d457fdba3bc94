"""Seeded request fuzzing for the service's control plane, driven by botocore's sagemaker model.

:class:`Fuzzer` builds, for every operation the service dispatches, requests that satisfy the
operation's input shape (required members, enums, patterns, ranges, lengths) and requests that
break it in one chosen way, plus raw-HTTP cases (a body that is not JSON, a wrong target, an
oversized body). Each :class:`Case` carries the answers an AWS client would accept for it, and
:func:`check` says whether the service's answer is one of them.

Requests that would start work name inputs under a folder that does not exist, so a fuzz run
never starts a job, an endpoint or a transform.
"""

from __future__ import annotations

import base64
import json
import random
import re._parser as sre_parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import regex

from mlpilot.service._automl import AutoMLOperations
from mlpilot.service._deploy import IMAGE_REPOSITORY, DeployOperations
from mlpilot.service._shapes import (
    LOCAL_URI_PATTERNS,
    MAX_REQUEST_BYTES,
    SERVICE_REQUIRED,
    service_model,
)
from mlpilot.service._transforms import TransformOperations

#: Codes a fuzzed request may draw besides the validation ones: the resource it names is
#: missing or busy, or a quota is reached.
SEMANTIC_CODES = frozenset(
    {"ResourceNotFound", "ResourceInUse", "ResourceLimitExceeded", "ValidationException"}
)
SHAPE_CODES = frozenset({"ValidationException", "SerializationException"})
#: The size of the raw oversized bodies (over the service's limit).
HUGE_BODY = MAX_REQUEST_BYTES + 1024
#: How deep optional structures are followed when building a valid request.
_MAX_DEPTH = 7
#: A few characters outside ASCII, including a lone surrogate and a NUL.
_UNICODE = ["é", "漢字", "🙂", "\u202e", "\x00", "\ud800", "Ω≈ç√", "\ufeff", "\n\t"]
_NAMES = ["fuzz-a", "fuzz-b", "fuzz-c"]
#: The model :meth:`Fuzzer.setup` makes; fuzzed DeleteModel calls leave it alone.
SEED_MODEL = "fuzz-seed"


def implemented_operations() -> list[str]:
    """The operations the service dispatches (its handlers' public methods, as ``Service``
    registers them)."""
    handlers = (AutoMLOperations, DeployOperations, TransformOperations)
    return sorted(name for cls in handlers for name in dir(cls) if name[:1].isupper())


@dataclass
class Case:
    """One request: ``kind`` says how it was made, ``expect`` the error codes that are right
    for it (``None``: success is right too), ``status`` the HTTP status it must draw when
    fixed (413 for an oversized body)."""

    operation: str
    kind: str
    body: bytes
    target: str
    expect: frozenset[str] | None
    status: int | None = None
    note: str = ""

    def describe(self, limit: int = 300) -> str:
        shown = self.body[:limit].decode("utf-8", "replace")
        more = f" … ({len(self.body)} bytes)" if len(self.body) > limit else ""
        return f"{self.target} [{self.kind}{': ' + self.note if self.note else ''}] {shown}{more}"


@dataclass
class Outcome:
    case: Case
    status: int  # 0: no answer (the client timed out or the connection failed)
    code: str
    message: str = ""
    problems: list[str] = field(default_factory=list)


def _pattern_for_generation(pattern: str) -> str:
    # Python's re cannot parse \p{..}; stand-ins that stay inside what the class allows.
    return (
        pattern.replace(r"\p{L}", "a-zA-Zé")
        .replace(r"\p{Z}", " ")
        .replace(r"\p{N}", "0-9")
        .replace(r"\p{M}", "")
        .replace(r"\p{P}", ".,")
    )


class Fuzzer:
    """Seeded generator of :class:`Case` objects. ``root`` is a folder whose ``missing/``
    sub-folder must not exist: inputs and model data point there."""

    def __init__(self, seed: int, root: Path, operations: list[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.model = service_model()
        self.root = root
        self.operations = operations or implemented_operations()

    # -- strings from patterns ------------------------------------------------------------
    def _from_regex(self, pattern: str, low: int, high: int) -> str | None:
        compiled = regex.compile(pattern, regex.DOTALL)
        parsed = sre_parse.parse(_pattern_for_generation(pattern))
        for _ in range(20):
            text = self._emit(parsed, budget=max(low, min(high, 40)))
            if low <= len(text) <= high and compiled.fullmatch(text):
                return text
        return None

    def _emit(self, items: Any, budget: int) -> str:
        out = []
        for op, arg in items:
            out.append(self._emit_one(op, arg, budget))
        return "".join(out)

    def _emit_one(self, op: Any, arg: Any, budget: int) -> str:
        c = sre_parse
        if op is c.LITERAL:
            return chr(arg)
        if op is c.ANY:
            return self.rng.choice("abcXYZ019-_")
        if op is c.IN:
            return self._from_class(arg)
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, sub = arg
            high = min(high, low + max(1, budget // 4), budget)
            count = self.rng.randint(low, max(low, high))
            return "".join(self._emit(sub, budget) for _ in range(count))
        if op is c.SUBPATTERN:
            return self._emit(arg[-1], budget)
        if op is c.BRANCH:
            return self._emit(self.rng.choice(arg[1]), budget)
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            return ""
        if op is c.NOT_LITERAL:
            return self.rng.choice([ch for ch in "abc012" if ord(ch) != arg])
        raise ValueError(f"cannot generate {op}")

    def _from_class(self, items: Any) -> str:
        c = sre_parse
        negate = any(op is c.NEGATE for op, _ in items)
        choices: list[str] = []
        for op, arg in items:
            if op is c.LITERAL:
                choices.append(chr(arg))
            elif op is c.RANGE:
                low, high = arg
                choices.extend(chr(self.rng.randint(low, high)) for _ in range(3))
            elif op is c.CATEGORY:
                choices.extend(
                    {
                        c.CATEGORY_DIGIT: "0123456789",
                        c.CATEGORY_WORD: "abcXYZ_09",
                        c.CATEGORY_SPACE: " ",
                        c.CATEGORY_NOT_SPACE: "abc-9",
                    }.get(arg, "a")
                )
        if negate:
            banned = set(choices)
            return self.rng.choice([ch for ch in "abcdefXYZ0123-_" if ch not in banned] or ["a"])
        return self.rng.choice(choices or ["a"])

    # -- valid values ---------------------------------------------------------------------
    def value(self, shape: Any, member: str = "", depth: int = 0) -> Any:
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            out: dict[str, Any] = {}
            members = shape.members
            if meta.get("union"):
                name = self.rng.choice(list(members))
                return {name: self.value(members[name], name, depth + 1)}
            needed = {*shape.required_members, *SERVICE_REQUIRED.get(shape.name, ())}
            for name, child in members.items():
                required = name in needed
                if required or (depth < _MAX_DEPTH and self.rng.random() < 0.35):
                    out[name] = self.value(child, name, depth + 1)
            return out
        if kind == "list":
            low = meta.get("min", 0)
            high = min(meta.get("max", 3), low + 2)
            if depth >= _MAX_DEPTH:
                high = low
            count = self.rng.randint(low, max(low, high))
            return [self.value(shape.member, member, depth + 1) for _ in range(count)]
        if kind == "map":
            count = self.rng.randint(meta.get("min", 0), min(meta.get("max", 2), 2))
            return {
                self.value(shape.key, "Key", depth + 1): self.value(shape.value, member, depth + 1)
                for _ in range(count)
            }
        if kind == "string":
            return self.string(shape, member)
        if kind in ("integer", "long"):
            low = int(meta.get("min", 0))
            high = int(meta.get("max", low + 1000))
            return self.rng.choice([low, high, self.rng.randint(low, high)])
        if kind in ("float", "double"):
            low = float(meta.get("min", 0.0))
            high = float(meta.get("max", low + 10.0))
            return round(self.rng.uniform(low, high), 3)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "timestamp":
            return self.rng.choice([1.7e9, 0, "2024-01-01T00:00:00Z", 4102444800])
        if kind == "blob":
            return base64.b64encode(b"fuzz").decode()
        raise ValueError(f"no generator for {kind}")

    def string(self, shape: Any, member: str) -> str:
        meta = shape.metadata
        if shape.enum:
            return str(self.rng.choice(shape.enum))
        low, high = int(meta.get("min", 0)), int(meta.get("max", 64))
        pattern = meta.get("pattern")
        if pattern in LOCAL_URI_PATTERNS:
            return self.missing_uri(member)
        if member.endswith("Name") and self.rng.random() < 0.6:
            name = self.rng.choice([*_NAMES, SEED_MODEL] if member == "ModelName" else _NAMES)
            if low <= len(name) <= high and (not pattern or regex.fullmatch(pattern, name)):
                return name
        if pattern:
            text = self._from_regex(pattern, low, high)
            if text is not None:
                return text
        size = self.rng.randint(low, max(low, min(high, 24)))
        return "".join(self.rng.choice("abcdefgh0123 -_") for _ in range(size))

    def missing_uri(self, member: str) -> str:
        """A location under ``root/missing`` (never created); output paths go to ``root/out``."""
        base = self.root / "out" if "Output" in member else self.root / "missing" / member.lower()
        return self.rng.choice([str(base), base.as_uri(), f"{base}/data.csv"])

    def request(self, operation: str) -> dict[str, Any]:
        shape = self.model.operation_model(operation).input_shape
        if shape is None:
            return {}
        out: dict[str, Any] = self.value(shape)
        if operation == "DeleteModel" and out.get("ModelName") == SEED_MODEL:
            out["ModelName"] = _NAMES[0]
        return out

    # -- slots of a request: where a mutation can go ---------------------------------------
    def _slots(
        self, shape: Any, value: Any, depth: int = 0
    ) -> list[tuple[dict[str, Any], str, Any, bool]]:
        """(container, member name, member shape, required) for every member of every structure
        in ``value``, present or not."""
        found: list[tuple[dict[str, Any], str, Any, bool]] = []
        if shape.type_name == "structure" and isinstance(value, dict):
            needed = {*shape.required_members, *SERVICE_REQUIRED.get(shape.name, ())}
            for name, child in shape.members.items():
                found.append((value, name, child, name in needed))
                if name in value:
                    found.extend(self._slots(child, value[name], depth + 1))
        elif shape.type_name == "list" and isinstance(value, list):
            for item in value:
                found.extend(self._slots(shape.member, item, depth + 1))
        elif shape.type_name == "map" and isinstance(value, dict):
            for item in value.values():
                found.extend(self._slots(shape.value, item, depth + 1))
        return found

    # -- cases ----------------------------------------------------------------------------
    def case(self) -> Case:
        operation = self.rng.choice(self.operations)
        roll = self.rng.random()
        if roll < 0.3:
            return self._json_case(operation, "valid", self.request(operation), None)
        if roll < 0.92:
            return self.invalid(operation)
        return self.raw(operation)

    def _json_case(
        self,
        operation: str,
        kind: str,
        body: Any,
        expect: frozenset[str] | None,
        note: str = "",
    ) -> Case:
        data = json.dumps(body, ensure_ascii=self.rng.random() < 0.5)
        raw = data.encode("utf-8", "surrogatepass")
        # Past the service's body limit the size is refused before the content is read.
        status = 413 if len(raw) > MAX_REQUEST_BYTES else None
        return Case(operation, kind, raw, f"SageMaker.{operation}", expect, status, note)

    def invalid(self, operation: str) -> Case:
        shape = self.model.operation_model(operation).input_shape
        body = self.request(operation)
        slots = self._slots(shape, body)
        mutations = [
            "missing",
            "null",
            "wrong-type",
            "range",
            "length",
            "pattern",
            "enum",
            "unicode",
            "oversized",
            "deep",
            "unknown",
            "number-edge",
        ]
        for _ in range(30):
            kind = self.rng.choice(mutations)
            made = self._mutate(kind, slots, body)
            if made is not None:
                expect, note = made
                return self._json_case(operation, kind, body, expect, note)
        body["FuzzUnknownMember"] = {"x": 1}
        return self._json_case(operation, "unknown", body, None, "FuzzUnknownMember")

    def _mutate(
        self, kind: str, slots: list[tuple[dict[str, Any], str, Any, bool]], body: Any
    ) -> tuple[frozenset[str] | None, str] | None:
        rng = self.rng
        if kind == "missing":
            present = [s for s in slots if s[3] and s[1] in s[0]]
            if not present:
                return None
            container, name, _, _ = rng.choice(present)
            del container[name]
            return frozenset({"ValidationException"}), f"without {name}"
        if kind == "null":
            if not slots:
                return None
            container, name, _, required = rng.choice(slots)
            container[name] = None
            return (frozenset({"ValidationException"}) if required else None), f"{name}: null"
        if kind == "wrong-type":
            if not slots:
                return None
            container, name, shape, _ = rng.choice(slots)
            container[name] = self._wrong_type(shape)
            return frozenset({"SerializationException"}), f"{name}: {container[name]!r:.60}"
        if kind == "range":
            numbers = [
                s
                for s in slots
                if s[2].type_name in ("integer", "long", "float", "double")
                and ("min" in s[2].metadata or "max" in s[2].metadata)
            ]
            if not numbers:
                return None
            container, name, shape, _ = rng.choice(numbers)
            meta = shape.metadata
            options = []
            if "min" in meta:
                options += [meta["min"] - 1, meta["min"] - 1000, -1]
            if "max" in meta:
                options += [meta["max"] + 1, meta["max"] * 10 + 7]
            value = rng.choice(options)
            if "min" in meta and "max" in meta and meta["min"] <= value <= meta["max"]:
                value = meta["max"] + 1
            container[name] = value
            return frozenset({"ValidationException"}), f"{name}: {value}"
        if kind == "length":
            sized = [
                s
                for s in slots
                if s[2].type_name in ("string", "list")
                and ("max" in s[2].metadata or s[2].metadata.get("min", 0) > 0)
                and not getattr(s[2], "enum", None)
            ]
            if not sized:
                return None
            container, name, shape, _ = rng.choice(sized)
            meta = shape.metadata
            if "max" in meta and (meta.get("min", 0) == 0 or rng.random() < 0.6):
                size = int(meta["max"]) + 1
            else:
                size = int(meta["min"]) - 1
            if shape.type_name == "string":
                container[name] = "a" * size
            else:
                container[name] = [self.value(shape.member, name, _MAX_DEPTH) for _ in range(size)]
            return frozenset(SHAPE_CODES), f"{name}: length {size}"
        if kind == "pattern":
            patterned = [
                s
                for s in slots
                if s[2].type_name == "string"
                and s[2].metadata.get("pattern")
                and not getattr(s[2], "enum", None)
            ]
            if not patterned:
                return None
            container, name, shape, _ = rng.choice(patterned)
            compiled = regex.compile(shape.metadata["pattern"], regex.DOTALL)
            for bad in ("!!", "a b/c?", "-", "ftp://x/y", "..", "x" * 3 + "\n", "%00"):
                is_local = shape.metadata["pattern"] in LOCAL_URI_PATTERNS and bad.startswith("/")
                if not compiled.fullmatch(bad) and not is_local:
                    container[name] = bad
                    return frozenset({"ValidationException"}), f"{name}: {bad!r}"
            return None
        if kind == "enum":
            enums = [s for s in slots if s[2].type_name == "string" and s[2].enum]
            if not enums:
                return None
            container, name, _, _ = rng.choice(enums)
            container[name] = rng.choice(["NotAnEnumValue", "", "ml.fuzz.huge", "ÉNUM"])
            return frozenset({"ValidationException"}), f"{name}: {container[name]!r}"
        if kind == "unicode":
            strings = [s for s in slots if s[2].type_name == "string"]
            if not strings:
                return None
            container, name, shape, _ = rng.choice(strings)
            text = "".join(rng.choice(_UNICODE) for _ in range(rng.randint(1, 6)))
            container[name] = text
            return self._string_expectation(shape, text), f"{name}: {text!r}"
        if kind == "oversized":
            strings = [s for s in slots if s[2].type_name == "string"]
            if not strings:
                return None
            container, name, shape, _ = rng.choice(strings)
            text = rng.choice(["a", "é", "🙂"]) * rng.choice([70_000, 1_000_000])
            container[name] = text
            return self._string_expectation(shape, text), f"{name}: {len(text)} characters"
        if kind == "deep":
            depth = rng.choice([64, 900])
            nested: Any = "x"
            for _ in range(depth):
                nested = [nested] if rng.random() < 0.5 else {"Deep": nested}
            if not slots:
                body["Deep"] = nested
                return None, f"unknown member nested {depth} levels"
            container, name, shape, _ = rng.choice(slots)
            container[name] = nested
            # A dict where a structure goes is read as unknown members: not an error by itself.
            loose = isinstance(nested, dict) and shape.type_name in ("structure", "map")
            return (None if loose else frozenset(SHAPE_CODES)), f"{name}: nested {depth} levels"
        if kind == "unknown":
            structures = [s for s in slots if s[2].type_name == "structure" and s[1] in s[0]]
            container = body
            if structures:
                outer, name, _, _ = rng.choice(structures)
                if isinstance(outer.get(name), dict):
                    container = outer[name]
            container["FuzzUnknownMember"] = rng.choice([1, "x", [1, 2], {"a": None}])
            return None, "FuzzUnknownMember"
        if kind == "number-edge":
            numbers = [s for s in slots if s[2].type_name in ("integer", "long", "float", "double")]
            if not numbers:
                return None
            container, name, shape, _ = rng.choice(numbers)
            value = rng.choice([10**30, -(10**30), 2**63, 1e308 * 10, float("nan"), 1.5])
            container[name] = value
            integral = shape.type_name in ("integer", "long")
            if isinstance(value, float) and (value != value or value in (float("inf"),)):
                return frozenset({"SerializationException"}), f"{name}: {value}"
            if integral and isinstance(value, float):
                return frozenset({"SerializationException"}), f"{name}: {value}"
            return frozenset(SHAPE_CODES), f"{name}: {value}"
        raise ValueError(kind)

    def _wrong_type(self, shape: Any) -> Any:
        kind = shape.type_name
        options: list[Any] = [{"a": 1}, [1, 2], "text", 12, 1.5, True]
        wrong = {
            "structure": (dict,),
            "map": (dict,),
            "list": (list,),
            "string": (str,),
            "integer": (int,),
            "long": (int,),
            "float": (int, float),
            "double": (int, float),
            "boolean": (bool,),
            "timestamp": (int, float, str),
            "blob": (str,),
        }[kind]
        choices = [
            o
            for o in options
            if not isinstance(o, wrong) or (isinstance(o, bool) and kind != "boolean")
        ]
        return self.rng.choice(choices)

    def _string_expectation(self, shape: Any, text: str) -> frozenset[str] | None:
        meta = shape.metadata
        if shape.enum and text not in shape.enum:
            return frozenset({"ValidationException"})
        if "max" in meta and len(text) > meta["max"]:
            return frozenset({"ValidationException"})
        if meta.get("min", 0) > len(text):
            return frozenset({"ValidationException"})
        pattern = meta.get("pattern")
        local = pattern in LOCAL_URI_PATTERNS and text.startswith("/")
        if pattern and not local and not regex.compile(pattern, regex.DOTALL).fullmatch(text):
            return frozenset({"ValidationException"})
        return None

    def raw(self, operation: str) -> Case:
        rng = self.rng
        kind = rng.choice(
            ["not-json", "not-object", "bad-utf8", "target", "target", "empty", "deep", "huge"]
        )
        target = f"SageMaker.{operation}"
        serial = frozenset({"SerializationException"})
        if kind == "not-json":
            body = rng.choice([b"{", b"{'a': 1}", b"<xml/>", b"AutoMLJobName=x", b'{"a":}'])
            return Case(operation, kind, body, target, serial)
        if kind == "not-object":
            body = rng.choice([b"[]", b"[1,2]", b"42", b'"text"', b"null", b"true"])
            return Case(operation, kind, body, target, serial)
        if kind == "bad-utf8":
            return Case(operation, kind, b'{"AutoMLJobName": "\xff\xfe"}', target, serial)
        if kind == "target":
            bad = rng.choice(
                [
                    "",
                    "SageMaker.",
                    f"Sagemaker.{operation}",
                    f"AmazonSageMaker.{operation}",
                    "SageMaker.NoSuchOperation",
                    f"SageMaker.{operation.lower()}",
                    "SageMaker.Search",
                    f"SageMaker.{operation}.Extra",
                    "SageMaker.__init__",
                    "SageMaker.add_operations",
                ]
            )
            return Case(operation, kind, b"{}", bad, frozenset({"UnknownOperationException"}))
        if kind == "deep":
            # Deeper than any JSON parser's recursion: written as text, json.dumps cannot.
            depth = rng.choice([5_000, 100_000])
            opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
            body = (opener * depth + "1" + closer * depth).encode()
            return Case(operation, kind, body, target, serial, note=f"{depth} levels")
        if kind == "empty":
            shape = self.model.operation_model(operation).input_shape
            required = bool(shape is not None and shape.required_members)
            body = rng.choice([b"", b"  ", b"{}"])
            expect = frozenset({"ValidationException"}) if required else None
            return Case(operation, kind, body, target, expect, note="empty body")
        body = b'{"AutoMLJobName": "' + b"a" * HUGE_BODY + b'"}'
        return Case(operation, "huge", body, target, None, status=413)

    def setup(self) -> list[Case]:
        """Requests that make the model :data:`SEED_MODEL` (its data a file that is no model), so
        fuzzed endpoint configurations, endpoints and transforms reach past the name checks
        (an endpoint on it fails to load, a transform has no input)."""
        data = self.root / "model-data.tar.gz"
        data.write_bytes(b"not a model")
        body = {
            "ModelName": SEED_MODEL,
            "PrimaryContainer": {"Image": f"{IMAGE_REPOSITORY}:fuzz", "ModelDataUrl": str(data)},
            "ExecutionRoleArn": "arn:aws:iam::000000000000:role/fuzz",
        }
        return [self._json_case("CreateModel", "setup", body, None)]

    def cases(self, count: int) -> list[Case]:
        return [self.case() for _ in range(count)]


def send(client: httpx.Client, url: str, case: Case) -> Outcome:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if case.target:
        headers["X-Amz-Target"] = case.target
    try:
        response = client.post(url, content=case.body, headers=headers)
    except httpx.HTTPError as exc:
        outcome = Outcome(case, 0, type(exc).__name__, str(exc))
        outcome.problems.append(f"no answer ({type(exc).__name__})")
        return outcome
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    code = answer.get("__type", "") if isinstance(answer, dict) else ""
    message = answer.get("message", "") if isinstance(answer, dict) else ""
    outcome = Outcome(
        case, response.status_code, code or ("OK" if response.is_success else ""), message
    )
    outcome.problems.extend(check(case, response.status_code, code, message))
    return outcome


def check(case: Case, status: int, code: str, message: str) -> list[str]:
    """What is wrong with the answer ``status``/``code`` to ``case`` (nothing: an empty list)."""
    problems = []
    if status >= 500:
        problems.append(f"{status} {code}: {message[:300]}")
        return problems
    if case.status is not None:
        if status != case.status:
            problems.append(f"expected HTTP {case.status}, got {status} {code}")
        return problems
    if 200 <= status < 300:
        if case.expect is not None:
            problems.append(f"accepted; expected {'/'.join(sorted(case.expect))}")
        return problems
    if not code:
        problems.append(f"{status} without an error code")
    elif case.expect is not None and code not in case.expect:
        problems.append(f"{code}; expected {'/'.join(sorted(case.expect))}: {message[:200]}")
    elif case.expect is None and code not in SEMANTIC_CODES | SHAPE_CODES:
        problems.append(f"unexpected code {code}: {message[:200]}")
    if status >= 400 and not message:
        problems.append(f"{code} without a message")
    return problems
