"""Plain task functions for the executor tests.

The executor's workers are ``spawn``ed processes that resolve tasks by import path, so these
live in an importable module; the tests submit them as ``"helpers_tasks:<name>"`` (pytest puts
``tests/`` on ``sys.path`` and spawned children inherit it).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

#: What :func:`fail` raises, so tests can look for it in the outcome's error.
FAILURE_MESSAGE = "helper task failed on purpose"


def double(x: float) -> float:
    return x * 2


def say(text: str) -> None:
    """Print ``text`` to the worker's standard output (buffered: a pipe is not a terminal),
    and leave the worker a slow exit (a thread its teardown waits for, as torch's can take)."""
    print(text)
    threading.Thread(target=time.sleep, args=(30,)).start()


def sleep_then_double(argument: tuple[float, float]) -> float:
    """Sleep ``argument[0]`` seconds, then return twice ``argument[1]``."""
    seconds, x = argument
    time.sleep(seconds)
    return x * 2


def rendezvous(argument: tuple[str, str, str, float]) -> bool:
    """Create ``folder/mine``, then wait up to ``argument[3]`` seconds for ``folder/theirs``.

    Two such tasks that see each other's file ran at the same time; run one after the other,
    the first gives up and returns False. This shows parallelism without timing anything.
    """
    folder, mine, theirs, patience = argument
    Path(folder, mine).touch()
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if Path(folder, theirs).exists():
            return True
        time.sleep(0.02)
    return False


def fail(_: Any) -> None:
    raise ValueError(FAILURE_MESSAGE)


def exit_with(code: int) -> None:
    """End the worker process at once, as a crashing native library would."""
    os._exit(code)


def kill_self(_: Any) -> None:
    """Kill the worker process with SIGKILL, as the out-of-memory killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


def pid(_: Any) -> int:
    return os.getpid()


def thread_environment(_: Any) -> dict[str, str | None]:
    """The thread-count variables the worker set before running anything."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MLPILOT_WORKER_THREADS")
    return {name: os.environ.get(name) for name in names}


def blas_threads(_: Any) -> list[int]:
    """Threads of every BLAS/OpenMP pool numpy loaded in this worker."""
    import numpy  # noqa: F401 - loads the BLAS library threadpoolctl reports on
    from threadpoolctl import threadpool_info

    return [int(pool["num_threads"]) for pool in threadpool_info()]


def unpicklable(_: Any) -> Any:
    return lambda: None


def loaded(names: list[str]) -> list[bool]:
    """Whether each module in ``names`` is imported in this worker already."""
    import sys

    return [name in sys.modules for name in names]
