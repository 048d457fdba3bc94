"""The SageMaker-compatible service, driven by real clients (boto3, raw HTTP) against a real
``mlpilot serve`` on 127.0.0.1."""

from __future__ import annotations

import json
import tarfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from helpers_data import TELCO
from helpers_service import ROLE, ServiceProcess, automl_request, wait_for

# Left out of `make test-fast`: the service in a subprocess, running jobs.
pytestmark = pytest.mark.slow

CHURN = TELCO


@pytest.fixture(scope="module")
def churn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("churn-in")
    table = pd.read_csv(CHURN, dtype=str, keep_default_na=False).sample(400, random_state=1)
    table.to_csv(folder / "train.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    server = ServiceProcess(tmp_path_factory.mktemp("svc") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sm(service: ServiceProcess) -> Any:
    return service.boto()


@pytest.fixture(scope="module")
def finished_job(
    service: ServiceProcess, sm: Any, churn_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One small job, run to the end, shared by the read-only tests."""
    out = tmp_path_factory.mktemp("out")
    sm.create_auto_ml_job_v2(
        **automl_request("churn-small", str(churn_dir), str(out), reports=True)
    )
    seen = set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        record = sm.describe_auto_ml_job_v2(AutoMLJobName="churn-small")
        seen.add(record["AutoMLJobSecondaryStatus"])
        if record["AutoMLJobStatus"] not in ("InProgress", "Stopping"):
            break
        time.sleep(0.2)
    return {"record": record, "seen": seen, "out": out}


# -- a job, end to end ------------------------------------------------------------------------
def test_job_completes_with_best_candidate_and_model(finished_job: dict[str, Any]) -> None:
    record = finished_job["record"]
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    assert record["AutoMLJobSecondaryStatus"] in ("Completed", "MaxCandidatesReached")
    assert (
        record["AutoMLJobArn"] == "arn:aws:sagemaker:us-east-1:000000000000:automl-job/churn-small"
    )
    assert {"ModelTuning", "Completed"} <= finished_job["seen"] | {"Completed"}
    resolved = record["ResolvedAttributes"]
    assert resolved["AutoMLJobObjective"]["MetricName"] == "F1"
    tabular = resolved["AutoMLProblemTypeResolvedAttributes"]["TabularResolvedAttributes"]
    assert tabular["ProblemType"] == "BinaryClassification"
    best = record["BestCandidate"]
    assert best["ObjectiveStatus"] == "Succeeded"
    assert 0 < best["FinalAutoMLJobObjectiveMetric"]["Value"] <= 1
    (container,) = best["InferenceContainers"]
    assert container["Image"].startswith("mlpilot/tabular-inference:")
    archive = Path(container["ModelDataUrl"])
    assert archive.is_relative_to(finished_job["out"] / "churn-small")
    with tarfile.open(archive) as tar:
        assert "mlpilot-model.json" in tar.getnames()
    locations = best["CandidateProperties"]["CandidateArtifactLocations"]
    assert locations["Explainability"].startswith(str(finished_job["out"]))
    # Timestamps are datetimes to boto3 (epoch numbers on the wire), in order.
    assert record["CreationTime"] <= record["EndTime"]


def test_candidates_listed_sorted_and_paged(sm: Any, finished_job: dict[str, Any]) -> None:
    listed = sm.list_candidates_for_auto_ml_job(
        AutoMLJobName="churn-small", SortBy="FinalObjectiveMetricValue", SortOrder="Descending"
    )["Candidates"]
    assert len(listed) == 3
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in listed]
    assert values == sorted(values, reverse=True)
    best = finished_job["record"]["BestCandidate"]
    assert listed[0]["CandidateName"] == best["CandidateName"]
    # The best candidate's entry carries its packaged model, like BestCandidate.
    assert listed[0]["InferenceContainers"][0]["ModelDataUrl"].endswith("model.tar.gz")
    names, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = sm.list_candidates_for_auto_ml_job(
            AutoMLJobName="churn-small", MaxResults=1, SortBy="CreationTime", **kwargs
        )
        names += [c["CandidateName"] for c in page["Candidates"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(names) == sorted(c["CandidateName"] for c in listed)
    one = sm.list_candidates_for_auto_ml_job(
        AutoMLJobName="churn-small", CandidateNameEquals=names[0]
    )["Candidates"]
    assert [c["CandidateName"] for c in one] == [names[0]]
    assert (
        sm.list_candidates_for_auto_ml_job(AutoMLJobName="churn-small", StatusEquals="Failed")[
            "Candidates"
        ]
        == []
    )


def test_v1_api_creates_and_describes(
    service: ServiceProcess, sm: Any, churn_dir: Path, tmp_path: Path, finished_job: dict[str, Any]
) -> None:
    sm.create_auto_ml_job(
        AutoMLJobName="churn-v1",
        InputDataConfig=[
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(churn_dir)}},
                "TargetAttributeName": "Churn",
            }
        ],
        OutputDataConfig={"S3OutputPath": str(tmp_path)},
        ProblemType="BinaryClassification",
        AutoMLJobObjective={"MetricName": "AUC"},
        AutoMLJobConfig={
            "CompletionCriteria": {"MaxCandidates": 2},
            "Mode": "HYPERPARAMETER_TUNING",
            "CandidateGenerationConfig": {
                "AlgorithmsConfig": [{"AutoMLAlgorithms": ["linear-learner"]}]
            },
        },
        RoleArn=ROLE,
        # The V1 shapes are what this test is about; the shared V2 job has the reports.
        Tags=[{"Key": "mlpilot:GenerateReports", "Value": "false"}],
    )
    record = wait_for(sm, "churn-v1", ("Completed", "Failed", "Stopped"), v1=True)
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    assert record["InputDataConfig"][0]["TargetAttributeName"] == "Churn"
    assert record["ResolvedAttributes"]["ProblemType"] == "BinaryClassification"
    assert record["ResolvedAttributes"]["AutoMLJobObjective"] == {"MetricName": "AUC"}
    assert record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "AUC"
    # And the V2 view of the same job.
    v2 = sm.describe_auto_ml_job_v2(AutoMLJobName="churn-v1")
    assert v2["AutoMLProblemTypeConfig"]["TabularJobConfig"]["TargetAttributeName"] == "Churn"
    # A V2 job described through V1.
    v1_view = sm.describe_auto_ml_job(AutoMLJobName="churn-small")
    assert v1_view["InputDataConfig"][0]["TargetAttributeName"] == "Churn"


def test_list_jobs_filters_sorts_pages(sm: Any, finished_job: dict[str, Any]) -> None:
    names = [j["AutoMLJobName"] for j in sm.list_auto_ml_jobs()["AutoMLJobSummaries"]]
    assert "churn-small" in names
    assert names == sorted(names, reverse=True)  # default: Name, Descending
    found = sm.list_auto_ml_jobs(NameContains="SMALL")["AutoMLJobSummaries"]
    assert [j["AutoMLJobName"] for j in found] == ["churn-small"]
    assert found[0]["AutoMLJobStatus"] == "Completed"
    assert (
        sm.list_auto_ml_jobs(StatusEquals="Failed", NameContains="small")["AutoMLJobSummaries"]
        == []
    )
    # The next whole second: some botocore versions send timestamps in whole seconds, which
    # would put the job's own creation time after the one sent.
    created = finished_job["record"]["CreationTime"].replace(microsecond=0)
    later = sm.list_auto_ml_jobs(CreationTimeAfter=created + timedelta(seconds=1))[
        "AutoMLJobSummaries"
    ]
    assert "churn-small" not in [j["AutoMLJobName"] for j in later]
    page = sm.list_auto_ml_jobs(MaxResults=1, SortBy="CreationTime", SortOrder="Ascending")
    assert len(page["AutoMLJobSummaries"]) == 1
    if len(names) > 1:
        assert "NextToken" in page


# -- validation: every rule, with its exact error code ------------------------------------------
def _base(**changes: Any) -> dict[str, Any]:
    request = automl_request("bad-job", "/tmp/no-such-input-folder", "/tmp/out")
    request.update(changes)
    return request


def _tabular(**changes: Any) -> dict[str, Any]:
    request = _base()
    request["AutoMLProblemTypeConfig"]["TabularJobConfig"].update(changes)
    return request


BAD_REQUESTS = [
    # (operation, body, code, message fragment)
    (
        "CreateAutoMLJobV2",
        _base(AutoMLJobName="x" * 33),
        "ValidationException",
        "length less than or equal to 32",
    ),
    (
        "CreateAutoMLJobV2",
        _base(AutoMLJobName="bad_name"),
        "ValidationException",
        "regular expression pattern",
    ),
    (
        "CreateAutoMLJobV2",
        _base(RoleArn="not-an-arn-but-long-enough"),
        "ValidationException",
        "roleArn",
    ),
    (
        "CreateAutoMLJobV2",
        {k: v for k, v in _base().items() if k != "RoleArn"},
        "ValidationException",
        "Member must not be null",
    ),
    ("CreateAutoMLJobV2", _tabular(Mode="FAST"), "ValidationException", "enum value set"),
    (
        "CreateAutoMLJobV2",
        _base(Tags=[{"Key": "mlpilot:MaxLatencyMs", "Value": "fast"}]),
        "ValidationException",
        "Tag mlpilot:MaxLatencyMs: expected a positive number of milliseconds",
    ),
    (
        "CreateAutoMLJobV2",
        _base(Tags=[{"Key": "mlpilot:CostMatrix", "Value": "no=0:1/yes=5"}]),
        "ValidationException",
        "Tag mlpilot:CostMatrix: costs must be a 2x2 matrix",
    ),
    (
        "CreateAutoMLJobV2",
        _base(Tags=[{"Key": "mlpilot:CostMatrix", "Value": "/tmp/../etc/costs.json"}]),
        "ValidationException",
        "'..' path segments are not accepted",
    ),
    (
        "CreateAutoMLJobV2",
        _base(Tags=[{"Key": "mlpilot:Portfolio", "Value": "/tmp/../etc/portfolio.json"}]),
        "ValidationException",
        "Tag mlpilot:Portfolio '/tmp/../etc/portfolio.json': '..' path segments",
    ),
    (
        "CreateAutoMLJobV2",
        _base(Tags=[{"Key": "mlpilot:Portfolio", "Value": "/no/such/portfolio.json"}]),
        "ValidationException",
        "Portfolio /no/such/portfolio.json: cannot read it",
    ),
    (
        "CreateAutoMLJobV2",
        _base(
            Tags=[
                {"Key": "mlpilot:SensitiveAttribute", "Value": "gender"},
                {"Key": "mlpilot:MaxDisparity", "Value": "1.5"},
            ]
        ),
        "ValidationException",
        "The maximum disparity must be between 0 and 1; got 1.5",
    ),
    ("CreateAutoMLJobV2", _tabular(ProblemType="Ranking"), "ValidationException", "enum value set"),
    (
        "CreateAutoMLJobV2",
        _tabular(CompletionCriteria={"MaxCandidates": 0}),
        "ValidationException",
        "greater than or equal to 1",
    ),
    (
        "CreateAutoMLJobV2",
        _tabular(CompletionCriteria={"MaxCandidates": 751}),
        "ValidationException",
        "less than or equal to 750",
    ),
    (
        "CreateAutoMLJobV2",
        _tabular(CompletionCriteria={"MaxCandidates": "3"}),
        "SerializationException",
        "integer",
    ),
    (
        "CreateAutoMLJobV2",
        _base(AutoMLJobObjective={"MetricName": "Bogus"}),
        "ValidationException",
        "enum value set",
    ),
    (
        "CreateAutoMLJobV2",
        _tabular(ProblemType="Regression") | {"AutoMLJobObjective": {"MetricName": "F1"}},
        "ValidationException",
        "F1",
    ),
    (
        "CreateAutoMLJobV2",
        _base(AutoMLProblemTypeConfig={"ImageClassificationJobConfig": {}}),
        "ValidationException",
        "tabular",
    ),
    (
        "CreateAutoMLJobV2",
        _base(
            AutoMLProblemTypeConfig={
                "TabularJobConfig": {"TargetAttributeName": "y"},
                "ImageClassificationJobConfig": {},
            }
        ),
        "ValidationException",
        "exactly one member",
    ),
    (
        "CreateAutoMLJobV2",
        _base(AutoMLJobInputDataConfig=[]),
        "ValidationException",
        "greater than or equal to 1",
    ),
    (
        "CreateAutoMLJobV2",
        _base(
            AutoMLJobInputDataConfig=[
                {
                    "ChannelType": "validation",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/tmp/x"}},
                }
            ]
        ),
        "ValidationException",
        "exactly one training channel",
    ),
    (
        "CreateAutoMLJobV2",
        _base(
            AutoMLJobInputDataConfig=[
                {
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "AugmentedManifestFile", "S3Uri": "/tmp/x"}
                    }
                }
            ]
        ),
        "ValidationException",
        "AugmentedManifestFile",
    ),
    (
        "CreateAutoMLJobV2",
        _base(
            AutoMLJobInputDataConfig=[
                {
                    "ContentType": "application/json",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/tmp/x"}},
                }
            ]
        ),
        "ValidationException",
        "ContentType",
    ),
    (
        "CreateAutoMLJobV2",
        _base(
            AutoMLJobInputDataConfig=[
                {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "ftp://x/y"}}}
            ]
        ),
        "ValidationException",
        "regular expression pattern",
    ),
    (
        "CreateAutoMLJobV2",
        _base(DataSplitConfig={"ValidationFraction": 0.0}),
        "ValidationException",
        "ValidationFraction",
    ),
    (
        "CreateAutoMLJobV2",
        _base(DataSplitConfig={"ValidationFraction": 1.5}),
        "ValidationException",
        "less than or equal to 1",
    ),
    (
        "CreateAutoMLJobV2",
        _base(
            AutoMLJobInputDataConfig=[
                {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/tmp/a"}}},
                {
                    "ChannelType": "validation",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/tmp/b"}},
                },
            ],
            DataSplitConfig={"ValidationFraction": 0.2},
        ),
        "ValidationException",
        "not both",
    ),
    (
        "CreateAutoMLJobV2",
        _tabular(Mode="AUTO"),
        "ValidationException",
        "AlgorithmsConfig cannot be set when Mode is AUTO",
    ),
    (
        "CreateAutoMLJobV2",
        _tabular(
            CandidateGenerationConfig={"AlgorithmsConfig": [{"AutoMLAlgorithms": ["deepar"]}]}
        ),
        "ValidationException",
        "time-series",
    ),
    (
        "CreateAutoMLJobV2",
        _tabular(
            CandidateGenerationConfig={"AlgorithmsConfig": [{"AutoMLAlgorithms": ["random"]}]}
        ),
        "ValidationException",
        "enum value set",
    ),
    (
        "CreateAutoMLJobV2",
        _base(ModelDeployConfig={"AutoGenerateEndpointName": True, "EndpointName": "ep"}),
        "ValidationException",
        "not both",
    ),
    (
        "CreateAutoMLJobV2",
        _base(ModelDeployConfig={"AutoGenerateEndpointName": False}),
        "ValidationException",
        "EndpointName is required",
    ),
    (
        "CreateAutoMLJobV2",
        _base(OutputDataConfig={"S3OutputPath": "https://bucket.s3.amazonaws.com/out"}),
        "ValidationException",
        "S3OutputPath",
    ),
    (
        "CreateAutoMLJobV2",
        _base(OutputDataConfig={"S3OutputPath": "relative/out"}),
        "ValidationException",
        "regular expression pattern",
    ),
    ("CreateAutoMLJobV2", _base(), "ValidationException", "no-such-input-folder"),
    (
        "CreateAutoMLJobV2",
        _base(Tags=[{"Key": "k" * 129, "Value": "v"}]),
        "ValidationException",
        "length less than or equal to 128",
    ),
    (
        "CreateAutoMLJob",
        {
            "AutoMLJobName": "v1-bad",
            "InputDataConfig": [
                {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/tmp/a"}},
                    "TargetAttributeName": "a",
                },
                {
                    "ChannelType": "validation",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/tmp/b"}},
                    "TargetAttributeName": "b",
                },
            ],
            "OutputDataConfig": {"S3OutputPath": "/tmp/o"},
            "RoleArn": ROLE,
        },
        "ValidationException",
        "same TargetAttributeName",
    ),
    (
        "DescribeAutoMLJobV2",
        {"AutoMLJobName": "nope"},
        "ResourceNotFound",
        "can't find an AutoML job called nope",
    ),
    ("DescribeAutoMLJob", {"AutoMLJobName": "nope"}, "ResourceNotFound", "nope"),
    ("StopAutoMLJob", {"AutoMLJobName": "nope"}, "ResourceNotFound", "nope"),
    ("ListCandidatesForAutoMLJob", {"AutoMLJobName": "nope"}, "ResourceNotFound", "nope"),
    (
        "ListCandidatesForAutoMLJob",
        {"AutoMLJobName": "x", "MaxResults": 301},
        "ValidationException",
        "less than or equal to 300",
    ),
    (
        "ListCandidatesForAutoMLJob",
        {"AutoMLJobName": "x", "SortBy": "Speed"},
        "ValidationException",
        "enum value set",
    ),
    ("ListAutoMLJobs", {"NextToken": "garbage"}, "ValidationException", "pagination token"),
    ("ListAutoMLJobs", {"MaxResults": 101}, "ValidationException", "less than or equal to 100"),
    (
        "ListAutoMLJobs",
        {"NameContains": "a b"},
        "ValidationException",
        "regular expression pattern",
    ),
    ("ListAutoMLJobs", {"StatusEquals": "Running"}, "ValidationException", "enum value set"),
    ("ListAutoMLJobs", [1, 2], "SerializationException", "JSON object"),
    ("ListAutoMLJobs", b"{not json", "SerializationException", "not valid JSON"),
    (
        "DescribeTrainingJob",
        {"TrainingJobName": "x"},
        "UnknownOperationException",
        "DescribeTrainingJob",
    ),
]


@pytest.mark.parametrize(
    ("operation", "body", "code", "fragment"),
    BAD_REQUESTS,
    ids=[f"{i}-{r[0]}-{r[2]}" for i, r in enumerate(BAD_REQUESTS)],
)
def test_bad_request_gets_exact_error(
    service: ServiceProcess, operation: str, body: Any, code: str, fragment: str
) -> None:
    response = service.raw(operation, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert response.headers.get("x-amzn-RequestId")
    error = response.json()
    assert error["__type"] == code, error
    assert fragment.lower() in error["message"].lower(), error["message"]
    assert error["Message"] == error["message"]


def test_errors_reach_boto3_as_modeled_exceptions(service: ServiceProcess, sm: Any) -> None:
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_auto_ml_job_v2(AutoMLJobName="does-not-exist")
    with pytest.raises(ClientError) as caught:
        sm.describe_auto_ml_job_v2(AutoMLJobName="x" * 40)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert (
        service.raw("x", {}, target="Wrong.Thing").json()["__type"] == "UnknownOperationException"
    )


def test_user_objective_runs_only_from_an_allowed_module(
    sm: Any, churn_dir: Path, tmp_path: Path
) -> None:
    # This service was started without --allow-objective-module: no user metric runs.
    request = automl_request("user-metric", str(churn_dir), str(tmp_path))
    request["Tags"] += [
        {"Key": "mlpilot:Objective", "Value": "os.path:exists"},
        {"Key": "mlpilot:ObjectiveDirection", "Value": "Maximize"},
    ]
    with pytest.raises(ClientError) as caught:
        sm.create_auto_ml_job_v2(**request)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "module os.path is not allowed by this service (allowed: none" in error["Message"]
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_auto_ml_job_v2(AutoMLJobName="user-metric")


def test_duplicate_name_is_resource_in_use(
    sm: Any, churn_dir: Path, tmp_path: Path, finished_job: dict[str, Any]
) -> None:
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_auto_ml_job_v2(**automl_request("churn-small", str(churn_dir), str(tmp_path)))


def test_stopping_an_ended_job_is_a_validation_error(sm: Any, finished_job: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as caught:
        sm.stop_auto_ml_job(AutoMLJobName="churn-small")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


# -- stop, failure, limits ----------------------------------------------------------------------
def test_stop_keeps_the_best_candidate(
    service: ServiceProcess, sm: Any, churn_dir: Path, tmp_path: Path
) -> None:
    request = automl_request(
        "churn-stop", str(churn_dir), str(tmp_path), max_candidates=200, runtime=300
    )
    sm.create_auto_ml_job_v2(**request)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        record = sm.describe_auto_ml_job_v2(AutoMLJobName="churn-stop")
        if "BestCandidate" in record:
            break
        time.sleep(0.3)
    assert "BestCandidate" in record, record
    sm.stop_auto_ml_job(AutoMLJobName="churn-stop")
    assert sm.describe_auto_ml_job_v2(AutoMLJobName="churn-stop")["AutoMLJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    # Ended by the request, far short of its 300 s budget and 200 candidates.
    record = wait_for(sm, "churn-stop", ("Stopped", "Completed", "Failed"), timeout=60)
    assert record["AutoMLJobStatus"] == "Stopped", record
    assert record["AutoMLJobSecondaryStatus"] == "Stopped"
    archive = Path(record["BestCandidate"]["InferenceContainers"][0]["ModelDataUrl"])
    assert archive.exists()


def test_unusable_data_fails_the_job_with_its_reason(
    sm: Any, tmp_path: Path, finished_job: dict[str, Any]
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n1,2\n3,4\n")
    sm.create_auto_ml_job_v2(**automl_request("no-target", str(data), str(tmp_path / "out")))
    record = wait_for(sm, "no-target", ("Failed", "Completed"), timeout=90)
    assert record["AutoMLJobStatus"] == "Failed"
    assert record["AutoMLJobSecondaryStatus"] == "Failed"
    assert "Churn" in record["FailureReason"]
    assert "EndTime" in record


def test_jobs_over_the_limit_queue_and_a_full_queue_is_resource_limit_exceeded(
    tmp_path: Path, churn_dir: Path
) -> None:
    from mlpilot.service import Service, ServiceConfig, ServiceError, Store

    config = ServiceConfig(data_dir=tmp_path / "data", max_concurrent_jobs=1, max_queued_jobs=1)
    service = Service(config)
    service.open()
    try:
        first = automl_request(
            "limit-1", str(churn_dir), str(tmp_path), runtime=120, max_candidates=500
        )
        service.call("CreateAutoMLJobV2", first)
        service.call("CreateAutoMLJobV2", {**first, "AutoMLJobName": "limit-2"})
        queued = service.call("DescribeAutoMLJobV2", {"AutoMLJobName": "limit-2"})
        assert (queued["AutoMLJobStatus"], queued["AutoMLJobSecondaryStatus"]) == (
            "InProgress",
            "Starting",
        )
        assert service.jobs.queue_position("limit-2") == 1
        assert service.jobs.queue_position("limit-1") is None
        _, headers = service.answer("DescribeAutoMLJob", {"AutoMLJobName": "limit-2"})
        assert headers == {"x-mlpilot-queue-position": "1", "x-mlpilot-queue-length": "1"}
        assert service.answer("DescribeAutoMLJobV2", {"AutoMLJobName": "limit-1"})[1] == {}
        with pytest.raises(ServiceError) as caught:
            service.call("CreateAutoMLJobV2", {**first, "AutoMLJobName": "limit-3"})
        assert caught.value.code == "ResourceLimitExceeded"
        assert "queued AutoML jobs' is 1 jobs" in caught.value.message
        # A queued job stops at once, without ever starting.
        service.call("StopAutoMLJob", {"AutoMLJobName": "limit-2"})
        stopped = service.call("DescribeAutoMLJobV2", {"AutoMLJobName": "limit-2"})
        assert stopped["AutoMLJobStatus"] == "Stopped"
        assert "EndTime" in stopped
        assert service.store.get_job("limit-2")["runner_pid"] is None
        assert not (tmp_path / "limit-2").exists()
    finally:
        service.close()  # stops the job it runs, which keeps its best candidate so far
    store = Store(config.database_url)
    assert store.get_job("limit-1")["status"] in ("Stopped", "Failed")
    store.close()


# -- the AWS CLI ----------------------------------------------------------------------------------
def _aws(service: ServiceProcess, *args: str, env: dict[str, str] | None = None) -> str:
    import subprocess
    import sys

    from helpers_service import client_env

    result = subprocess.run(
        [sys.executable, "-m", "awscli", *args, "--endpoint-url", service.url],
        capture_output=True,
        text=True,
        env=env or client_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_aws_cli_describe_and_query(service: ServiceProcess, finished_job: dict[str, Any]) -> None:
    status = _aws(
        service,
        "sagemaker",
        "describe-auto-ml-job-v2",
        "--auto-ml-job-name",
        "churn-small",
        "--query",
        "AutoMLJobStatus",
        "--output",
        "text",
    )
    assert status == "Completed"
    best = finished_job["record"]["BestCandidate"]
    name = _aws(
        service,
        "sagemaker",
        "describe-auto-ml-job-v2",
        "--auto-ml-job-name",
        "churn-small",
        "--query",
        "BestCandidate.CandidateName",
        "--output",
        "text",
    )
    assert name == best["CandidateName"]
    metric = json.loads(
        _aws(
            service,
            "sagemaker",
            "describe-auto-ml-job-v2",
            "--auto-ml-job-name",
            "churn-small",
            "--query",
            "BestCandidate.FinalAutoMLJobObjectiveMetric",
        )
    )
    assert metric["MetricName"] == "F1"
    assert metric["Value"] == pytest.approx(best["FinalAutoMLJobObjectiveMetric"]["Value"])
    listed = json.loads(_aws(service, "sagemaker", "list-auto-ml-jobs", "--max-items", "50"))
    assert "churn-small" in [j["AutoMLJobName"] for j in listed["AutoMLJobSummaries"]]


# -- resume (mlpilot's extension: AddTags with mlpilot:ResumeWithSeconds) ------------------------
# Last in the module: it adds candidates to the shared job the tests above read.
def _candidates(sm: Any, name: str) -> dict[str, dict[str, Any]]:
    listed = sm.list_candidates_for_auto_ml_job(AutoMLJobName=name, MaxResults=100)
    return {c["CandidateName"]: c for c in listed["Candidates"]}


def test_resume_keeps_every_candidate_and_adds_new_ones(
    service: ServiceProcess, sm: Any, finished_job: dict[str, Any]
) -> None:
    """``mlpilot run --resume NAME --endpoint-url`` (AddTags with mlpilot:ResumeWithSeconds):
    the job is InProgress again, cannot be resumed twice at once, and ends with its earlier
    candidates and a new one."""
    import threading

    from typer.testing import CliRunner

    from mlpilot.cli.main import app

    before = _candidates(sm, "churn-small")
    arn = finished_job["record"]["AutoMLJobArn"]
    resume = [{"Key": "mlpilot:ResumeWithSeconds", "Value": "60"}]
    with pytest.raises(ClientError) as caught:
        sm.add_tags(ResourceArn=arn.replace("churn-small", "nope"), Tags=resume)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as caught:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "mlpilot:ResumeWithSeconds", "Value": "0"}])
    assert caught.value.response["Error"]["Code"] == "ValidationException"

    results = []
    command = ["run", "--resume", "churn-small", "--endpoint-url", service.url]
    command += ["--max-runtime", "60", "--max-candidates", "1"]
    cli = threading.Thread(target=lambda: results.append(CliRunner().invoke(app, command)))
    cli.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = sm.describe_auto_ml_job_v2(AutoMLJobName="churn-small")
        headers = running["ResponseMetadata"]["HTTPHeaders"]
        if running["AutoMLJobStatus"] == "InProgress" and "x-mlpilot-resumes" in headers:
            break
        time.sleep(0.1)
    assert running["AutoMLJobStatus"] == "InProgress" and "EndTime" not in running
    assert headers["x-mlpilot-resumes"] == "1"
    assert headers["x-mlpilot-resume-seconds"] == "60"
    assert headers["x-mlpilot-resume-max-candidates"] == "1"
    with pytest.raises(ClientError) as caught:  # not twice at once
        sm.add_tags(ResourceArn=arn, Tags=resume)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "only a job that has ended" in caught.value.response["Error"]["Message"]
    cli.join(timeout=120)
    (result,) = results
    assert result.exit_code == 0, result.output
    assert "candidates 3 → 4" in result.output
    record = sm.describe_auto_ml_job_v2(AutoMLJobName="churn-small")
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    after = _candidates(sm, "churn-small")
    best_before = finished_job["record"]["BestCandidate"]["CandidateName"]
    assert all(after[name] == c for name, c in before.items() if name != best_before)
    (new,) = sorted(set(after) - set(before))
    assert max(_trial(n) for n in before) < _trial(new)
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in after.values()]
    assert record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["Value"] == max(values)


def _trial(name: str) -> int:
    return int(name.rsplit("-", 2)[1])
