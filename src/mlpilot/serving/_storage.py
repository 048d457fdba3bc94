"""Locations the data plane reads and writes: local paths, ``file://`` and ``s3://`` URIs.

S3 honours ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` like :mod:`mlpilot.data`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import fsspec

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


def _s3() -> Any:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {}
    if endpoint:
        kwargs["client_kwargs"] = {"endpoint_url": endpoint}
    # A fresh instance: the endpoint may have changed, and listings must show new objects.
    return fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False, **kwargs)


def locate(source: str | os.PathLike[str], *, what: str = "location") -> Location:
    """Resolve a local path, ``file://`` or ``s3://`` URI; other schemes are a DataError."""
    text = os.fspath(source)
    if not text:
        raise DataError(f"empty {what}")
    scheme = urlparse(text).scheme.lower() if "://" in text else ""
    if scheme == "s3":
        path = text.split("://", 1)[1]
        if not path.strip("/"):
            raise DataError(f"{text} names no S3 bucket")
        trailing = "/" if path.endswith("/") else ""
        path = path.strip("/") + trailing
        return Location(_s3(), path.rstrip("/"), f"s3://{path}")
    if scheme == "file":
        text = url2pathname(urlparse(text).path)
    elif scheme:
        raise DataError(
            f"unsupported URI scheme {scheme!r} in {what} {text}: use a local path, file:// or s3://"
        )
    path = os.path.abspath(os.path.expanduser(text))
    return Location(fsspec.filesystem("file"), path, path)


def one_line(exc: BaseException) -> str:
    """An exception's first line, at most 300 characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
