"""What the commands share: one-line errors, the console, the options several take."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from mlpilot.errors import MlpilotError, storage_failure

console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

# Options more than one command takes, declared once so that their flags and help agree.
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
ParallelismOption = Annotated[
    int | None,
    typer.Option(help="Candidates trained at once.", show_default="the number of cores"),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="table or json.")]


def job_clock(ctx: typer.Context) -> float:
    """When the job's clock started: the process start when run as the console script (see
    main.main), else now. The import time of a command's module is no clock: an app may
    invoke the CLI much later."""
    started = (ctx.obj or {}).get("started") if isinstance(ctx.obj, dict) else None
    return time.monotonic() if started is None else float(started)


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def one_line_errors(function: F) -> F:
    """Turn mlpilot's errors, and writes refused for want of space, into a one-line message and
    exit code 2 (1 for internal errors).

    ``MLPILOT_DEBUG=1`` shows the traceback of internal errors.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except MlpilotError as exc:
            raise fail(str(exc)) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            full = storage_failure(exc)
            if full is not None:  # a full disk is the user's to fix, not an internal error
                raise fail(str(full)) from None
            if os.environ.get("MLPILOT_DEBUG"):
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            console.print(
                f"[bold red]Internal error:[/] {type(exc).__name__}: {escape(first)} "
                "(set MLPILOT_DEBUG=1 for the traceback)",
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
