"""``KmsKeyId``: the keys given with ``mlpilot serve --kms-key``, the check that a request names
one of them, and the encryption of a finished job's model packages under it.

A job's packages are encrypted by its runner once the engine is done with them (the engine
reads its candidates' payloads while it ensembles and picks the best), before the job is
reported ended or its output uploaded: a Completed job's packages are all encrypted.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Any

from mlpilot.service._config import ServiceConfig
from mlpilot.service._errors import ServiceError, validation

__all__ = [
    "check_kms_key",
    "encrypt_job_packages",
    "encrypt_output",
    "export_keys",
    "job_kms_key",
]


def check_kms_key(config: ServiceConfig, key_id: str | None, member: str) -> None:
    """A ValidationException when ``key_id`` is given and names no key this service has."""
    if key_id is None or key_id in config.kms_keys:
        return
    configured = ", ".join(sorted(config.kms_keys)) or "none"
    raise validation(
        f"{member} {key_id!r} names no key this service has (keys given with "
        f"mlpilot serve --kms-key: {configured})"
    )


def export_keys(config: ServiceConfig) -> None:
    """Hand the key files (their paths, not the keys) to the processes this service starts:
    job runners, transform runners and model servers load encrypted packages with them."""
    from mlpilot.package import KEY_FILES_VARIABLE

    if config.kms_keys:
        files = {name: str(path) for name, path in config.kms_keys.items()}
        os.environ[KEY_FILES_VARIABLE] = json.dumps(files)
    else:
        os.environ.pop(KEY_FILES_VARIABLE, None)


def job_kms_key(row: dict[str, Any]) -> str | None:
    """The ``OutputDataConfig.KmsKeyId`` of a job's row, if it named one."""
    key: str | None = ((row.get("record") or {}).get("OutputDataConfig") or {}).get("KmsKeyId")
    return key


def encrypt_job_packages(local_root: Path, key_id: str) -> int:
    """Encrypt every model package in a job folder under ``key_id``, with the keys this
    process was handed; how many were encrypted (already encrypted ones are left be)."""
    from mlpilot.package import MANIFEST, Keyring, encrypt_package

    keyring = Keyring.from_environment()
    if key_id not in keyring:
        raise ServiceError(
            "ValidationException", f"KmsKeyId {key_id!r} is not among this service's keys"
        )
    count = 0
    for manifest in sorted(local_root.rglob(MANIFEST)):
        if any(part.startswith(".") for part in manifest.relative_to(local_root).parts[:-1]):
            continue  # staging folders and scratch space
        count += encrypt_package(manifest.parent, key_id, keyring, archive=False)
    return count


def encrypt_output(row: dict[str, Any], engine_record: dict[str, Any]) -> None:
    """Encrypt the job's packages under its KmsKeyId, if it named one; a job whose packages
    could not be encrypted is Failed rather than left with them in the clear."""
    key_id = job_kms_key(row)
    local_root = Path(row["local_root"])
    if key_id is None or not local_root.exists():
        return
    try:
        encrypt_job_packages(local_root, key_id)
    except Exception as exc:
        traceback.print_exc()
        engine_record["AutoMLJobStatus"] = "Failed"
        engine_record["AutoMLJobSecondaryStatus"] = "Failed"
        engine_record["FailureReason"] = (
            f"Encrypting the model packages with KMS key {key_id} failed: {exc}"
        )[:1024]
