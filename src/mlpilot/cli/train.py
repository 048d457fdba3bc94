"""``mlpilot train``: train the candidates of a candidates-only job."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from mlpilot.cli._common import ParallelismOption, QuietOption, console, job_clock, one_line_errors

app = typer.Typer()


@app.command("train")
@one_line_errors
def train(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The output folder of a candidates-only job.")],
    algorithms: Annotated[
        str | None,
        typer.Option(
            "--algorithms",
            "--candidates",
            help="Comma-separated candidate pipelines to train (names as in the candidate "
            "notebook, e.g. lightgbm,xgboost).",
            show_default="all of the job's",
        ),
    ] = None,
    max_candidates: Annotated[
        int | None, typer.Option(help="MaxCandidates: trials to run.", show_default="the job's")
    ] = None,
    max_runtime: Annotated[
        int | None, typer.Option(help="MaxAutoMLJobRuntimeInSeconds for the training.")
    ] = None,
    max_runtime_per_candidate: Annotated[
        int | None, typer.Option(help="MaxRuntimePerTrainingJobInSeconds.")
    ] = None,
    parallelism: ParallelismOption = None,
    reports: Annotated[
        bool,
        typer.Option(
            "--reports/--no-reports", help="Run the notebooks and write the best's reports."
        ),
    ] = True,
    quiet: QuietOption = False,
) -> None:
    """Train a candidates-only job's candidates; they join its leaderboard.

    Example: mlpilot run data.csv --target y --candidates-only --output runs/y; then
    mlpilot train runs/y --algorithms lightgbm,xgboost --max-candidates 20
    """
    started = job_clock(ctx)

    from mlpilot.cli.run import _Display, _progress, _summary, run_watched
    from mlpilot.notebooks import TrainingSettings, prepare_training, run_training

    names = [a.strip() for a in algorithms.split(",") if a.strip()] if algorithms else None
    progress = _progress(quiet)
    settings = TrainingSettings(
        algorithms=names,
        max_candidates=max_candidates,
        parallelism=parallelism,
        max_runtime=max_runtime,
        max_runtime_per_candidate=max_runtime_per_candidate,
        generate_reports=reports,
    )
    automl, old = prepare_training(job, settings, started=started)
    display = _Display(
        progress,
        automl.config.max_runtime,
        automl.config.effective_max_candidates,
        quiet=quiet,
    )
    automl.observers.append(display)
    if not quiet:
        from mlpilot.config import TabularConfig

        problem = automl.config.problem
        chosen = problem.candidates if isinstance(problem, TabularConfig) else None
        pipelines = ", ".join(c.key for c in chosen or ())
        console.print(
            f"Training job [bold]{automl.config.name}[/]: {escape(pipelines)}", soft_wrap=True
        )
    run_watched(automl, lambda: run_training(automl, old), progress, display, name="mlpilot-train")
    _summary(automl, quiet)
