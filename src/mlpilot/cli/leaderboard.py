"""``mlpilot leaderboard``: a job's candidates, best first."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mlpilot.cli._common import one_line_errors
from mlpilot.errors import ConfigError

app = typer.Typer()


@app.command("leaderboard")
@one_line_errors
def leaderboard(
    job: Annotated[str, typer.Argument(help="The job's output folder.")],
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="table, csv or json.")
    ] = "table",
    top: Annotated[int | None, typer.Option(help="Only the best N candidates.")] = None,
    all_metrics: Annotated[
        bool, typer.Option("--all-metrics", help="Show every metric in the table.")
    ] = False,
) -> None:
    """Show a job's leaderboard (objective, metrics, time, steps, failures).

    Example: mlpilot leaderboard runs/churn --top 10
    """
    from mlpilot.jobs import load_job
    from mlpilot.metrics import metric_names

    results = load_job(job)
    frame = results.leaderboard()
    if top is not None:
        frame = frame.head(top)
    if output_format == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
        return
    if output_format == "json":
        # pandas keeps 10 digits by default: keep every digit of the scores.
        typer.echo(frame.to_json(orient="records", indent=1, double_precision=15))
        return
    if output_format != "table":
        raise ConfigError(f"Unknown format {output_format!r}; use table, csv or json")
    record = results.record
    problem = (
        record.get("ResolvedAttributes", {})
        .get("AutoMLProblemTypeResolvedAttributes", {})
        .get("TabularResolvedAttributes", {})
        .get("ProblemType")
    )
    metrics = [m for m in metric_names(problem) if m in frame.columns] if problem else []
    if not all_metrics:
        metrics = [m for m in metrics if m == results.objective][:1]
    table = Table(
        title=f"{results.name} — {results.status} "
        f"({record.get('AutoMLJobSecondaryStatus')}), objective "
        f"{results.objective}"
    )
    columns = [
        "rank",
        "candidate",
        "algorithm",
        "status",
        "objective",
        *metrics,
        "train_seconds",
        "predict_ms_per_row",
        "failure_reason",
    ]
    for column in columns:
        table.add_column(column, overflow="fold")
    for _, row in frame.iterrows():
        table.add_row(*[_cell(row.get(c)) for c in columns])
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    out.print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return f"{value:.5g}"
    return str(value)
