"""``OutputDataConfig.KmsKeyId`` through ``mlpilot serve --kms-key``: a job naming a configured
key has its model packages encrypted at rest (AES-256-GCM), and the service decrypts them for
endpoints and transforms; a transform's TransformOutput.KmsKeyId encrypts its outputs; a KmsKeyId
naming no configured key is a ValidationException."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from helpers_data import TELCO
from helpers_service import ROLE, ServiceProcess, automl_request, client_env, wait_for
from mlpilot.package import MANIFEST, PIPELINE, Keyring, decrypt_file
from mlpilot.package._crypto import MAGIC
from mlpilot.package._files import read_package

pytestmark = pytest.mark.slow

KEY_ID = "alias/mlpilot-test"
KEY = os.urandom(32)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(TELCO, dtype=str, keep_default_na=False).sample(300, random_state=5)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    root = tmp_path_factory.mktemp("kms")
    (root / "key.hex").write_text(KEY.hex() + "\n")
    server = ServiceProcess(
        root / "data", extra=["--kms-key", f"{KEY_ID}={root / 'key.hex'}"]
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sm(service: ServiceProcess) -> Any:
    return service.boto()


@pytest.fixture(scope="module")
def job(
    sm: Any, table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("in")
    table.to_csv(folder / "train.csv", index=False)
    out = tmp_path_factory.mktemp("out")
    request = automl_request(
        "sealed", str(folder), str(out), max_candidates=2, algorithms=("linear-learner",)
    )
    request["OutputDataConfig"]["KmsKeyId"] = KEY_ID
    sm.create_auto_ml_job_v2(**request)
    record = wait_for(sm, "sealed", ("Completed", "Failed", "Stopped"), timeout=240)
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    return record, out / "sealed"


def test_the_packages_are_encrypted_at_rest(job: tuple[dict[str, Any], Path]) -> None:
    record, root = job
    assert record["OutputDataConfig"]["KmsKeyId"] == KEY_ID
    manifests = sorted(root.rglob(MANIFEST))
    assert manifests, f"no model packages under {root}"
    for manifest in manifests:
        payload = manifest.parent / PIPELINE
        data = payload.read_bytes()
        assert data.startswith(MAGIC), payload
        with pytest.raises((pickle.UnpicklingError, ValueError, EOFError, KeyError)):
            joblib.load(payload)
        info = json.loads(manifest.read_text())
        assert info["encryption"]["kms_key_id"] == KEY_ID
        # With the key, the bytes are a model again.
        _, model = read_package(manifest.parent, keyring=Keyring({KEY_ID: KEY}))
        assert model is not None


def test_endpoint_and_transform_decrypt_the_model(
    sm: Any,
    service: ServiceProcess,
    job: tuple[dict[str, Any], Path],
    table: pd.DataFrame,
    tmp_path: Path,
) -> None:
    record, _ = job
    container = record["BestCandidate"]["InferenceContainers"][0]
    sm.create_model(ModelName="sealed-model", PrimaryContainer=container, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(
        EndpointConfigName="sealed-config",
        ProductionVariants=[
            {
                "VariantName": "main",
                "ModelName": "sealed-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="sealed", EndpointConfigName="sealed-config")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="sealed", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    features = table.drop(columns=["Churn"]).head(5)
    answer = service.boto("sagemaker-runtime").invoke_endpoint(
        EndpointName="sealed",
        ContentType="text/csv",
        Body=features.to_csv(index=False, header=False).encode(),
    )
    labels = answer["Body"].read().decode().split()
    assert len(labels) == 5 and set(labels) <= {"Yes", "No"}

    source = tmp_path / "batch"
    source.mkdir()
    features.to_csv(source / "rows.csv", index=False, header=False)
    sm.create_transform_job(
        TransformJobName="sealed-batch",
        ModelName="sealed-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": str(tmp_path / "out"), "KmsKeyId": KEY_ID},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    deadline = time.monotonic() + 120
    while True:
        described = sm.describe_transform_job(TransformJobName="sealed-batch")
        if described["TransformJobStatus"] not in ("InProgress", "Stopping"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    # The output is encrypted at rest under the same key, and reads back with it.
    output = tmp_path / "out" / "rows.csv.out"
    assert output.read_bytes().startswith(MAGIC)
    assert decrypt_file(output, tmp_path / "rows.csv", Keyring({KEY_ID: KEY})) == KEY_ID
    assert (tmp_path / "rows.csv").read_text().split() == labels


def test_a_key_the_service_lacks_is_refused(sm: Any, tmp_path: Path) -> None:
    unknown = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    request = automl_request("unsealed", str(tmp_path), str(tmp_path / "out"))
    request["OutputDataConfig"]["KmsKeyId"] = unknown
    with pytest.raises(ClientError) as caught:
        sm.create_auto_ml_job_v2(**request)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert unknown in error["Message"] and KEY_ID in error["Message"]
    with pytest.raises(ClientError) as caught:
        sm.describe_auto_ml_job_v2(AutoMLJobName="unsealed")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"


def test_a_transform_naming_a_key_the_service_lacks_is_refused(sm: Any, tmp_path: Path) -> None:
    (tmp_path / "model.tar.gz").write_bytes(b"checked for existence only")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_text("1,2\n")
    sm.create_model(
        ModelName="any-model",
        PrimaryContainer={
            "Image": "mlpilot/tabular-inference:test",
            "ModelDataUrl": str(tmp_path / "model.tar.gz"),
        },
        ExecutionRoleArn=ROLE,
    )
    with pytest.raises(ClientError) as caught:
        sm.create_transform_job(
            TransformJobName="unsealed-batch",
            ModelName="any-model",
            TransformInput={
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(tmp_path / "in")}
                }
            },
            TransformOutput={"S3OutputPath": str(tmp_path / "out"), "KmsKeyId": "alias/other"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "TransformOutput.KmsKeyId 'alias/other'" in error["Message"]
    assert KEY_ID in error["Message"]
    assert not (tmp_path / "out").exists()


def test_bad_kms_key_options_stop_the_start(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"0123456789")
    for option, expected in (
        (f"{KEY_ID}={short}", "holds 10 bytes: a 256-bit key is 32 raw bytes or 64 hex"),
        (f"my-key={short}", "'my-key' is not a KMS key name"),
        (KEY_ID, "--kms-key is given as NAME=KEYFILE"),
    ):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlpilot.cli.main",
                "serve",
                "--kms-key",
                option,
                "--data-dir",
                str(tmp_path / "d"),
            ],
            capture_output=True,
            text=True,
            env=client_env(),
            timeout=60,
        )
        said = " ".join((result.stdout + result.stderr).split())
        assert result.returncode != 0 and expected in said, said
        assert "Traceback" not in said
