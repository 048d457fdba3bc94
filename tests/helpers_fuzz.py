"""Seeded request fuzzing for the service's control plane, driven by botocore's sagemaker model.

:class:`Fuzzer` builds, for every operation the service dispatches, requests that satisfy the
operation's input shape (required members, enums, patterns, ranges, lengths) and requests that
break it in one chosen way, plus raw-HTTP cases (a body that is not JSON, a wrong target, an
oversized body). Each :class:`Case` carries the answers an AWS client would accept for it, and
:func:`check` says whether the service's answer is one of them.

Requests that would start work name inputs under a folder that does not exist, so a fuzz run
never starts a job or a transform of its own.

Given a real model package (``Fuzzer(..., package=...)``), a run is *stateful*: :meth:`setup`
first makes real resources (a model, an endpoint configuration, an endpoint in service, a
finished transform, a failed AutoML job, and a model package group requiring approval with a
version and a model made from it), the generated names include theirs, and
:meth:`Fuzzer.stateful` makes requests aimed at them (taken names, deletes twice, odd names,
broken updates, bad variants, a deployment of the unapproved version, a group still holding
packages); :meth:`Fuzzer.final` checks they are all still as they were.
"""

from __future__ import annotations

import base64
import json
import random
import re
import re._parser as sre_parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import regex

from mlpilot.service._automl import AutoMLOperations
from mlpilot.service._deploy import IMAGE_REPOSITORY, DeployOperations
from mlpilot.service._registry import RegistryOperations
from mlpilot.service._shapes import (
    LOCAL_URI_PATTERNS,
    MAX_REQUEST_BYTES,
    SERVICE_REQUIRED,
    service_model,
)
from mlpilot.service._transforms import TransformOperations

#: Codes a fuzzed request may draw besides the validation ones: the resource it names is
#: missing, busy or in a conflicting state (a group still holding packages), or a quota is
#: reached.
SEMANTIC_CODES = frozenset(
    {
        "ResourceNotFound",
        "ResourceInUse",
        "ResourceLimitExceeded",
        "ValidationException",
        "ConflictException",
    }
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
#: What a stateful run seeds besides: fuzzed deletes leave them alone too.
SEED_BROKEN = "fuzz-seed-broken"  # a model whose data is no model
SEED_CONFIG = "fuzz-seed-config"
SEED_ENDPOINT = "fuzz-seed-endpoint"
SEED_TRANSFORM = "fuzz-seed-transform"
SEED_JOB = "fuzz-seed-job"
SEED_VARIANT = "seed"
#: A model package group requiring approval, its version 1 (never approved: a run only
#: rejects it) and a model made from that version.
SEED_GROUP = "fuzz-seed-group"
SEED_PACKAGE = f"{SEED_GROUP}/1"
SEED_PACKAGE_MODEL = "fuzz-seed-packaged"
#: Names by the member that holds them, for a stateful run's generated requests.
_SEEDED = {
    "ModelName": [SEED_MODEL, SEED_BROKEN, SEED_PACKAGE_MODEL],
    "EndpointConfigName": [SEED_CONFIG],
    "EndpointName": [SEED_ENDPOINT],
    "TransformJobName": [SEED_TRANSFORM],
    "AutoMLJobName": [SEED_JOB],
    "VariantName": [SEED_VARIANT],
    "ModelPackageGroupName": [SEED_GROUP],
    "ModelPackageName": [SEED_PACKAGE],
}
#: The kinds of :meth:`Fuzzer.stateful` scenarios; a stateful run has each at least once.
STATEFUL_KINDS = (
    "describe",
    "odd-name",
    "taken",
    "delete-twice",
    "update",
    "weights",
    "limit",
    "transform",
    "stop",
    "registry",
)
_SEEDED_NAMES = frozenset(
    name for names in _SEEDED.values() for name in names if name != SEED_VARIANT
)


def implemented_operations() -> list[str]:
    """The operations the service dispatches (its handlers' public methods, as ``Service``
    registers them)."""
    handlers = (AutoMLOperations, DeployOperations, RegistryOperations, TransformOperations)
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
    # Python's re cannot parse \p{..}; stand-ins that stay inside what the class allows. Nor
    # a quantified end anchor (the customer metadata patterns' ``${1,128}``): one ``$``.
    return (
        re.sub(r"\$\{\d+,\d+\}", "$", pattern)
        .replace(r"\p{L}", "a-zA-Zé")
        .replace(r"\p{Z}", " ")
        .replace(r"\p{N}", "0-9")
        .replace(r"\p{M}", "")
        .replace(r"\p{P}", ".,")
        .replace(r"\p{S}", "+$")
    )


class Fuzzer:
    """Seeded generator of :class:`Case` objects. ``root`` is a folder whose ``missing/``
    sub-folder must not exist: inputs and model data point there."""

    def __init__(
        self,
        seed: int,
        root: Path,
        operations: list[str] | None = None,
        *,
        package: Path | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.model = service_model()
        self.root = root
        self.operations = operations or implemented_operations()
        #: A real model package (its model.tar.gz): the run is stateful.
        self.package = package
        self._serial = 0
        #: The seeded group's last version (versions are numbered in the order made).
        self._versions = 1

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
            pool = [*_NAMES, SEED_MODEL] if member == "ModelName" else list(_NAMES)
            if self.package is not None:
                pool += _SEEDED.get(member, [])
            name = self.rng.choice(pool)
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
        if operation.startswith("Delete"):
            for key, value in out.items():
                if isinstance(value, str) and value in {SEED_MODEL, *_SEEDED_NAMES}:
                    out[key] = _NAMES[0]
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
        """Requests that make the model :data:`SEED_MODEL`. Without a package its data is a
        file that is no model, so fuzzed endpoint configurations, endpoints and transforms
        reach past the name checks (an endpoint on it fails to load, a transform has no
        input). With one, the model is real, and the endpoint :data:`SEED_ENDPOINT` (in
        service when CreateEndpoint answers), the transform :data:`SEED_TRANSFORM` and the
        AutoML job :data:`SEED_JOB` (both end at once: their inputs are not what they
        need) are made too. Each must answer 200."""
        junk = self.root / "model-data.tar.gz"
        junk.write_bytes(b"not a model")
        data = junk if self.package is None else self.package
        cases = [self._json_case("CreateModel", "setup", self._model_body(SEED_MODEL, data), None)]
        if self.package is None:
            return cases
        seed_in = self.root / "seed-input"
        seed_in.mkdir(exist_ok=True)
        (seed_in / "rows.csv").write_text("1,2\n3,4\n")  # the wrong columns: the job fails
        bodies = [
            ("CreateModel", self._model_body(SEED_BROKEN, junk)),
            ("CreateEndpointConfig", self._config_body(SEED_CONFIG, SEED_MODEL)),
            ("CreateEndpoint", {"EndpointName": SEED_ENDPOINT, "EndpointConfigName": SEED_CONFIG}),
            ("CreateTransformJob", self._transform_body(SEED_TRANSFORM)),
            ("CreateAutoMLJobV2", self._automl_body(SEED_JOB)),
            (
                "CreateModelPackageGroup",
                {
                    "ModelPackageGroupName": SEED_GROUP,
                    "Tags": [{"Key": "mlpilot:RequireApproval", "Value": "true"}],
                },
            ),
            ("CreateModelPackage", self._package_body(SEED_GROUP)),
            (
                "CreateModel",
                {
                    "ModelName": SEED_PACKAGE_MODEL,
                    "PrimaryContainer": {"ModelPackageName": self._package_arn(1)},
                },
            ),
        ]
        cases += [self._json_case(op, "setup", body, None) for op, body in bodies]
        for case in cases:
            case.status = 200
        return cases

    def _model_body(self, name: str, data: Path) -> dict[str, Any]:
        return {
            "ModelName": name,
            "PrimaryContainer": {"Image": f"{IMAGE_REPOSITORY}:fuzz", "ModelDataUrl": str(data)},
            "ExecutionRoleArn": "arn:aws:iam::000000000000:role/fuzz",
        }

    def _package_body(self, group: str) -> dict[str, Any]:
        container = {"Image": f"{IMAGE_REPOSITORY}:fuzz", "ModelDataUrl": str(self.package)}
        specification = {"Containers": [container]}
        return {"ModelPackageGroupName": group, "InferenceSpecification": specification}

    @staticmethod
    def _package_arn(version: int) -> str:
        return f"arn:aws:sagemaker:us-east-1:000000000000:model-package/{SEED_GROUP}/{version}"

    @staticmethod
    def _config_body(name: str, model: str, count: int = 1) -> dict[str, Any]:
        variant = {
            "VariantName": SEED_VARIANT,
            "ModelName": model,
            "InitialInstanceCount": count,
            "InstanceType": "ml.m5.large",
        }
        return {"EndpointConfigName": name, "ProductionVariants": [variant]}

    def _transform_body(self, name: str, **changes: Any) -> dict[str, Any]:
        source = {"S3DataType": "S3Prefix", "S3Uri": str(self.root / "seed-input")}
        body = {
            "TransformJobName": name,
            "ModelName": SEED_MODEL,
            "TransformInput": {
                "DataSource": {"S3DataSource": source},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": str(self.root / "out" / name)},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        }
        body.update(changes)
        return body

    def _automl_body(self, name: str) -> dict[str, Any]:
        source = {"S3DataType": "S3Prefix", "S3Uri": str(self.root / "seed-input")}
        return {
            "AutoMLJobName": name,
            "AutoMLJobInputDataConfig": [{"DataSource": {"S3DataSource": source}}],
            "OutputDataConfig": {"S3OutputPath": str(self.root / "out")},
            "AutoMLProblemTypeConfig": {"TabularJobConfig": {"TargetAttributeName": "Churn"}},
            "RoleArn": "arn:aws:iam::000000000000:role/fuzz",
        }

    def _fresh(self, prefix: str) -> str:
        self._serial += 1
        return f"fuzz-{prefix}-{self._serial}"

    def _fixed(self, operation: str, kind: str, body: Any, expect: Any, status: Any = None) -> Case:
        case = self._json_case(operation, kind, body, expect)
        case.status = status
        return case

    # -- requests aimed at the seeded resources --------------------------------------------
    def stateful(self, kind: str | None = None) -> list[Case]:
        """One scenario against the seeded resources (of ``kind``, one of
        :data:`STATEFUL_KINDS`; drawn when None): one request or a few in a row."""
        rng = self.rng
        ok, valid = 200, frozenset({"ValidationException"})
        kind = kind or rng.choice([*STATEFUL_KINDS, "describe", "taken", "weights"])
        if kind == "describe":
            operation, member, name = rng.choice(
                [
                    ("DescribeModel", "ModelName", SEED_MODEL),
                    ("DescribeEndpointConfig", "EndpointConfigName", SEED_CONFIG),
                    ("DescribeEndpoint", "EndpointName", SEED_ENDPOINT),
                    ("DescribeTransformJob", "TransformJobName", SEED_TRANSFORM),
                    ("DescribeAutoMLJobV2", "AutoMLJobName", SEED_JOB),
                    ("DescribeAutoMLJob", "AutoMLJobName", SEED_JOB),
                    ("ListCandidatesForAutoMLJob", "AutoMLJobName", SEED_JOB),
                ]
            )
            return [self._fixed(operation, "seed-describe", {member: name}, None, ok)]
        if kind == "odd-name":
            operation, member, name = rng.choice(
                [
                    ("DescribeModel", "ModelName", SEED_MODEL),
                    ("DescribeEndpoint", "EndpointName", SEED_ENDPOINT),
                    ("DeleteEndpointConfig", "EndpointConfigName", SEED_CONFIG),
                    ("DeleteModel", "ModelName", SEED_MODEL),
                    ("DescribeTransformJob", "TransformJobName", SEED_TRANSFORM),
                    ("StopAutoMLJob", "AutoMLJobName", SEED_JOB),
                ]
            )
            odd = rng.choice(
                [
                    name.upper(),
                    name + " ",
                    " " + name,
                    name + "\x00",
                    name + "/..",
                    name.replace("-", "\u2010"),
                    f"arn:aws:sagemaker:us-east-1:000000000000:model/{name}",
                    name + "%",
                    name[:-1],
                    name + "-",
                ]
            )
            # Shape errors or not found; never the seeded resource itself (nor a 5xx).
            expect = frozenset({"ValidationException", "ResourceNotFound"})
            return [self._fixed(operation, "seed-odd-name", {member: odd}, expect)]
        if kind == "taken":
            operation, body, codes = rng.choice(
                [
                    ("CreateModel", self._model_body(SEED_MODEL, self.package or Path()), valid),
                    ("CreateEndpointConfig", self._config_body(SEED_CONFIG, SEED_MODEL), valid),
                    (
                        "CreateEndpoint",
                        {"EndpointName": SEED_ENDPOINT, "EndpointConfigName": SEED_CONFIG},
                        valid,
                    ),
                    (
                        "CreateTransformJob",
                        self._transform_body(SEED_TRANSFORM),
                        frozenset({"ResourceInUse"}),
                    ),
                    (
                        "CreateAutoMLJobV2",
                        self._automl_body(SEED_JOB),
                        frozenset({"ResourceInUse"}),
                    ),
                ]
            )
            return [self._fixed(operation, "seed-taken", body, codes)]
        if kind == "delete-twice":
            if rng.random() < 0.5:
                name = self._fresh("model")
                first = ("CreateModel", self._model_body(name, self.package or Path()))
                member, operation = "ModelName", "DeleteModel"
            else:
                name = self._fresh("config")
                first = ("CreateEndpointConfig", self._config_body(name, SEED_MODEL))
                member, operation = "EndpointConfigName", "DeleteEndpointConfig"
            return [
                self._fixed(first[0], "seed-delete-twice", first[1], None, ok),
                self._fixed(operation, "seed-delete-twice", {member: name}, None, ok),
                self._fixed(operation, "seed-delete-twice", {member: name}, valid),
            ]
        if kind == "limit":
            # More instances than the service's quota: for the endpoint, or a config for it.
            if rng.random() < 0.5:
                count = rng.choice([17, 1000, 2**31 - 1])
                item = {"VariantName": SEED_VARIANT, "DesiredInstanceCount": count}
                body = {"EndpointName": SEED_ENDPOINT, "DesiredWeightsAndCapacities": [item]}
                return [
                    self._fixed(
                        "UpdateEndpointWeightsAndCapacities",
                        "seed-limit",
                        body,
                        frozenset({"ResourceLimitExceeded"}),
                    )
                ]
            name = self._fresh("config")
            config = self._config_body(name, SEED_MODEL, count=rng.choice([17, 500, 10_000]))
            create = rng.choice(
                [
                    ("UpdateEndpoint", {"EndpointName": SEED_ENDPOINT, "EndpointConfigName": name}),
                    ("CreateEndpoint", {"EndpointName": _NAMES[2], "EndpointConfigName": name}),
                ]
            )
            return [
                self._fixed("CreateEndpointConfig", "seed-limit", config, None, ok),
                # CreateEndpoint: the fuzzed requests may have taken the name already.
                self._fixed(
                    create[0],
                    "seed-limit",
                    create[1],
                    frozenset(
                        {"ResourceLimitExceeded", "ValidationException"}
                        if create[0] == "CreateEndpoint"
                        else {"ResourceLimitExceeded"}
                    ),
                ),
            ]
        if kind == "update":
            choice = rng.choice(["missing", "missing", "broken"])
            target = {"EndpointName": SEED_ENDPOINT}
            if choice == "missing":
                body = {**target, "EndpointConfigName": self._fresh("nowhere")}
                return [self._fixed("UpdateEndpoint", "seed-update", body, valid)]
            # Accepted, then fails to load: the endpoint rolls back and keeps serving.
            name = self._fresh("config")
            body = {**target, "EndpointConfigName": name}
            return [
                self._fixed(
                    "CreateEndpointConfig",
                    "seed-update",
                    self._config_body(name, SEED_BROKEN),
                    None,
                    ok,
                ),
                self._fixed("UpdateEndpoint", "seed-update", body, None, ok),
            ]
        if kind == "weights":
            item: dict[str, Any] = {"VariantName": SEED_VARIANT}
            choice = rng.choice(["unknown", "neither", "weight", "negative", "twice"])
            expect, status = valid, None
            items = [item]
            if choice == "unknown":
                item.update(VariantName=rng.choice(["nope", "SEED", "seed "]), DesiredWeight=1.0)
            elif choice == "neither":
                pass
            elif choice == "weight":
                item["DesiredWeight"] = rng.choice([0.0, 0.5, 1.0, 3.0])
                expect, status = None, ok
            elif choice == "negative":
                item["DesiredWeight"] = -1.0
            else:
                items = [{**item, "DesiredWeight": 1.0}, {**item, "DesiredWeight": 2.0}]
                expect = None
            body = {"EndpointName": SEED_ENDPOINT, "DesiredWeightsAndCapacities": items}
            return [
                self._fixed(
                    "UpdateEndpointWeightsAndCapacities", "seed-weights", body, expect, status
                )
            ]
        if kind == "transform":
            # Broken settings on a real model and input: refused before anything starts.
            processing = rng.choice(
                [
                    {"InputFilter": "$["},
                    {"OutputFilter": "$.no[", "JoinSource": "Input"},
                    {"JoinSource": "Input", "InputFilter": "$[0:"},
                ]
            )
            body = self._transform_body(self._fresh("transform"), DataProcessing=processing)
            if rng.random() < 0.5:
                body = self._transform_body(self._fresh("transform"), MaxPayloadInMB=0)
            return [self._fixed("CreateTransformJob", "seed-transform", body, valid)]
        if kind == "registry":
            return self._registry_scenario()
        operation, member, name = rng.choice(
            [
                ("StopTransformJob", "TransformJobName", SEED_TRANSFORM),
                ("StopAutoMLJob", "AutoMLJobName", SEED_JOB),
            ]
        )
        # Accepted while it runs (it is then Stopping), a ValidationException once it ended.
        return [self._fixed(operation, "seed-stop", {member: name}, None)]

    def _registry_scenario(self) -> list[Case]:
        """Requests at the seeded model package group and its version 1, which is never
        approved (so a model made from it is never deployed: its group requires approval)."""
        rng, ok = self.rng, 200
        valid = frozenset({"ValidationException"})
        choice = rng.choice(["taken", "held", "gated", "status", "odd", "delete-twice"])
        if choice == "taken":
            body = {"ModelPackageGroupName": rng.choice([SEED_GROUP, SEED_GROUP.upper()])}
            return [self._fixed("CreateModelPackageGroup", "seed-registry", body, valid)]
        if choice == "held":
            body = {"ModelPackageGroupName": SEED_GROUP}
            conflict = frozenset({"ConflictException"})
            return [self._fixed("DeleteModelPackageGroup", "seed-registry", body, conflict)]
        if choice == "gated":
            name = self._fresh("config")
            body = {"EndpointName": self._fresh("endpoint"), "EndpointConfigName": name}
            return [
                self._fixed(
                    "CreateEndpointConfig",
                    "seed-registry",
                    self._config_body(name, SEED_PACKAGE_MODEL),
                    None,
                    ok,
                ),
                self._fixed("CreateEndpoint", "seed-registry", body, valid),
            ]
        if choice == "status":
            arn = self._package_arn(1)
            rejected = {"ModelPackageArn": arn, "ModelApprovalStatus": "Rejected"}
            pending = {"ModelPackageArn": arn, "ModelApprovalStatus": "PendingManualApproval"}
            return [
                self._fixed("UpdateModelPackage", "seed-registry", rejected, None, ok),
                self._fixed("UpdateModelPackage", "seed-registry", pending, valid),
            ]
        if choice == "odd":
            name = rng.choice(
                [f"{SEED_GROUP}/0", f"{SEED_GROUP}/99999", f"{SEED_GROUP}-/1", SEED_GROUP]
            )
            body = {"ModelPackageName": name}
            return [self._fixed("DescribeModelPackage", "seed-registry", body, valid)]
        # A new version, deleted twice; the seeded version 1 stays.
        self._versions += 1
        created = self._package_body(SEED_GROUP)
        deleted = {"ModelPackageName": self._package_arn(self._versions)}
        return [
            self._fixed("CreateModelPackage", "seed-registry", created, None, ok),
            self._fixed("DeleteModelPackage", "seed-registry", deleted, None, ok),
            self._fixed("DeleteModelPackage", "seed-registry", deleted, valid),
        ]

    def final(self) -> list[Case]:
        """At the end of a stateful run: the seeded resources answer Describe, and deleting the
        endpoint's configuration while the endpoint serves is allowed (as on SageMaker)."""
        checks = [
            ("DescribeModel", {"ModelName": SEED_MODEL}),
            ("DescribeEndpointConfig", {"EndpointConfigName": SEED_CONFIG}),
            ("DescribeTransformJob", {"TransformJobName": SEED_TRANSFORM}),
            ("DescribeAutoMLJobV2", {"AutoMLJobName": SEED_JOB}),
            ("DescribeEndpoint", {"EndpointName": SEED_ENDPOINT}),
            ("DeleteEndpointConfig", {"EndpointConfigName": SEED_CONFIG}),
            (
                "UpdateEndpointWeightsAndCapacities",
                {
                    "EndpointName": SEED_ENDPOINT,
                    "DesiredWeightsAndCapacities": [
                        {"VariantName": SEED_VARIANT, "DesiredWeight": 1.0}
                    ],
                },
            ),
            ("DescribeEndpoint", {"EndpointName": SEED_ENDPOINT}),
            ("DescribeModelPackageGroup", {"ModelPackageGroupName": SEED_GROUP}),
            ("DescribeModelPackage", {"ModelPackageName": SEED_PACKAGE}),
            ("DescribeModel", {"ModelName": SEED_PACKAGE_MODEL}),
        ]
        return [self._fixed(op, "final", body, None, 200) for op, body in checks]

    def cases(self, count: int) -> list[Case]:
        """``count`` requests; in a stateful run about a third aimed at the seeded resources."""
        out: list[Case] = []
        if self.package is not None:
            for kind in STATEFUL_KINDS:
                out.extend(self.stateful(kind))
        while len(out) < count:
            if self.package is not None and self.rng.random() < 0.3:
                out.extend(self.stateful())
            else:
                out.append(self.case())
        return out[:count]


def settle(client: httpx.Client, url: str, timeout: float = 60.0) -> None:
    """Wait until the seeded transform and AutoML job have ended (stopped, or failed at once
    on their input): a run ends with none left in progress."""
    import time

    waits = [
        ("DescribeTransformJob", {"TransformJobName": SEED_TRANSFORM}, "TransformJobStatus"),
        ("DescribeAutoMLJobV2", {"AutoMLJobName": SEED_JOB}, "AutoMLJobStatus"),
    ]
    deadline = time.monotonic() + timeout
    for operation, body, member in waits:
        while True:
            answer = client.post(
                url,
                json=body,
                headers={
                    "X-Amz-Target": f"SageMaker.{operation}",
                    "Content-Type": "application/x-amz-json-1.1",
                },
            ).json()
            if answer.get(member) in ("Completed", "Failed", "Stopped"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{operation} {body}: still {answer.get(member)}")
            time.sleep(0.2)


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
