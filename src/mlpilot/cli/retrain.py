"""``mlpilot retrain ENDPOINT``: one champion/challenger round on an endpoint of a service.

Client-side: SageMaker's operations through boto3, as an AWS user would drive them, and the
endpoint's per-variant counters from the service's ``GET /endpoints/{name}/metrics``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from mlpilot.cli._common import console, fail, one_line_errors

app = typer.Typer()


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
        import httpx
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        from mlpilot.service import RetrainError

        url = f"{self.url}/endpoints/{endpoint}/metrics"
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(self.client._request_signer._credentials, "sagemaker", self.region).add_auth(
            request
        )
        reply = httpx.get(url, headers=dict(request.headers.items()), timeout=30)
        if reply.status_code != 200:
            raise RetrainError(f"The metrics of endpoint {endpoint}: {reply.text[:200]}")
        variants: dict[str, dict[str, Any]] = reply.json()["Variants"]
        return variants


def _snake(operation: str) -> str:
    import botocore

    return str(botocore.xform_name(operation))


@app.command("retrain")
@one_line_errors
def retrain(
    endpoint: Annotated[str, typer.Argument(help="The endpoint whose model is the champion.")],
    data: Annotated[
        str, typer.Option(help="The new training data: a file, folder or s3:// prefix.")
    ],
    holdout: Annotated[
        str,
        typer.Option(help="Labelled rows (with the target) scoring both models; local or s3://."),
    ],
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
) -> None:
    """Re-run the champion's job on new data, score both on the holdout, and promote the
    challenger (canary first) only when it wins by the margin. Prints one JSON line."""
    from mlpilot.data import read_table
    from mlpilot.service import CanarySettings, RetrainError, retrain_endpoint

    url = endpoint_url or os.environ.get("MLPILOT_ENDPOINT_URL")
    if not url:
        raise fail("Give --endpoint-url (or MLPILOT_ENDPOINT_URL): the mlpilot service")
    if not 0.0 < canary_weight < 1.0:
        raise fail(f"--canary-weight must be between 0 and 1 (exclusive), not {canary_weight:g}")
    if canary_seconds < 0 or margin < 0:
        raise fail("--canary-seconds and --margin cannot be negative")
    try:
        table = read_table(holdout)
        outcome = retrain_endpoint(
            BotoControl(url),
            endpoint,
            data=data,
            holdout=table,
            margin=margin,
            with_old_data=with_old_data,
            job=job,
            canary=CanarySettings(canary_weight, canary_seconds, max_latency_ms),
            job_timeout=job_timeout,
            log=lambda message: console.print(message, markup=False, soft_wrap=True),
        )
    except RetrainError as exc:
        raise fail(str(exc)) from None
    typer.echo(outcome.line())
    if outcome.decision == "failed":
        raise typer.Exit(1)
