"""``mlpilot retrain``: champion/challenger retraining of a service's endpoints.

``mlpilot retrain ENDPOINT --data …`` runs one round here, client-side: SageMaker's operations
through boto3, as an AWS user would drive them, and the endpoint's per-variant counters from
the service's ``GET /endpoints/{name}/metrics``; ``promote ENDPOINT --version ARN`` deploys an
approved version the same way. Both log their steps in the service's retraining history.
``--watch`` leaves a standing policy with the service, and ``list``, ``describe``,
``history``, ``run`` and ``delete`` act on those policies through the service's
``/mlpilot/retrain-policies`` routes.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from mlpilot.cli._common import console, fail, one_line_errors

app = typer.Typer()
#: The service's retraining policy routes (mlpilot.service.POLICIES).
POLICIES_PATH = "/mlpilot/retrain-policies"


class BotoControl:
    """:class:`mlpilot.service.Control` over HTTP: boto3 for the operations, a signed GET for
    the counters."""

    def __init__(self, endpoint_url: str) -> None:
        import boto3

        session = boto3.session.Session()
        credentials: dict[str, str] = {}
        if session.get_credentials() is None:  # any key works with an open service
            credentials = {"aws_access_key_id": "mlpilot", "aws_secret_access_key": "mlpilot"}
        self.url = endpoint_url.rstrip("/")
        self.region = session.region_name or "us-east-1"
        self.client = session.client(
            "sagemaker", endpoint_url=self.url, region_name=self.region, **credentials
        )

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        import botocore.exceptions

        from mlpilot.service import RetrainError

        method = getattr(self.client, _snake(operation))
        try:
            result: dict[str, Any] = method(**params)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise RetrainError(
                f"{operation}: {error.get('Code')}: {error.get('Message')}"
            ) from None
        except botocore.exceptions.EndpointConnectionError:
            raise RetrainError(f"Cannot reach an mlpilot service at {self.url}") from None
        result.pop("ResponseMetadata", None)
        return result

    def variant_metrics(self, endpoint: str) -> dict[str, dict[str, Any]]:
        variants: dict[str, dict[str, Any]] = self.request("GET", f"/endpoints/{endpoint}/metrics")[
            "Variants"
        ]
        return variants

    def approval_rule(self, package: str) -> str | None:
        import botocore.exceptions

        from mlpilot.service import APPROVAL_HEADER, RetrainError

        try:
            reply = self.client.describe_model_package(ModelPackageName=package)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise RetrainError(
                f"DescribeModelPackage: {error.get('Code')}: {error.get('Message')}"
            ) from None
        found: str | None = reply["ResponseMetadata"]["HTTPHeaders"].get(APPROVAL_HEADER)
        return found

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One of mlpilot's own routes, signed as the SageMaker operations are."""
        import httpx
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        from mlpilot.service import RetrainError

        url = f"{self.url}{path}"
        data = b"" if body is None else json.dumps(body).encode()
        signed = AWSRequest(method=method, url=url, data=data)
        credentials = self.client._request_signer._credentials
        SigV4Auth(credentials, "sagemaker", self.region).add_auth(signed)
        try:
            reply = httpx.request(
                method, url, content=data, headers=dict(signed.headers.items()), timeout=60
            )
        except httpx.HTTPError:
            raise RetrainError(f"Cannot reach an mlpilot service at {self.url}") from None
        if reply.status_code != 200:
            try:
                error = reply.json()
                message = f"{error.get('__type')}: {error.get('message') or error.get('Message')}"
            except ValueError:
                message = reply.text[:200]
            raise RetrainError(message)
        return reply.json()


def _snake(operation: str) -> str:
    import botocore

    return str(botocore.xform_name(operation))


ACTIONS = ("list", "describe", "history", "run", "delete", "promote")


class HistoryLog:
    """The steps of a round run here, printed (stderr) and logged in the service's retraining
    history as they are taken. The first entry must reach the service (before anything
    changes); a later one that does not is a warning, so that a canary is never left behind."""

    def __init__(self, control: BotoControl, endpoint: str) -> None:
        self.control = control
        self.path = f"{POLICIES_PATH}/{endpoint}/history"
        self.warned = False

    def start(self, **details: Any) -> None:
        self.control.request("POST", self.path, {"Events": [{"action": "triggered", **details}]})

    def step(self, step: dict[str, Any]) -> None:
        console.print(_step_text(step), markup=False, soft_wrap=True)
        self.post(step)

    def post(self, event: dict[str, Any]) -> None:
        from mlpilot.service import RetrainError

        try:
            self.control.request("POST", self.path, {"Events": [event]})
        except RetrainError as exc:
            if not self.warned:
                console.print(f"warning: the step is not in the service's history: {exc}")
                self.warned = True

    def decision(self, summary: dict[str, Any]) -> None:
        self.post({"action": "decision", **summary})


@app.command("retrain")
@one_line_errors
def retrain(
    what: Annotated[
        str,
        typer.Argument(
            help="The endpoint whose model is the champion, or a policy action: list, "
            "describe, history, run, delete, promote (then the endpoint follows).",
            metavar="ENDPOINT|ACTION",
        ),
    ],
    name: Annotated[
        str | None, typer.Argument(help="The endpoint, after an action.", metavar="[ENDPOINT]")
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="The new training data: a file, folder or s3:// prefix.")
    ] = None,
    holdout: Annotated[
        str | None,
        typer.Option(help="Labelled rows (with the target) scoring both models; local or s3://."),
    ] = None,
    watch: Annotated[
        str | None,
        typer.Option(help="Leave a standing policy: a round whenever new objects land here."),
    ] = None,
    interval: Annotated[
        float, typer.Option(help="With --watch: seconds between looks at the prefix.")
    ] = 300.0,
    every: Annotated[
        float | None,
        typer.Option(
            help="With --watch: also a round on this schedule (seconds), new data or not."
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="The mlpilot service (env MLPILOT_ENDPOINT_URL)."),
    ] = None,
    margin: Annotated[
        float,
        typer.Option(help="How much better the challenger must be, in the objective's units."),
    ] = 0.0,
    with_old_data: Annotated[
        bool, typer.Option("--with-old-data", help="Train on the champion's data as well.")
    ] = False,
    job: Annotated[
        str | None,
        typer.Option(help="The champion's AutoML job, when the endpoint's model cannot tell."),
    ] = None,
    canary_weight: Annotated[
        float, typer.Option(help="The challenger's share of traffic while it bakes.")
    ] = 0.1,
    canary_seconds: Annotated[float, typer.Option(help="How long the canary bakes.")] = 10.0,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(help="Roll the canary back when its p99 model latency passes this."),
    ] = None,
    job_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the challenger's job.")
    ] = 3600.0,
    ground_truth: Annotated[
        str | None,
        typer.Option(
            help="Labels of captured invocations (Model Monitor ground-truth JSON lines): "
            "recent labelled traffic is scored with the holdout."
        ),
    ] = None,
    captured_since: Annotated[
        float,
        typer.Option(help="With --ground-truth: how far back captured traffic counts (seconds)."),
    ] = 604800.0,  # mlpilot.service.CAPTURED_SINCE: one week (the service is imported lazily)
    version: Annotated[
        str | None,
        typer.Option(help="With promote: the Approved model package version (ARN) to deploy."),
    ] = None,
) -> None:
    """Re-run the champion's job on new data, score both on the holdout, and promote the
    challenger (canary first) only when it wins by the margin: one JSON line. With --watch,
    the service does so whenever new data lands. promote ENDPOINT --version ARN deploys a
    version approved after a round ended pending_approval."""
    from mlpilot.service import RetrainError

    url = endpoint_url or os.environ.get("MLPILOT_ENDPOINT_URL")
    if not url:
        raise fail("Give --endpoint-url (or MLPILOT_ENDPOINT_URL): the mlpilot service")
    if not 0.0 < canary_weight < 1.0:
        raise fail(f"--canary-weight must be between 0 and 1 (exclusive), not {canary_weight:g}")
    if canary_seconds < 0 or margin < 0:
        raise fail("--canary-seconds and --margin cannot be negative")
    if captured_since <= 0:
        raise fail(f"--captured-since must be a positive number of seconds, not {captured_since:g}")
    control = BotoControl(url)
    try:
        if what == "promote":
            if name is None or version is None:
                raise fail("mlpilot retrain promote needs the endpoint and --version ARN")
            _promote_now(control, name, version, canary_weight, canary_seconds, max_latency_ms)
            return
        if what in ACTIONS:
            _policy_action(control, what, name)
            return
        if name is not None:
            raise fail(f"Unexpected argument {name!r}: give one endpoint")
        if holdout is None:
            raise fail("Give --holdout: labelled rows scoring champion and challenger")
        if watch is not None:
            if data is not None:
                raise fail("Give --data (one round now) or --watch (a standing policy), not both")
            settings: dict[str, Any] = {
                "WatchPrefix": watch,
                "Holdout": holdout,
                "IntervalSeconds": interval,
                "Margin": margin,
                "WithOldData": with_old_data,
                "CanaryWeight": canary_weight,
                "CanarySeconds": canary_seconds,
                "JobTimeoutSeconds": job_timeout,
                "CapturedSinceSeconds": captured_since,
            }
            optional = {
                "ScheduleSeconds": every,
                "Job": job,
                "MaxLatencyMs": max_latency_ms,
                "GroundTruth": ground_truth,
            }
            settings.update({k: v for k, v in optional.items() if v is not None})
            policy = control.request("PUT", f"{POLICIES_PATH}/{what}", settings)
            typer.echo(json.dumps(policy))
            return
        if data is None:
            raise fail("Give --data (one round now) or --watch (a standing policy)")
        _round_now(
            control,
            what,
            data,
            holdout,
            margin,
            with_old_data,
            job,
            canary_weight,
            canary_seconds,
            max_latency_ms,
            job_timeout,
            ground_truth,
            captured_since,
        )
    except RetrainError as exc:
        raise fail(str(exc)) from None


def _round_now(
    control: BotoControl,
    endpoint: str,
    data: str,
    holdout: str,
    margin: float,
    with_old_data: bool,
    job: str | None,
    canary_weight: float,
    canary_seconds: float,
    max_latency_ms: float | None,
    job_timeout: float,
    ground_truth: str | None,
    captured_since: float,
) -> None:
    from mlpilot.data import read_table
    from mlpilot.service import CanarySettings, RetrainError, retrain_endpoint

    rows = read_table(holdout)
    log = HistoryLog(control, endpoint)
    log.start(trigger="command", data=data, holdout=holdout)
    try:
        outcome = retrain_endpoint(
            control,
            endpoint,
            data=data,
            holdout=rows,
            margin=margin,
            with_old_data=with_old_data,
            job=job,
            canary=CanarySettings(canary_weight, canary_seconds, max_latency_ms),
            job_timeout=job_timeout,
            ground_truth=ground_truth,
            captured_since=captured_since,
            on_step=log.step,
        )
    except RetrainError as exc:
        log.decision({"decision": "failed", "reason": str(exc)})
        raise
    _finish(log, outcome)


def _promote_now(
    control: BotoControl,
    endpoint: str,
    version: str,
    canary_weight: float,
    canary_seconds: float,
    max_latency_ms: float | None,
) -> None:
    from mlpilot.service import CanarySettings, RetrainError, promote_version

    log = HistoryLog(control, endpoint)
    log.start(trigger="promote", version=version)
    try:
        outcome = promote_version(
            control,
            endpoint,
            version,
            canary=CanarySettings(canary_weight, canary_seconds, max_latency_ms),
            on_step=log.step,
        )
    except RetrainError as exc:
        log.decision({"decision": "failed", "reason": str(exc)})
        raise
    _finish(log, outcome)


def _finish(log: HistoryLog, outcome: Any) -> None:
    log.decision(json.loads(outcome.line()))
    typer.echo(outcome.line())
    if outcome.decision == "failed":
        raise typer.Exit(1)


def _step_text(step: dict[str, Any]) -> str:
    details = ", ".join(
        f"{k}={v}" for k, v in step.items() if k not in ("time", "action") and v is not None
    )
    return f"{step['action']}: {details}"


def _policy_action(control: BotoControl, action: str, endpoint: str | None) -> None:
    if action == "list":
        for policy in control.request("GET", POLICIES_PATH)["Policies"]:
            typer.echo(json.dumps(policy))
        return
    if action == "history":
        path = f"{POLICIES_PATH}/{endpoint}/history" if endpoint else f"{POLICIES_PATH}/history"
        for event in control.request("GET", path)["Events"]:
            typer.echo(json.dumps(event))
        return
    if endpoint is None:
        raise fail(f"mlpilot retrain {action} needs the endpoint whose policy it is")
    if action == "describe":
        typer.echo(json.dumps(control.request("GET", f"{POLICIES_PATH}/{endpoint}")))
    elif action == "run":
        typer.echo(json.dumps(control.request("POST", f"{POLICIES_PATH}/{endpoint}/run")))
    else:
        control.request("DELETE", f"{POLICIES_PATH}/{endpoint}")
