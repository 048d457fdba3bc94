"""Where a served model comes from: a package folder, a job folder, a ``model.tar.gz``, or an
``s3://`` / ``file://`` URI of one. Archives and remote packages are unpacked once into a cache
folder, so several instances of a variant (and restarts) share one download."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from mlpilot._layout import model_location
from mlpilot.errors import DataError, JobNotFoundError, ModelPackageError
from mlpilot.serving._storage import Location, locate, one_line

__all__ = ["default_cache_dir", "resolve_model"]

MANIFEST = "mlpilot-model.json"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


def default_cache_dir() -> Path:
    """``$MLPILOT_CACHE_DIR/models``, else ``$XDG_CACHE_HOME/mlpilot/models`` (``~/.cache``)."""
    root = os.environ.get("MLPILOT_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "mlpilot" / "models"


def resolve_model(source: str | os.PathLike[str], *, cache_dir: str | Path | None = None) -> Path:
    """A local folder holding the model package ``source`` names.

    ``source``: a package folder (with ``mlpilot-model.json``), a job folder (its best model), a
    folder holding ``model.tar.gz`` (like ``/opt/ml/model``), a ``model.tar.gz``, or the
    ``s3://``/``file://`` URI of any of those. Raises a one-line :class:`DataError`,
    :class:`JobNotFoundError` or :class:`ModelPackageError`.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    location = locate(source, what="model")
    if location.remote:
        return _remote(location, cache)
    return _local(Path(location.path), cache)


def _local(path: Path, cache: Path) -> Path:
    if not path.exists():
        raise JobNotFoundError(f"No model at {path}")
    if path.is_file():
        if not path.name.endswith(ARCHIVE_SUFFIXES):
            raise ModelPackageError(
                f"{path} is not a model: expected a model.tar.gz or a model package folder"
            )
        stat = path.stat()
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        return _cached(cache, key, lambda target: _extract(path, str(path), target))
    if (path / MANIFEST).exists():
        return path
    if (path / "job.json").exists():
        return model_location(path)
    for name in ("model.tar.gz", "model.tgz"):
        if (path / name).is_file():
            return _local(path / name, cache)
    raise ModelPackageError(
        f"{path} is not a model package (no {MANIFEST}, model.tar.gz or job.json in it)"
    )


def _remote(location: Location, cache: Path) -> Path:
    fs, path, uri = location.fs, location.path, location.uri.rstrip("/")
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise JobNotFoundError(f"No model at {uri}") from None
    except Exception as exc:
        raise DataError(f"cannot read {uri}: {one_line(exc)}") from exc
    if info.get("type") != "directory":
        if not path.endswith(ARCHIVE_SUFFIXES):
            raise ModelPackageError(
                f"{uri} is not a model: expected a model.tar.gz or a model package folder"
            )
        key = f"{uri}|{info.get('ETag') or info.get('etag')}|{info.get('size')}"
        return _cached(cache, key, lambda target: _download_archive(location, target))
    try:
        names = {p.rsplit("/", 1)[-1]: p for p in fs.ls(path, detail=False)}
    except Exception as exc:
        raise DataError(f"cannot list {uri}: {one_line(exc)}") from exc
    if MANIFEST in names:
        stamp = fs.info(names[MANIFEST]).get("ETag", "")
        key = f"{uri}/|{stamp}"
        return _cached(cache, key, lambda target: _download_folder(location, target))
    for name in ("model.tar.gz", "model.tgz"):
        if name in names:
            return _remote(Location(fs, names[name], f"{uri}/{name}"), cache)
    raise ModelPackageError(f"{uri} is not a model package (no {MANIFEST} or model.tar.gz in it)")


def _cached(cache: Path, key: str, fill: Callable[[Path], None]) -> Path:
    """The cache entry for ``key``, filled by ``fill(staging)`` once; concurrent fillers race
    harmlessly (the first rename wins)."""
    target = cache / hashlib.sha256(key.encode()).hexdigest()[:24]
    if (target / MANIFEST).exists():
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache))
    except OSError as exc:
        raise DataError(f"cannot use the model cache {cache}: {exc.strerror or exc}") from None
    try:
        fill(staging)
        if not (staging / MANIFEST).exists():
            raise ModelPackageError(f"the model archive holds no {MANIFEST}")
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / MANIFEST).exists():  # not another process winning the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract(archive: Path | str, uri: str, target: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ModelPackageError(f"{uri} is not a readable model archive: {one_line(exc)}") from None
    # Some archives wrap the package in one folder.
    if not (target / MANIFEST).exists():
        inner = [p for p in target.iterdir() if (p / MANIFEST).exists()]
        if len(inner) == 1:
            for item in inner[0].iterdir():
                shutil.move(str(item), target / item.name)


def _download_archive(location: Location, target: Path) -> None:
    local = target / ".download.tar.gz"
    try:
        location.fs.get_file(location.path, str(local))
    except Exception as exc:
        raise DataError(f"cannot download {location.uri}: {one_line(exc)}") from exc
    _extract(local, location.uri, target)
    local.unlink()


def _download_folder(location: Location, target: Path) -> None:
    fs = location.fs
    root = location.path.rstrip("/") + "/"
    try:
        for path in fs.find(location.path):
            relative = path[len(root) :] if path.startswith(root) else path.rsplit("/", 1)[-1]
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(path, str(destination))
    except Exception as exc:
        raise DataError(f"cannot download {location.uri}: {one_line(exc)}") from exc
