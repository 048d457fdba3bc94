"""A model package on disk, whatever model it holds: the manifest, the pickled payload, the
archive beside them, written atomically and read back with version checks.

Layout::

    <dir>/mlpilot-model.json   what a reader needs without unpickling: problem type, schema,
                               candidate facts, library versions, the payload's SHA-256
    <dir>/pipeline.joblib      the model itself: a pickle (protocol 5) when the manifest's
                               ``serializer`` says ``pickle``, else (packages written before
                               it) joblib's
    <dir>/model-card.json      the model card (mlpilot.jobs writes it as the package is made):
    <dir>/model-card.md        facts about the data, validation, metrics and caveats; no rows
    <dir>/model.tar.gz         the same files, for ``ModelDataUrl`` and containers

The card files, when present, are sealed like the payload: their SHA-256 are in the manifest's
``checksums`` too (:func:`verify_package` checks every one). The payload is unpickled only
once its SHA-256 matches the manifest's ``checksums`` entry, so a truncated or damaged package
is refused with a :class:`ModelPackageError` rather than a traceback from deep inside
unpickling. Packages written before checksums were recorded load with
an :class:`UnverifiedPackageWarning`.

A payload may be encrypted (AES-256-GCM under a named key, see :mod:`._crypto`): the manifest
then says which key in ``encryption``, the checksum is of the encrypted bytes (so a package can
be verified and copied without the key), and reading it needs a :class:`~._crypto.Keyring`
holding that key.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib

from mlpilot.errors import JobNotFoundError, ModelPackageError
from mlpilot.package._crypto import Keyring, decrypt_payload, encrypt_payload, is_encrypted
from mlpilot.package._versions import compare_versions, installed_versions

__all__ = [
    "ARCHIVE",
    "CARD_JSON",
    "CARD_MARKDOWN",
    "FORECASTING",
    "FORMAT_VERSION",
    "MANIFEST",
    "PIPELINE",
    "ModelVersionWarning",
    "UnverifiedPackageWarning",
    "copy_package",
    "encrypt_package",
    "load_payload",
    "publish",
    "read_package",
    "seal_files",
    "verify_package",
]

MANIFEST = "mlpilot-model.json"
PIPELINE = "pipeline.joblib"
ARCHIVE = "model.tar.gz"
CARD_JSON = "model-card.json"
CARD_MARKDOWN = "model-card.md"
#: Files besides the payload that a package may hold under its manifest's checksums.
SEALED_EXTRAS = (CARD_JSON, CARD_MARKDOWN)
FORMAT_VERSION = 1
#: How payloads are written: Python's own pickler (its C implementation). joblib's, used
#: before, is written in Python: bags of five text pipelines (TF-IDF vocabularies, SVD
#: arrays, models) took 2.8-3.6 s to write against 0.48-0.65 s, and 0.8-1.35 s to read
#: against 0.13-0.18 s.
SERIALIZER = "pickle"
#: The manifest's ``problem_type`` of a forecasting package (the AutoMLProblemTypeConfigName).
FORECASTING = "TimeSeriesForecasting"


class ModelVersionWarning(UserWarning):
    """The package was written with other library versions than those installed."""


class UnverifiedPackageWarning(UserWarning):
    """The package records no checksum (written before they were), so it cannot be verified."""


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks (payloads may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, info: dict[str, Any], label: Path, *, warn: bool = True) -> None:
    """Refuse ``path``'s payload if it does not match the manifest's checksum."""
    payload = path / PIPELINE
    if not payload.is_file():
        raise ModelPackageError(f"Model package {label} has no {PIPELINE}")
    expected = (info.get("checksums") or {}).get(PIPELINE)
    if expected is None:
        if warn:
            warnings.warn(
                f"Model package {label} records no checksum (written by an older mlpilot): "
                "its payload is loaded unverified",
                UnverifiedPackageWarning,
                stacklevel=5,
            )
        return
    actual = file_sha256(payload)
    if actual != expected:
        raise ModelPackageError(
            f"Model package {label} is corrupted: checksum of {PIPELINE} is {actual[:16]}…, "
            f"the manifest records {str(expected)[:16]}… (truncated or modified after writing)"
        )


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
        with open(staging / PIPELINE, "wb") as handle:
            pickle.dump(payload, handle, protocol=5)
        recorded = {
            **info,
            "serializer": SERIALIZER,
            "checksums": {PIPELINE: file_sha256(staging / PIPELINE)},
        }
        (staging / MANIFEST).write_text(json.dumps(recorded, indent=1, default=str))

    return _publish(target, write, archive=archive)


def copy_package(
    source: str | Path,
    directory: str | Path,
    *,
    archive: bool = True,
    candidate: dict[str, Any] | None = None,
) -> Path:
    """Copy a saved package (files as they are, nothing unpickled), adding the archive;
    ``candidate``: facts that replace the manifest's candidate facts of the same name (the
    payload and its checksum are unchanged).

    The payload's checksum is checked first: a damaged package is not copied on as good.
    """
    src = Path(source)
    if not (src / MANIFEST).exists():
        raise JobNotFoundError(f"No model package at {src} (no {MANIFEST})")
    info = _read_manifest(src / MANIFEST, src)
    _verify(src, info, src, warn=False)

    def write(staging: Path) -> None:
        for name in (MANIFEST, PIPELINE, *SEALED_EXTRAS):
            if (src / name).is_file():
                shutil.copyfile(src / name, staging / name)
        if candidate is not None:
            changed = {**info, "candidate": {**info.get("candidate", {}), **candidate}}
            (staging / MANIFEST).write_text(json.dumps(changed, indent=1, default=str))

    return _publish(Path(directory), write, archive=archive)


def encrypt_package(folder: str | Path, name: str, keyring: Keyring, *, archive: bool) -> bool:
    """Encrypt the payload of the package at ``folder`` in place under the key ``name``
    (rebuilding the archive); False when it already is encrypted, with whichever key.

    The payload is verified first, and the package is rewritten through a staging folder like
    any other, so it is never seen half-encrypted.
    """
    src = Path(folder)
    key = keyring.get(name)
    if key is None:
        raise ModelPackageError(f"No key named {name} to encrypt {src} with")
    info = _read_manifest(src / MANIFEST, src)
    _verify(src, info, src, warn=False)
    if is_encrypted(src / PIPELINE):
        return False

    def write(staging: Path) -> None:
        for child in src.iterdir():  # whatever else the folder holds stays
            if child.name not in (MANIFEST, PIPELINE, ARCHIVE) and child.is_file():
                shutil.copy2(child, staging / child.name)
        encrypt_payload(src / PIPELINE, staging / PIPELINE, name, key)
        recorded = {
            **info,
            "encryption": {"algorithm": "AES-256-GCM", "kms_key_id": name},
            # the card's checksums stay: only the payload changed
            "checksums": {**info.get("checksums", {}), PIPELINE: file_sha256(staging / PIPELINE)},
        }
        (staging / MANIFEST).write_text(json.dumps(recorded, indent=1, default=str))

    _publish(src, write, archive=archive or (src / ARCHIVE).exists())
    return True


def seal_files(folder: str | Path, files: dict[str, str], *, archive: bool | None = None) -> Path:
    """Add ``files`` (name → text, names from :data:`SEALED_EXTRAS`) to the package at
    ``folder``: their checksums join the manifest's and the archive is rebuilt, through a
    staging folder like any other write, so the package is never seen half-sealed.

    ``archive``: whether the result has ``model.tar.gz`` (None: when the package had one).
    A job packages its model without the archive and builds it here, once, with the card in
    it: compressing a large forest takes seconds of the job's budget."""
    src = Path(folder)
    info = _read_manifest(src / MANIFEST, src)
    _verify(src, info, src, warn=False)

    def write(staging: Path) -> None:
        for child in src.iterdir():
            if child.name not in (MANIFEST, ARCHIVE, *files) and child.is_file():
                _link_or_copy(child, staging / child.name)
        checksums = dict(info.get("checksums") or {})
        for name, text in files.items():
            if name not in SEALED_EXTRAS:
                raise ValueError(f"{name} is not a file a model package holds")
            (staging / name).write_text(text, encoding="utf-8")
            checksums[name] = file_sha256(staging / name)
        recorded = {**info, "checksums": checksums}
        (staging / MANIFEST).write_text(json.dumps(recorded, indent=1, default=str))

    return _publish(src, write, archive=(src / ARCHIVE).exists() if archive is None else archive)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows (the payload may be large), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def verify_package(folder: str | Path) -> dict[str, Any]:
    """The manifest of the package at ``folder`` once every file its ``checksums`` name
    matches (the payload and the card); a :class:`ModelPackageError` names the first that
    does not."""
    src = Path(folder)
    if not (src / MANIFEST).exists():
        raise JobNotFoundError(f"No model package at {src} (no {MANIFEST})")
    info = _read_manifest(src / MANIFEST, src)
    _verify(src, info, src, warn=False)
    for name, expected in (info.get("checksums") or {}).items():
        if name == PIPELINE:
            continue
        if not (src / name).is_file() or file_sha256(src / name) != expected:
            raise ModelPackageError(
                f"Model package {src} is corrupted: {name} is missing or was modified after "
                "the package was written"
            )
    return info


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
                for name in SEALED_EXTRAS:
                    if (staging / name).exists():
                        tar.add(staging / name, arcname=name)
        _sync_folder(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Flush the staged files and the folder to disk before the rename publishes them, so a
    machine crash cannot leave a published package whose files are empty."""
    for child in folder.iterdir():
        _fsync(child)
    _fsync(folder)


def _read_manifest(manifest: Path, label: Path) -> dict[str, Any]:
    try:
        info = json.loads(manifest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelPackageError(f"Model package {label} is corrupted: {MANIFEST}: {exc}") from exc
    if not isinstance(info, dict):
        raise ModelPackageError(
            f"Model package {label} is corrupted: {MANIFEST} is not a JSON object"
        )
    return info


def read_package(
    location: str | Path,
    *,
    strict: bool = False,
    accept: Callable[[Path, dict[str, Any]], None] | None = None,
    keyring: Keyring | None = None,
) -> tuple[dict[str, Any], Any]:
    """The manifest and the unpickled payload of a package folder or ``model.tar.gz``.

    Library versions that differ from those recorded are a :class:`ModelVersionWarning` naming
    each library, or a :class:`ModelPackageError` with ``strict=True``. ``accept(path, info)``
    may refuse the package (by raising) before anything is unpickled. The payload is unpickled
    only if its SHA-256 matches the manifest's (a mismatch is a :class:`ModelPackageError`); a
    package without a checksum is an :class:`UnverifiedPackageWarning`. An encrypted payload is
    decrypted with ``keyring`` (by default the one the service handed this process, see
    :meth:`Keyring.from_environment`).
    """
    path = Path(location)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with tarfile.open(path, "r:gz") as tar:
                    tar.extractall(tmp, filter="data")
            # A truncated gzip stream is an EOFError, damaged compressed bytes a zlib.error.
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                raise ModelPackageError(f"{path} is not a readable model archive: {exc}") from exc
            if not (Path(tmp) / MANIFEST).exists():
                raise ModelPackageError(f"{path} is not a model package: it holds no {MANIFEST}")
            return _read_folder(Path(tmp), path, strict=strict, accept=accept, keyring=keyring)
    if not (path / MANIFEST).exists():
        raise JobNotFoundError(f"No model package at {path} (no {MANIFEST})")
    return _read_folder(path, path, strict=strict, accept=accept, keyring=keyring)


def _read_folder(
    folder: Path,
    label: Path,
    *,
    strict: bool,
    accept: Callable[[Path, dict[str, Any]], None] | None,
    keyring: Keyring | None,
) -> tuple[dict[str, Any], Any]:
    """Read the package in ``folder``; messages name ``label`` (the archive it came from)."""
    info = _read_manifest(folder / MANIFEST, label)
    if accept is not None:
        accept(label, info)
    differences = compare_versions(info.get("versions", {}))
    if differences:
        message = "Model package was written with other library versions: " + "; ".join(differences)
        if strict:
            raise ModelPackageError(message)
        warnings.warn(message, ModelVersionWarning, stacklevel=4)
    _verify(folder, info, label)
    source: Any = folder / PIPELINE
    if is_encrypted(source):
        source = decrypt_payload(source, keyring or Keyring.from_environment(), label)
    try:
        payload = load_payload(source, info)
    except Exception as exc:
        hint = f" (version differences: {'; '.join(differences)})" if differences else ""
        raise ModelPackageError(f"Model package {label} cannot be loaded: {exc}{hint}") from exc
    return info, payload


def load_payload(source: Path | io.BytesIO, info: dict[str, Any]) -> Any:
    """Unpickle a payload (a path, or decrypted bytes) as its manifest ``info`` says it was
    written."""
    if info.get("serializer") != SERIALIZER:
        return joblib.load(source)  # written before the serializer was recorded
    if isinstance(source, io.BytesIO):
        return pickle.load(source)
    with open(source, "rb") as handle:
        return pickle.load(handle)
