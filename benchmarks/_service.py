"""What the benchmarks share to drive a real ``mlpilot serve``: start it on a free port with a
data folder, boto3 clients for it, an endpoint waited into service, the resident memory of the
service and of the processes under it, and headerless CSV request bodies.

Each benchmark imports it as ``_service`` (with ``benchmarks/`` on ``sys.path``).
"""

from __future__ import annotations

import csv
import io
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

#: The role every benchmark's CreateModel names (the service does not check it).
ROLE = "arn:aws:iam::000000000000:role/bench"
#: The instance type every benchmark's endpoint asks for (one serve-model process each).
INSTANCE_TYPE = "ml.m5.large"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ping(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    """Wait for ``url`` (a ``/ping``) to answer 200; exit when ``process`` ends or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{url} never answered")
        time.sleep(0.1)


class Service:
    """``mlpilot serve`` in a subprocess with its own data folder; ``start`` again after
    ``kill`` or ``stop`` to restart it on the same folder (and a new port)."""

    def __init__(self, data_dir: Path, *extra: str, log: Path | None = None) -> None:
        self.data_dir = data_dir
        self.extra = list(extra)
        #: Where the service's output goes (None: this process's stdout and stderr).
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the service was not started"
        return self.process.pid

    def start(self, timeout: float = 120) -> Service:
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlpilot.cli.main", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), *self.extra]
        if self.log is None:
            self.process = subprocess.Popen(command)
        else:
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_ping(f"{self.url}/ping", self.process, timeout)
        return self

    def stop(self, timeout: float = 60) -> None:
        """Stop as Ctrl-C does (the service stops its instances and job runners first)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL, leaving whatever runs under it to the next start."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Service:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str = "sagemaker") -> Any:
        """A boto3 client of ``service`` (sagemaker, sagemaker-runtime) for this service, with
        dummy credentials."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )


def create_endpoint(
    sm: Any, name: str, model: str, instances: int = 1, **config: Any
) -> dict[str, Any]:
    """An endpoint config and endpoint ``name`` of one variant ``AllTraffic`` serving ``model``
    on ``instances`` instances (``config``: more CreateEndpointConfig members); returns the
    CreateEndpoint reply."""
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": instances,
                "InstanceType": INSTANCE_TYPE,
            }
        ],
        **config,
    )
    reply: dict[str, Any] = sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return reply


def wait_in_service(sm: Any, name: str, seconds: int = 300) -> None:
    """Wait (botocore's own waiter, polling every second) until endpoint ``name`` is InService;
    raises the waiter's error when it fails or time is up."""
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": seconds}
    )


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (0 when it is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss // 1024)
    except psutil.Error:
        return 0


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (empty when it is gone)."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def memory(pid: int) -> dict[str, int]:
    """RSS in KiB of ``pid`` and of all processes under it together."""
    return {"service_kib": rss_kib(pid), "instances_kib": sum(map(rss_kib, descendants(pid)))}


def serve_model_processes(pid: int) -> list[psutil.Process]:
    """The ``serve-model`` processes (endpoint instances) under the service ``pid``."""
    found = []
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            if "serve-model" in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


def csv_rows(data: Path, columns: list[str], limit: int = 200) -> list[bytes]:
    """The first ``limit`` rows of ``data`` (a CSV with a header) as headerless CSV request
    bodies in ``columns``' order, values as written in the file (a missing column is empty)."""
    with data.open(newline="", encoding="utf-8") as handle:
        out = []
        for record in csv.DictReader(handle):
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow([record.get(c, "") for c in columns])
            out.append(buffer.getvalue().encode())
            if len(out) >= limit:
                break
    return out
