"""SigV4 verification when access keys are configured, and ``mlpilot jobs`` over the service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from helpers_data import TELCO
from helpers_service import ServiceProcess, automl_request, client_env, wait_for
from mlpilot.cli.main import app
from mlpilot.service._auth import verify_signature
from mlpilot.service._errors import ServiceError

# Left out of `make test-fast`: the service in a subprocess.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    server = ServiceProcess(
        tmp_path_factory.mktemp("locked") / "data",
        extra=["--access-key", "AKIDMLPILOT:s3cr3t-key", "--access-key", "OTHER:other-secret"],
    ).start()
    yield server
    server.stop()


def test_right_secret_is_accepted(locked: ServiceProcess) -> None:
    for key, secret in (("AKIDMLPILOT", "s3cr3t-key"), ("OTHER", "other-secret")):
        sm = locked.boto(key=key, secret=secret)
        assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == []


def test_wrong_secret_is_invalid_signature(locked: ServiceProcess) -> None:
    sm = locked.boto(key="AKIDMLPILOT", secret="wrong")
    with pytest.raises(ClientError) as caught:
        sm.list_auto_ml_jobs()
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_unrecognized_client(locked: ServiceProcess) -> None:
    with pytest.raises(ClientError) as caught:
        locked.boto(key="NOBODY", secret="s3cr3t-key").list_auto_ml_jobs()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_unsigned_request_is_refused(locked: ServiceProcess) -> None:
    response = locked.raw("ListAutoMLJobs", {})
    assert response.status_code == 403
    assert response.json()["__type"] == "MissingAuthenticationTokenException"
    runtime = httpx.post(f"{locked.url}/endpoints/x/invocations", content=b"1,2")
    assert runtime.status_code == 403
    assert runtime.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_tampered_body_fails_verification() -> None:
    """Sign with botocore, then change one byte of the body."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b'{"MaxResults": 5}'
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:9999/",
        data=body,
        headers={"X-Amz-Target": "SageMaker.ListAutoMLJobs", "Host": "127.0.0.1:9999"},
    )
    SigV4Auth(Credentials("K", "S"), "sagemaker", "eu-west-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    keys = {"K": "S"}
    assert (
        verify_signature(keys, method="POST", raw_path="/", query="", headers=headers, body=body)
        == "K"
    )
    with pytest.raises(ServiceError) as caught:
        verify_signature(
            keys, method="POST", raw_path="/", query="", headers=headers, body=body + b" "
        )
    assert caught.value.code == "InvalidSignatureException"
    assert verify_signature({}, method="POST", raw_path="/", query="", headers={}, body=b"") is None


# -- mlpilot jobs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    server = ServiceProcess(tmp_path_factory.mktemp("open") / "data").start()
    yield server
    server.stop()


def _mlpilot(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mlpilot.cli.main", *args],
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=120,
    )


def _mlpilot_here(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in this process (Typer's runner): the same code, without a Python start-up
    per call; its environment is the one ``_mlpilot`` gives a subprocess."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("AWS_")}
    env.update(client_env())
    result = CliRunner().invoke(app, list(args), env=env)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def test_jobs_commands_remote_and_local(open_service: ServiceProcess, tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    table = pd.read_csv(TELCO, dtype=str).head(300)
    table.to_csv(data / "train.csv", index=False)
    sm = open_service.boto()
    sm.create_auto_ml_job_v2(
        **automl_request(
            "cli-job",
            str(data),
            str(tmp_path / "out"),
            max_candidates=2,
            algorithms=("linear-learner",),
        )
    )
    record = wait_for(sm, "cli-job", ("Completed", "Failed", "Stopped"))
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    best = record["BestCandidate"]["CandidateName"]
    url = ["--endpoint-url", open_service.url]
    local = ["--data-dir", str(open_service.data_dir)]
    for where in (url, local):
        listed = _mlpilot_here("jobs", "list", *where, "--format", "json")
        assert listed.returncode == 0, listed.stderr
        assert [j["AutoMLJobName"] for j in json.loads(listed.stdout)] == ["cli-job"]
        described = _mlpilot_here("jobs", "describe", "cli-job", *where)
        assert json.loads(described.stdout)["BestCandidate"]["CandidateName"] == best
        table_out = _mlpilot_here("jobs", "candidates", "cli-job", *where)
        assert table_out.returncode == 0 and best in table_out.stdout.splitlines()[1]
        top = json.loads(
            _mlpilot_here(
                "jobs", "candidates", "cli-job", *where, "--top", "1", "--format", "json"
            ).stdout
        )
        assert [c["CandidateName"] for c in top] == [best]
    missing = _mlpilot_here("jobs", "describe", "nope", *url)
    assert missing.returncode == 2
    assert "ResourceNotFound" in missing.stderr and "Traceback" not in missing.stderr
    ended = _mlpilot_here("jobs", "stop", "cli-job", *local)
    assert ended.returncode == 2 and "already ended" in ended.stderr
    nowhere = _mlpilot_here("jobs", "list", "--data-dir", str(tmp_path / "empty"))
    assert nowhere.returncode == 2 and "No mlpilot service data" in nowhere.stderr
    down = _mlpilot("jobs", "list", "--endpoint-url", "http://127.0.0.1:9")
    assert down.returncode == 2 and "Cannot reach" in down.stderr
