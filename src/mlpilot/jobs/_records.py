"""Candidate and job records in the shapes of SageMaker's AutoMLCandidate and
DescribeAutoMLJobV2, plus an ``Mlpilot`` block with what SageMaker has no field for."""

from __future__ import annotations

import time
from typing import Any

from mlpilot._version import __version__
from mlpilot.metrics import get_metric

__all__ = ["INFERENCE_IMAGE", "arn", "candidate_record", "inference_container", "objective_block"]

INFERENCE_IMAGE = f"mlpilot/tabular-inference:{__version__}"


def arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name}"


def objective_block(metric_name: str, value: float) -> dict[str, Any]:
    """``FinalAutoMLJobObjectiveMetric``: LogLoss and InferenceLatency are not in
    AutoMLMetricEnum, so they appear only as StandardMetricName."""
    metric = get_metric(metric_name)
    block: dict[str, Any] = {"Type": metric.direction, "Value": float(value)}
    if metric.in_metric_enum:
        block["MetricName"] = metric.name
    block["StandardMetricName"] = metric.name
    return block


def metric_data(metrics: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for name, value in metrics.items():
        datum: dict[str, Any] = {
            "StandardMetricName": name,
            "Value": float(value),
            "Set": "Validation",
        }
        if get_metric(name).in_metric_enum:
            datum = {"MetricName": name, **datum}
        out.append(datum)
    return out[:40]


def inference_container(
    model_data_url: str, problem_is_classification: bool, candidate: str
) -> dict[str, Any]:
    supported = (
        "predicted_label,probability,labels,probabilities"
        if problem_is_classification
        else "predicted_label"
    )
    return {
        "Image": INFERENCE_IMAGE,
        "ModelDataUrl": model_data_url,
        "Environment": {
            "MODEL_NAME": candidate,
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
            "SAGEMAKER_INFERENCE_SUPPORTED": supported,
            "SAGEMAKER_PROGRAM": "mlpilot-serve",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model",
        },
    }


def candidate_record(
    *,
    name: str,
    status: str,
    objective: str,
    region: str,
    account: str,
    processing_job: str,
    created: float,
    ended: float | None = None,
    objective_value: float | None = None,
    metrics: dict[str, float] | None = None,
    failure_reason: str = "",
    model_data_url: str | None = None,
    classification: bool = True,
    artifacts: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One candidate as ``AutoMLCandidate`` (+ ``Mlpilot`` details)."""
    record: dict[str, Any] = {
        "CandidateName": name,
        "ObjectiveStatus": "Succeeded"
        if objective_value is not None
        else ("Pending" if status == "InProgress" else "Failed"),
        "CandidateSteps": [
            {
                "CandidateStepType": "AWS::SageMaker::ProcessingJob",
                "CandidateStepArn": arn(region, account, "processing-job", processing_job),
                "CandidateStepName": processing_job,
            },
            {
                "CandidateStepType": "AWS::SageMaker::TrainingJob",
                "CandidateStepArn": arn(region, account, "training-job", name[:63]),
                "CandidateStepName": name[:64],
            },
        ],
        "CandidateStatus": status,
        "CreationTime": created,
        "LastModifiedTime": ended or time.time(),
    }
    if objective_value is not None:
        record["FinalAutoMLJobObjectiveMetric"] = objective_block(objective, objective_value)
    if ended is not None:
        record["EndTime"] = ended
    if failure_reason:
        record["FailureReason"] = failure_reason[:1024]
    if model_data_url:
        record["InferenceContainers"] = [inference_container(model_data_url, classification, name)]
    properties: dict[str, Any] = {}
    if artifacts:
        properties["CandidateArtifactLocations"] = artifacts
    if metrics:
        properties["CandidateMetrics"] = metric_data(metrics)
    if properties:
        record["CandidateProperties"] = properties
    if extra:
        record["Mlpilot"] = extra
    return record
