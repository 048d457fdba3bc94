"""A job's and its candidates' records: typed inside, SageMaker's shapes outside.

:class:`JobRecord` and :class:`CandidateRecord` are what the job updates as it runs; this module
alone renders them (and the records the service keeps) in the API's shapes:
DescribeAutoMLJobV2 (:meth:`JobRecord.shape`), DescribeAutoMLJob (:func:`describe_v1`),
ListAutoMLJobs' summaries (:func:`job_summary`), AutoMLCandidate and ListCandidatesForAutoMLJob's
members (:meth:`CandidateRecord.shape`). What SageMaker has no member for goes in an ``Mlpilot``
block.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from mlpilot._types import CandidateStatus, JobStatus, SecondaryStatus
from mlpilot._version import __version__
from mlpilot.metrics import in_metric_enum, objective_direction

__all__ = [
    "INFERENCE_IMAGE",
    "CandidateRecord",
    "JobRecord",
    "arn",
    "describe_v1",
    "echo_request",
    "inference_container",
    "job_summary",
    "objective_block",
]

INFERENCE_IMAGE = f"mlpilot/tabular-inference:{__version__}"
#: SageMaker keeps this many PartialFailureReasons.
MAX_PARTIAL_FAILURES = 5
#: What CreateAutoMLJobV2 echoes back in DescribeAutoMLJobV2.
_V2_ECHO = (
    "AutoMLJobName",
    "AutoMLJobInputDataConfig",
    "OutputDataConfig",
    "RoleArn",
    "AutoMLJobObjective",
    "AutoMLProblemTypeConfig",
    "ModelDeployConfig",
    "DataSplitConfig",
    "SecurityConfig",
    "AutoMLComputeConfig",
)
#: The members of ListAutoMLJobs' summaries.
_SUMMARY = (
    "AutoMLJobName",
    "AutoMLJobArn",
    "AutoMLJobStatus",
    "AutoMLJobSecondaryStatus",
    "CreationTime",
    "EndTime",
    "LastModifiedTime",
    "FailureReason",
    "PartialFailureReasons",
)
#: DescribeAutoMLJob (V1) members taken from the V2 record as they are.
_V1_COPIED = (
    "AutoMLJobArn",
    "CreationTime",
    "EndTime",
    "LastModifiedTime",
    "FailureReason",
    "PartialFailureReasons",
    "BestCandidate",
    "AutoMLJobStatus",
    "AutoMLJobSecondaryStatus",
    "AutoMLJobArtifacts",
    "ModelDeployResult",
)


def arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name}"


def objective_block(metric_name: str, value: float) -> dict[str, Any]:
    """``FinalAutoMLJobObjectiveMetric``: LogLoss, InferenceLatency and a job's own objective
    (``ExpectedCost``, a user metric) are not in AutoMLMetricEnum, so they appear only as
    StandardMetricName."""
    maximize = objective_direction(metric_name)
    block: dict[str, Any] = {"Type": "Maximize" if maximize else "Minimize", "Value": float(value)}
    if in_metric_enum(metric_name):
        block["MetricName"] = metric_name
    block["StandardMetricName"] = metric_name
    return block


def metric_data(metrics: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for name, value in metrics.items():
        datum: dict[str, Any] = {
            "StandardMetricName": name,
            "Value": float(value),
            "Set": "Validation",
        }
        if in_metric_enum(name):
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


# -- candidates ----------------------------------------------------------------------------
@dataclass
class CandidateRecord:
    """One candidate, as the job tracks it (:meth:`shape`: SageMaker's AutoMLCandidate)."""

    name: str
    status: CandidateStatus
    #: The job's objective metric.
    objective: str
    region: str
    account: str
    #: The data-analysis step every candidate shares (CandidateSteps' processing job).
    processing_job: str
    created: float
    modified: float
    ended: float | None = None
    objective_value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    failure_reason: str = ""
    #: ``InferenceContainers`` once the candidate has a model to serve.
    containers: list[dict[str, Any]] = field(default_factory=list)
    #: ``CandidateProperties.CandidateArtifactLocations``.
    artifacts: dict[str, str] = field(default_factory=dict)
    #: The ``Mlpilot`` block: algorithm, hyperparameters, timings, ensemble members...
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.status is CandidateStatus.COMPLETED

    @property
    def algorithm(self) -> str | None:
        value = self.details.get("Algorithm")
        return None if value is None else str(value)

    def shape(self) -> dict[str, Any]:
        """``AutoMLCandidate`` (+ ``Mlpilot``)."""
        record: dict[str, Any] = {
            "CandidateName": self.name,
            "ObjectiveStatus": "Succeeded"
            if self.objective_value is not None
            else ("Pending" if self.status is CandidateStatus.IN_PROGRESS else "Failed"),
            "CandidateSteps": [
                {
                    "CandidateStepType": "AWS::SageMaker::ProcessingJob",
                    "CandidateStepArn": arn(
                        self.region, self.account, "processing-job", self.processing_job
                    ),
                    "CandidateStepName": self.processing_job,
                },
                {
                    "CandidateStepType": "AWS::SageMaker::TrainingJob",
                    "CandidateStepArn": arn(
                        self.region, self.account, "training-job", self.name[:63]
                    ),
                    "CandidateStepName": self.name[:64],
                },
            ],
            "CandidateStatus": self.status.value,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        }
        if self.objective_value is not None:
            record["FinalAutoMLJobObjectiveMetric"] = objective_block(
                self.objective, self.objective_value
            )
        if self.ended is not None:
            record["EndTime"] = self.ended
        if self.failure_reason:
            record["FailureReason"] = self.failure_reason[:1024]
        if self.containers:
            record["InferenceContainers"] = copy.deepcopy(self.containers)
        properties: dict[str, Any] = {}
        if self.artifacts:
            properties["CandidateArtifactLocations"] = dict(self.artifacts)
        if self.metrics:
            properties["CandidateMetrics"] = metric_data(self.metrics)
        if properties:
            record["CandidateProperties"] = properties
        if self.details:
            record["Mlpilot"] = copy.deepcopy(self.details)
        return record

    @classmethod
    def from_shape(cls, shape: dict[str, Any], *, objective: str) -> CandidateRecord:
        """The record :meth:`shape` rendered, read back (a resumed job's earlier candidates):
        ``from_shape(c.shape()).shape() == c.shape()``."""
        steps = shape.get("CandidateSteps") or [{}]
        processing_arn = str(steps[0].get("CandidateStepArn", ""))
        # arn:aws:sagemaker:<region>:<account>:processing-job/<name>
        parts = processing_arn.split(":")
        region, account = (parts[3], parts[4]) if len(parts) > 5 else ("", "")
        properties = shape.get("CandidateProperties") or {}
        metrics = {
            m["StandardMetricName"]: m["Value"] for m in properties.get("CandidateMetrics", [])
        }
        value = (shape.get("FinalAutoMLJobObjectiveMetric") or {}).get("Value")
        return cls(
            name=shape["CandidateName"],
            status=CandidateStatus(shape["CandidateStatus"]),
            objective=objective,
            region=region,
            account=account,
            processing_job=str(steps[0].get("CandidateStepName", "")),
            created=shape["CreationTime"],
            modified=shape["LastModifiedTime"],
            ended=shape.get("EndTime"),
            objective_value=value,
            metrics=metrics,
            failure_reason=shape.get("FailureReason", ""),
            containers=copy.deepcopy(shape.get("InferenceContainers", [])),
            artifacts=dict(properties.get("CandidateArtifactLocations", {})),
            details=copy.deepcopy(shape.get("Mlpilot", {})),
        )


# -- jobs ----------------------------------------------------------------------------------
@dataclass
class JobRecord:
    """One job, as it runs (:meth:`shape`: SageMaker's DescribeAutoMLJobV2)."""

    #: The CreateAutoMLJobV2 members Describe repeats (:func:`echo_request`).
    request: dict[str, Any]
    arn: str
    #: ``AutoMLProblemTypeConfigName``.
    config_name: str
    created: float
    modified: float
    status: JobStatus = JobStatus.IN_PROGRESS
    secondary: SecondaryStatus = SecondaryStatus.STARTING
    ended: float | None = None
    failure_reason: str = ""
    partial_failures: list[str] = field(default_factory=list)
    #: ``ResolvedAttributes`` once the data is analysed.
    resolved: dict[str, Any] | None = None
    #: ``AutoMLJobArtifacts`` once the data is analysed (the notebooks' locations).
    artifacts: dict[str, str] | None = None
    best: CandidateRecord | None = None
    #: The ``Mlpilot`` block: profile, notes, reports, timings.
    notes: dict[str, Any] = field(default_factory=dict)

    def add_partial_failure(self, message: str) -> None:
        if len(self.partial_failures) < MAX_PARTIAL_FAILURES:
            self.partial_failures.append(message[:1024])

    def shape(self) -> dict[str, Any]:
        """``DescribeAutoMLJobV2`` (+ ``Mlpilot``)."""
        record: dict[str, Any] = {
            **copy.deepcopy(self.request),
            "AutoMLJobArn": self.arn,
            "AutoMLProblemTypeConfigName": self.config_name,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "AutoMLJobStatus": self.status.value,
            "AutoMLJobSecondaryStatus": self.secondary.value,
        }
        if self.ended is not None:
            record["EndTime"] = self.ended
        if self.failure_reason:
            record["FailureReason"] = self.failure_reason[:1024]
        if self.partial_failures:
            record["PartialFailureReasons"] = [
                {"PartialFailureMessage": m} for m in self.partial_failures
            ]
        if self.resolved is not None:
            record["ResolvedAttributes"] = copy.deepcopy(self.resolved)
        if self.artifacts is not None:
            record["AutoMLJobArtifacts"] = dict(self.artifacts)
        if self.best is not None:
            record["BestCandidate"] = self.best.shape()
        if self.notes:
            record["Mlpilot"] = copy.deepcopy(self.notes)
        return record

    @classmethod
    def from_shape(cls, shape: dict[str, Any], *, objective: str) -> JobRecord:
        """The record :meth:`shape` rendered, read back (a resumed job's)."""
        best = shape.get("BestCandidate")
        partial = shape.get("PartialFailureReasons", [])
        return cls(
            request=echo_request(shape),
            arn=shape["AutoMLJobArn"],
            config_name=shape["AutoMLProblemTypeConfigName"],
            created=shape["CreationTime"],
            modified=shape["LastModifiedTime"],
            status=JobStatus(shape["AutoMLJobStatus"]),
            secondary=SecondaryStatus(shape["AutoMLJobSecondaryStatus"]),
            ended=shape.get("EndTime"),
            failure_reason=shape.get("FailureReason", ""),
            partial_failures=[p["PartialFailureMessage"] for p in partial],
            resolved=copy.deepcopy(shape.get("ResolvedAttributes")),
            artifacts=(
                None
                if shape.get("AutoMLJobArtifacts") is None
                else dict(shape["AutoMLJobArtifacts"])
            ),
            best=None if not best else CandidateRecord.from_shape(best, objective=objective),
            notes=copy.deepcopy(shape.get("Mlpilot", {})),
        )


def echo_request(request: dict[str, Any]) -> dict[str, Any]:
    """The CreateAutoMLJobV2 request's members that DescribeAutoMLJobV2 repeats."""
    return {k: copy.deepcopy(request[k]) for k in _V2_ECHO if k in request}


def job_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A DescribeAutoMLJobV2 record as ListAutoMLJobs' ``AutoMLJobSummary``."""
    return {k: record[k] for k in _SUMMARY if k in record}


def describe_v1(record: dict[str, Any], v1_request: dict[str, Any] | None) -> dict[str, Any]:
    """A DescribeAutoMLJobV2 record in DescribeAutoMLJob's (V1) shape: the V1 request as given
    (``v1_request``) or, for a job created through V2, the V1 request it amounts to."""
    request = copy.deepcopy(v1_request) if v1_request is not None else _v1_request_of(record)
    out = {k: v for k, v in request.items() if k != "Tags"}
    for key in _V1_COPIED:
        if key in record:
            out[key] = record[key]
    resolved = record.get("ResolvedAttributes")
    if resolved:
        v1_resolved: dict[str, Any] = {}
        for key in ("AutoMLJobObjective", "CompletionCriteria"):
            if key in resolved:
                v1_resolved[key] = resolved[key]
        problem = (
            resolved.get("AutoMLProblemTypeResolvedAttributes", {})
            .get("TabularResolvedAttributes", {})
            .get("ProblemType")
        )
        if problem:
            v1_resolved["ProblemType"] = problem
        out["ResolvedAttributes"] = v1_resolved
    return out


def _v1_request_of(record: dict[str, Any]) -> dict[str, Any]:
    """The CreateAutoMLJob (V1) request a V2 tabular job's record amounts to."""
    tabular = record["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    channels = []
    for c in record["AutoMLJobInputDataConfig"]:
        channel = {**c, "TargetAttributeName": tabular["TargetAttributeName"]}
        if tabular.get("SampleWeightAttributeName"):
            channel["SampleWeightAttributeName"] = tabular["SampleWeightAttributeName"]
        channels.append(channel)
    job_config: dict[str, Any] = {
        k: tabular[k] for k in ("CompletionCriteria", "Mode") if k in tabular
    }
    generation: dict[str, Any] = {}
    if tabular.get("FeatureSpecificationS3Uri"):
        generation["FeatureSpecificationS3Uri"] = tabular["FeatureSpecificationS3Uri"]
    if (tabular.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig"):
        generation["AlgorithmsConfig"] = tabular["CandidateGenerationConfig"]["AlgorithmsConfig"]
    if generation:
        job_config["CandidateGenerationConfig"] = generation
    for key in ("DataSplitConfig", "SecurityConfig"):
        if record.get(key):
            job_config[key] = record[key]
    request: dict[str, Any] = {
        "AutoMLJobName": record["AutoMLJobName"],
        "InputDataConfig": channels,
        "OutputDataConfig": record["OutputDataConfig"],
        "RoleArn": record["RoleArn"],
    }
    if tabular.get("ProblemType"):
        request["ProblemType"] = tabular["ProblemType"]
    if job_config:
        request["AutoMLJobConfig"] = job_config
    if tabular.get("GenerateCandidateDefinitionsOnly") is not None:
        request["GenerateCandidateDefinitionsOnly"] = tabular["GenerateCandidateDefinitionsOnly"]
    for key in ("AutoMLJobObjective", "ModelDeployConfig"):
        if record.get(key):
            request[key] = record[key]
    return request
