"""Runner processes: the service runs each AutoML job and each batch transform in a process of
its own (``python -m <module> ... --job NAME``) and watches the ones it started.

A runner lives in a session of its own, so a Ctrl-C or kill of the service does not take it
along; what a runner reports goes through the metadata store, not through its parent.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mlpilot.runtime import start_detached

__all__ = ["RunnerSupervisor", "end_group", "ending", "pid_is_runner"]

_TICK_SECONDS = 1.0


def pid_is_runner(pid: int | None, job: str, module: str = "mlpilot.service._runner") -> bool:
    """Whether ``pid`` is alive and is ``job``'s runner (``python -m module``), not a process
    that reused the pid."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        return module.encode() in args and job.encode() in args
    return True


def end_group(pid: int | None) -> None:
    """Kill what is left of a dead runner's process group (its trial workers, notebook
    kernels): a runner killed outright cannot end them itself. Its group id is its pid, as it
    leads a session of its own."""
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def ending(code: int) -> str:
    """How a process with exit status ``code`` ended, for a failure reason."""
    return f"killed by signal {-code}" if code < 0 else f"exited with code {code}"


class RunnerSupervisor(abc.ABC):
    """The runner processes this service started, by job name, and a thread that calls
    :meth:`_tick` every second until :meth:`_close_runners`."""

    def __init__(self) -> None:
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        # Reentrant: a manager may launch a runner while it holds the lock for its own checks.
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def _tick(self) -> None:
        """One round of checks, on the watching thread (it must not raise)."""

    def _watch(self, thread_name: str) -> None:
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closing.wait(_TICK_SECONDS):
            self._tick()

    def _launch(self, name: str, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        """Start ``name``'s runner, its output appended to ``log_path``."""
        with log_path.open("ab") as log:
            proc = start_detached(command, log)
        with self._lock:
            self._procs[name] = proc
        return proc

    def _reap(self) -> dict[str, int]:
        """The runners that ended since the last call: their exit status by job name."""
        with self._lock:
            ended = {n: p for n, p in self._procs.items() if p.poll() is not None}
            for name in ended:
                del self._procs[name]
        return {name: proc.returncode for name, proc in ended.items()}

    def _close_runners(self, stop: Callable[[str], None] | None, wait: float) -> None:
        """Stop watching. With ``stop``, each running runner is asked to stop with it, and all
        of them are given ``wait`` seconds to end."""
        self._closing.set()
        if stop is not None:
            with self._lock:
                procs = dict(self._procs)
            for name in procs:
                with contextlib.suppress(Exception):
                    stop(name)
            deadline = time.monotonic() + wait
            for proc in procs.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(timeout=5)
