"""What every command shares: one-line errors and the console."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from mlpilot.errors import MlpilotError

console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def one_line_errors(function: F) -> F:
    """Turn mlpilot's errors into a one-line message and exit code 2 (1 for internal errors).

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
