"""Batch transform's inputs: the objects under an S3 prefix (a key prefix, not only a folder)
or listed in a manifest, each with its key relative to the input prefix, and how one is opened
(gzip or buffered, so lines can be read with a size limit)."""

from __future__ import annotations

import gzip
import io
import json
import os
from contextlib import ExitStack
from typing import IO

from mlpilot.data import list_objects
from mlpilot.errors import DataError
from mlpilot.serving._storage import Location, locate, one_line
from mlpilot.serving._transform_spec import MIB, TransformSpec

__all__ = ["input_objects", "open_input"]


def _is_hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def input_objects(spec: TransformSpec) -> list[tuple[Location, str]]:
    """The input objects and their keys relative to the input prefix, sorted."""
    if spec.data_type == "ManifestFile":
        return _manifest_inputs(spec.input_uri)
    base = locate(spec.input_uri, what="input")
    try:
        uris = list_objects(spec.input_uri)
    except DataError as exc:
        if not (base.remote and "does not exist" in str(exc)):
            raise
        uris = _key_prefix(base)  # S3Prefix is a key prefix, not only a folder
        if not uris:
            raise DataError(f"no objects under {spec.input_uri}") from None
        root = base.path.rsplit("/", 1)[0]
    else:
        root = base.path if base.fs.isdir(base.path) else os.path.dirname(base.path)
    if base.remote:
        root = root.rstrip("/") + "/"
        pairs = [(locate(u), u[len("s3://") :][len(root) :]) for u in uris]
    else:
        pairs = [(locate(u), os.path.relpath(u, root).replace(os.sep, "/")) for u in uris]
    return pairs


def _key_prefix(base: Location) -> list[str]:
    parent = base.path.rsplit("/", 1)[0]
    if "/" not in base.path:
        return []
    try:
        found = base.fs.find(parent)
    except FileNotFoundError:
        return []
    return sorted(
        f"s3://{p}"
        for p in found
        if p.startswith(base.path) and not _is_hidden(p[len(parent) :]) and not p.endswith("/")
    )


def _manifest_inputs(uri: str) -> list[tuple[Location, str]]:
    uris = list_objects(uri, data_type="ManifestFile")
    manifest = locate(uri, what="manifest")
    try:
        prefix = json.loads(manifest.fs.cat_file(manifest.path))[0]["prefix"]
    except Exception as exc:
        raise DataError(f"{uri} is not a valid manifest: {one_line(exc)}") from None
    base = locate(prefix, what="manifest prefix")
    pairs = []
    for item in uris:
        location = locate(item)
        if base.remote:
            root = base.path.rstrip("/") + "/"
            relative = location.path[len(root) :] if location.path.startswith(root) else item
        else:
            relative = os.path.relpath(location.path, base.path).replace(os.sep, "/")
        pairs.append((location, relative))
    return pairs


def open_input(location: Location, gzipped: bool, stack: ExitStack) -> IO[bytes]:
    raw = stack.enter_context(location.fs.open(location.path, "rb"))
    if gzipped:
        unpacked: IO[bytes] = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[arg-type]
        return unpacked
    # fsspec's remote files read lines without a size limit; a buffer gives readline(limit).
    return stack.enter_context(io.BufferedReader(raw, buffer_size=MIB))
