"""The ``mlpilot`` application: one module per command, composed here."""

from __future__ import annotations

import typer

from mlpilot._version import __version__
from mlpilot.cli import (
    STARTED,
    capture,
    card,
    decrypt,
    export,
    jobs,
    leaderboard,
    predict,
    report,
    retrain,
    run,
    serve,
    serve_model,
    train,
)

app = typer.Typer(
    name="mlpilot",
    help="White-box tabular AutoML that speaks the SageMaker Autopilot API.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(run.app)
app.add_typer(predict.app)
app.add_typer(leaderboard.app)
app.add_typer(serve.app)
app.add_typer(serve_model.app)
app.add_typer(jobs.app)
app.add_typer(report.app)
app.add_typer(train.app)
app.add_typer(decrypt.app)
app.add_typer(card.app)
app.add_typer(capture.app)
app.add_typer(export.app)
app.add_typer(retrain.app)


@app.command("version")
def version() -> None:
    """Print mlpilot's version."""
    typer.echo(__version__)


def main() -> None:
    """The console script. ``mlpilot run``'s runtime limit counts from the process start, so
    start-up is within the budget; an in-process call of ``app`` starts its clock when called."""
    app(obj={"started": STARTED})


if __name__ == "__main__":
    main()
