"""The ``mlpilot`` application: one module per command, composed here."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

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
    try:
        app(obj={"started": STARTED})
    except SystemExit as done:
        _exit(done.code)
    _exit(0)


def _exit(code: object) -> None:
    """Leave without the interpreter's teardown of every module and object, which takes 1-2 s
    once torch and the tree libraries are loaded: the user's clock counts it against ``mlpilot
    run``'s budget. What the process registered to run at exit (temporary files, child
    processes, logging) still runs. A command that left a thread of its own running exits as
    Python always does, waiting for it."""
    if isinstance(code, str):  # sys.exit("message"): the message, then status 1
        print(code, file=sys.stderr)
        code = 1
    status = 0 if code is None else code if isinstance(code, int) else 1
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(not t.daemon for t in others):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
