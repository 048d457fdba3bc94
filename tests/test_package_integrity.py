"""A damaged model package is refused with a clear error before anything is unpickled."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlpilot.errors import ModelPackageError
from mlpilot.package import UnverifiedPackageWarning
from mlpilot.package._files import (
    ARCHIVE,
    MANIFEST,
    PIPELINE,
    copy_package,
    file_sha256,
    manifest,
    publish,
    read_package,
)

PAYLOAD = {"weights": np.arange(20_000, dtype=np.float64), "name": "model"}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    info = manifest("Regression", {"CandidateName": "c1"})
    return publish(tmp_path / "model", info, PAYLOAD, archive=True)


def _info(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / MANIFEST).read_text()))


def test_the_manifest_records_the_payload_checksum(package: Path) -> None:
    recorded = _info(package)["checksums"][PIPELINE]
    assert recorded == file_sha256(package / PIPELINE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, payload = read_package(package)
        assert np.array_equal(payload["weights"], PAYLOAD["weights"])
        read_package(package / ARCHIVE)  # the archive carries the same manifest


def test_the_payload_is_a_plain_pickle_and_a_joblib_payload_of_before_still_loads(
    package: Path,
) -> None:
    import pickle

    import joblib

    assert _info(package)["serializer"] == "pickle"
    with (package / PIPELINE).open("rb") as handle:
        assert pickle.load(handle)["name"] == "model"
    # A package written before the serializer was recorded: joblib's payload, no field.
    info = _info(package)
    del info["serializer"]
    joblib.dump(PAYLOAD, package / PIPELINE)
    info["checksums"][PIPELINE] = file_sha256(package / PIPELINE)
    (package / MANIFEST).write_text(json.dumps(info))
    _, payload = read_package(package)
    assert np.array_equal(payload["weights"], PAYLOAD["weights"])


def test_flipped_bytes_in_the_payload_are_refused(package: Path) -> None:
    payload = package / PIPELINE
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the array: unpickling alone would not notice
    payload.write_bytes(bytes(data))
    with pytest.raises(ModelPackageError, match=r"package .*model is corrupted: checksum of pipe"):
        read_package(package)


def test_a_truncated_payload_is_refused_not_unpickled(package: Path) -> None:
    payload = package / PIPELINE
    payload.write_bytes(payload.read_bytes()[:100])
    with pytest.raises(ModelPackageError, match="is corrupted: checksum") as refused:
        read_package(package)
    assert refused.value.__cause__ is None  # refused before joblib saw it


def test_a_truncated_archive_is_a_clear_error(package: Path, tmp_path: Path) -> None:
    archive = package / ARCHIVE
    # Cuts inside the members (a cut in the tar's zero padding at the end leaves both members
    # whole, and the checksum then shows the payload intact).
    for size in (10, archive.stat().st_size // 2, archive.stat().st_size * 3 // 4):
        cut = tmp_path / f"cut-{size}.tar.gz"
        cut.write_bytes(archive.read_bytes()[:size])
        with pytest.raises(ModelPackageError, match=f"{cut.name}"):
            read_package(cut)


def test_an_archive_whose_payload_was_altered_is_refused(package: Path, tmp_path: Path) -> None:
    # A well-formed archive whose payload differs from the one its manifest describes.
    altered = tmp_path / "altered.tar.gz"
    with tarfile.open(altered, "w:gz") as tar:
        tar.add(package / MANIFEST, arcname=MANIFEST)
        data = (package / PIPELINE).read_bytes()[:-1] + b"\x00"
        member = tarfile.TarInfo(PIPELINE)
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    with pytest.raises(ModelPackageError, match=r"altered\.tar\.gz is corrupted: checksum"):
        read_package(altered)


def test_missing_or_damaged_manifest(package: Path, tmp_path: Path) -> None:
    no_manifest = tmp_path / "no-manifest.tar.gz"
    with tarfile.open(no_manifest, "w:gz") as tar:
        tar.add(package / PIPELINE, arcname=PIPELINE)
    with pytest.raises(ModelPackageError, match=r"no-manifest\.tar\.gz is not a model package"):
        read_package(no_manifest)
    (package / MANIFEST).write_text('{"format_version": 1, "probl')
    with pytest.raises(ModelPackageError, match=r"is corrupted: mlpilot-model\.json"):
        read_package(package)
    (package / MANIFEST).write_text("[1, 2]")
    with pytest.raises(ModelPackageError, match="not a JSON object"):
        read_package(package)
    (package / MANIFEST).write_bytes(gzip.compress(b"binary"))
    with pytest.raises(ModelPackageError, match="is corrupted"):
        read_package(package)


def test_a_package_without_checksum_loads_with_a_warning(package: Path) -> None:
    info = _info(package)
    del info["checksums"]
    (package / MANIFEST).write_text(json.dumps(info))
    with pytest.warns(UnverifiedPackageWarning, match="records no checksum"):
        _, payload = read_package(package)
    assert payload["name"] == "model"


def test_copying_a_damaged_package_is_refused(package: Path, tmp_path: Path) -> None:
    (package / PIPELINE).write_bytes(b"\x80\x04garbage")
    with pytest.raises(ModelPackageError, match="is corrupted"):
        copy_package(package, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
