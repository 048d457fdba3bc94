"""kill -9 at named points of a job (MLPILOT_CRASH_AT): the job ends in a state a user
understands, no half-written model is reported as done, nothing is left running."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers_data import TELCO
from helpers_service import ServiceProcess, automl_request, wait_for
from mlpilot.package import UnverifiedPackageWarning, load_model
from mlpilot.service import ServiceConfig, Store

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
