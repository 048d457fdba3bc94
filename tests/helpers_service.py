"""A real ``mlpilot serve`` process on 127.0.0.1 for the service tests, and clients for it
(boto3, raw HTTP, the AWS CLI)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ROLE = "arn:aws:iam::000000000000:role/mlpilot-test"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_env(s3_endpoint: str | None = None) -> dict[str, str]:
    """Environment for processes talking to the service (and to S3, when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CREDENTIALS)
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    if s3_endpoint:
        env["AWS_ENDPOINT_URL_S3"] = s3_endpoint
    return env


class ServiceProcess:
    """``mlpilot serve`` in a subprocess with its own data folder."""

    def __init__(
        self, data_dir: Path, *, s3_endpoint: str | None = None, extra: list[str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.s3_endpoint = s3_endpoint
        self.extra = extra or []
        #: Extra environment for the next start (e.g. MLPILOT_CRASH_AT).
        self.env: dict[str, str] = {}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        self.port = free_port()
        log = open(self.data_dir.parent / f"serve-{self.port}.log", "ab")  # noqa: SIM115
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlpilot.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--job-parallelism",
                "1",
                # The tests run jobs side by side, whatever the machine's default limit.
                "--max-concurrent-jobs",
                "4",
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**client_env(self.s3_endpoint), **self.env},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlpilot serve exited: {self.log()}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"mlpilot serve did not start: {self.log()}")

    def log(self) -> str:
        path = self.data_dir.parent / f"serve-{self.port}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL
        self.process.wait()

    def boto(self, service: str = "sagemaker", **kwargs: Any) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=kwargs.pop("key", "testing"),
            aws_secret_access_key=kwargs.pop("secret", "testing"),
            **kwargs,
        )

    def raw(self, operation: str, body: Any, *, target: str | None = None) -> httpx.Response:
        """POST a control-plane call without any client-side checks."""
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return httpx.post(
            f"{self.url}/",
            content=data,
            headers={
                "X-Amz-Target": target or f"SageMaker.{operation}",
                "Content-Type": "application/x-amz-json-1.1",
            },
            timeout=30,
        )


class Aws:
    """The AWS CLI (v1, from PyPI) as the recipe runs it, in a folder of its own."""

    def __init__(self, cwd: Path, endpoint: str, s3_endpoint: str | None) -> None:
        self.cwd = cwd
        self.endpoint = endpoint
        self.env = client_env(s3_endpoint)

    def __call__(self, *args: str, endpoint: bool = True) -> str:
        extra = ["--endpoint-url", self.endpoint] if endpoint else []
        result = subprocess.run(
            [sys.executable, "-m", "awscli", *args, *extra],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
        )
        assert result.returncode == 0, f"aws {' '.join(args)}: {result.stderr}"
        return result.stdout.strip()

    def fails(self, *args: str) -> str:
        """A command that must fail: what the AWS CLI printed on stderr."""
        result = subprocess.run(
            [sys.executable, "-m", "awscli", *args, "--endpoint-url", self.endpoint],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
        )
        assert result.returncode != 0, f"aws {' '.join(args)} succeeded: {result.stdout}"
        return result.stderr.strip()

    def monitor(self, name: str, timeout: float = 300) -> str:
        """The recipe's monitor_autopilot_job loop (without its 60 s sleep)."""
        return self.poll("describe-auto-ml-job-v2", "--auto-ml-job-name", name, timeout=timeout)

    def poll(self, command: str, flag: str, name: str, *, timeout: float = 300) -> str:
        """Wait for ``aws sagemaker COMMAND FLAG NAME``'s status to end; return it.

        The waiting is done with plain HTTP calls, since each AWS CLI call costs a second of
        CPU that the job and the other test worker need; the status returned comes from the
        CLI."""
        operation = "".join(part.title() for part in command.split("-")).replace("Ml", "ML")
        field = "".join(part.title() for part in flag.strip("-").split("-")).replace("Ml", "ML")
        status_key = operation.removeprefix("Describe").removesuffix("V2") + "Status"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = httpx.post(
                f"{self.endpoint}/",
                content=json.dumps({field: name}),
                headers={
                    "X-Amz-Target": f"SageMaker.{operation}",
                    "Content-Type": "application/x-amz-json-1.1",
                },
                timeout=30,
            )
            assert reply.status_code == 200, reply.text
            if reply.json()[status_key] in ("Completed", "Failed", "Stopped"):
                query = ["--query", status_key, "--output", "text"]
                return self("sagemaker", command, flag, name, *query)
            time.sleep(1)
        raise AssertionError(f"{name} did not finish in {timeout} s")


def automl_request(
    name: str,
    train_uri: str,
    output_uri: str,
    *,
    target: str = "Churn",
    max_candidates: int = 3,
    runtime: int | None = 60,
    algorithms: tuple[str, ...] = ("linear-learner", "lightgbm"),
    reports: bool = False,
    **tabular: Any,
) -> dict[str, Any]:
    """A CreateAutoMLJobV2 request for a small job; without ``reports``, the job skips the
    exploration notebook's run and the SHAP and model-quality reports (tests/test_reports.py
    and test_service.py's shared job cover them), which cost the suite minutes."""
    criteria: dict[str, Any] = {"MaxCandidates": max_candidates}
    if runtime:
        criteria["MaxAutoMLJobRuntimeInSeconds"] = runtime
    config: dict[str, Any] = {
        "TargetAttributeName": target,
        "CompletionCriteria": criteria,
        "Mode": "HYPERPARAMETER_TUNING",
        "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": list(algorithms)}]},
        **tabular,
    }
    return {
        "AutoMLJobName": name,
        "AutoMLJobInputDataConfig": [
            {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train_uri}}}
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "AutoMLProblemTypeConfig": {"TabularJobConfig": config},
        "RoleArn": ROLE,
        "Tags": [{"Key": "mlpilot:GenerateReports", "Value": str(reports).lower()}],
    }


def wait_for(
    client: Any, name: str, statuses: tuple[str, ...], timeout: float = 180.0, *, v1: bool = False
) -> dict[str, Any]:
    describe = client.describe_auto_ml_job if v1 else client.describe_auto_ml_job_v2
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = describe(AutoMLJobName=name)
        if record["AutoMLJobStatus"] in statuses:
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still {record['AutoMLJobStatus']} after {timeout} s")
        time.sleep(0.5)
