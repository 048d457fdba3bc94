"""Resuming a job (``AutoMLJob.resume``, ``mlpilot run --resume``): every earlier candidate
kept as it was, new ones numbered after them, the best the best of all; a job killed mid-way
(``MLPILOT_CRASH_AT``) continues from its last finished candidate; bad input is one line."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import mlpilot
from helpers_data import PENGUINS
from mlpilot.cli.main import app
from mlpilot.config import JobConfig
from mlpilot.errors import ConfigError
from mlpilot.jobs import AutoMLJob, CandidateRecord, JobRecord, progress_frame
from mlpilot.metrics import get_metric

SRC = Path(__file__).resolve().parents[1] / "src"


def _files(root: Path) -> dict[str, str]:
    """Every file under the job's candidate folders, by path, with its digest."""
    out = {}
    for path in sorted((root / "tuning").rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = hashlib.sha1(path.read_bytes()).hexdigest()
    return out


def _number(name: str) -> int:
    return int(name.rsplit("-", 2)[1])


def _check_best_of_all(job: AutoMLJob) -> None:
    metric = get_metric(job.objective or "F1")
    values = [c.objective_value for c in job._candidates.values() if c.completed]
    best = job.record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert best == (max(values) if metric.maximize else min(values))  # type: ignore[type-var]


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("resume-data") / "penguins.csv"
    pd.read_csv(PENGUINS).to_csv(data, index=False)
    return data


def test_records_read_back_unchanged() -> None:
    shape = {
        "CandidateName": "j-linear-001-abc",
        "ObjectiveStatus": "Succeeded",
        "CandidateSteps": [
            {
                "CandidateStepType": "AWS::SageMaker::ProcessingJob",
                "CandidateStepArn": "arn:aws:sagemaker:eu-west-1:123:processing-job/j-pr-1-x",
                "CandidateStepName": "j-pr-1-x",
            },
            {
                "CandidateStepType": "AWS::SageMaker::TrainingJob",
                "CandidateStepArn": "arn:aws:sagemaker:eu-west-1:123:training-job/j-linear-001-abc",
                "CandidateStepName": "j-linear-001-abc",
            },
        ],
        "CandidateStatus": "Completed",
        "CreationTime": 1.5,
        "LastModifiedTime": 2.5,
        "FinalAutoMLJobObjectiveMetric": {
            "Type": "Minimize",
            "Value": 0.25,
            "StandardMetricName": "LogLoss",
        },
        "EndTime": 2.5,
        "CandidateProperties": {
            "CandidateMetrics": [
                {
                    "MetricName": "Accuracy",
                    "StandardMetricName": "Accuracy",
                    "Value": 0.9,
                    "Set": "Validation",
                },
                {"StandardMetricName": "LogLoss", "Value": 0.25, "Set": "Validation"},
            ]
        },
        "Mlpilot": {"TrialNumber": 0, "Algorithm": "linear-learner"},
    }
    assert CandidateRecord.from_shape(shape, objective="LogLoss").shape() == shape
    job = {
        "AutoMLJobName": "j",
        "AutoMLJobArn": "arn:aws:sagemaker:eu-west-1:123:automl-job/j",
        "AutoMLProblemTypeConfigName": "Tabular",
        "CreationTime": 1.0,
        "LastModifiedTime": 3.0,
        "AutoMLJobStatus": "Stopped",
        "AutoMLJobSecondaryStatus": "Stopped",
        "EndTime": 3.0,
        "PartialFailureReasons": [{"PartialFailureMessage": "x: failed"}],
        "BestCandidate": shape,
        "Mlpilot": {"Seed": 3},
    }
    assert JobRecord.from_shape(job, objective="LogLoss").shape() == job


@pytest.fixture(scope="module")
def killed(penguins: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CLI job killed (kill -9 at the crash point) after its second candidate, with a
    half-written model folder of a trial it never recorded; what it left, before any resume."""
    root = tmp_path_factory.mktemp("killed") / "job"
    env = {**os.environ, "PYTHONPATH": str(SRC), "MLPILOT_CRASH_AT": "search:2"}
    command = [sys.executable, "-m", "mlpilot.cli.main", "run", str(penguins)]
    command += ["--target", "species", "--output", str(root), "--name", "peng"]
    command += ["--mode", "HYPERPARAMETER_TUNING", "--algorithms", "linear-learner"]
    command += ["--max-candidates", "4", "--parallelism", "1", "--no-reports", "--quiet"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]
    files = _files(root)
    stray = root / "tuning" / "peng-tuning" / "peng-linear-003-00000000" / "output" / "model"
    stray.mkdir(parents=True)
    (stray / "half-written.joblib").write_bytes(b"\0")
    return {
        "root": root,
        "record": json.loads((root / "job.json").read_text()),
        "log": (root / "candidates.jsonl").read_text(),
        "files": files,
        "stray": stray,
    }


@pytest.fixture(scope="module")
def resumed(killed: dict[str, Any]) -> AutoMLJob:
    """The killed job, resumed for one more candidate (the tests below extend it further)."""
    job = AutoMLJob.resume(killed["root"], 120, max_candidates=1, parallelism=1)
    job.run()
    return job


@pytest.mark.slow
def test_a_killed_job_resumes_from_its_last_finished_candidate(
    killed: dict[str, Any], resumed: AutoMLJob
) -> None:
    assert killed["record"]["AutoMLJobStatus"] == "InProgress"  # the process died mid-way
    first = [json.loads(line) for line in killed["log"].splitlines()]
    assert [_number(c["CandidateName"]) for c in first] == [1, 2]
    root, job = killed["root"], resumed
    assert job.status == "Completed", job.record.get("FailureReason")
    # Earlier lines untouched, new ones appended.
    assert (root / "candidates.jsonl").read_text().startswith(killed["log"])
    names = list(job.candidates)
    assert [_number(n) for n in names] == [1, 2, 3]
    assert not killed["stray"].parent.parent.exists()  # the unrecorded trial's files
    after = _files(root)
    assert all(after[path] == digest for path, digest in killed["files"].items())
    resume = job.record["Mlpilot"]["Resumes"][0]
    assert resume["CandidatesBefore"] == 2 and resume["CandidatesAfter"] == 3
    assert resume["StatusBefore"] == "Stopped"
    assert resume["Interrupted"]["Phase"] == "ModelTuning"
    assert "Interrupted" not in job.record["Mlpilot"] and "Resuming" not in job.record["Mlpilot"]
    _check_best_of_all(job)
    new = job.candidates[names[2]]["Mlpilot"]
    assert new["TrialNumber"] == 2 and new["SearchParameters"]


@pytest.mark.slow
def test_a_resume_of_changed_data_is_refused_and_leaves_the_job_as_it_was(
    resumed: AutoMLJob, penguins: Path, tmp_path: Path
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(resumed.layout.root, root)
    fewer = tmp_path / "fewer.csv"
    pd.read_csv(penguins).head(200).to_csv(fewer, index=False)
    spec = json.loads((root / "spec.json").read_text())
    (root / "spec.json").write_text(json.dumps({**spec, "training_data": str(fewer)}))
    record = json.loads((root / "job.json").read_text())
    log = (root / "candidates.jsonl").read_text()
    job = AutoMLJob.resume(root, 60, max_candidates=1, parallelism=1)
    with pytest.raises(ConfigError, match="its training data changed since it ran"):
        job.run()
    assert json.loads((root / "job.json").read_text()) == record
    assert (root / "candidates.jsonl").read_text() == log


@pytest.mark.slow
def test_a_finished_job_extends_again_through_the_cli_and_alike_every_time(
    killed: dict[str, Any], resumed: AutoMLJob, tmp_path: Path
) -> None:
    """The finished job extended by one candidate through the CLI; a copy of it, extended the
    same way, trains the same candidate (same seed, same study)."""
    root = killed["root"]
    twin = tmp_path / "twin"
    shutil.copytree(root, twin)
    board_before = {
        c["CandidateName"]: c for c in json.loads((root / "leaderboard.json").read_text())
    }
    command = ["run", "--resume", str(root), "--max-runtime", "120", "--max-candidates", "1"]
    result = CliRunner().invoke(app, [*command, "--parallelism", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    board = {c["CandidateName"]: c for c in json.loads((root / "leaderboard.json").read_text())}
    assert len(board) == 4
    assert all(board[name] == candidate for name, candidate in board_before.items())
    (new,) = set(board) - set(board_before)
    copy = AutoMLJob.resume(twin, 120, max_candidates=1, parallelism=1)
    copy.run()
    (alike,) = [c for n, c in copy.candidates.items() if n not in board_before]
    assert alike["CandidateName"] == new
    assert alike["Mlpilot"]["Hyperparameters"] == board[new]["Mlpilot"]["Hyperparameters"]
    value = board[new]["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert alike["FinalAutoMLJobObjectiveMetric"]["Value"] == value
    record = json.loads((root / "job.json").read_text())
    assert [r["CandidatesAfter"] for r in record["Mlpilot"]["Resumes"]] == [3, 4]
    curve = progress_frame(record, list(board.values()))
    assert list(curve["run"]) == [0, 0, 1, 2]
    assert curve["seconds"].is_monotonic_increasing
    assert (
        curve["best"].iloc[-1] == record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["Value"]
    )
    shown = CliRunner().invoke(app, ["leaderboard", str(root), "--progress"])
    assert shown.exit_code == 0 and "resume 2" in shown.output


@pytest.mark.slow
def test_ensembling_resume_adds_base_models_and_reselects(penguins: Path, tmp_path: Path) -> None:
    root = tmp_path / "ens"
    job = mlpilot.run_job(
        str(penguins),
        target="species",
        output=root,
        name="pens",
        mode="ENSEMBLING",
        algorithms=("linear-learner", "extra-trees"),
        max_candidates=2,
        parallelism=2,
        generate_reports=False,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    before = {c["CandidateName"]: c for c in json.loads((root / "leaderboard.json").read_text())}
    base_before = [n for n, c in before.items() if c["Mlpilot"].get("Layer") == 1]
    assert len(base_before) == 2
    files_before = _files(root)
    last = max(_number(n) for n in before)

    resumed = AutoMLJob.resume(root, 90, max_candidates=1, parallelism=2)
    resumed.run()
    assert resumed.status == "Completed", resumed.record.get("FailureReason")
    after = {c["CandidateName"]: c for c in json.loads((root / "leaderboard.json").read_text())}
    assert all(after[name] == candidate for name, candidate in before.items())
    assert all(_files(root)[p] == d for p, d in files_before.items())
    new = [n for n in after if n not in before]
    assert new and min(_number(n) for n in new) == last + 1
    base_new = [n for n in new if after[n]["Mlpilot"].get("Layer") == 1]
    assert len(base_new) == 1
    # Selection ran over the old and new base models together.
    notes = " ".join(resumed.record["Mlpilot"].get("EnsembleNotes", []))
    assert "2 base models of the earlier run kept" in notes
    _check_best_of_all(resumed)


def test_bad_resume_requests_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [
        (["run", "--resume", str(tmp_path / "none"), "--max-runtime", "5"], "is not a job folder"),
        (["run", "--resume", str(tmp_path), "--max-runtime", "5"], "is not a job folder"),
        (["run", "--resume", str(tmp_path)], "--resume needs --max-runtime"),
        (["run", "x.csv", "--resume", str(tmp_path), "--max-runtime", "5"], "drop DATA"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    with pytest.raises(ConfigError, match="positive number of seconds"):
        AutoMLJob.resume(tmp_path, 0)
    with pytest.raises(ConfigError, match="MaxCandidates must be between"):
        AutoMLJob.resume(tmp_path, 5, max_candidates=0)


def test_a_running_job_is_not_resumed(tmp_path: Path) -> None:
    root = tmp_path / "lin"
    config = JobConfig.tabular(
        name="lin", training_data="data.csv", output_path=str(root), target="y"
    )
    root.mkdir()
    (root / "spec.json").write_text(json.dumps(config.to_dict()))
    record = json.dumps({"AutoMLJobName": "lin", "AutoMLJobStatus": "InProgress"})
    (root / "job.json").write_text(record)
    with open(root / ".job.lock", "a") as held:  # as the process running the job holds it
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="is still running"):
            AutoMLJob.resume(root, 10).run()
    assert (root / "job.json").read_text() == record


def test_the_service_refuses_bad_resumes_as_sagemaker_would(tmp_path: Path) -> None:
    """AddTags with mlpilot:ResumeWithSeconds: errors before anything runs (an in-process
    service over its store, with jobs that never ran)."""
    from mlpilot.service import Service, ServiceConfig, ServiceError

    service = Service(ServiceConfig(data_dir=tmp_path / "data", max_concurrent_jobs=1))
    service.config.staging_dir.mkdir()  # what opening the service makes (no runners here)

    def job(name: str, status: str, kind: str = "Tabular") -> str:
        arn = service.config.arn("automl-job", name)
        record = {"AutoMLJobName": name, "AutoMLJobArn": arn, "AutoMLJobStatus": status}
        record["AutoMLProblemTypeConfigName"] = kind
        service.store.insert_job(
            {
                "name": name,
                "arn": arn,
                "status": status,
                "secondary_status": status,
                "created": 1.0,
                "modified": 1.0,
                "record": record,
                "api_version": "V2",
                "local_root": str(tmp_path / name),
                "output_root": str(tmp_path / name),
                "stop_requested": False,
            }
        )
        return arn

    running = job("running", "InProgress")
    forecast = job("series", "Completed", "TimeSeriesForecasting")
    gone = job("gone", "Completed")  # its folder no longer holds the job

    def refused(arn: str, *tags: tuple[str, str]) -> tuple[str, str]:
        request = {"ResourceArn": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags]}
        with pytest.raises(ServiceError) as caught:
            service.call("AddTags", request)
        return caught.value.code, caught.value.message

    seconds = "mlpilot:ResumeWithSeconds"
    nope = running.replace("running", "nope")
    assert refused(nope, (seconds, "60")) == (
        "ResourceNotFound",
        "Amazon SageMaker can't find an AutoML job called nope.",
    )
    for value in ("0", "-5", "1.5", "soon"):
        code, message = refused(gone, (seconds, value))
        assert code == "ValidationException" and f"got {value!r}" in message
    code, message = refused(gone, (seconds, "60"), ("mlpilot:ResumeMaxCandidates", "0"))
    assert code == "ValidationException" and "from 1 to 750" in message
    code, message = refused(gone, ("team", "ml"))
    assert code == "ValidationException" and "mlpilot keeps no other tags" in message
    endpoint = service.config.arn("endpoint", "e")
    code, message = refused(endpoint, (seconds, "60"))
    assert code == "ValidationException" and "only on an AutoML job's ARN" in message
    code, message = refused(running, (seconds, "60"))
    assert code == "ValidationException"
    assert message.startswith("The AutoML job running is InProgress")
    code, message = refused(forecast, (seconds, "60"))
    assert code == "ValidationException" and "only tabular jobs can be resumed" in message
    code, message = refused(gone, (seconds, "60"))
    assert code == "ValidationException" and message.startswith("Cannot resume: ")
    assert service.store.get_job("gone")["status"] == "Completed"  # left as it was

    # A resume accepted waits in the queue (the one slot is taken by "running"); stopped
    # there, it never ran and the job is again as it was, saying why.
    done = job("done", "Completed")
    root = tmp_path / "done"
    root.mkdir()
    spec = JobConfig.tabular(name="done", training_data="d.csv", output_path=str(root), target="y")
    (root / "spec.json").write_text(json.dumps(spec.to_dict()))
    earlier = {"AutoMLJobName": "done", "AutoMLJobStatus": "Completed", "EndTime": 2.0}
    earlier |= {"AutoMLJobSecondaryStatus": "MaxCandidatesReached", "Mlpilot": {"Seed": 1}}
    (root / "job.json").write_text(json.dumps(earlier))
    tags = [{"Key": seconds, "Value": "90"}, {"Key": "mlpilot:ResumeMaxCandidates", "Value": "2"}]
    assert service.call("AddTags", {"ResourceArn": done, "Tags": tags}) == {"Tags": tags}
    queued, headers = service.answer("DescribeAutoMLJobV2", {"AutoMLJobName": "done"})
    assert (queued["AutoMLJobStatus"], queued["AutoMLJobSecondaryStatus"]) == (
        "InProgress",
        "Starting",
    )
    assert "EndTime" not in queued
    assert headers["x-mlpilot-queue-position"] == "1"
    assert headers["x-mlpilot-resumes"] == "1" and headers["x-mlpilot-resume-seconds"] == "90"
    assert headers["x-mlpilot-resume-max-candidates"] == "2"
    assert json.loads((tmp_path / "data" / "jobs" / ".done.spec.json").read_text()) == {
        "Resume": {"Seconds": 90, "MaxCandidates": 2}
    }
    service.call("StopAutoMLJob", {"AutoMLJobName": "done"})
    ended, headers = service.answer("DescribeAutoMLJobV2", {"AutoMLJobName": "done"})
    assert ended["AutoMLJobSecondaryStatus"] == "MaxCandidatesReached"
    assert ended["EndTime"] == 2.0 and "x-mlpilot-resumes" not in headers
    (reason, *_) = ended["PartialFailureReasons"]
    assert reason["PartialFailureMessage"] == "The resume did not run: stopped while queued"
    assert json.loads((root / "job.json").read_text()) == earlier
    service.store.close()
