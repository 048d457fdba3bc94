"""Where requests may point the service: every URI member of a request (data, output, model
data) checked before the operation runs.

- A ``..`` segment is refused in any URI (``s3://``, ``file://`` or an absolute path): nothing
  legitimate needs one, and it is how a path walks out of the folder it names.
- A ``file://`` URI must name a path on this machine (no host part).
- With allowed roots configured (``mlpilot serve --allowed-root``), a local URI must resolve,
  symlinks followed, inside one of them or the service's data folder; a folder given as input
  must not hold symlinks that lead outside them either. Without roots, local paths are the
  caller's to choose, as a local tool's are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from mlpilot.service._errors import ServiceError
from mlpilot.service._shapes import LOCAL_URI_PATTERNS, service_model

__all__ = ["check_request_uris", "check_uri", "local_path"]

#: Files looked at, at most, when searching an input folder for symlinks leading out.
_MAX_SCANNED = 100_000


def _refuse(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def local_path(uri: str) -> Path | None:
    """The local path a ``file://`` URI or an absolute path names; None for other URIs."""
    if uri.startswith("file://"):
        return Path(url2pathname(urlparse(uri).path))
    if uri.startswith("/"):
        return Path(uri)
    return None


def _within(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def check_uri(uri: str, member: str, roots: Sequence[Path]) -> None:
    """Raise ValidationException if ``uri`` (the request's ``member``) may not be used.
    ``roots``: where local URIs may lead (empty: anywhere)."""
    parsed = urlparse(uri)
    raw_path = uri if uri.startswith("/") else parsed.path
    if ".." in PurePosixPath(unquote(raw_path)).parts:
        raise _refuse(f"{member} {uri!r}: '..' path segments are not accepted")
    if uri.startswith("file://") and parsed.netloc not in ("", "localhost"):
        raise _refuse(
            f"{member} {uri!r}: a file:// URI names a path on this machine (file:///path), "
            f"not one on host {parsed.netloc!r}"
        )
    path = local_path(uri)
    if path is None or not roots:
        return
    allowed = [os.path.realpath(root) for root in roots]
    real = os.path.realpath(path)
    shown = ", ".join(allowed)
    if not _within(real, allowed):
        via = "" if real == str(path) else f" (it resolves to {real})"
        raise _refuse(f"{member} {uri!r} is outside the allowed roots{via}: {shown}")
    if os.path.isdir(real):
        for link in _links_out(Path(real), allowed):
            raise _refuse(
                f"{member} {uri!r} holds {link}, a symlink that leads outside the allowed "
                f"roots ({shown})"
            )


def _links_out(folder: Path, allowed: Sequence[str]) -> Iterator[Path]:
    for count, (top, dirs, files) in enumerate(os.walk(folder, followlinks=False)):
        if count > _MAX_SCANNED:
            return
        for name in [*dirs, *files]:
            entry = Path(top) / name
            if entry.is_symlink() and not _within(os.path.realpath(entry), allowed):
                yield entry


def check_request_uris(operation: str, params: Any, roots: Sequence[Path]) -> None:
    """Check every URI member of an (already validated) ``operation`` request."""
    shape = service_model().operation_model(operation).input_shape
    if shape is not None:
        for member, uri in _uris(shape, params, ""):
            check_uri(uri, member, roots)


def _uris(shape: Any, value: Any, path: str) -> Iterator[tuple[str, str]]:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if value.get(name) is not None:
                yield from _uris(member, value[name], f"{path}.{name}" if path else name)
    elif kind == "list" and isinstance(value, list):
        for item in value:
            yield from _uris(shape.member, item, path)
    elif kind == "map" and isinstance(value, dict):
        for item in value.values():
            yield from _uris(shape.value, item, path)
    elif (
        kind == "string"
        and isinstance(value, str)
        and shape.metadata.get("pattern") in LOCAL_URI_PATTERNS
    ):
        yield path, value
