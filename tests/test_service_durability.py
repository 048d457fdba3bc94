"""The service survives kill -9: no job is lost or left hanging, finished work is kept."""

from __future__ import annotations

import os
import signal
import tarfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers_data import TELCO
from helpers_service import ServiceProcess, automl_request, wait_for
from mlpilot.service import ServiceConfig, Store

# Left out of `make test-fast`: the service in a subprocess, killed and restarted.
pytestmark = pytest.mark.slow

CHURN = TELCO


@pytest.fixture(scope="module")
def churn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("churn-in")
    table = pd.read_csv(CHURN, dtype=str, keep_default_na=False).sample(500, random_state=2)
    table.to_csv(folder / "train.csv", index=False)
    return folder


def _row(data_dir: Path, name: str) -> dict[str, Any]:
    store = Store(ServiceConfig(data_dir=data_dir).database_url)
    try:
        row = store.get_job(name)
        assert row is not None
        return row
    finally:
        store.close()


def _wait_best(sm: Any, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record: dict[str, Any] = sm.describe_auto_ml_job_v2(AutoMLJobName=name)
        if "BestCandidate" in record:
            return record
        time.sleep(0.3)
    raise AssertionError(f"{name} found no candidate in {timeout} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not alive either.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def _model_ok(record: dict[str, Any]) -> None:
    archive = Path(record["BestCandidate"]["InferenceContainers"][0]["ModelDataUrl"])
    with tarfile.open(archive) as tar:
        assert "mlpilot-model.json" in tar.getnames()


def test_job_survives_service_kill_and_completes_after_restart(
    churn_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = ServiceProcess(data).start()
    sm = server.boto()
    sm.create_auto_ml_job_v2(
        **automl_request(
            "survivor", str(churn_dir), str(tmp_path / "out"), max_candidates=6, runtime=90
        )
    )
    _wait_best(sm, "survivor")
    runner = _row(data, "survivor")["runner_pid"]
    server.kill()  # kill -9 of the service mid-job
    assert _alive(runner), "the job's runner must outlive the service"
    server.start()
    try:
        sm = server.boto()
        record = wait_for(sm, "survivor", ("Completed", "Failed", "Stopped"), timeout=150)
        assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
        _model_ok(record)
        listed = sm.list_candidates_for_auto_ml_job(AutoMLJobName="survivor")["Candidates"]
        assert len(listed) == 6
        assert (tmp_path / "out" / "survivor" / "leaderboard.csv").exists()
    finally:
        server.stop()


def test_killed_runner_ends_stopped_with_its_best_candidate(
    churn_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = ServiceProcess(data).start()
    try:
        sm = server.boto()
        sm.create_auto_ml_job_v2(
            **automl_request(
                "victim", str(churn_dir), str(tmp_path / "out"), max_candidates=500, runtime=300
            )
        )
        best = _wait_best(sm, "victim")["BestCandidate"]
        os.kill(_row(data, "victim")["runner_pid"], signal.SIGKILL)
        record = wait_for(sm, "victim", ("Completed", "Failed", "Stopped"), timeout=60)
        assert record["AutoMLJobStatus"] == "Stopped"
        assert record["AutoMLJobSecondaryStatus"] == "Stopped"
        assert "killed by signal 9" in record["FailureReason"]
        assert "EndTime" in record
        _model_ok(record)
        # The best is at least as good as the best seen before the kill.
        value = record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["Value"]
        assert value >= best["FinalAutoMLJobObjectiveMetric"]["Value"]
        statuses = {
            c["CandidateStatus"]
            for c in sm.list_candidates_for_auto_ml_job(AutoMLJobName="victim", MaxResults=300)[
                "Candidates"
            ]
        }
        assert "InProgress" not in statuses
    finally:
        server.stop()


def test_machine_crash_recovered_when_service_restarts(churn_dir: Path, tmp_path: Path) -> None:
    """Service and runner both killed (as in a power cut); the next start ends the jobs."""
    data = tmp_path / "data"
    server = ServiceProcess(data).start()
    sm = server.boto()
    sm.create_auto_ml_job_v2(
        **automl_request(
            "crashed", str(churn_dir), str(tmp_path / "out"), max_candidates=500, runtime=300
        )
    )
    _wait_best(sm, "crashed")
    runner = _row(data, "crashed")["runner_pid"]
    server.kill()
    os.kill(runner, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(runner) and time.monotonic() < deadline:
        time.sleep(0.1)
    server.start()
    try:
        sm = server.boto()
        record = sm.describe_auto_ml_job_v2(AutoMLJobName="crashed")
        # Recovered during start-up: no waiting for a heartbeat to go stale.
        assert record["AutoMLJobStatus"] == "Stopped", record
        assert "not running when the service started" in record["FailureReason"]
        _model_ok(record)
    finally:
        server.stop()


def test_a_job_stopped_before_its_engine_began_ends_stopped(tmp_path: Path) -> None:
    """The stop's signal can reach a runner that is still starting (no job.json yet): the job
    ends Stopped, as the user asked, not Failed."""
    from mlpilot.service import Service

    service = Service(ServiceConfig(data_dir=tmp_path / "data"))
    try:
        arn = "arn:aws:sagemaker:us-east-1:000000000000:automl-job/early"
        record = {"AutoMLJobName": "early", "AutoMLJobArn": arn, "CreationTime": 1.0}
        service.store.insert_job(
            {
                "name": "early",
                "arn": arn,
                "status": "InProgress",
                "secondary_status": "Starting",
                "created": 1.0,
                "modified": 1.0,
                "record": record,
                "api_version": "V2",
                "local_root": str(tmp_path / "data" / "early"),
                "output_root": str(tmp_path / "out"),
                "stop_requested": False,
                # A runner was started (so the job is not queued); it is gone by now.
                "runner_pid": 4_194_000,
                "runner_host": "elsewhere",
            }
        )
        service.jobs.stop("early")
        service.jobs.recover("early", "the job's process killed by signal 15")
        row = service.store.get_job("early")
        assert (row["status"], row["secondary_status"]) == ("Stopped", "Stopped")
        assert "FailureReason" not in row["record"]
    finally:
        service.store.close()
