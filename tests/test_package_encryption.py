"""A package's payload encrypted at rest (KmsKeyId): round trip, the wrong key, tampering."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlpilot.errors import ModelPackageError
from mlpilot.package import KEY_FILES_VARIABLE, Keyring, check_key_name, read_key_file
from mlpilot.package._crypto import MAGIC, payload_key_name
from mlpilot.package._files import (
    ARCHIVE,
    MANIFEST,
    PIPELINE,
    copy_package,
    encrypt_package,
    file_sha256,
    manifest,
    publish,
    read_package,
)

PAYLOAD = {"weights": np.arange(5_000, dtype=np.float64), "name": "secret-model"}
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY = bytes(range(32))


@pytest.fixture
def keyring() -> Keyring:
    return Keyring({KEY_ID: KEY, "alias/other": bytes(32)})


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    info = manifest("Regression", {"CandidateName": "c1"})
    return publish(tmp_path / "model", info, PAYLOAD, archive=True)


@pytest.fixture
def encrypted(plain: Path, keyring: Keyring) -> Path:
    before = (plain / PIPELINE).read_bytes()
    (plain / "extra.txt").write_text("kept")
    assert encrypt_package(plain, KEY_ID, keyring, archive=True)
    assert (plain / PIPELINE).read_bytes() != before
    return plain


def test_round_trip(encrypted: Path, keyring: Keyring) -> None:
    data = (encrypted / PIPELINE).read_bytes()
    assert data.startswith(MAGIC)
    assert b"secret-model" not in data
    assert PAYLOAD["weights"].tobytes()[8:4000] not in data  # the array is not there in clear
    info = json.loads((encrypted / MANIFEST).read_text())
    assert info["encryption"] == {"algorithm": "AES-256-GCM", "kms_key_id": KEY_ID}
    # The checksum is of the bytes on disk, so the package verifies without the key.
    assert info["checksums"][PIPELINE] == file_sha256(encrypted / PIPELINE)
    assert (encrypted / "extra.txt").read_text() == "kept"
    for location in (encrypted, encrypted / ARCHIVE):
        _, payload = read_package(location, keyring=keyring)
        assert np.array_equal(payload["weights"], PAYLOAD["weights"])
        assert payload["name"] == "secret-model"
    # Encrypting twice does nothing.
    assert not encrypt_package(encrypted, "alias/other", keyring, archive=True)
    assert payload_key_name(encrypted / PIPELINE) == KEY_ID


def test_without_the_key_the_error_names_it(encrypted: Path) -> None:
    with pytest.raises(ModelPackageError, match=f"encrypted with KMS key {KEY_ID}, which this"):
        read_package(encrypted, keyring=Keyring({"alias/other": KEY}))


def test_a_wrong_key_under_the_same_name_fails_authentication(encrypted: Path) -> None:
    with pytest.raises(ModelPackageError, match=f"fails authentication under KMS key {KEY_ID}"):
        read_package(encrypted, keyring=Keyring({KEY_ID: bytes(32)}))


def _rewrite(folder: Path, data: bytes) -> None:
    """Change the payload and re-record its checksum, as a tamperer would."""
    (folder / PIPELINE).write_bytes(data)
    info = json.loads((folder / MANIFEST).read_text())
    info["checksums"][PIPELINE] = file_sha256(folder / PIPELINE)
    (folder / MANIFEST).write_text(json.dumps(info))


def test_tampered_ciphertext_fails_the_tag(encrypted: Path, keyring: Keyring) -> None:
    data = bytearray((encrypted / PIPELINE).read_bytes())
    data[len(data) // 2] ^= 0x01
    _rewrite(encrypted, bytes(data))
    with pytest.raises(ModelPackageError, match=r"fails authentication.*payload was modified"):
        read_package(encrypted, keyring=keyring)


def test_a_swapped_key_name_in_the_header_fails_the_tag(encrypted: Path) -> None:
    # Same length name, other key: the header is authenticated, so the tag catches it.
    data = (encrypted / PIPELINE).read_bytes()
    other = "abcd1234-12ab-34cd-56ef-1234567890ab"
    _rewrite(encrypted, data.replace(KEY_ID.encode(), other.encode(), 1))
    with pytest.raises(ModelPackageError, match=f"fails authentication under KMS key {other}"):
        read_package(encrypted, keyring=Keyring({other: KEY}))


def test_a_checksum_mismatch_is_still_caught_first(encrypted: Path, keyring: Keyring) -> None:
    payload = encrypted / PIPELINE
    payload.write_bytes(payload.read_bytes()[:-5])
    with pytest.raises(ModelPackageError, match="is corrupted: checksum"):
        read_package(encrypted, keyring=keyring)


def test_an_encrypted_package_copies_without_the_key(encrypted: Path, tmp_path: Path) -> None:
    copy = copy_package(encrypted, tmp_path / "copy")
    assert (copy / PIPELINE).read_bytes() == (encrypted / PIPELINE).read_bytes()


def test_the_default_keyring_comes_from_the_environment(
    encrypted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key.hex"
    key_file.write_text(KEY.hex() + "\n")
    monkeypatch.setenv(KEY_FILES_VARIABLE, json.dumps({KEY_ID: str(key_file)}))
    _, payload = read_package(encrypted)
    assert payload["name"] == "secret-model"
    monkeypatch.delenv(KEY_FILES_VARIABLE)
    with pytest.raises(ModelPackageError, match="which this service does not have"):
        read_package(encrypted)


def test_key_files_and_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.write_bytes(KEY)
    assert read_key_file(raw) == KEY
    short = tmp_path / "short"
    short.write_text("abcd")
    with pytest.raises(ValueError, match="holds 4 bytes: a 256-bit key is 32 raw bytes or 64"):
        read_key_file(short)
    for name in (
        KEY_ID,
        "alias/my-key",
        f"arn:aws:kms:us-east-1:111122223333:key/{KEY_ID}",
        "arn:aws:kms:us-east-1:111122223333:alias/my-key",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
    ):
        assert check_key_name(name) == name
    for name in ("my-key", "alias/", "arn:aws:kms:us-east-1:1:key/x", "alias/aws/s3"):
        with pytest.raises(ValueError, match="is not a KMS key name"):
            check_key_name(name)
    assert repr(Keyring({KEY_ID: KEY})) == f"Keyring(['{KEY_ID}'])"
