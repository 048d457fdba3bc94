"""A full disk (or the file-size limit) on the data directory: a clear one-line failure, a job
recorded as Failed with the reason, an API call answered ResourceLimitExceeded, the service's
store intact."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from helpers_service import ROLE, automl_request
from mlpilot.cli._common import one_line_errors
from mlpilot.config import JobConfig, TabularConfig
from mlpilot.errors import StorageFullError, storage_failure
from mlpilot.jobs import AutoMLJob
from mlpilot.service import ServiceConfig, Store
from mlpilot.service._app import create_app

TITANIC = Path(__file__).parent / "data" / "titanic.csv"


def _no_space(path: Any, *args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


def test_storage_failure_names_the_problem_and_the_path() -> None:
    full = storage_failure(OSError(errno.ENOSPC, "No space left on device", "/data/x.json"))
    assert full is not None and full.errno == errno.ENOSPC
    assert str(full) == "No space left on the device while writing /data/x.json"
    # Found behind a wrapping error; the fallback location used when the error names none.
    try:
        try:
            raise OSError(errno.EFBIG, "File too large")
        except OSError as inner:
            raise RuntimeError("pickling failed") from inner
    except RuntimeError as outer:
        wrapped = storage_failure(outer, "/data/model")
    assert str(wrapped) == "File too large (over the file-size limit) while writing /data/model"
    assert storage_failure(OSError(errno.EDQUOT, "quota")) is not None
    full = storage_failure(sqlite3.OperationalError("database or disk is full"), "/data/db")
    assert str(full) == (
        "The database is full (no space left on the device, or its size limit) while writing "
        "/data/db"
    )
    assert storage_failure(sqlite3.OperationalError("database is locked")) is None
    assert storage_failure(OSError(errno.EACCES, "denied", "/x")) is None
    assert storage_failure(ValueError("no")) is None


def test_cli_prints_one_line_for_a_full_disk(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    @one_line_errors
    def command() -> None:
        _no_space("/out/job.json")

    with pytest.raises(typer.Exit) as info:
        command()
    assert info.value.exit_code == 2
    err = capsys.readouterr().err
    assert "No space left on the device while writing /out/job.json" in err
    assert "Traceback" not in err and "Internal error" not in err


def _config(out: Path, name: str = "full-disk") -> JobConfig:
    return JobConfig(
        name=name,
        training_data=str(TITANIC),
        output_path=str(out),
        problem=TabularConfig(target="Survived"),
        max_candidates=1,
        parallelism=1,
    )


def test_job_fails_with_the_reason_when_its_record_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlpilot.jobs._job.write_json_atomic", _no_space)
    job = AutoMLJob(_config(tmp_path))
    with pytest.raises(StorageFullError, match="No space left on the device while writing"):
        job.run()
    record = job.record
    assert record["AutoMLJobStatus"] == "Failed"
    assert record["FailureReason"].startswith("No space left on the device while writing ")
    assert "spec.json" in record["FailureReason"]
    assert not (tmp_path / "full-disk" / "job.json").exists()  # nothing says it is done


@pytest.fixture
def signals_kept() -> Iterator[None]:
    """The runner installs SIGTERM/SIGINT handlers for its own process; give them back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def test_service_runner_records_the_failure_and_the_store_stays_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals_kept: None
) -> None:
    from mlpilot.service import _runner

    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}")
    config = _config(tmp_path / "out")
    store.insert_job(
        {
            "name": config.name,
            "arn": f"arn:aws:sagemaker:us-east-1:000000000000:automl-job/{config.name}",
            "status": "InProgress",
            "secondary_status": "Starting",
            "created": 1.0,
            "modified": 1.0,
            "record": {"AutoMLJobName": config.name, "AutoMLJobStatus": "InProgress"},
            "api_version": 2,
            "v1_request": None,
            "local_root": str(config.output_dir),
            "output_root": str(config.output_dir),
            "stop_requested": False,
            "deploy_state": None,
            "heartbeat": 1.0,
        }
    )
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(config.to_dict()))
    monkeypatch.setattr("mlpilot.jobs._job.write_json_atomic", _no_space)
    code = _runner.main(["--store", f"sqlite:///{db}", "--job", config.name, "--spec", str(spec)])
    assert code == 0
    store.close()

    again = Store(f"sqlite:///{db}")  # as a restarted service would open it
    row = again.get_job(config.name)
    assert row is not None and row["status"] == "Failed"
    assert row["record"]["FailureReason"].startswith("No space left on the device while writing")
    assert [r["name"] for r in again.list_jobs().rows] == [config.name]
    again.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _limit_file_size(limit: int) -> None:
    # Ignored, SIGXFSZ no longer kills the writer: the write fails with EFBIG instead.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
def test_cli_job_over_the_file_size_limit(tmp_path: Path) -> None:
    out = tmp_path / "job"
    command = [
        sys.executable,
        "-m",
        "mlpilot.cli.main",
        "run",
        str(TITANIC),
        "--target",
        "Survived",
        "--output",
        str(out),
        # Two LightGBM candidates: what trains does not matter, only that packages are written.
        "--mode",
        "HYPERPARAMETER_TUNING",
        "--algorithms",
        "lightgbm",
        "--max-candidates",
        "2",
        "--max-runtime",
        "60",
        "--parallelism",
        "1",
        "--no-reports",
        "--quiet",
    ]
    # 64 KB: the job's records fit, no model package does.
    done = subprocess.run(
        command,
        preexec_fn=lambda: _limit_file_size(64_000),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "File too large (over the file-size limit) while writing" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    record = json.loads((out / "job.json").read_text())
    assert record["AutoMLJobStatus"] == "Failed"
    assert "File too large" in record["FailureReason"]
    assert "BestCandidate" not in record
    assert not list(out.rglob(".staging-*"))
    assert not list(out.rglob("model.tar.gz"))


# -- the service's own writes: an API call on a full data directory ----------------------------
def _post(app: Any, operation: str, body: dict[str, Any]) -> httpx.Response:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mlpilot") as client:
            return await client.post(
                "/",
                content=json.dumps(body),
                headers={
                    "X-Amz-Target": f"SageMaker.{operation}",
                    "Content-Type": "application/x-amz-json-1.1",
                },
            )

    return asyncio.run(post())


def _model(name: str, url: Path, environment: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "Image": "mlpilot/tabular-inference:0.1.0",
        "ModelDataUrl": str(url),
    }
    if environment:
        container["Environment"] = environment
    return {"ModelName": name, "PrimaryContainer": container, "ExecutionRoleArn": ROLE}


def _assert_full(answer: httpx.Response, operation: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["__type"] == "ResourceLimitExceeded"
    assert error["message"].startswith(f"{operation} failed: the service cannot write to its data")
    assert "Traceback" not in answer.text and "inside mlpilot" not in answer.text


def test_api_call_on_a_full_store_is_a_clear_error_and_the_store_stays_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"not read by CreateModel")
    config = ServiceConfig(data_dir=tmp_path / "data")
    app = create_app(config)
    store = app.state.service.store
    assert _post(app, "CreateModel", _model("first", archive)).status_code == 200

    # SQLite's own limit makes every write that needs a new page fail as a full disk would:
    # "database or disk is full" (SQLITE_FULL).
    def cap(connection: Any, _record: Any) -> None:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")

    sqlalchemy.event.listen(store.engine, "connect", cap)
    store.engine.dispose()
    big = {f"VAR_{i}": "x" * 1000 for i in range(60)}  # needs new pages
    with caplog.at_level(logging.ERROR, logger="mlpilot.service"):
        answer = _post(app, "CreateModel", _model("second", archive, big))
    _assert_full(answer, "CreateModel")
    assert "database is full" in answer.json()["message"]
    assert str(config.data_dir) not in answer.text  # the server's paths stay in its log
    assert "database is full" in caplog.text and "Traceback" not in caplog.text

    # Readable as it was: the refused write left nothing behind.
    listed = _post(app, "ListModels", {}).json()["Models"]
    assert [m["ModelName"] for m in listed] == ["first"]
    sqlalchemy.event.remove(store.engine, "connect", cap)
    store.engine.dispose()
    assert _post(app, "CreateModel", _model("second", archive, big)).status_code == 200
    store.close()
    with sqlite3.connect(config.data_dir / "mlpilot.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM resources").fetchone() == (2,)


def test_api_call_whose_file_write_fails_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data")
    app = create_app(config)
    written = Path.write_text

    def half_then_full(path: Path, text: str, *args: Any, **kwargs: Any) -> int:
        if config.data_dir in path.parents:
            written(path, text[: len(text) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return written(path, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", half_then_full)
    config.staging_dir.mkdir(parents=True)
    request = automl_request("no-room", str(TITANIC), str(tmp_path / "out"), target="Survived")
    answer = _post(app, "CreateAutoMLJobV2", request)
    _assert_full(answer, "CreateAutoMLJobV2")
    assert "no space left on the device" in answer.json()["message"]
    assert list(config.staging_dir.iterdir()) == []  # the job's half-written spec is removed
    missing = _post(app, "DescribeAutoMLJobV2", {"AutoMLJobName": "no-room"})
    assert missing.status_code == 400 and missing.json()["__type"] == "ResourceNotFound"
    assert _post(app, "ListAutoMLJobs", {}).json()["AutoMLJobSummaries"] == []
    app.state.service.store.close()
