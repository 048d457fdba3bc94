"""``mlpilot jobs list|describe|stop|candidates``: AutoML jobs of a service.

Talks to a running service (``--endpoint-url``, through boto3, exactly as an AWS user would) or,
without one, reads and acts on the service's data folder directly (``--data-dir``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mlpilot.cli._common import FormatOption, fail, one_line_errors
from mlpilot.cli.serve import DEFAULT_DATA_DIR, default_data_dir

app = typer.Typer(
    name="jobs",
    help="List, describe, stop AutoML jobs and list their candidates.",
    no_args_is_help=True,
)

EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="A running mlpilot service (env MLPILOT_ENDPOINT_URL); without it, --data-dir is "
        "read directly.",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        help=f"The service's data folder [env MLPILOT_DATA_DIR; default {DEFAULT_DATA_DIR}].",
    ),
]

JobNameArgument = Annotated[str, typer.Argument(help="The AutoML job's name.")]
#: Added to a queued job's JSON: its place in the queue, {"Position": 3, "Length": 7}.
QUEUE_KEY = "MlpilotQueue"


class ServiceClient:
    """The same operations over HTTP (boto3) or in-process on the data folder."""

    def __init__(self, endpoint_url: str | None, data_dir: Path | None) -> None:
        self.endpoint_url = endpoint_url or os.environ.get("MLPILOT_ENDPOINT_URL")
        self.data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
        self._service: Any = None
        self._boto: Any = None
        #: The mlpilot extension headers of the last answer (lower-case names).
        self.headers: dict[str, str] = {}

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        if self.endpoint_url:
            return self._remote(operation, params)
        return self._local(operation, params)

    def collect(
        self, operation: str, key: str, params: dict[str, Any], *, at_most: int | None = None
    ) -> list[dict[str, Any]]:
        """The ``key`` items of a List operation, page after page (the first ``at_most``)."""
        found: list[dict[str, Any]] = []
        while at_most is None or len(found) < at_most:
            page = self.call(operation, **params, MaxResults=100)
            found += page[key]
            if not page.get("NextToken"):
                break
            params = {**params, "NextToken": page["NextToken"]}
        return found if at_most is None else found[:at_most]

    def _remote(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        import boto3
        import botocore.exceptions

        if self._boto is None:
            session = boto3.session.Session()
            credentials = {}
            if session.get_credentials() is None:  # any key works with an open service
                credentials = {"aws_access_key_id": "mlpilot", "aws_secret_access_key": "mlpilot"}
            self._boto = session.client(
                "sagemaker",
                endpoint_url=self.endpoint_url,
                region_name=session.region_name or "us-east-1",
                config=_retries(),
                **credentials,
            )
        method = getattr(self._boto, _snake(operation))
        try:
            result: dict[str, Any] = method(**params)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise fail(f"{error.get('Code')}: {error.get('Message')}") from None
        except botocore.exceptions.EndpointConnectionError:
            raise fail(f"Cannot reach an mlpilot service at {self.endpoint_url}") from None
        metadata = result.pop("ResponseMetadata", None) or {}
        self.headers = {k.lower(): v for k, v in metadata.get("HTTPHeaders", {}).items()}
        return result

    def _local(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        from mlpilot.service import Service, ServiceConfig, ServiceError

        if not (self.data_dir / "mlpilot.db").exists():
            raise fail(
                f"No mlpilot service data in {self.data_dir}; give --data-dir, or "
                "--endpoint-url of a running service"
            )
        if self._service is None:
            self._service = Service(ServiceConfig(data_dir=self.data_dir))
        try:
            result, self.headers = self._service.answer(operation, params)
        except ServiceError as exc:
            raise fail(f"{exc.code}: {exc.message}") from None
        return dict(result)

    def queue_place(self, name: str) -> dict[str, int] | None:
        """``{"Position", "Length"}`` of a queued job (from the service's extension headers),
        else None."""
        self.call("DescribeAutoMLJobV2", AutoMLJobName=name)
        return _queue_place(self.headers)


def _retries() -> Any:
    """One retry, unless the user configured botocore's: botocore's default (five tries with
    backoff) kept a mistyped or stopped service's "Cannot reach" waiting about eight seconds."""
    import botocore.config

    if os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE"):
        return None
    return botocore.config.Config(retries={"mode": "standard", "max_attempts": 2})


def _queue_place(headers: dict[str, str]) -> dict[str, int] | None:
    from mlpilot.service import QUEUE_LENGTH, QUEUE_POSITION

    position, length = headers.get(QUEUE_POSITION), headers.get(QUEUE_LENGTH)
    if not (position and length and position.isdigit() and length.isdigit()):
        return None
    return {"Position": int(position), "Length": int(length)}


def _waits(job: dict[str, Any]) -> bool:
    """Whether a job may be waiting in the queue (queued jobs are InProgress, Starting)."""
    return job["AutoMLJobStatus"] == "InProgress" and job["AutoMLJobSecondaryStatus"] == "Starting"


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or name[i + 1 : i + 2].islower()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("auto_m_l", "auto_ml")


def _when(value: Any) -> str:
    if value is None:
        return ""
    stamp = value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), tz=UTC)
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _dump(value: Any) -> None:
    typer.echo(json.dumps(value, indent=1, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    return str(value)


@app.command("list")
@one_line_errors
def list_jobs(
    endpoint_url: EndpointOption = None,
    data_dir: DataDirOption = None,
    status: Annotated[str | None, typer.Option(help="Only jobs with this status.")] = None,
    name_contains: Annotated[str | None, typer.Option(help="Only names containing this.")] = None,
    output_format: FormatOption = "table",
) -> None:
    """List AutoML jobs, newest first."""
    client = ServiceClient(endpoint_url, data_dir)
    params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        params["StatusEquals"] = status
    if name_contains:
        params["NameContains"] = name_contains
    jobs = client.collect("ListAutoMLJobs", "AutoMLJobSummaries", params)
    for job in jobs:
        # The summaries cannot say where a job waits; its Describe answer's headers do.
        place = client.queue_place(job["AutoMLJobName"]) if _waits(job) else None
        if place is not None:
            job[QUEUE_KEY] = place
    if output_format == "json":
        return _dump(jobs)
    table = Table("name", "status", "phase", "created", "ended", "failure", box=None)
    for job in jobs:
        place = job.get(QUEUE_KEY)
        table.add_row(
            job["AutoMLJobName"],
            job["AutoMLJobStatus"],
            f"Queued ({place['Position']} of {place['Length']})"
            if place
            else job["AutoMLJobSecondaryStatus"],
            _when(job.get("CreationTime")),
            _when(job.get("EndTime")),
            (job.get("FailureReason") or "")[:60],
        )
    Console().print(table)


@app.command("describe")
@one_line_errors
def describe(
    name: JobNameArgument,
    endpoint_url: EndpointOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print a job as DescribeAutoMLJobV2 returns it (JSON), with its place in the queue
    (MlpilotQueue) while it waits there."""
    client = ServiceClient(endpoint_url, data_dir)
    job = client.call("DescribeAutoMLJobV2", AutoMLJobName=name)
    place = _queue_place(client.headers)
    if place is not None:
        job[QUEUE_KEY] = place
    _dump(job)


@app.command("stop")
@one_line_errors
def stop(
    name: JobNameArgument,
    endpoint_url: EndpointOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Stop a running job; it keeps (and packages) its best candidate so far."""
    ServiceClient(endpoint_url, data_dir).call("StopAutoMLJob", AutoMLJobName=name)
    typer.echo(f"Stopping {name}")


@app.command("candidates")
@one_line_errors
def candidates(
    name: JobNameArgument,
    endpoint_url: EndpointOption = None,
    data_dir: DataDirOption = None,
    status: Annotated[str | None, typer.Option(help="Only candidates with this status.")] = None,
    top: Annotated[int | None, typer.Option(help="Only the best N.")] = None,
    output_format: FormatOption = "table",
) -> None:
    """List a job's candidates, best objective first."""
    client = ServiceClient(endpoint_url, data_dir)
    job = client.call("DescribeAutoMLJobV2", AutoMLJobName=name)
    objective = (job.get("ResolvedAttributes") or {}).get("AutoMLJobObjective", {})
    metric = objective.get("MetricName", "")
    from mlpilot.metrics import objective_direction

    declared = ((job.get("BestCandidate") or {}).get("FinalAutoMLJobObjectiveMetric") or {}).get(
        "Type"
    )
    descending = objective_direction(metric, declared) if metric else True
    params: dict[str, Any] = {
        "AutoMLJobName": name,
        "SortBy": "FinalObjectiveMetricValue",
        "SortOrder": "Descending" if descending else "Ascending",
    }
    if status:
        params["StatusEquals"] = status
    found = client.collect("ListCandidatesForAutoMLJob", "Candidates", params, at_most=top)
    if output_format == "json":
        return _dump(found)
    if output_format != "table":
        raise fail(f"Unknown format {output_format!r}; use table or json")
    table = Table("rank", "candidate", "status", metric or "objective", "failure", box=None)
    for rank, c in enumerate(found, start=1):
        value = (c.get("FinalAutoMLJobObjectiveMetric") or {}).get("Value")
        table.add_row(
            str(rank),
            c["CandidateName"],
            c["CandidateStatus"],
            "" if value is None else f"{value:.6g}",
            (c.get("FailureReason") or "")[:60],
        )
    Console().print(table)
