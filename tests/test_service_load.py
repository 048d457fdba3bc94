"""Load protection of the service: the AutoML job queue (and the place of a job in it),
request and job-creation throttling, and the deadlines on a request's headers and body (a
client trickling either is cut off)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers_service import ServiceProcess, automl_request, wait_for
from mlpilot.service._limits import BodyDeadline, Throttle, TokenBucket, client_of

TITANIC = Path(__file__).parent / "data" / "titanic.csv"


# -- the pieces, in process ----------------------------------------------------------------------
def test_token_bucket_refills_at_its_rate_up_to_its_capacity() -> None:
    bucket = TokenBucket(rate=2.0, capacity=2.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.5)  # one token back after half a second at 2/s
    assert not bucket.take(0.5)
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]  # capped at 2


def test_client_is_the_access_key_else_the_address() -> None:
    auth = (
        b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/sagemaker/aws4_request, "
        b"SignedHeaders=host, Signature=abc"
    )
    signed = {"headers": [(b"authorization", auth)], "client": ("10.0.0.1", 5)}
    assert client_of(signed) == "key:AKIDEXAMPLE"
    assert client_of({"headers": [], "client": ("10.0.0.1", 5)}) == "addr:10.0.0.1"


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": message["body"]})


def _post(app: Any, key: str, target: str = "SageMaker.ListAutoMLJobs") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            return await client.post(
                "/",
                content=b"{}",
                headers={
                    "X-Amz-Target": target,
                    "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/x/y/z/aws4_request",
                },
            )

    return asyncio.run(go())


def test_throttle_answers_throttling_exception_per_client_and_per_creation() -> None:
    now = [0.0]
    app = Throttle(_ok, requests_per_second=2, creations_per_minute=1, clock=lambda: now[0])
    assert [_post(app, "a").status_code for _ in range(3)] == [200, 200, 400]
    refused = _post(app, "a")
    assert refused.json()["__type"] == "ThrottlingException"
    assert refused.headers["x-amzn-errortype"] == "ThrottlingException"
    assert _post(app, "b").status_code == 200  # another key has its own bucket
    now[0] = 10.0
    create = "SageMaker.CreateAutoMLJobV2"
    assert _post(app, "c", create).status_code == 200
    second = _post(app, "c", create)
    assert second.status_code == 400
    assert "job creation" in second.json()["message"]
    now[0] = 20.0
    assert _post(app, "c", create).status_code == 400  # one a minute
    assert _post(app, "c").status_code == 200  # other operations still pass


def test_body_deadline_answers_408_to_a_trickling_body_and_passes_a_whole_one() -> None:
    app = BodyDeadline(_ok, seconds=0.2)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"x", "more_body": True}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(app(scope, trickle, send))
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["__type"] == "RequestTimeoutException"

    sent.clear()
    parts = iter([b"ab", b"cd"])

    async def whole() -> dict[str, Any]:
        part = next(parts)
        return {"type": "http.request", "body": part, "more_body": part == b"ab"}

    asyncio.run(app(scope, whole, send))
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"abcd"


# -- a real service ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    extra = ["--max-requests-per-second", "0.2", "--max-job-creations-per-minute", "1"]
    extra += ["--body-timeout", "2", "--header-timeout", "2"]
    server = ServiceProcess(tmp_path_factory.mktemp("limited") / "data", extra=extra).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_boto3_sees_throttling_exception_and_its_retries_ride_through(
    limited: ServiceProcess,
) -> None:
    no_retries = limited.boto(key="burst", config=Config(retries={"total_max_attempts": 1}))
    no_retries.list_auto_ml_jobs()
    with pytest.raises(ClientError) as caught:
        no_retries.list_auto_ml_jobs()
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400

    # botocore recognises the answer as throttling: its standard mode backs off and retries.
    patient = limited.boto(
        key="patient", config=Config(retries={"mode": "standard", "total_max_attempts": 12})
    )
    patient.list_auto_ml_jobs()
    second = patient.list_auto_ml_jobs()
    assert second["ResponseMetadata"]["RetryAttempts"] >= 1


@pytest.mark.slow
def test_job_creations_over_the_rate_are_throttled(limited: ServiceProcess, tmp_path: Path) -> None:
    sm = limited.boto(key="creator", config=Config(retries={"total_max_attempts": 1}))
    request = automl_request("nothing-there", str(tmp_path / "missing"), str(tmp_path / "out"))
    with pytest.raises(ClientError) as first:
        sm.create_auto_ml_job_v2(**request)
    assert first.value.response["Error"]["Code"] == "ValidationException"
    time.sleep(5.5)  # the request bucket (0.2/s) refills; the creation one (1/min) does not
    with pytest.raises(ClientError) as second:
        sm.create_auto_ml_job_v2(**{**request, "AutoMLJobName": "nothing-there-2"})
    assert second.value.response["Error"]["Code"] == "ThrottlingException"
    assert "job creation" in second.value.response["Error"]["Message"]


@pytest.mark.slow
def test_a_client_trickling_its_body_is_cut_off_while_others_are_served(
    limited: ServiceProcess,
) -> None:
    body = b'{"MaxResults": 10}'
    with socket.create_connection(("127.0.0.1", limited.port), timeout=30) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: SageMaker.ListAutoMLJobs\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        answer = b""
        sock.settimeout(0.3)
        for i, byte in enumerate(body[:-1]):  # never the last byte
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break  # the service already closed the connection
            if i == 2:  # meanwhile the service answers others
                other = limited.boto(key="other").list_auto_ml_jobs()
                assert other["AutoMLJobSummaries"] == []
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            answer += chunk
            if not chunk or b"\r\n\r\n" in answer:
                break
        sock.settimeout(30)
        while chunk := sock.recv(4096):  # the rest, up to the close
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"RequestTimeoutException" in answer
    assert httpx.get(f"{limited.url}/ping", timeout=10).status_code == 200


def _jobs_cli(*args: str | Path) -> str:
    from typer.testing import CliRunner

    from mlpilot.cli.main import app

    result = CliRunner().invoke(app, ["jobs", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_a_client_trickling_its_headers_is_cut_off_while_others_are_served(
    limited: ServiceProcess,
) -> None:
    head = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: SageMaker.ListAutoMLJobs\r\n"
    address = ("127.0.0.1", limited.port)
    with (
        socket.create_connection(address, timeout=30) as silent,
        socket.create_connection(address, timeout=30) as sock,
    ):
        answer = b""
        sock.settimeout(0.25)  # the whole head would take 20 s at this pace
        for i, byte in enumerate(head):  # never the blank line that ends the headers
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break  # the service already closed the connection
            if i == 3:  # meanwhile the service answers others
                other = limited.boto(key="other-headers").list_auto_ml_jobs()
                assert other["AutoMLJobSummaries"] == []
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            answer += chunk
            if not chunk or b"\r\n\r\n" in answer:
                break
        sock.settimeout(30)
        while chunk := sock.recv(4096):  # the rest, up to the close
            answer += chunk
        # A connection that never said a word is closed too, without an answer.
        assert silent.recv(4096) == b""
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"RequestTimeoutException" in answer and b"request headers" in answer
    assert httpx.get(f"{limited.url}/ping", timeout=10).status_code == 200


@pytest.mark.slow
def test_jobs_beyond_the_limit_queue_survive_a_restart_and_all_finish(tmp_path: Path) -> None:
    from mlpilot.service import ServiceConfig, Store

    data = tmp_path / "in"
    data.mkdir()
    pd.read_csv(TITANIC).head(200).to_csv(data / "train.csv", index=False)
    names = [f"queued-{i}" for i in range(3)]
    server = ServiceProcess(tmp_path / "data", extra=["--max-concurrent-jobs", "1"]).start()
    store = Store(ServiceConfig(data_dir=tmp_path / "data").database_url)
    try:
        sm = server.boto()
        for name in names:
            sm.create_auto_ml_job_v2(
                **automl_request(
                    name,
                    str(data),
                    str(tmp_path / "out"),
                    target="Survived",
                    max_candidates=1,
                    algorithms=("linear-learner",),
                )
            )
        for position, name in enumerate(names[1:], start=1):
            record = sm.describe_auto_ml_job_v2(AutoMLJobName=name)
            assert record["AutoMLJobStatus"] == "InProgress"
            assert record["AutoMLJobSecondaryStatus"] == "Starting"
            # The place in the queue rides in extension headers, beside SageMaker's shape.
            headers = record["ResponseMetadata"]["HTTPHeaders"]
            assert headers["x-mlpilot-queue-position"] == str(position)
            assert headers["x-mlpilot-queue-length"] == "2"
        v1 = sm.describe_auto_ml_job(AutoMLJobName=names[2])["ResponseMetadata"]["HTTPHeaders"]
        assert v1["x-mlpilot-queue-position"] == "2"
        running = sm.describe_auto_ml_job_v2(AutoMLJobName=names[0])
        assert "x-mlpilot-queue-position" not in running["ResponseMetadata"]["HTTPHeaders"]
        listed = _jobs_cli("list", "--endpoint-url", server.url)
        assert "Queued (1 of 2)" in listed and "Queued (2 of 2)" in listed
        server.kill()  # the queue is in the store: a restart picks it up
        # Meanwhile the data folder still tells where each job waits.
        described = json.loads(_jobs_cli("describe", names[2], "--data-dir", server.data_dir))
        assert described["MlpilotQueue"] == {"Position": 2, "Length": 2}
        assert "Queued (1 of 2)" in _jobs_cli("list", "--data-dir", server.data_dir)
        server.start()
        sm = server.boto()
        most = 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            rows = [store.get_job(name) for name in names]
            running = [r for r in rows if r["status"] == "InProgress" and r["runner_pid"]]
            most = max(most, len(running))
            if all(r["status"] in ("Completed", "Failed", "Stopped") for r in rows):
                break
            time.sleep(0.3)
        assert most == 1
        for name in names:
            assert wait_for(sm, name, ("Completed",), timeout=5)["AutoMLJobStatus"] == "Completed"
    finally:
        store.close()
        server.stop()


@pytest.mark.slow
def test_an_endpoint_under_a_few_seconds_of_concurrent_load_answers_every_request(
    tmp_path: Path,
) -> None:
    import importlib.util

    bench_file = Path(__file__).parent.parent / "benchmarks" / "load_endpoint.py"
    spec = importlib.util.spec_from_file_location("load_endpoint", bench_file)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclass looks its module up there
    spec.loader.exec_module(bench)

    result = bench.main(
        ["--seconds", "4", "--warmup", "2", "--clients", "4", "--output", str(tmp_path / "o.txt")]
    )
    assert result["warmup"]["errors"] == 0
    assert result["load"]["errors"] == 0, result["load"]["error_kinds"]
    assert result["load"]["requests"] > 0
    assert result["memory_at_end"]["instances_kib"] > 0  # the instances were measured
    assert "p99" in (tmp_path / "o.txt").read_text()


# -- the service's HTTP protocol (uvicorn's httptools one, with the header deadline) ---------------
@pytest.fixture(scope="module")
def deadline_server() -> Iterator[int]:
    import threading

    import uvicorn

    from mlpilot.service._limits import header_deadline_protocol

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        _ok,
        host="127.0.0.1",
        port=port,
        http=header_deadline_protocol(0.5),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield port
    server.should_exit = True
    thread.join(10)


def _request(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def _read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def test_header_deadline_protocol_answers_pipelined_requests_and_keeps_alive(
    deadline_server: int,
) -> None:
    with socket.create_connection(("127.0.0.1", deadline_server), timeout=10) as sock:
        sock.sendall(_request(b"one") + _request(b"two"))
        # 0.6 s in all, past the 0.5 s deadline: each response starts the deadline again.
        time.sleep(0.3)
        sock.sendall(_request(b"three"))
        time.sleep(0.3)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = _read_all(sock)
    assert answer.count(b"HTTP/1.1 200") == 4
    assert b"one" in answer and b"two" in answer and b"three" in answer


def test_header_deadline_protocol_cuts_a_slow_head_and_refuses_a_huge_one(
    deadline_server: int,
) -> None:
    with socket.create_connection(("127.0.0.1", deadline_server), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"request headers" in answer
    with socket.create_connection(("127.0.0.1", deadline_server), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431")
