"""The loop each local worker process runs, and how a process imports slow modules ahead of
use (a worker as it starts; the job's own process beside the search, :func:`import_beside`).
Imports only the standard library at the top, so thread limits are in place before numpy and
friends load."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def resolve(path: str) -> Any:
    """``"module:name"``'s object, or ``"module"`` itself."""
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def import_beside(*paths: str, after: Callable[[], object] | None = None) -> threading.Thread:
    """Import ``paths`` (as :func:`resolve` reads them) in a daemon thread of this process, so
    that work here later does not wait for them; a failed import shows up again where it is
    used. The thread first calls ``after`` (e.g. waiting for the workers to start, which
    these imports would slow). Returns the thread (join it to wait)."""

    def load() -> None:
        if after is not None:
            with contextlib.suppress(Exception):
                after()
        for path in paths:
            with contextlib.suppress(Exception):
                resolve(path)

    thread = threading.Thread(target=load, name="mlpilot-imports", daemon=True)
    thread.start()
    return thread


def worker_main(connection: Any, threads: int, warm_up: tuple[str, ...], ready: Any = None) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    os.environ["MLPILOT_WORKER_THREADS"] = str(threads)
    for path in warm_up:
        # A failed warm-up shows up again, with its reason, on the first task.
        with contextlib.suppress(Exception):
            resolve(path)
    if ready is not None:
        ready.set()
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        task_id, function, argument = message
        started = time.monotonic()
        connection.send((task_id, "started", None, "", "", 0.0))  # its time limit runs from here
        try:
            value = resolve(function)(argument)
            reply = (task_id, "ok", value, "", "", time.monotonic() - started)
        except BaseException as exc:  # report everything; the parent decides what is fatal
            summary = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]
            reply = (
                task_id,
                "error",
                None,
                summary,
                traceback.format_exc(),
                time.monotonic() - started,
            )
        for stream in (sys.stdout, sys.stderr):  # what the task printed, before its reply
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            connection.send(reply)
        except Exception as exc:  # e.g. an unpicklable return value
            connection.send(
                (
                    task_id,
                    "error",
                    None,
                    f"result could not be sent back: {exc}",
                    traceback.format_exc(),
                    time.monotonic() - started,
                )
            )
