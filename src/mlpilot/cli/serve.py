"""``mlpilot serve``: the SageMaker-compatible service."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from mlpilot.cli._common import console, fail, one_line_errors

app = typer.Typer()

DEFAULT_DATA_DIR = "mlpilot-data"


def default_data_dir() -> str:
    return os.environ.get("MLPILOT_DATA_DIR", DEFAULT_DATA_DIR)


def parse_access_keys(values: list[str]) -> dict[str, str]:
    keys = {}
    for value in values:
        key_id, sep, secret = value.partition(":")
        if not sep or not key_id or not secret:
            # The value is not echoed: it may be a secret.
            shown = f"{key_id[:4]}..." if sep else "a value without ':'"
            raise fail(f"access keys are given as ACCESS_KEY_ID:SECRET; got {shown}")
        keys[key_id] = secret
    return keys


def parse_kms_keys(values: list[str]) -> dict[str, Path]:
    keys: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise fail(f"--kms-key is given as NAME=KEYFILE; got {value!r}")
        keys[name] = Path(path)
    return keys


@app.command("serve")
@one_line_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless told).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the metadata database, staging, logs and models "
            f"[env MLPILOT_DATA_DIR; default {DEFAULT_DATA_DIR}].",
        ),
    ] = None,
    store_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL of the metadata store (default: SQLite in --data-dir)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region in ARNs (default: AWS_DEFAULT_REGION or us-east-1).")
    ] = None,
    account_id: Annotated[str, typer.Option(help="12-digit account id in ARNs.")] = (
        "000000000000"
    ),
    access_key: Annotated[
        list[str] | None,
        typer.Option(
            help="ACCESS_KEY_ID:SECRET accepted for SigV4 (repeatable; env MLPILOT_ACCESS_KEYS, "
            "comma-separated). Without any, every request is accepted."
        ),
    ] = None,
    access_keys_file: Annotated[
        Path | None,
        typer.Option(
            help="File of ACCESS_KEY_ID:SECRET lines (keeps secrets out of the process list).",
        ),
    ] = None,
    allowed_root: Annotated[
        list[Path] | None,
        typer.Option(
            help="Folder that file:// URIs and local paths in requests must lie in (repeatable; "
            "the data folder is always allowed). Without any, local paths are not restricted.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate: serve HTTPS (with --tls-key).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    allow_anonymous: Annotated[
        bool,
        typer.Option(
            "--allow-anonymous",
            help="Bind beyond loopback without access keys (anyone who can reach the port "
            "can run jobs).",
        ),
    ] = False,
    max_concurrent_jobs: Annotated[
        int | None,
        typer.Option(
            help="AutoML jobs running at once; more wait in a FIFO queue (InProgress, Starting).",
            show_default="half the cores, at most one per 4 GiB of memory, at least 1",
        ),
    ] = None,
    max_queued_jobs: Annotated[
        int, typer.Option(help="Jobs waiting in the queue; one more is ResourceLimitExceeded.")
    ] = 100,
    max_endpoint_instances: Annotated[
        int,
        typer.Option(
            help="Endpoint instances (model server processes) of all endpoints together; an "
            "endpoint create or update needing more is ResourceLimitExceeded."
        ),
    ] = 16,
    max_requests_per_second: Annotated[
        float | None,
        typer.Option(
            help="Requests per second per client (access key, or address when unsigned); "
            "over it, ThrottlingException. Default: no limit."
        ),
    ] = None,
    max_job_creations_per_minute: Annotated[
        float | None,
        typer.Option(
            help="CreateAutoMLJob[V2] calls per minute per client; over it, "
            "ThrottlingException. Default: no limit."
        ),
    ] = None,
    body_timeout: Annotated[
        float,
        typer.Option(help="Seconds a client has to send a request's whole body (then 408)."),
    ] = 60.0,
    header_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client has to send a request's line and headers (then 408 and the "
            "connection is closed)."
        ),
    ] = 60.0,
    job_parallelism: Annotated[
        int | None, typer.Option(help="Worker processes per job (default: all cores).")
    ] = None,
    require_approved_packages: Annotated[
        bool,
        typer.Option(
            "--require-approved-packages",
            help="Deploy (CreateEndpoint, UpdateEndpoint, CreateTransformJob) a model made from "
            "a model package only when the package's ModelApprovalStatus is Approved.",
        ),
    ] = False,
    kms_key: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=KEYFILE (repeatable): a 256-bit key (32 raw bytes or 64 hex digits) under "
            "a KMS key id, key ARN or alias/NAME. Jobs whose OutputDataConfig.KmsKeyId is NAME "
            "get their model packages encrypted with it (AES-256-GCM); other KmsKeyIds are "
            "refused.",
        ),
    ] = None,
    allow_objective_module: Annotated[
        list[str] | None,
        typer.Option(
            help="MODULE (repeatable): jobs may name a user metric (tag mlpilot:Objective) from "
            "this Python module or its submodules; any other is refused.",
        ),
    ] = None,
) -> None:
    """Start the SageMaker-compatible service (AutoML jobs, models, endpoints, transforms).

    Point boto3 or the AWS CLI at it with --endpoint-url http://127.0.0.1:8080.
    """
    import uvicorn

    from mlpilot.service import ServiceConfig, create_app, header_deadline_protocol

    keys_text = [k for k in os.environ.get("MLPILOT_ACCESS_KEYS", "").split(",") if k.strip()]
    keys = parse_access_keys([*keys_text, *_key_lines(access_keys_file), *(access_key or [])])
    # Job runners and model containers started from here have no use for the secrets.
    os.environ.pop("MLPILOT_ACCESS_KEYS", None)
    if (tls_cert is None) != (tls_key is None):
        raise fail("--tls-cert and --tls-key go together")
    for given in (tls_cert, tls_key, *(allowed_root or [])):
        if given is not None and not given.exists():
            raise fail(f"{given} does not exist")
    try:
        config = ServiceConfig(
            data_dir=data_dir or Path(default_data_dir()),
            store_url=store_url,
            host=host,
            port=port,
            region=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            account_id=account_id,
            access_keys=keys,
            allowed_roots=list(allowed_root or []),
            max_queued_jobs=max_queued_jobs,
            max_endpoint_instances=max_endpoint_instances,
            job_parallelism=job_parallelism,
            max_requests_per_second=max_requests_per_second,
            max_job_creations_per_minute=max_job_creations_per_minute,
            body_timeout=body_timeout,
            header_timeout=header_timeout,
            kms_keys=parse_kms_keys(kms_key or []),
            require_approved_packages=require_approved_packages,
            objective_modules=list(allow_objective_module or []),
            **({} if max_concurrent_jobs is None else {"max_concurrent_jobs": max_concurrent_jobs}),
        )
    except ValueError as exc:
        raise fail(_option_message(str(exc))) from None
    if not _is_loopback(host):
        if not keys and not allow_anonymous:
            raise fail(
                f"Refusing to listen on {host} without access keys: anyone who can reach the "
                "port could run jobs and read their data. Add --access-key ID:SECRET (or "
                "--access-keys-file), or --allow-anonymous if that is intended."
            )
        if not keys:
            console.print(
                f"[bold red]Warning:[/] listening on {host} without access keys: anyone who "
                "can reach this port can run jobs."
            )
        if tls_cert is None:
            console.print(
                f"[yellow]Warning:[/] listening on {host} without TLS: requests and results "
                "cross the network in clear text. Add --tls-cert and --tls-key."
            )
    scheme = "https" if tls_cert else "http"
    console.print(
        f"mlpilot service on {scheme}://{host}:{port} (data in {config.data_dir}, "
        f"{'SigV4 verified' if keys else 'any credentials accepted'}, "
        f"{config.max_concurrent_jobs} AutoML jobs at once)"
    )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        # httptools (uvicorn's compiled parser), with a deadline on each request's headers.
        http=header_deadline_protocol(config.header_timeout),
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        # Requests in flight get this long to finish at shutdown. Without a limit, an idle
        # keep-alive TLS client (boto3 keeps one) held the exit for asyncio's 30 s SSL
        # shutdown timeout.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )


#: Seconds requests in flight get to finish when the service is stopped (Ctrl-C, SIGTERM).
SHUTDOWN_GRACE_SECONDS = 10


def _key_lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        text = path.read_text()
    except OSError as exc:
        raise fail(f"cannot read --access-keys-file {path}: {exc.strerror}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _option_message(message: str) -> str:
    """A config error in terms of the command's options (max_queued_jobs → --max-queued-jobs)."""
    from dataclasses import fields

    from mlpilot.service import ServiceConfig

    name, sep, rest = message.partition(" ")
    known = {f.name for f in fields(ServiceConfig)}
    return f"--{name.replace('_', '-')} {rest}" if sep and name in known else message


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
