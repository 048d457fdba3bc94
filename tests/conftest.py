"""Shared pytest fixtures: a local moto S3 server (data set paths: helpers_data.py); the order in
which files start under ``pytest -n 2 --dist loadfile`` (longest first)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import pytest

#: Seconds each of the longest test files took on the project's 2-core machine (one worker's
#: share, under load; only their order matters). Under ``--dist loadfile`` a worker takes
#: whole files, in the collection's order when ``--no-loadscope-reorder`` is given; starting
#: the longest first lets both workers finish together, instead of one running a long file
#: alone at the end.
LONGEST_FILES = {
    "test_job.py": 423,
    "test_cli.py": 398,
    "test_seed_recipe.py": 310,
    "test_ensemble.py": 273,
    "test_forecast_job.py": 268,
    "test_retrain.py": 253,
    "test_reports.py": 248,
    "test_service_faults.py": 176,
    "test_service_load.py": 173,
    "test_service_durability.py": 133,
    "test_retrain_forecast.py": 132,
    "test_resume.py": 126,
    "test_notebooks.py": 122,
    "test_service_endpoints.py": 116,
    "test_endpoint_runtime.py": 115,
    "test_service.py": 114,
    "test_ensemble_notebook.py": 112,
    "test_service_kms.py": 103,
    "test_forecast_aws_cli.py": 101,
    "test_package.py": 96,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (see :data:`LONGEST_FILES`); the rest keep their order."""
    items.sort(key=lambda item: -LONGEST_FILES.get(item.path.name, 0))


_S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    """A moto S3 server on 127.0.0.1 with one bucket; ``put`` uploads an object."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.endpoint = endpoint
        self.bucket = bucket

    @cached_property
    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=_S3_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=_S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def uri(self, key: str = "") -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, body: bytes | str) -> str:
        """Upload ``body`` (str is UTF-8 encoded) to ``key``; return its ``s3://`` URI."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return self.uri(key)

    def clear(self) -> None:
        """Delete every object in the bucket."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A moto S3 server in a subprocess, with bucket ``mlpilot-test``; stopped after the run."""
    pytest.importorskip("moto.server")
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    env = {**os.environ, **_S3_CREDENTIALS}
    # Another process may grab the free port before moto binds it; try a few.
    for _attempt in range(3):
        port = _free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        if _wait_until_listening(process, port, timeout=30):
            break
        process.kill()
        process.wait()
    else:
        pytest.fail(f"moto server did not start; log:\n{log_path.read_text(errors='replace')}")
    server = S3Server(f"http://127.0.0.1:{port}", "mlpilot-test")
    try:
        server.client.create_bucket(Bucket=server.bucket)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The moto server with an empty bucket, and AWS env vars pointing at it for this test."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    # Keep a developer's ~/.aws config out of the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    s3_server.clear()
    return s3_server
