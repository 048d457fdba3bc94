"""kill -9 at named points of a job, of the service while an endpoint starts, of a batch
transform's runner (MLPILOT_CRASH_AT): each ends in a state a user understands, no half-written
model or output is reported as done, nothing is left running."""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

import helpers_models
from helpers_data import TELCO
from helpers_models import TrainedModel
from helpers_service import ROLE, ServiceProcess, automl_request, wait_for
from mlpilot.package import UnverifiedPackageWarning, load_model
from mlpilot.service import ServiceConfig, Store
from mlpilot.service._deploy import ENDPOINT
from mlpilot.service._transforms import TRANSFORM_JOB, TransformManager

pytestmark = pytest.mark.slow

ENDED = ("Completed", "Failed", "Stopped")


@pytest.fixture(scope="module")
def churn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("churn-in")
    table = pd.read_csv(TELCO, dtype=str, keep_default_na=False).sample(400, random_state=3)
    table.to_csv(folder / "train.csv", index=False)
    return folder


def _group(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _runner_pid(data: Path, name: str) -> int:
    store = Store(ServiceConfig(data_dir=data).database_url)
    try:
        row = store.get_job(name)
        assert row is not None and row["runner_pid"]
        return int(row["runner_pid"])
    finally:
        store.close()


# CI runs the first stage (Failed) and packaging (Stopped, the best candidate packaged) to keep
# the whole suite within its 20 minutes; a kill mid-search is also test_service_durability's.
# MLPILOT_ALL_CRASH_POINTS=1 runs every stage (each 10–50 s).
_LATER = pytest.mark.skipif(
    not os.environ.get("MLPILOT_ALL_CRASH_POINTS"),
    reason="ends like the packaging case; MLPILOT_ALL_CRASH_POINTS=1 runs it",
)
# (crash point, job mode, how the job must end)
STAGES = [
    pytest.param("analysis", "HYPERPARAMETER_TUNING", "Failed", id="analysis"),
    pytest.param("search:2", "HYPERPARAMETER_TUNING", "Stopped", id="search", marks=_LATER),
    pytest.param("refit", "HYPERPARAMETER_TUNING", "Stopped", id="refit", marks=_LATER),
    pytest.param("packaging", "HYPERPARAMETER_TUNING", "Stopped", id="packaging"),
    pytest.param("reports", "HYPERPARAMETER_TUNING", "Stopped", id="reports", marks=_LATER),
    pytest.param("ensembling", "ENSEMBLING", "Stopped", id="ensembling", marks=_LATER),
]


@pytest.mark.parametrize(("point", "mode", "outcome"), STAGES)
def test_job_killed_at_a_named_point(
    churn_dir: Path, tmp_path: Path, point: str, mode: str, outcome: str
) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    server = ServiceProcess(data)
    server.env = {"MLPILOT_CRASH_AT": point}
    server.start()
    name = "crash-" + point.split(":")[0]
    request = automl_request(
        name,
        str(churn_dir),
        str(out),
        max_candidates=3,
        runtime=120,
        algorithms=("linear-learner",),
        reports=point == "reports",
    )
    request["AutoMLProblemTypeConfig"]["TabularJobConfig"]["Mode"] = mode
    if mode == "ENSEMBLING":
        del request["AutoMLProblemTypeConfig"]["TabularJobConfig"]["CandidateGenerationConfig"]
    # A holdout (not cross-validation), so the best linear candidate is refit.
    request["DataSplitConfig"] = {"ValidationFraction": 0.25}
    try:
        sm = server.boto()
        sm.create_auto_ml_job_v2(**request)
        record = wait_for(sm, name, ENDED, timeout=240)
        runner = _runner_pid(data, name)
        log = ServiceConfig(data_dir=data).log_dir / f"{name}.log"
        # The named point, not some other failure, ended the runner.
        assert f"crash point '{point.split(':')[0]}' reached" in log.read_text(errors="replace")
    finally:
        server.kill()
    assert record["AutoMLJobStatus"] == outcome, record.get("FailureReason")
    assert "killed by signal 9" in record["FailureReason"]
    # Nothing of the dead runner lives on: no trial worker, no notebook kernel.
    deadline = time.monotonic() + 15
    while _group(runner) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group(runner) == []
    assert not list(out.rglob(".staging-*")), "a half-written package was left behind"

    # After a restart (without the crash point) the job reads the same, and its model loads
    # verified (checksum) with no warning.
    server.env = {}
    server.start()
    try:
        again = server.boto().describe_auto_ml_job_v2(AutoMLJobName=name)
    finally:
        server.stop()
    assert again["AutoMLJobStatus"] == outcome
    assert again.get("FailureReason") == record.get("FailureReason")
    if outcome == "Stopped":
        url = again["BestCandidate"]["InferenceContainers"][0]["ModelDataUrl"]
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnverifiedPackageWarning)
            model: Any = load_model(url)
        table = pd.read_csv(churn_dir / "train.csv", dtype=str, keep_default_na=False)
        assert len(model.predict(table.drop(columns="Churn").head(5))) == 5
    else:
        assert "BestCandidate" not in again
    assert os.path.isdir(out / name)


# -- endpoints and batch transforms ------------------------------------------------------------
@pytest.fixture(scope="module")
def churn_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return helpers_models.churn_model(tmp_path_factory)


def _deploy_model(sm: Any, trained: TrainedModel) -> None:
    sm.create_model(
        ModelName="churn",
        PrimaryContainer={
            "Image": "mlpilot/tabular-inference:0.1.0",
            "ModelDataUrl": str(trained.archive),
        },
        ExecutionRoleArn=ROLE,
    )


def _live(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_naming(text: str) -> list[int]:
    """Live processes whose command line holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if _live(pid)]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _gone(pids: list[int], seconds: float = 20) -> list[int]:
    """The pids still alive after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [pid for pid in pids if _live(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_service_killed_while_an_endpoint_starts(churn_model: TrainedModel, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServiceProcess(data)
    server.env = {"MLPILOT_CRASH_AT": "endpoint-create"}
    server.start()
    sm = server.boto(config=Config(retries={"max_attempts": 1}))
    _deploy_model(sm, churn_model)
    sm.create_endpoint_config(
        EndpointConfigName="churn",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "churn",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    # The service kills itself once the endpoint's container is up: the call gets no answer.
    with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
        sm.create_endpoint(EndpointName="churn", EndpointConfigName="churn")
    assert server.process is not None and server.process.wait(timeout=30) == -9
    assert "crash point 'endpoint-create' reached" in server.log()
    store = Store(ServiceConfig(data_dir=data).database_url)
    try:
        left = store.get_resource(ENDPOINT, "churn")
    finally:
        store.close()
    assert left is not None and left["EndpointStatus"] == "Creating"
    # Its serve-model container (one was started: its log is there) saw its parent die and
    # ended, its port closed.
    work = data / "endpoints" / "churn"
    assert len(list(work.glob("*.log"))) == 1
    ports = [int(p.read_text()) for p in work.glob("*.port") if p.read_text().strip().isdigit()]
    orphans = _processes_naming(str(work))
    assert _gone(orphans) == [], "a container of the killed service lives on"
    assert not [port for port in ports if _listening(port)]

    # Restarted without the crash point, the endpoint that was Creating is started again.
    server.env = {}
    server.start()
    try:
        sm = server.boto()
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="churn", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        answer = server.boto("sagemaker-runtime").invoke_endpoint(
            EndpointName="churn", ContentType="text/csv", Body=churn_model.csv_body(0, 3)
        )
        labels = answer["Body"].read().decode().splitlines()
        assert len(labels) == 3 and set(labels) <= {"Yes", "No"}
        assert len(_processes_naming(str(work))) == 1  # one instance: the restarted one
    finally:
        server.stop()
    assert _gone(_processes_naming(str(work))) == []


def test_transform_runner_killed_after_its_first_object(
    churn_model: TrainedModel, tmp_path: Path
) -> None:
    source, out, data = tmp_path / "batch", tmp_path / "out", tmp_path / "data"
    source.mkdir()
    (source / "a.csv").write_bytes(churn_model.csv_body(0, 20))
    (source / "b.csv").write_bytes(churn_model.csv_body(20, 40))
    server = ServiceProcess(data)
    server.env = {"MLPILOT_CRASH_AT": "transform"}
    server.start()
    try:
        sm = server.boto()
        _deploy_model(sm, churn_model)
        sm.create_transform_job(
            TransformJobName="batch",
            ModelName="churn",
            TransformInput={
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            TransformOutput={"S3OutputPath": str(out), "AssembleWith": "Line"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        )
        deadline = time.monotonic() + 120
        while True:
            record = sm.describe_transform_job(TransformJobName="batch")
            if record["TransformJobStatus"] in ENDED or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        config = ServiceConfig(data_dir=data)
        log = (config.log_dir / "transform-batch.log").read_text(errors="replace")
        assert "crash point 'transform' reached" in log
    finally:
        server.stop()
    assert record["TransformJobStatus"] == "Failed", record
    assert "killed by signal 9" in record["FailureReason"]
    # The first object's output is whole; the second, never started, has none; no temporaries.
    assert sorted(p.name for p in out.rglob("*")) == ["a.csv.out"]
    assert len((out / "a.csv.out").read_text().splitlines()) == 20
    assert not (config.data_dir / "transforms" / "batch").exists()
    store = Store(config.database_url)
    try:
        stored = store.get_resource(TRANSFORM_JOB, "batch")
    finally:
        store.close()
    assert stored is not None
    assert _gone([stored["Mlpilot"]["RunnerPid"]]) == []


def test_restart_ends_a_transform_left_running_and_removes_its_leftovers(tmp_path: Path) -> None:
    """Service and runner both killed mid-object (a power cut): the next start ends the job
    Failed, removes its staging folder and the object it was writing, keeps finished ones."""
    config = ServiceConfig(data_dir=tmp_path / "data")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "a.csv.out").write_text("Yes\n")
    (out / "sub" / ".b.csv.out.k2x_9q0z.partial").write_text("No\n")
    config.data_dir.mkdir()
    store = Store(config.database_url)
    manager = TransformManager(config, store)
    staged = manager.work_dir("cut") / "mlpilot-transform-abc" / "c.csv.out"
    staged.parent.mkdir(parents=True)
    staged.write_text("Yes\n")
    record = {
        "TransformJobName": "cut",
        "TransformJobStatus": "InProgress",
        "TransformOutput": {"S3OutputPath": str(out)},
        "CreationTime": 1.0,
        "Mlpilot": {"RunnerPid": None},
    }
    store.insert_resource(TRANSFORM_JOB, "cut", config.arn(TRANSFORM_JOB, "cut"), record)
    manager.open()
    try:
        ended = store.get_resource(TRANSFORM_JOB, "cut")
    finally:
        manager.close()
        store.close()
    assert ended is not None and ended["TransformJobStatus"] == "Failed"
    assert "was not running when the service started" in ended["FailureReason"]
    assert not manager.work_dir("cut").exists()
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["a.csv.out", "sub"]
