"""Read and write input tables: local paths, file:// and s3:// URIs, SageMaker manifests."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlpilot.errors import DataError

CSV_CONTENT_TYPE = "text/csv;header=present"
PARQUET_CONTENT_TYPE = "x-application/vnd.amazon+parquet"
SUPPORTED_CONTENT_TYPES = (CSV_CONTENT_TYPE, "text/csv", PARQUET_CONTENT_TYPE)
_CONTENT_FORMATS = {
    CSV_CONTENT_TYPE: "csv",
    "text/csv": "csv",
    PARQUET_CONTENT_TYPE: "parquet",
}
_DATA_TYPES = ("S3Prefix", "ManifestFile")
_FORMAT_NAMES = {"csv": "CSV", "parquet": "Parquet"}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
# The header ends at the first newline outside quotes; give up on garbage after this much.
_MAX_HEADER_BYTES = 16 * 2**20
_PANDAS_LINE_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_Binary = IO[bytes] | gzip.GzipFile
_REMOTE_PACKAGES = frozenset({"botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec"})


@dataclass(frozen=True)
class _Object:
    fs: Any  # fsspec.AbstractFileSystem
    path: str  # the filesystem's own path (local absolute path, or "bucket/key")
    uri: str  # what users see: the local path or "s3://bucket/key"


@dataclass
class _Resolver:
    """Turns sources into objects, with one fresh filesystem per protocol per call."""

    _filesystems: dict[str, Any] = field(default_factory=dict)

    def filesystem(self, protocol: str) -> Any:
        if protocol not in self._filesystems:
            self._filesystems[protocol] = (
                s3_filesystem()
                if protocol == "s3"
                else fsspec.filesystem("file", skip_instance_cache=True)
            )
        return self._filesystems[protocol]

    def resolve(self, source: str | os.PathLike[str]) -> _Object:
        text = os.fspath(source)
        if not isinstance(text, str) or not text:
            raise DataError(f"invalid data source {text!r}: expected a path or a URI")
        protocol, path = split_uri(text)
        if protocol == "s3":
            path = path.rstrip("/")
            return _Object(self.filesystem("s3"), path, f"s3://{path}")
        return _Object(self.filesystem("file"), path, path)


def s3_filesystem() -> Any:
    """An fsspec S3 filesystem at ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` when set."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {}
    if endpoint:
        kwargs["client_kwargs"] = {"endpoint_url": endpoint}
    # A fresh instance without listings cache: the endpoint may have changed, and listings
    # must show new objects.
    return fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False, **kwargs)


def split_uri(text: str, named: str = "") -> tuple[str, str]:
    """``("s3", "bucket/key" as written)`` or ``("file", absolute local path)`` for an
    ``s3://`` URI, a ``file://`` URI or a local path. Other schemes are a DataError that puts
    ``named`` (e.g. ``"model "``) before the text."""
    scheme = urlparse(text).scheme.lower() if "://" in text else ""
    if scheme == "s3":
        path = text.split("://", 1)[1]
        if not path.strip("/"):
            raise DataError(f"{text} names no S3 bucket")
        return "s3", path
    if scheme == "file":
        text = url2pathname(urlparse(text).path)
    elif scheme:
        raise DataError(
            f"unsupported URI scheme {scheme!r} in {named}{text}: use a local path, file:// or s3://"
        )
    return "file", os.path.abspath(os.path.expanduser(text))


def resolve_uri(source: str | os.PathLike[str]) -> tuple[Any, str]:
    """``(filesystem, path)`` for a local path, ``file://`` or ``s3://`` URI (the S3 endpoint
    from ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``), for code that copies whole trees."""
    obj = _Resolver().resolve(source)
    return obj.fs, obj.path


def one_line(exc: BaseException) -> str:
    """An exception's first line, at most 300 characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def _access(uri: str, action: str = "read") -> Iterator[None]:
    """Turn filesystem errors (local or S3) into one-line DataErrors naming ``uri``."""
    try:
        yield
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"{uri} does not exist") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{uri} is a folder, not a file") from exc
    except PermissionError as exc:
        raise DataError(f"cannot {action} {uri}: permission denied ({one_line(exc)})") from exc
    except Exception as exc:
        if not _is_access_error(exc):
            raise
        raise DataError(f"cannot {action} {uri}: {one_line(exc)}") from exc


def _is_access_error(exc: Exception) -> bool:
    # botocore, aiohttp and s3fs errors share no base class; match them by module so that
    # botocore is not imported for local-only use.
    package = type(exc).__module__.split(".", 1)[0]
    return isinstance(exc, OSError) or package in _REMOTE_PACKAGES


def _is_hidden(relative: str) -> bool:
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _expand(obj: _Object) -> list[_Object]:
    """The data files a path or prefix stands for, sorted, hidden ones skipped."""
    with _access(obj.uri):
        info = obj.fs.info(obj.path)
        if info.get("type") != "directory":
            return [obj]
        found = obj.fs.find(obj.path, detail=True)
    root = obj.path.rstrip("/") + "/"
    paths = sorted(
        path
        for path, meta in found.items()
        if meta.get("type", "file") == "file"
        and not path.endswith("/")
        and not _is_hidden(path[len(root) :] if path.startswith(root) else path)
    )
    if not paths:
        raise DataError(f"{obj.uri} contains no data files")
    prefix = "s3://" if obj.uri.startswith("s3://") else ""
    return [_Object(obj.fs, path, prefix + path) for path in paths]


def _manifest_objects(resolver: _Resolver, manifest: _Object) -> list[_Object]:
    with _access(manifest.uri):
        raw = manifest.fs.cat_file(manifest.path)
    try:
        entries = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{manifest.uri} is not a valid manifest: not JSON ({one_line(exc)})"
        ) from exc
    if (
        not isinstance(entries, list)
        or not entries
        or not isinstance(entries[0], dict)
        or not isinstance(entries[0].get("prefix"), str)
        or not entries[0]["prefix"]
    ):
        raise DataError(
            f"{manifest.uri} is not a valid manifest: expected a JSON list that starts with "
            '{"prefix": "s3://bucket/path/"}'
        )
    prefix: str = entries[0]["prefix"]
    keys = entries[1:]
    if not keys:
        raise DataError(f"{manifest.uri} is not a valid manifest: it lists no objects")
    bad = [key for key in keys if not isinstance(key, str) or not key]
    if bad:
        raise DataError(
            f"{manifest.uri} is not a valid manifest: entry {bad[0]!r} is not a relative key"
        )
    return sorted((resolver.resolve(prefix + key) for key in keys), key=lambda o: o.uri)


def _objects(resolver: _Resolver, source: str | os.PathLike[str], data_type: str) -> list[_Object]:
    if data_type not in _DATA_TYPES:
        raise DataError(
            f"unsupported data type {data_type!r} for {os.fspath(source)}: "
            f"use one of {', '.join(_DATA_TYPES)}"
        )
    obj = resolver.resolve(source)
    if data_type == "ManifestFile":
        return _manifest_objects(resolver, obj)
    return _expand(obj)


def list_objects(source: str | os.PathLike[str], *, data_type: str = "S3Prefix") -> list[str]:
    """The object URIs/paths ``source`` resolves to, sorted, hidden files skipped.

    Manifest entries are listed as written; their existence is checked when they are read.
    """
    return [obj.uri for obj in _objects(_Resolver(), source, data_type)]


def _content_format(content_type: str | None) -> str | None:
    if content_type is None:
        return None
    normalized = content_type.replace(" ", "").lower()
    if normalized not in _CONTENT_FORMATS:
        raise DataError(
            f"unsupported content type {content_type!r}: "
            f"use one of {', '.join(repr(t) for t in SUPPORTED_CONTENT_TYPES)}"
        )
    return _CONTENT_FORMATS[normalized]


def _compression_mode(compression: str | None) -> str | None:
    if compression is None:
        return None
    normalized = compression.strip().lower()
    if normalized not in ("none", "gzip"):
        raise DataError(f"unsupported compression {compression!r}: use 'None' or 'Gzip'")
    return normalized


def _wanted_columns(columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    wanted = [columns] if isinstance(columns, str) else list(columns)
    if not wanted:
        raise DataError("columns= is empty: name at least one column, or pass None for all")
    repeated = sorted({c for c in wanted if wanted.count(c) > 1})
    if repeated:
        raise DataError(f"columns= names {', '.join(map(repr, repeated))} more than once")
    return wanted


def _check_wanted(uri: str, header: list[str], wanted: list[str] | None) -> None:
    if wanted is None:
        return
    present = set(header)
    missing = [c for c in wanted if c not in present]
    if missing:
        shown = ", ".join(map(repr, header[:20])) + (", ..." if len(header) > 20 else "")
        raise DataError(
            f"{uri}: column(s) {', '.join(map(repr, missing))} not found (columns: {shown})"
        )


def _header_difference(expected: list[str], got: list[str]) -> str:
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(map(repr, missing))}")
    if extra:
        parts.append(f"unexpected {', '.join(map(repr, extra))}")
    if not parts:
        return "same columns in a different order"
    return "; ".join(parts)


def _first_record(text: str) -> str | None:
    """The first CSV record of ``text`` if a newline outside quotes ends it, else None."""
    position = 0
    while (newline := text.find("\n", position)) != -1:
        if text.count('"', 0, newline) % 2 == 0:
            return text[:newline]
        position = newline + 1
    return None


def _read_header(uri: str, stream: _Binary) -> list[str]:
    """Parse the header record from the start of ``stream`` (already decompressed).

    Reads from the current position; the caller rewinds ``stream`` afterwards.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    text = ""
    consumed = 0
    while True:
        chunk = stream.read(1 << 16)
        consumed += len(chunk)
        try:
            text += decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise DataError(f"{uri} is not a CSV file: it is not UTF-8 text") from exc
        if "\x00" in text:
            raise DataError(f"{uri} is not a CSV file: it contains binary data (NUL bytes)")
        # pandas skips leading blank lines too.
        text = text.removeprefix("\ufeff").lstrip("\r\n")
        record = _first_record(text) if chunk else text
        if record is not None:
            break
        if consumed > _MAX_HEADER_BYTES:
            raise DataError(f"{uri} is not a CSV file: no header line in its first 16 MiB")
    if not record.strip():
        raise DataError(f"{uri} has no header row (it is empty or blank)")
    return next(csv.reader(io.StringIO(record)), [])


def is_header_row(record: Sequence[str], names: Iterable[str]) -> bool:
    """Whether a CSV's first row is a header for a model trained on ``names`` (its columns, the
    target included): every value in it is one of them, which no data row of a real table is.
    ``mlpilot predict`` and the model container both decide by this rule."""
    known = set(names)
    return all(value.strip() in known for value in record)


@dataclass
class _TableReader:
    """Reads objects one by one, checking each header against the first one."""

    source: str
    content_type: str | None
    declared: str | None
    compression: str | None
    wanted: list[str] | None
    #: Whether a CSV's first row is a header: always, never, or as a rule on that row decides.
    header: bool | Callable[[list[str]], bool] = True
    first: tuple[str, str, list[str]] | None = None  # (uri, format, header)
    named: bool = True  # whether the first object has a header

    def read(self, obj: _Object) -> pd.DataFrame:
        with _access(obj.uri), obj.fs.open(obj.path, "rb") as handle:
            head = handle.read(4)
            if not head:
                raise DataError(f"{obj.uri} is empty (0 bytes)")
            handle.seek(0)
            fmt = self._format(obj.uri, head)
            if fmt == "parquet":
                return self._read_parquet(obj.uri, handle)
            return self._read_csv(obj.uri, handle, head)

    def _format(self, uri: str, head: bytes) -> str:
        if head.startswith(_PARQUET_MAGIC) or uri.lower().endswith(_PARQUET_SUFFIXES):
            fmt = "parquet"
        else:
            fmt = "csv"
        if self.declared is not None and fmt != self.declared:
            raise DataError(
                f"{uri} is a {_FORMAT_NAMES[fmt]} file but the content type is "
                f"{self.content_type!r}"
            )
        if self.first is not None and fmt != self.first[1]:
            raise DataError(
                f"{self.source} mixes CSV and Parquet files: {self.first[0]} is "
                f"{_FORMAT_NAMES[self.first[1]]}, {uri} is {_FORMAT_NAMES[fmt]}"
            )
        return fmt

    def _check_header(self, uri: str, fmt: str, header: list[str], named: bool = True) -> None:
        repeated = sorted({c for c in header if header.count(c) > 1})
        if named and repeated:
            raise DataError(f"{uri} has duplicate column names: {', '.join(map(repr, repeated))}")
        if not named and self.wanted is not None:
            raise DataError(f"{uri} has no header row, so columns= cannot name its columns")
        if self.first is None:
            self.first, self.named = (uri, fmt, header), named
        elif named != self.named:
            has, lacks = (uri, self.first[0]) if named else (self.first[0], uri)
            raise DataError(f"{has} has a header row but {lacks} does not")
        elif not named and len(header) != len(self.first[2]):
            raise DataError(
                f"{uri} has {len(header)} columns but {self.first[0]} has {len(self.first[2])}"
            )
        elif named and header != self.first[2]:
            difference = _header_difference(self.first[2], header)
            raise DataError(f"{uri}: header differs from {self.first[0]}: {difference}")
        _check_wanted(uri, header, self.wanted)

    def _read_csv(self, uri: str, handle: IO[bytes], head: bytes) -> pd.DataFrame:
        is_gzip = head.startswith(_GZIP_MAGIC)
        if not is_gzip and self.compression == "gzip":
            raise DataError(f"{uri} is not gzip-compressed, but compression 'Gzip' was given")
        if not is_gzip and self.compression is None and uri.lower().endswith(".gz"):
            raise DataError(f"{uri} is not valid gzip data (its name ends in .gz)")
        stream: _Binary = gzip.GzipFile(fileobj=handle, mode="rb") if is_gzip else handle
        try:
            header = _read_header(uri, stream)
            named = self.header(header) if callable(self.header) else self.header
            self._check_header(uri, "csv", header, named)
            stream.seek(0)
            with warnings.catch_warnings():
                # pandas only warns (and drops data) when rows are longer than the header.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    stream,
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    low_memory=False,
                    encoding="utf-8",
                    index_col=False,
                    usecols=self.wanted,
                    header=0 if named else None,
                )
        except _GZIP_ERRORS as exc:
            raise DataError(f"{uri} is not valid gzip data ({one_line(exc)})") from exc
        except pd.errors.ParserWarning as exc:
            raise DataError(
                f"{uri}: data rows have more fields than the {len(header)} header columns"
            ) from exc
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{uri} has no header row (it is empty or blank)") from exc
        except pd.errors.ParserError as exc:
            match = _PANDAS_LINE_ERROR.search(str(exc))
            if match:
                expected, line, saw = match.groups()
                first = "header" if named else "first row"
                raise DataError(
                    f"{uri}: line {line} has {saw} fields but the {first} has {expected}"
                ) from exc
            reason = one_line(exc).removeprefix("Error tokenizing data. C error: ")
            raise DataError(f"{uri} is not a readable CSV file: {reason}") from exc
        except UnicodeDecodeError as exc:
            raise DataError(f"{uri} is not a CSV file: it is not UTF-8 text") from exc
        finally:
            if stream is not handle:
                stream.close()
        return frame[self.wanted] if self.wanted is not None else frame

    def _read_parquet(self, uri: str, handle: IO[bytes]) -> pd.DataFrame:
        try:
            parquet = pq.ParquetFile(handle)
            header = list(parquet.schema_arrow.names)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{uri} is not a readable Parquet file: {one_line(exc)}") from exc
        self._check_header(uri, "parquet", header)
        try:
            table = parquet.read(columns=self.wanted)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{uri} is not a readable Parquet file: {one_line(exc)}") from exc
        return table.to_pandas()


def read_table(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    content_type: str | None = None,
    compression: str | None = None,
    data_type: str = "S3Prefix",
    columns: Sequence[str] | None = None,
    header: bool | Callable[[list[str]], bool] = True,
) -> pd.DataFrame:
    """Read a CSV or Parquet file, folder, S3 prefix or manifest into one DataFrame.

    CSV columns are kept as raw strings (only empty fields are missing); Parquet keeps its
    dtypes. Gzip-compressed CSV is recognised by its magic bytes whatever its name. A DataFrame
    source is returned as a copy. User problems raise :class:`DataError`.

    ``header`` says whether a CSV file's first row is a header; a callable decides from that
    row (e.g. :func:`is_header_row`), file by file, and every file must decide alike. Without
    one the columns are numbered from 0 and may repeat values. Parquet files always have names.
    """
    wanted = _wanted_columns(columns)
    if isinstance(source, pd.DataFrame):
        if wanted is not None:
            _check_wanted("the given DataFrame", [str(c) for c in source.columns], wanted)
            return source[wanted].copy()
        return source.copy()
    reader = _TableReader(
        source=os.fspath(source),
        content_type=content_type,
        declared=_content_format(content_type),
        compression=_compression_mode(compression),
        wanted=wanted,
        header=header,
    )
    objects = _objects(_Resolver(), source, data_type)
    frames = [reader.read(obj) for obj in objects]
    table = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(table) == 0:
        name = objects[0].uri if len(objects) == 1 else f"{reader.source} ({len(objects)} files)"
        if reader.first is not None and reader.first[1] == "parquet":
            raise DataError(f"{name} has no data rows")
        raise DataError(f"{name} has a header but no data rows")
    return table


def _write(df: pd.DataFrame, handle: IO[bytes], dest: str) -> None:
    name = dest.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        df.to_parquet(handle, index=False)
        return
    binary: _Binary = (
        gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) if name.endswith(".gz") else handle
    )
    text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    df.to_csv(text, index=False)
    text.flush()
    text.detach()
    if binary is not handle:
        binary.close()


def write_table(df: pd.DataFrame, dest: str | os.PathLike[str]) -> None:
    """Write ``df`` as CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``).

    Local writes are atomic: the table goes to a temporary file that then replaces ``dest``.
    """
    obj = _Resolver().resolve(dest)
    if not obj.uri.lower().endswith((".csv", ".csv.gz", *_PARQUET_SUFFIXES)):
        raise DataError(
            f"cannot write {obj.uri}: unsupported file suffix (use .csv, .csv.gz, .parquet or .pq)"
        )
    if obj.uri.startswith("s3://"):
        with _access(obj.uri, "write"), obj.fs.open(obj.path, "wb") as handle:
            _write(df, handle, obj.uri)
        return
    target = Path(obj.path)
    with _access(obj.uri, "write"):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                _write(df, handle, obj.uri)
            os.replace(tmp, target)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
