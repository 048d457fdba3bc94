"""``mlpilot serve-model``: one model as a SageMaker-style inference container."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from mlpilot.cli._common import console, one_line_errors

app = typer.Typer()

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


@app.command("serve-model")
@one_line_errors
def serve_model(
    model: Annotated[
        str,
        typer.Argument(
            help="A model package folder, a job folder, a model.tar.gz, or an s3:// or "
            "file:// URI of one."
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to listen on (0 = any free port).",
            show_default="SAGEMAKER_BIND_TO_PORT or 8080",
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            help="Container setting NAME=VALUE (repeatable), over the process environment, "
            "e.g. SAGEMAKER_INFERENCE_OUTPUT=predicted_label,probability.",
        ),
    ] = None,
    port_file: Annotated[
        Path | None,
        typer.Option(help="Write the bound port to this file once listening (for --port 0)."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where archives and remote models are unpacked.",
            show_default="$MLPILOT_CACHE_DIR/models or ~/.cache/mlpilot/models",
        ),
    ] = None,
    strict_versions: Annotated[
        bool,
        typer.Option("--strict-versions", help="Refuse a model saved with other library versions."),
    ] = False,
    log_level: Annotated[str, typer.Option(help="Server log level.")] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (costs latency).")
    ] = False,
) -> None:
    """Serve a model like a SageMaker inference container: GET /ping, POST /invocations,
    GET /execution-parameters. Stops cleanly on SIGTERM or Ctrl+C.

    Example: mlpilot serve-model runs/churn --port 8080
    -e SAGEMAKER_INFERENCE_OUTPUT=predicted_label,probability
    """
    import os

    from mlpilot.errors import ConfigError
    from mlpilot.serving import parse_env_options, serve

    if log_level.lower() not in _LOG_LEVELS:
        raise ConfigError(f"--log-level {log_level!r}: use one of {', '.join(_LOG_LEVELS)}")
    environment = {**os.environ, **parse_env_options(env)}
    serve(
        model,
        host=host,
        port=port,
        environment=environment,
        port_file=port_file,
        cache_dir=cache_dir,
        strict_versions=strict_versions,
        log_level=log_level.lower(),
        access_log=access_log,
        echo=lambda line: console.print(escape(line), soft_wrap=True),
    )
