"""The AutoML operations: CreateAutoMLJob[V2], DescribeAutoMLJob[V2], ListAutoMLJobs,
StopAutoMLJob, ListCandidatesForAutoMLJob.

Requests arrive already checked against botocore's shapes (:mod:`._shapes`); this module adds
the rules the shapes cannot say (which combinations are valid, what must exist) and turns
between the V1 and V2 shapes. Jobs themselves run in their own processes (:mod:`._jobs`).
"""

from __future__ import annotations

import copy
from typing import Any

from mlpilot.service._config import ServiceConfig
from mlpilot.service._errors import ServiceError, in_use, not_found, validation
from mlpilot.service._jobs import JobManager
from mlpilot.service._listing import list_answer, listing, page_offset
from mlpilot.service._store import AlreadyExists, Store

__all__ = ["AutoMLOperations"]

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
    "Tags",
)
_TIME_SERIES_ALGORITHMS = frozenset({"cnn-qr", "deepar", "prophet", "npts", "arima", "ets"})
_CONTENT_TYPES = ("text/csv;header=present", "text/csv", "x-application/vnd.amazon+parquet")
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


def _not_found(name: str) -> ServiceError:
    return not_found(f"Amazon SageMaker can't find an AutoML job called {name}.")


class AutoMLOperations:
    def __init__(self, config: ServiceConfig, store: Store, jobs: JobManager) -> None:
        self.config = config
        self.store = store
        self.jobs = jobs

    # -- create ---------------------------------------------------------------------------
    def CreateAutoMLJobV2(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._create(params, api_version="V2", v1_request=None)

    def CreateAutoMLJob(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._create(v1_to_v2(params), api_version="V1", v1_request=params)

    def _create(
        self, request: dict[str, Any], *, api_version: str, v1_request: dict[str, Any] | None
    ) -> dict[str, Any]:
        name = request["AutoMLJobName"]
        check_request(request)
        if self.store.get_job(name) is not None:
            raise in_use(f"Job name {name} is already in use: AutoML job names must be unique")
        from mlpilot.config import JobConfig
        from mlpilot.errors import MlpilotError

        output_root, local_root = self.jobs.roots(request)
        try:
            JobConfig.from_request(request, output_path=str(local_root))
        except MlpilotError as exc:
            raise validation(str(exc)) from None
        _check_inputs(request)
        arn = self.config.arn("automl-job", name)
        try:
            self.jobs.start(
                request,
                arn=arn,
                api_version=api_version,
                v1_request=v1_request,
                output_root=output_root,
                local_root=local_root,
            )
        except AlreadyExists:
            raise in_use(f"Job name {name} is already in use") from None
        return {"AutoMLJobArn": arn}

    # -- describe -------------------------------------------------------------------------
    def DescribeAutoMLJobV2(self, params: dict[str, Any]) -> dict[str, Any]:
        row = self._job(params["AutoMLJobName"])
        return dict(row["record"])

    def DescribeAutoMLJob(self, params: dict[str, Any]) -> dict[str, Any]:
        row = self._job(params["AutoMLJobName"])
        return v2_record_to_v1(row["record"], row.get("v1_request"))

    def _job(self, name: str) -> dict[str, Any]:
        row = self.store.get_job(name)
        if row is None:
            raise _not_found(name)
        return row

    # -- list -----------------------------------------------------------------------------
    def ListAutoMLJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        page = self.store.list_jobs(**listing(params, default_sort="Name"))
        records = [row["record"] for row in page.rows]
        return list_answer("AutoMLJobSummaries", records, page.next_token, _SUMMARY)

    def ListCandidatesForAutoMLJob(self, params: dict[str, Any]) -> dict[str, Any]:
        self._job(params["AutoMLJobName"])
        page = self.store.list_candidates(
            params["AutoMLJobName"],
            status=params.get("StatusEquals"),
            name=params.get("CandidateNameEquals"),
            sort_by=params.get("SortBy"),
            descending=params.get("SortOrder", "Ascending") == "Descending",
            offset=page_offset(params),
            limit=params.get("MaxResults", 10),
        )
        return list_answer("Candidates", [r["record"] for r in page.rows], page.next_token)

    # -- stop -----------------------------------------------------------------------------
    def StopAutoMLJob(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["AutoMLJobName"]
        row = self._job(name)
        if row["status"] in ("Completed", "Failed", "Stopped"):
            raise validation(
                f"The AutoML job {name} has already ended (status {row['status']}); only "
                "InProgress jobs can be stopped"
            )
        self.jobs.stop(name)
        return {}


# -- rules the shapes cannot state ------------------------------------------------------------
def check_request(request: dict[str, Any]) -> None:
    problem = request["AutoMLProblemTypeConfig"]
    kinds = [k for k, v in problem.items() if v is not None]
    if kinds != ["TabularJobConfig"]:
        raise validation(
            f"mlpilot runs tabular AutoML jobs only (TabularJobConfig); got {', '.join(kinds)}"
        )
    tabular = problem["TabularJobConfig"]
    channels = request["AutoMLJobInputDataConfig"]
    types = [c.get("ChannelType", "training") for c in channels]
    if types.count("training") != 1 or types.count("validation") > 1:
        raise validation(
            "AutoMLJobInputDataConfig must have exactly one training channel and at most one "
            f"validation channel; got {types}"
        )
    contents = {c.get("ContentType") or "text/csv;header=present" for c in channels}
    if len(contents) > 1:
        raise validation(
            f"The training and validation channels must have the same ContentType; got {contents}"
        )
    for content in contents:
        if content not in _CONTENT_TYPES:
            raise validation(
                f"ContentType {content!r} is not supported for tabular jobs; use "
                "'text/csv;header=present' or 'x-application/vnd.amazon+parquet'"
            )
    for channel in channels:
        data_type = channel["DataSource"]["S3DataSource"]["S3DataType"]
        if data_type == "AugmentedManifestFile":
            raise validation("S3DataType AugmentedManifestFile is not valid for tabular jobs")
    if "validation" in types and request.get("DataSplitConfig"):
        raise validation("Give either a validation channel or DataSplitConfig, not both")
    fraction = (request.get("DataSplitConfig") or {}).get("ValidationFraction")
    if fraction is not None and not 0 < fraction < 1:
        raise validation(f"ValidationFraction must be between 0 and 1 (exclusive); got {fraction}")
    mode = tabular.get("Mode", "AUTO")
    algorithms_config = (tabular.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig")
    if algorithms_config:
        if mode == "AUTO":
            raise validation(
                "AlgorithmsConfig cannot be set when Mode is AUTO; set Mode to ENSEMBLING or "
                "HYPERPARAMETER_TUNING"
            )
        from mlpilot.algorithms import algorithm_path
        from mlpilot.errors import ConfigError

        for name in algorithms_config[0].get("AutoMLAlgorithms") or []:
            if name in _TIME_SERIES_ALGORITHMS:
                raise validation(f"Algorithm {name} is for time-series forecasting jobs only")
            try:
                algorithm_path(name)
            except ConfigError as exc:
                raise validation(str(exc)) from None
    deploy = request.get("ModelDeployConfig")
    if deploy is not None:
        auto = deploy.get("AutoGenerateEndpointName", False)
        if auto and deploy.get("EndpointName"):
            raise validation(
                "ModelDeployConfig: set AutoGenerateEndpointName or EndpointName, not both"
            )
        if not auto and not deploy.get("EndpointName"):
            raise validation(
                "ModelDeployConfig: EndpointName is required when AutoGenerateEndpointName is false"
            )
    output = request["OutputDataConfig"]["S3OutputPath"]
    if output.startswith("https://"):
        raise validation(
            f"S3OutputPath {output!r}: give an s3:// URI, a file:// URI or an absolute path"
        )


def _check_inputs(request: dict[str, Any]) -> None:
    """The input locations must exist (a clear error now beats a failed job later)."""
    from mlpilot.data import list_objects
    from mlpilot.errors import MlpilotError

    for channel in request["AutoMLJobInputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        try:
            objects = list_objects(source["S3Uri"], data_type=source["S3DataType"])
        except MlpilotError as exc:
            raise validation(str(exc)) from None
        if not objects:
            raise validation(f"No data found at {source['S3Uri']}")


# -- V1 <-> V2 ----------------------------------------------------------------------------------
def v1_to_v2(request: dict[str, Any]) -> dict[str, Any]:
    """A CreateAutoMLJob (V1) request as the CreateAutoMLJobV2 request it amounts to."""
    channels = request["InputDataConfig"]
    targets = {c["TargetAttributeName"] for c in channels}
    if len(targets) != 1:
        raise validation(
            f"Every channel must name the same TargetAttributeName; got {sorted(targets)}"
        )
    weights = {c.get("SampleWeightAttributeName") for c in channels}
    if len(weights) != 1:
        raise validation("Every channel must name the same SampleWeightAttributeName")
    job = request.get("AutoMLJobConfig") or {}
    generation = job.get("CandidateGenerationConfig") or {}
    tabular: dict[str, Any] = {"TargetAttributeName": targets.pop()}
    weight = weights.pop()
    if weight:
        tabular["SampleWeightAttributeName"] = weight
    for key, value in (
        ("ProblemType", request.get("ProblemType")),
        ("CompletionCriteria", job.get("CompletionCriteria")),
        ("Mode", job.get("Mode")),
        ("FeatureSpecificationS3Uri", generation.get("FeatureSpecificationS3Uri")),
        ("GenerateCandidateDefinitionsOnly", request.get("GenerateCandidateDefinitionsOnly")),
    ):
        if value is not None:
            tabular[key] = value
    if generation.get("AlgorithmsConfig") is not None:
        tabular["CandidateGenerationConfig"] = {"AlgorithmsConfig": generation["AlgorithmsConfig"]}
    v2: dict[str, Any] = {
        "AutoMLJobName": request["AutoMLJobName"],
        "AutoMLJobInputDataConfig": [
            {
                k: v
                for k, v in c.items()
                if k in ("ChannelType", "ContentType", "CompressionType", "DataSource")
            }
            for c in channels
        ],
        "OutputDataConfig": request["OutputDataConfig"],
        "AutoMLProblemTypeConfig": {"TabularJobConfig": tabular},
        "RoleArn": request["RoleArn"],
    }
    for key in ("Tags", "AutoMLJobObjective", "ModelDeployConfig"):
        if request.get(key) is not None:
            v2[key] = request[key]
    if job.get("DataSplitConfig") is not None:
        v2["DataSplitConfig"] = job["DataSplitConfig"]
    if job.get("SecurityConfig") is not None:
        v2["SecurityConfig"] = job["SecurityConfig"]
    return v2


def v2_record_to_v1(record: dict[str, Any], v1_request: dict[str, Any] | None) -> dict[str, Any]:
    """A DescribeAutoMLJobV2 record in DescribeAutoMLJob's (V1) shape."""
    tabular = record["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    if v1_request is not None:
        request = copy.deepcopy(v1_request)
    else:
        channels = []
        for c in record["AutoMLJobInputDataConfig"]:
            channel = {**c, "TargetAttributeName": tabular["TargetAttributeName"]}
            if tabular.get("SampleWeightAttributeName"):
                channel["SampleWeightAttributeName"] = tabular["SampleWeightAttributeName"]
            channels.append(channel)
        job_config: dict[str, Any] = {}
        for key in ("CompletionCriteria", "Mode"):
            if key in tabular:
                job_config[key] = tabular[key]
        generation: dict[str, Any] = {}
        if tabular.get("FeatureSpecificationS3Uri"):
            generation["FeatureSpecificationS3Uri"] = tabular["FeatureSpecificationS3Uri"]
        if (tabular.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig"):
            generation["AlgorithmsConfig"] = tabular["CandidateGenerationConfig"][
                "AlgorithmsConfig"
            ]
        if generation:
            job_config["CandidateGenerationConfig"] = generation
        for key in ("DataSplitConfig", "SecurityConfig"):
            if record.get(key):
                job_config[key] = record[key]
        request = {
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
            request["GenerateCandidateDefinitionsOnly"] = tabular[
                "GenerateCandidateDefinitionsOnly"
            ]
        for key in ("AutoMLJobObjective", "ModelDeployConfig"):
            if record.get(key):
                request[key] = record[key]
    out = {k: v for k, v in request.items() if k != "Tags"}
    for key in (
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
    ):
        if key in record:
            out[key] = record[key]
    resolved = record.get("ResolvedAttributes")
    if resolved:
        v1_resolved: dict[str, Any] = {}
        if "AutoMLJobObjective" in resolved:
            v1_resolved["AutoMLJobObjective"] = resolved["AutoMLJobObjective"]
        if "CompletionCriteria" in resolved:
            v1_resolved["CompletionCriteria"] = resolved["CompletionCriteria"]
        problem = (
            resolved.get("AutoMLProblemTypeResolvedAttributes", {})
            .get("TabularResolvedAttributes", {})
            .get("ProblemType")
        )
        if problem:
            v1_resolved["ProblemType"] = problem
        out["ResolvedAttributes"] = v1_resolved
    return out


def echo_request(request: dict[str, Any]) -> dict[str, Any]:
    """The Create request's members that Describe repeats."""
    return {k: copy.deepcopy(request[k]) for k in _V2_ECHO if k in request and k != "Tags"}
