"""Job and candidate records: typed while the job runs, rendered in SageMaker's shapes in one
module (DescribeAutoMLJobV2, DescribeAutoMLJob, ListAutoMLJobs' summaries, AutoMLCandidate)."""

from __future__ import annotations

from typing import Any

from mlpilot._types import CandidateStatus, JobStatus, SecondaryStatus
from mlpilot.config import JobConfig
from mlpilot.jobs import CandidateRecord, JobRecord, describe_v1, echo_request, job_summary


def candidate(**changes: Any) -> CandidateRecord:
    values: dict[str, Any] = {
        "name": "churn-lightgbm-001-abc",
        "status": CandidateStatus.COMPLETED,
        "objective": "LogLoss",
        "region": "eu-west-1",
        "account": "123456789012",
        "processing_job": "churn-pr-1-0123",
        "created": 10.0,
        "modified": 12.0,
        "ended": 12.0,
        "objective_value": 0.41,
        "metrics": {"LogLoss": 0.41, "F1": 0.6},
        "details": {"Algorithm": "lightgbm"},
    }
    values.update(changes)
    return CandidateRecord(**values)


def test_a_candidate_renders_as_automl_candidate() -> None:
    shape = candidate(artifacts={"Explainability": "/x"}).shape()
    assert shape["CandidateStatus"] == "Completed" and shape["ObjectiveStatus"] == "Succeeded"
    # LogLoss is not in AutoMLMetricEnum: only its standard name is given.
    assert shape["FinalAutoMLJobObjectiveMetric"] == {
        "Type": "Minimize",
        "Value": 0.41,
        "StandardMetricName": "LogLoss",
    }
    steps = shape["CandidateSteps"]
    assert steps[0]["CandidateStepArn"] == (
        "arn:aws:sagemaker:eu-west-1:123456789012:processing-job/churn-pr-1-0123"
    )
    assert steps[1]["CandidateStepType"] == "AWS::SageMaker::TrainingJob"
    metrics = shape["CandidateProperties"]["CandidateMetrics"]
    assert {"MetricName": "F1", "StandardMetricName": "F1", "Value": 0.6, "Set": "Validation"} in (
        metrics
    )
    assert shape["CandidateProperties"]["CandidateArtifactLocations"] == {"Explainability": "/x"}
    assert shape["Mlpilot"] == {"Algorithm": "lightgbm"}
    assert "InferenceContainers" not in shape and "FailureReason" not in shape
    running = candidate(status=CandidateStatus.IN_PROGRESS, objective_value=None, ended=None)
    assert running.shape()["ObjectiveStatus"] == "Pending" and "EndTime" not in running.shape()
    failed = candidate(
        status=CandidateStatus.FAILED, objective_value=None, failure_reason="x" * 2000
    )
    assert failed.shape()["ObjectiveStatus"] == "Failed"
    assert len(failed.shape()["FailureReason"]) == 1024


def test_a_job_renders_as_describe_v2_with_its_request_echoed() -> None:
    config = JobConfig.tabular(
        name="churn", training_data="/d.csv", output_path="/out/churn", target="Churn"
    )
    record = JobRecord(
        request=echo_request({**config.to_request(), "Tags": [{"Key": "k", "Value": "v"}]}),
        arn="arn:aws:sagemaker:us-east-1:000000000000:automl-job/churn",
        config_name="Tabular",
        created=1.0,
        modified=2.0,
    )
    shape = record.shape()
    assert "Tags" not in shape  # Describe does not repeat them
    assert shape["AutoMLProblemTypeConfig"]["TabularJobConfig"]["TargetAttributeName"] == "Churn"
    assert (
        shape["AutoMLJobStatus"] == "InProgress" and shape["AutoMLJobSecondaryStatus"] == "Starting"
    )
    assert "BestCandidate" not in shape and "PartialFailureReasons" not in shape
    for n in range(7):
        record.add_partial_failure(f"failure {n}")
    record.best = candidate()
    record.status, record.secondary = JobStatus.COMPLETED, SecondaryStatus.COMPLETED
    record.notes["Seed"] = 0
    shape = record.shape()
    assert [p["PartialFailureMessage"] for p in shape["PartialFailureReasons"]] == [
        f"failure {n}" for n in range(5)
    ]
    assert shape["BestCandidate"] == candidate().shape()
    assert shape["Mlpilot"] == {"Seed": 0}
    # The rendering is a copy: changing it does not change the job.
    shape["Mlpilot"]["Seed"] = 9
    assert record.notes["Seed"] == 0
    assert job_summary(shape) == {
        k: shape[k]
        for k in (
            "AutoMLJobName",
            "AutoMLJobArn",
            "AutoMLJobStatus",
            "AutoMLJobSecondaryStatus",
            "CreationTime",
            "LastModifiedTime",
            "PartialFailureReasons",
        )
    }


def test_a_v2_job_describes_in_v1_shape() -> None:
    config = JobConfig.tabular(
        name="churn",
        training_data="/d.csv",
        output_path="/out/churn",
        target="Churn",
        sample_weight="w",
        problem_type="BinaryClassification",
        mode="ENSEMBLING",
        max_candidates=5,
    )
    record = JobRecord(
        request=echo_request(config.to_request()),
        arn="arn:aws:sagemaker:us-east-1:000000000000:automl-job/churn",
        config_name="Tabular",
        created=1.0,
        modified=2.0,
        resolved={
            "AutoMLJobObjective": {"MetricName": "F1"},
            "CompletionCriteria": {"MaxCandidates": 5},
            "AutoMLProblemTypeResolvedAttributes": {
                "TabularResolvedAttributes": {"ProblemType": "BinaryClassification"}
            },
        },
    ).shape()
    v1 = describe_v1(record, None)
    (channel,) = v1["InputDataConfig"]
    assert channel["TargetAttributeName"] == "Churn" and channel["SampleWeightAttributeName"] == "w"
    assert v1["ProblemType"] == "BinaryClassification"
    assert v1["AutoMLJobConfig"] == {
        "CompletionCriteria": {"MaxCandidates": 5},
        "Mode": "ENSEMBLING",
    }
    assert v1["ResolvedAttributes"] == {
        "AutoMLJobObjective": {"MetricName": "F1"},
        "CompletionCriteria": {"MaxCandidates": 5},
        "ProblemType": "BinaryClassification",
    }
    assert v1["AutoMLJobStatus"] == "InProgress" and "AutoMLProblemTypeConfig" not in v1
    # A job created through V1 repeats its own request.
    given = {"AutoMLJobName": "churn", "InputDataConfig": [], "Tags": [{"Key": "k", "Value": "v"}]}
    assert describe_v1(record, given)["InputDataConfig"] == [] and "Tags" not in describe_v1(
        record, given
    )
