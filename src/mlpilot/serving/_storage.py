"""Locations the data plane reads and writes: local paths, ``file://`` and ``s3://`` URIs.

S3 honours ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` like :mod:`mlpilot.data`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import fsspec

from mlpilot.data import one_line, s3_filesystem, split_uri
from mlpilot.errors import DataError

__all__ = ["Location", "locate", "one_line"]


@dataclass(frozen=True)
class Location:
    """``fs`` (an fsspec filesystem), its own ``path``, and the ``uri`` users see."""

    fs: Any
    path: str
    uri: str

    @property
    def remote(self) -> bool:
        return self.uri.startswith("s3://")

    def child(self, relative: str) -> Location:
        relative = relative.lstrip("/")
        if self.remote:
            path = f"{self.path.rstrip('/')}/{relative}"
            return Location(self.fs, path, f"s3://{path}")
        path = os.path.join(self.path, *relative.split("/"))
        return Location(self.fs, path, path)


def locate(source: str | os.PathLike[str], *, what: str = "location") -> Location:
    """Resolve a local path, ``file://`` or ``s3://`` URI; other schemes are a DataError."""
    text = os.fspath(source)
    if not text:
        raise DataError(f"empty {what}")
    protocol, path = split_uri(text, f"{what} ")
    if protocol == "s3":
        # A trailing slash (a prefix, not an object) stays in the URI users see.
        trailing = "/" if path.endswith("/") else ""
        path = path.strip("/") + trailing
        return Location(s3_filesystem(), path.rstrip("/"), f"s3://{path}")
    return Location(fsspec.filesystem("file"), path, path)
