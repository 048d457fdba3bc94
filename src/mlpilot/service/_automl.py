"""The AutoML operations: CreateAutoMLJob[V2], DescribeAutoMLJob[V2], ListAutoMLJobs,
StopAutoMLJob, ListCandidatesForAutoMLJob, and AddTags on a job's ARN: mlpilot's resume
(``mlpilot:ResumeWithSeconds``; SageMaker has no operation that continues a job, and a tag is
what an unmodified boto3 or AWS CLI can send).

Requests arrive already checked against botocore's shapes (:mod:`._shapes`); the job's spec
(:class:`~mlpilot.config.JobConfig`) is built from them once, checking the rules the shapes
cannot say; this module adds what only the service knows (its deployment options, whether the
input exists). The records are rendered by :mod:`mlpilot.jobs`; jobs themselves run in their
own processes (:mod:`._jobs`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlpilot.config import (
    COST_MATRIX_TAG,
    MAX_CANDIDATES_LIMIT,
    OBJECTIVE_TAG,
    PORTFOLIO_TAG,
    JobConfig,
    cost_matrix_location,
    v2_request,
)
from mlpilot.errors import MlpilotError
from mlpilot.jobs import describe_v1, job_summary
from mlpilot.service._config import ServiceConfig
from mlpilot.service._errors import ServiceError, in_use, not_found, validation
from mlpilot.service._jobs import JobManager
from mlpilot.service._kms import check_kms_key, job_kms_key
from mlpilot.service._listing import list_answer, listing, page_offset
from mlpilot.service._paths import check_uri
from mlpilot.service._store import AlreadyExists, Store

__all__ = ["RESUME_CANDIDATES_TAG", "RESUME_SECONDS_TAG", "AutoMLOperations"]

#: AddTags on an ended job's ARN with this tag resumes it for that many more seconds.
RESUME_SECONDS_TAG = "mlpilot:ResumeWithSeconds"
#: With it, at most this many new candidates (default: the job's MaxCandidates).
RESUME_CANDIDATES_TAG = "mlpilot:ResumeMaxCandidates"


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
        try:
            request = v2_request(params)
        except MlpilotError as exc:
            raise validation(str(exc)) from None
        return self._create(request, api_version="V1", v1_request=params)

    def _create(
        self, request: dict[str, Any], *, api_version: str, v1_request: dict[str, Any] | None
    ) -> dict[str, Any]:
        name = request["AutoMLJobName"]
        if self.store.get_job(name) is not None:
            raise in_use(f"Job name {name} is already in use: AutoML job names must be unique")
        output_root, local_root = self.jobs.roots(request)
        self._check_document_tags(request)
        try:
            config = JobConfig.from_request(
                request,
                output_path=str(local_root),
                region=self.config.region,
                account_id=self.config.account_id,
                parallelism=self.config.job_parallelism or None,
            )
        except MlpilotError as exc:
            raise validation(str(exc)) from None
        self._check_objective_module(config)
        check_kms_key(
            self.config, request["OutputDataConfig"].get("KmsKeyId"), "OutputDataConfig.KmsKeyId"
        )
        _check_deploy(request.get("ModelDeployConfig"))
        _check_overlap(request)
        _check_inputs(request)
        arn = self.config.arn("automl-job", name)
        try:
            self.jobs.start(
                request,
                config,
                arn=arn,
                api_version=api_version,
                v1_request=v1_request,
                output_root=output_root,
                local_root=local_root,
            )
        except AlreadyExists:
            raise in_use(f"Job name {name} is already in use") from None
        return {"AutoMLJobArn": arn}

    def _check_document_tags(self, request: dict[str, Any]) -> None:
        """A cost matrix tag that names its JSON document's location, and a portfolio tag, are
        held to the rules of a request's other URIs (no ``..``; local paths inside the allowed
        roots) before the job's spec reads them."""
        for tag in request.get("Tags") or ():
            value = str(tag.get("Value", "")).strip()
            if tag.get("Key") == COST_MATRIX_TAG and cost_matrix_location(value):
                check_uri(value, f"Tag {COST_MATRIX_TAG}", self.config.uri_roots)
            if tag.get("Key") == PORTFOLIO_TAG and value:
                check_uri(value, f"Tag {PORTFOLIO_TAG}", self.config.uri_roots)

    def _check_objective_module(self, config: JobConfig) -> None:
        """A user metric runs only from the modules the service's operator allowed."""
        function = getattr(config.problem, "objective_function", None)
        if function is None or function.allowed_by(self.config.objective_modules):
            return
        allowed = ", ".join(self.config.objective_modules) or "none"
        raise validation(
            f"Tag {OBJECTIVE_TAG}: module {function.module} is not allowed by this service "
            f"(allowed: {allowed}; its operator allows modules with mlpilot serve "
            "--allow-objective-module)"
        )

    # -- describe -------------------------------------------------------------------------
    def DescribeAutoMLJobV2(self, params: dict[str, Any]) -> dict[str, Any]:
        row = self._job(params["AutoMLJobName"])
        return dict(row["record"])

    def DescribeAutoMLJob(self, params: dict[str, Any]) -> dict[str, Any]:
        row = self._job(params["AutoMLJobName"])
        return describe_v1(row["record"], row.get("v1_request"))

    def _job(self, name: str) -> dict[str, Any]:
        row = self.store.get_job(name)
        if row is None:
            raise _not_found(name)
        return row

    # -- list -----------------------------------------------------------------------------
    def ListAutoMLJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        page = self.store.list_jobs(**listing(params, default_sort="Name"))
        summaries = [job_summary(row["record"]) for row in page.rows]
        return list_answer("AutoMLJobSummaries", summaries, page.next_token)

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

    def ListTags(self, params: dict[str, Any]) -> dict[str, Any]:
        """The tags an AutoML job was created with (mlpilot keeps tags for jobs only): what
        ``mlpilot retrain`` repeats on a challenger job."""
        arn = params["ResourceArn"]
        if ":automl-job/" not in arn:
            raise validation(f"mlpilot keeps tags for AutoML jobs only; {arn} is not one")
        row = self.store.job_by_arn(arn)
        if row is None:
            raise _not_found(arn.rsplit("/", 1)[-1])
        tags: list[dict[str, str]] = []
        for spec in (Path(row["local_root"]) / "spec.json", self.jobs.spec_file(row["name"])):
            try:
                found = json.loads(spec.read_text()).get("tags")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(found, list):
                tags = found
                break
        return {"Tags": tags}

    # -- resume ---------------------------------------------------------------------------
    def AddTags(self, params: dict[str, Any]) -> dict[str, Any]:
        """Resume an ended job: ``mlpilot:ResumeWithSeconds=S`` (and optionally
        ``mlpilot:ResumeMaxCandidates=N``) on its ARN. The tags are acted on, not kept: the
        resume shows in the job's ``Mlpilot.Resuming`` / ``Mlpilot.Resumes``."""
        arn = params["ResourceArn"]
        tags = {tag["Key"]: tag.get("Value", "") for tag in params["Tags"]}
        if ":automl-job/" not in arn:
            raise validation(
                f"mlpilot takes AddTags only on an AutoML job's ARN, with the tag "
                f"{RESUME_SECONDS_TAG} to resume the job; {arn} is not one"
            )
        others = sorted(set(tags) - {RESUME_SECONDS_TAG, RESUME_CANDIDATES_TAG})
        if others or RESUME_SECONDS_TAG not in tags:
            what = f"tag key(s) {', '.join(others)}" if others else f"no {RESUME_SECONDS_TAG}"
            raise validation(
                f"AddTags on an AutoML job takes {RESUME_SECONDS_TAG} (the seconds to resume it "
                f"for) and optionally {RESUME_CANDIDATES_TAG}; mlpilot keeps no other tags after "
                f"creation; got {what}"
            )
        seconds = _whole(tags[RESUME_SECONDS_TAG], RESUME_SECONDS_TAG, 1, _MAX_RESUME_SECONDS)
        max_candidates = None
        if RESUME_CANDIDATES_TAG in tags:
            max_candidates = _whole(
                tags[RESUME_CANDIDATES_TAG], RESUME_CANDIDATES_TAG, 1, MAX_CANDIDATES_LIMIT
            )
        row = self.store.job_by_arn(arn)
        if row is None:
            name = arn.rsplit("/", 1)[-1]
            raise _not_found(name)
        name = row["name"]
        if row["status"] not in ("Completed", "Failed", "Stopped"):
            raise validation(
                f"The AutoML job {name} is {row['status']} (secondary status "
                f"{row['secondary_status']}); only a job that has ended (Completed, Stopped or "
                "Failed) can be resumed"
            )
        kind = row["record"].get("AutoMLProblemTypeConfigName", "Tabular")
        if kind != "Tabular":
            raise validation(
                f"The AutoML job {name} is a {kind} job; only tabular jobs can be resumed"
            )
        if job_kms_key(row):
            raise validation(
                f"The AutoML job {name} encrypted its output with OutputDataConfig.KmsKeyId; "
                "mlpilot does not resume jobs with encrypted output"
            )
        from mlpilot.jobs import AutoMLJob

        try:
            AutoMLJob.resumable(row["local_root"], seconds, max_candidates=max_candidates)
        except MlpilotError as exc:
            raise validation(str(exc)) from None
        self.jobs.resume(name, seconds, max_candidates)
        return {"Tags": params["Tags"]}

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


#: The most seconds one resume may add (SageMaker's longest AutoML job: 30 days).
_MAX_RESUME_SECONDS = 30 * 24 * 3600


def _whole(text: str, key: str, low: int, high: int) -> int:
    """A tag's value as a whole number in [low, high], or a ValidationException."""
    value = text.strip()
    if not value.isdigit() or not low <= int(value) <= high:
        raise validation(f"Tag {key}: expected a whole number from {low} to {high}; got {text!r}")
    return int(value)


# -- what only the service checks --------------------------------------------------------------
def _check_deploy(deploy: dict[str, Any] | None) -> None:
    """ModelDeployConfig: the service deploys the best model when the job ends."""
    if deploy is None:
        return
    auto = deploy.get("AutoGenerateEndpointName", False)
    if auto and deploy.get("EndpointName"):
        raise validation(
            "ModelDeployConfig: set AutoGenerateEndpointName or EndpointName, not both"
        )
    if not auto and not deploy.get("EndpointName"):
        raise validation(
            "ModelDeployConfig: EndpointName is required when AutoGenerateEndpointName is false"
        )


def _location(uri: str) -> tuple[str, tuple[str, ...]] | None:
    """(scheme, path parts) of an S3 URI, ``file://`` URI or local path; None if unreadable."""
    from mlpilot.data import split_uri

    try:
        scheme, path = split_uri(uri)
    except MlpilotError:
        return None
    if scheme == "file":
        path = os.path.realpath(path)
    return scheme, tuple(part for part in path.split("/") if part)


def _check_overlap(request: dict[str, Any]) -> None:
    """The output location must not lie inside an input prefix (nor the job's output folder
    hold an input): the job would read its own output as training data."""
    output = request["OutputDataConfig"]["S3OutputPath"]
    out = _location(output)
    job = _location(f"{output.rstrip('/')}/{request['AutoMLJobName']}")
    if out is None or job is None:
        return
    for channel in request["AutoMLJobInputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            continue  # a manifest names its files; the output cannot add to them
        data = _location(source["S3Uri"])
        if data is None or data[0] != out[0]:
            continue
        inside = out[1][: len(data[1])] == data[1]
        holds = data[1][: len(job[1])] == job[1]
        if inside or holds:
            where = (
                f"S3OutputPath {output} lies inside"
                if inside
                else f"The job's output folder under S3OutputPath {output} holds"
            )
            raise validation(
                f"{where} the input S3Uri {source['S3Uri']} of the "
                f"{channel.get('ChannelType', 'training')} channel: the job would read its "
                "own output as input data; choose an output location outside the input"
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
