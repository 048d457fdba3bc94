"""``mlpilot report``: where a job's notebooks and reports are; make the missing ones."""

from __future__ import annotations

import json
import sys
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlpilot.cli._common import FormatOption, console, one_line_errors
from mlpilot.errors import ConfigError

app = typer.Typer()

_STYLES = {"Completed": "green", "Skipped": "yellow", "NotExecuted": "yellow", "Failed": "red"}


@app.command("report")
@one_line_errors
def report(
    job: Annotated[str, typer.Argument(help="The job's output folder.")],
    candidate: Annotated[
        str | None,
        typer.Option(help="Reports of this candidate instead of the best one."),
    ] = None,
    generate: Annotated[
        bool,
        typer.Option(
            "--generate",
            "-g",
            help="Make what is missing: run the exploration notebook, write the candidate's "
            "explainability and model-quality reports.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --generate: remake existing reports too.")
    ] = False,
    open_reports: Annotated[
        bool, typer.Option("--open", help="Open the HTML reports in a web browser.")
    ] = False,
    output_format: FormatOption = "table",
) -> None:
    """Show a job's notebooks and reports: status and location of each.

    Example: mlpilot report runs/churn --generate --open
    """
    from mlpilot.jobs import load_job
    from mlpilot.reports import artifacts, generate_reports

    if output_format not in ("table", "json"):
        raise ConfigError(f"Unknown format {output_format!r}; use table or json")
    if force and not generate:
        raise ConfigError("--force goes with --generate")
    if generate:
        if output_format == "table":
            console.print("Generating the missing notebooks and reports ...")
        found = generate_reports(job, candidate=candidate, force=force)
    else:
        found = artifacts(load_job(job), candidate)
    if output_format == "json":
        typer.echo(json.dumps([a.to_dict() for a in found], indent=1))
    else:
        results = load_job(job)
        table = Table(title=f"{results.name} — {results.status}")
        for column in ("artifact", "status", "location", "note"):
            table.add_column(column, overflow="fold")
        for a in found:
            style = _STYLES.get(a.status, "")
            status = f"[{style}]{a.status}[/]" if style else a.status
            where = a.html or a.location
            note = a.reason
            if a.candidate and not note:
                note = f"candidate {a.candidate}"
            table.add_row(a.name, status, escape(where), escape(note))
        out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
        out.print(table)
        missing = [a for a in found if a.status != "Completed"]
        if missing and not generate:
            out.print(f"Make the missing ones with: mlpilot report {escape(job)} --generate")
    if open_reports:
        pages = [a.html for a in found if a.html]
        if not pages:
            raise ConfigError("No HTML report to open; make them with --generate")
        for page in pages:
            if not webbrowser.open(Path(page).resolve().as_uri()):
                console.print(f"No browser available; open {escape(page)}", soft_wrap=True)
