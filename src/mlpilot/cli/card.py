"""``mlpilot card``: a packaged model's card, and where the service deployed it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mlpilot.cli._common import fail, one_line_errors

app = typer.Typer()


@app.command("card")
@one_line_errors
def card(
    model: Annotated[
        str, typer.Argument(help="A job's output folder (its best model) or a model package.")
    ],
    candidate: Annotated[
        str | None, typer.Option(help="With a job folder: this candidate's package.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="A service's data folder: list the deployments of this package it recorded."
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="markdown or json.")
    ] = "markdown",
) -> None:
    """Print the model card sealed into a model package (verified against its checksum).

    Example: mlpilot card runs/churn --data-dir mlpilot-data
    """
    from mlpilot._layout import model_location
    from mlpilot.package import PIPELINE, card_markdown, read_card, verify_package

    if output_format not in ("markdown", "json"):
        raise fail(f"Unknown format {output_format!r}; use markdown or json")
    root = Path(model)
    if (root / "job.json").exists():
        location = model_location(root, candidate)
    elif candidate is not None:
        raise fail(f"{root} is not a job folder (no job.json); cannot pick a candidate")
    else:
        location = root
    if location.is_file():
        raise fail(f"{location}: give the package folder, not its archive")
    found = read_card(location)
    deployments: list[dict[str, Any]] | None = None
    if data_dir is not None:
        deployments = _deployments(data_dir, verify_package(location)["checksums"][PIPELINE])
    if output_format == "json":
        answer = dict(found)
        if deployments is not None:
            answer["deployments"] = deployments
        typer.echo(json.dumps(answer, indent=1, default=str))
    else:
        typer.echo(card_markdown(found, deployments), nl=False)


def _deployments(data_dir: Path, package_id: str) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    from mlpilot.service import ServiceConfig, Store

    config = ServiceConfig(data_dir=data_dir)
    if not (config.data_dir / "mlpilot.db").exists():
        raise fail(f"No mlpilot service data in {config.data_dir}; give the service's --data-dir")
    store = Store(config.database_url)
    try:
        rows = store.list_deployments(package_id)
    finally:
        store.close()
    for row in rows:
        row["time"] = datetime.fromtimestamp(row["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return rows
