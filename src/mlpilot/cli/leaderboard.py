"""``mlpilot leaderboard``: a job's candidates, best first."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlpilot.cli._common import one_line_errors
from mlpilot.errors import ConfigError

if TYPE_CHECKING:
    from mlpilot.jobs import JobResults

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
    progress: Annotated[
        bool,
        typer.Option(
            "--progress",
            help="The best score against the time spent instead: each candidate in the order "
            "it ended, each resume marked.",
        ),
    ] = False,
) -> None:
    """Show a job's leaderboard (objective, metrics, time, steps, failures).

    Example: mlpilot leaderboard runs/churn --top 10
    """
    from mlpilot.jobs import load_job, objective_maximized
    from mlpilot.metrics import metric_names

    results = load_job(job)
    if progress:
        return _progress(results, output_format)
    frame = results.leaderboard()
    if top is not None:
        frame = frame.head(top)
    if _echo_unless_table(frame, output_format):
        return
    record = results.record
    problem = (
        record.get("ResolvedAttributes", {})
        .get("AutoMLProblemTypeResolvedAttributes", {})
        .get("TabularResolvedAttributes", {})
        .get("ProblemType")
    )
    metrics = [m for m in metric_names(problem) if m in frame.columns] if problem else []
    if results.objective in frame.columns and results.objective not in metrics:
        metrics.append(results.objective)  # a job's own objective (cost matrix, user metric)
    if not all_metrics:
        metrics = [m for m in metrics if m == results.objective][:1]
    spread = "objective_std" in frame.columns and frame["objective_std"].notna().any()
    maximize = objective_maximized(results.objective, results.candidates())
    direction = "maximize" if maximize else "minimize"
    table = Table(
        title=f"{results.name} — {results.status} "
        f"({record.get('AutoMLJobSecondaryStatus')}), objective "
        f"{results.objective} ({direction})"
    )
    columns = [
        "rank",
        "candidate",
        "algorithm",
        "status",
        "objective",
        *(["objective_std"] if spread else []),
        *metrics,
        # A job with a sensitive attribute: each candidate's disparity on its validation rows.
        *(["disparity"] if "disparity" in frame.columns else []),
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
    if spread:
        out.print(
            "objective_std: the objective's standard deviation over the folds it was scored on "
            "(resamples of a holdout's rows, backtest windows); candidates closer than it are "
            "within the noise of the data",
            soft_wrap=True,
        )
    portfolio = _portfolio_line(record.get("Mlpilot", {}).get("Portfolio"))
    if portfolio:
        out.print(escape(portfolio), soft_wrap=True)


def _portfolio_line(portfolio: dict[str, Any] | None) -> str | None:
    """Which portfolio an ENSEMBLING job trained: its file, hash and what it was learned from."""
    if not portfolio:
        return None
    learned = portfolio.get("LearnedFrom") or []
    plural = "" if len(learned) == 1 else "s"
    source = f", learned from {len(learned)} dataset{plural}" if learned else ""
    given = "given" if portfolio.get("Given") else "shipped"
    unused = f" — unused: {portfolio['Unused']}" if portfolio.get("Unused") else ""
    return (
        f"portfolio ({given}): {portfolio['File']} sha256 {str(portfolio['Sha256'])[:12]}"
        f"{source}{unused}"
    )


def _echo_unless_table(frame: Any, output_format: str) -> bool:
    """Print ``frame`` as CSV or JSON and say so; False for a table (the caller draws it)."""
    if output_format == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
        return True
    if output_format == "json":
        # pandas keeps 10 digits by default: keep every digit of the scores.
        typer.echo(frame.to_json(orient="records", indent=1, double_precision=15))
        return True
    if output_format != "table":
        raise ConfigError(f"Unknown format {output_format!r}; use table, csv or json")
    return False


def _progress(results: JobResults, output_format: str) -> None:
    """``--progress``: the best-so-far curve (see :func:`mlpilot.jobs.progress_frame`)."""
    from mlpilot.jobs import progress_frame

    frame = progress_frame(results.record, results.candidates())
    if _echo_unless_table(frame, output_format):
        return
    resumes = results.record.get("Mlpilot", {}).get("Resumes", [])
    table = Table(
        title=f"{results.name}: best {results.objective} against time spent"
        + (f" ({len(resumes)} resume(s))" if resumes else "")
    )
    for column in ("seconds", "candidate", "value", "best so far"):
        table.add_column(column, overflow="fold")
    run = 0
    for _, row in frame.iterrows():
        if row["run"] != run:
            run = int(row["run"])
            added = resumes[run - 1]["AddedSeconds"] if run <= len(resumes) else 0
            table.add_row(f"— resume {run}", f"+{added:g} s", "", "", style="bold")
        best = _cell(row["best"]) + (" ↑" if row["improved"] else "")
        table.add_row(f"{row['seconds']:.1f}", row["candidate"], _cell(row["value"]), best)
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return f"{value:.5g}"
    return str(value)
