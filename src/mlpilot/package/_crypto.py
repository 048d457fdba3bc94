"""Encryption of a package's payload at rest (``OutputDataConfig.KmsKeyId``).

There is no KMS here: the service is given 256-bit keys under KMS-style names (a key id, key
ARN or ``alias/...``) and a job that names one has its payload written with AES-256-GCM under
that key. The encrypted ``pipeline.joblib`` is::

    MAGIC (8 bytes) | name length (2 bytes, big-endian) | key name (UTF-8) | nonce (12 bytes)
    | ciphertext | GCM tag (16 bytes)

The header is authenticated along with the ciphertext, so neither the name nor the nonce can be
swapped without the tag failing. The manifest's checksum is of these bytes (the file as it lies
on disk), so a package can be verified and copied without the key; the tag then vouches for
the plaintext when it is decrypted.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mlpilot.errors import ModelPackageError

__all__ = [
    "KEY_FILES_VARIABLE",
    "MAGIC",
    "EncryptingWriter",
    "Keyring",
    "check_key_name",
    "decrypt_file",
    "decrypt_payload",
    "encrypt_payload",
    "is_encrypted",
    "payload_key_name",
    "read_key_file",
]

MAGIC = b"MLPKMS1\0"
#: JSON object of key name → key file that processes started by the service read their keyring
#: from (the files' paths, never the keys themselves).
KEY_FILES_VARIABLE = "MLPILOT_KMS_KEY_FILES"
_NONCE = 12
_TAG = 16
_CHUNK = 1 << 20
_KEY_BYTES = 32
# The forms SageMaker takes for KmsKeyId: a key id (a UUID, or mrk-… for multi-Region keys),
# an alias, or the ARN of either.
_KEY_NAME = re.compile(
    r"^(?:(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:)?(?:key/)?(?:mrk-[0-9a-f]{32}|"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:)?alias/[A-Za-z0-9/_-]{1,250})$"
)


def check_key_name(name: str) -> str:
    """``name`` if it is a KMS key id, key ARN, alias name or alias ARN, else a ValueError."""
    if not _KEY_NAME.match(name) or name.startswith(("alias/aws/", "key/")):
        raise ValueError(
            f"{name!r} is not a KMS key name: give a key id (1234abcd-12ab-34cd-56ef-"
            "1234567890ab), a key ARN, alias/NAME or an alias ARN"
        )
    return name


def read_key_file(path: str | Path) -> bytes:
    """The 256-bit key in ``path``: 32 raw bytes, or 64 hexadecimal digits (a trailing newline
    allowed). Messages never show the file's content."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    if len(data) == _KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * _KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise ValueError(
        f"key file {path} holds {len(data)} bytes: a 256-bit key is 32 raw bytes or 64 hex "
        'digits (make one with: python -c "import os;print(os.urandom(32).hex())")'
    )


class Keyring:
    """Keys by KMS-style name. Its repr names the keys, never their bytes."""

    def __init__(self, keys: Mapping[str, bytes] | None = None) -> None:
        self._keys: dict[str, bytes] = {}
        for name, key in (keys or {}).items():
            if len(key) != _KEY_BYTES:
                raise ValueError(f"key {name!r} is {8 * len(key)} bits; AES-256 needs 256")
            self._keys[check_key_name(name)] = bytes(key)

    @classmethod
    def from_files(cls, files: Mapping[str, str | Path]) -> Keyring:
        # Names first: a bad name is reported before any file is read.
        return cls({check_key_name(name): read_key_file(path) for name, path in files.items()})

    @classmethod
    def from_environment(cls) -> Keyring:
        """The keyring a process started by the service was handed (empty when none)."""
        text = os.environ.get(KEY_FILES_VARIABLE)
        if not text:
            return cls()
        try:
            files = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelPackageError(f"{KEY_FILES_VARIABLE} is not a JSON object: {exc}") from None
        if not isinstance(files, dict):
            raise ModelPackageError(f"{KEY_FILES_VARIABLE} is not a JSON object")
        try:
            return cls.from_files(files)
        except ValueError as exc:
            raise ModelPackageError(f"{KEY_FILES_VARIABLE}: {exc}") from None

    def get(self, name: str) -> bytes | None:
        return self._keys.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._keys

    def names(self) -> list[str]:
        return sorted(self._keys)

    def __repr__(self) -> str:
        return f"Keyring({self.names()})"


def _header(name: str, nonce: bytes) -> bytes:
    encoded = name.encode()
    return MAGIC + struct.pack(">H", len(encoded)) + encoded + nonce


class EncryptingWriter:
    """A write-only stream that passes what is written to ``out`` encrypted under ``key``
    (named ``name``), in the payload format above: the header at once, the tag on
    :meth:`finish`. The plaintext is never held whole nor written anywhere."""

    def __init__(self, out: IO[bytes], name: str, key: bytes) -> None:
        nonce = os.urandom(_NONCE)
        header = _header(name, nonce)
        self._out = out
        self._encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        self._encryptor.authenticate_additional_data(header)
        out.write(header)

    def write(self, data: bytes) -> int:
        self._out.write(self._encryptor.update(bytes(data)))
        return len(data)

    def finish(self) -> None:
        self._out.write(self._encryptor.finalize())
        self._out.write(self._encryptor.tag)


def encrypt_payload(source: Path, target: Path, name: str, key: bytes) -> None:
    """Write ``source``'s bytes to ``target`` encrypted under ``key`` (named ``name``),
    streamed in chunks so a large payload is never wholly in memory."""
    with source.open("rb") as plain, target.open("wb") as out:
        writer = EncryptingWriter(out, name, key)
        for chunk in iter(lambda: plain.read(_CHUNK), b""):
            writer.write(chunk)
        writer.finish()


def is_encrypted(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(len(MAGIC)) == MAGIC


def _read_header(stream: IO[bytes], subject: str) -> tuple[str, bytes, bytes]:
    """(key name, nonce, the header's bytes) of an encrypted payload."""
    damaged = f"{subject} has a damaged encryption header"
    head = stream.read(len(MAGIC) + 2)
    if len(head) < len(MAGIC) + 2 or not head.startswith(MAGIC):
        raise ModelPackageError(damaged)
    (length,) = struct.unpack(">H", head[len(MAGIC) :])
    encoded = stream.read(length)
    nonce = stream.read(_NONCE)
    if len(encoded) != length or len(nonce) != _NONCE:
        raise ModelPackageError(damaged)
    try:
        name = encoded.decode()
    except UnicodeDecodeError:
        raise ModelPackageError(damaged) from None
    return name, nonce, head + encoded + nonce


def payload_key_name(path: Path) -> str:
    """The name of the key an encrypted payload was written under."""
    with path.open("rb") as stream:
        return _read_header(stream, f"Model package {path.parent}")[0]


_LACKING = "which this service does not have (give it with mlpilot serve --kms-key NAME=KEYFILE)"


def _decrypt(
    path: Path, keyring: Keyring, subject: str, plain: IO[bytes], lacking: str = _LACKING
) -> str:
    """Write the plaintext of the encrypted file ``path`` to ``plain``; the key's name. The
    caller releases ``plain`` only when this returns: a wrong key or a changed byte fails the
    GCM tag at the end, a :class:`ModelPackageError`."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        name, nonce, header = _read_header(stream, subject)
        key = keyring.get(name)
        if key is None:
            raise ModelPackageError(f"{subject} is encrypted with KMS key {name}, {lacking}")
        remaining = size - len(header) - _TAG
        if remaining < 0:
            raise ModelPackageError(f"{subject} is truncated: no GCM tag")
        stream.seek(size - _TAG)
        tag = stream.read(_TAG)
        stream.seek(len(header))
        decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(header)
        while remaining > 0:
            chunk = stream.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            plain.write(decryptor.update(chunk))
        try:
            plain.write(decryptor.finalize())
        except InvalidTag:
            raise ModelPackageError(
                f"{subject} fails authentication under KMS key {name}: the "
                "payload was modified, or the key is not the one it was encrypted with"
            ) from None
    return name


def decrypt_payload(path: Path, keyring: Keyring, label: object) -> io.BytesIO:
    """The plaintext of the encrypted payload at ``path``, released only once the GCM tag has
    been checked: a wrong key or a changed byte is a :class:`ModelPackageError`."""
    plain = io.BytesIO()
    _decrypt(path, keyring, f"Model package {label}", plain)
    plain.seek(0)
    return plain


def decrypt_file(source: Path, target: Path, keyring: Keyring) -> str:
    """Decrypt the file ``source`` (a payload or a transform output written under a
    ``KmsKeyId``) to ``target``; the key's name. ``target`` appears only once the tag has
    been checked (written beside it, then renamed), so a failure leaves nothing behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with open(descriptor, "wb") as plain:
            name = _decrypt(
                source, keyring, str(source), plain, "which was not given (--kms-key NAME=KEYFILE)"
            )
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return name
