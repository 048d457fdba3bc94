"""The executor interface the engine runs candidates through.

The search never assumes local processes: it submits a picklable task (a function's import path
and its argument), polls for finished work, and may cancel running work. A later backend (Ray)
implements the same four methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

__all__ = ["Executor", "TaskOutcome"]


@dataclass
class TaskOutcome:
    """How one submitted task ended.

    ``state`` is ``"ok"`` (``value`` holds the return value), ``"error"`` (the task raised;
    ``error`` holds a one-line summary and ``detail`` the traceback), ``"timeout"`` (it ran past
    its hard limit and was killed), ``"cancelled"`` or ``"crashed"`` (the worker died, e.g. a
    library segfault or the kernel's out-of-memory killer).
    """

    task_id: int
    state: str
    value: Any = None
    error: str = ""
    detail: str = ""
    seconds: float = 0.0


class Executor(ABC):
    """Runs tasks in parallel, each with an optional hard time limit."""

    @property
    @abstractmethod
    def capacity(self) -> int:
        """How many tasks may run at once."""

    @abstractmethod
    def submit(self, function: str, argument: Any, *, hard_limit: float | None = None) -> int:
        """Start ``function`` (``"package.module:name"``) on ``argument``; return a task id."""

    @abstractmethod
    def wait(self, timeout: float) -> list[TaskOutcome]:
        """Block up to ``timeout`` seconds for at least one task to end; return those that did."""

    @abstractmethod
    def cancel(self, task_id: int) -> None:
        """Stop a running task (its outcome is reported as ``cancelled`` by :meth:`wait`)."""

    @abstractmethod
    def running(self) -> int:
        """Number of tasks submitted and not yet reported."""

    def warm_up(self, *paths: str) -> None:  # noqa: B027 - optional hook
        """Start workers ahead of the first task, each importing ``paths`` (``"module:name"``
        or ``"module"``: the task function, slow libraries) as it starts (optional)."""

    def wait_ready(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until the workers :meth:`warm_up` started have
        imported what they were given; True if they have (executors without a warm-up: at
        once). Work that would slow their start, and can wait, waits for this."""
        return True

    @abstractmethod
    def shutdown(self) -> None:
        """Stop every worker; running tasks are abandoned."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
