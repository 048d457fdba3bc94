"""A model package on disk, whatever model it holds: the manifest, the pickled payload, the
archive beside them, written atomically and read back with version checks.

Layout::

    <dir>/mlpilot-model.json   what a reader needs without unpickling: problem type, schema,
                               candidate facts, library versions
    <dir>/pipeline.joblib      the model itself (joblib)
    <dir>/model.tar.gz         the same two files, for ``ModelDataUrl`` and containers
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib

from mlpilot.errors import JobNotFoundError, ModelPackageError
from mlpilot.package._versions import compare_versions, installed_versions

__all__ = [
    "ARCHIVE",
    "FORECASTING",
    "FORMAT_VERSION",
    "MANIFEST",
    "PIPELINE",
    "ModelVersionWarning",
    "copy_package",
    "publish",
    "read_package",
]

MANIFEST = "mlpilot-model.json"
PIPELINE = "pipeline.joblib"
ARCHIVE = "model.tar.gz"
FORMAT_VERSION = 1
#: The manifest's ``problem_type`` of a forecasting package (the AutoMLProblemTypeConfigName).
FORECASTING = "TimeSeriesForecasting"


class ModelVersionWarning(UserWarning):
    """The package was written with other library versions than those installed."""


def manifest(problem_type: str, candidate: dict[str, Any], **facts: Any) -> dict[str, Any]:
    """A package's manifest: its format and problem type, what the reader needs (``facts``),
    the candidate it packages, the library versions it was made with and when."""
    return {
        "format_version": FORMAT_VERSION,
        "problem_type": problem_type,
        **facts,
        "candidate": candidate,
        "versions": installed_versions(),
        "created": time.time(),
    }


def publish(target: Path, info: dict[str, Any], payload: Any, *, archive: bool) -> Path:
    """Write a package of ``info`` and ``payload`` at ``target``."""

    def write(staging: Path) -> None:
        (staging / MANIFEST).write_text(json.dumps(info, indent=1, default=str))
        joblib.dump(payload, staging / PIPELINE)

    return _publish(target, write, archive=archive)


def copy_package(source: str | Path, directory: str | Path, *, archive: bool = True) -> Path:
    """Copy a saved package (files as they are, nothing unpickled), adding the archive."""
    src = Path(source)
    if not (src / MANIFEST).exists():
        raise JobNotFoundError(f"No model package at {src} (no {MANIFEST})")

    def write(staging: Path) -> None:
        for name in (MANIFEST, PIPELINE):
            shutil.copyfile(src / name, staging / name)

    return _publish(Path(directory), write, archive=archive)


def _publish(target: Path, write: Callable[[Path], None], *, archive: bool) -> Path:
    """Fill a staging folder beside ``target`` with ``write``, add ``model.tar.gz``, and rename
    it into place, so readers never see a half-written package."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        write(staging)
        if archive:
            with tarfile.open(staging / ARCHIVE, "w:gz", compresslevel=1) as tar:
                tar.add(staging / MANIFEST, arcname=MANIFEST)
                tar.add(staging / PIPELINE, arcname=PIPELINE)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_package(
    location: str | Path,
    *,
    strict: bool = False,
    accept: Callable[[Path, dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], Any]:
    """The manifest and the unpickled payload of a package folder or ``model.tar.gz``.

    Library versions that differ from those recorded are a :class:`ModelVersionWarning` naming
    each library, or a :class:`ModelPackageError` with ``strict=True``. ``accept(path, info)``
    may refuse the package (by raising) before anything is unpickled.
    """
    path = Path(location)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with tarfile.open(path, "r:gz") as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise ModelPackageError(f"{path} is not a readable model archive: {exc}") from exc
            return read_package(tmp, strict=strict, accept=accept)
    manifest = path / MANIFEST
    if not manifest.exists():
        raise JobNotFoundError(f"No model package at {path} (no {MANIFEST})")
    try:
        info = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise ModelPackageError(f"{manifest} is corrupt: {exc}") from exc
    if accept is not None:
        accept(path, info)
    differences = compare_versions(info.get("versions", {}))
    if differences:
        message = "Model package was written with other library versions: " + "; ".join(differences)
        if strict:
            raise ModelPackageError(message)
        warnings.warn(message, ModelVersionWarning, stacklevel=3)
    try:
        payload = joblib.load(path / PIPELINE)
    except FileNotFoundError as exc:
        raise ModelPackageError(f"Model package {path} has no {PIPELINE}") from exc
    except Exception as exc:
        hint = f" (version differences: {'; '.join(differences)})" if differences else ""
        raise ModelPackageError(f"Model package {path} cannot be loaded: {exc}{hint}") from exc
    return info, payload
