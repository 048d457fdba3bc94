"""The ``serve-model`` processes behind an endpoint's variants: one :class:`Instance` (its
process, port file and log), how one is launched, and how processes are stopped."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlpilot.serving._server import PARENT_PID_VARIABLE

__all__ = ["STOP_GRACE_S", "Instance", "kill_all", "launch_instance", "stop_processes"]

#: Thread pools of one instance: instances are the unit of parallelism, so one thread each
#: (a variant's Environment may say otherwise).
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Seconds a retired instance has to finish its requests after SIGTERM.
STOP_GRACE_S = 10.0


class Instance:
    """One ``serve-model`` process."""

    def __init__(
        self,
        variant: str,
        number: int,
        process: subprocess.Popen[bytes],
        port_file: Path,
        log: Path,
    ) -> None:
        self.variant = variant
        self.number = number
        self.process = process
        self.port_file = port_file
        self.log = log
        self.url: str | None = None
        self.healthy = True
        self.strikes = 0
        self.invocations = 0  # answered requests; may miss a few under concurrent callers

    @property
    def label(self) -> str:
        return f"variant {self.variant!r} instance {self.number}"

    def read_port(self) -> bool:
        if self.url is None and self.port_file.exists():
            text = self.port_file.read_text().strip()
            if text.isdigit():
                self.url = f"http://127.0.0.1:{int(text)}"
        return self.url is not None

    def last_words(self) -> str:
        """The last line the process logged (its one-line error when it failed to start)."""
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1].strip()[:300] if lines else ""

    def describe(self) -> dict[str, Any]:
        return {
            "Number": self.number,
            "Pid": self.process.pid,
            "Url": self.url,
            "Healthy": self.healthy and self.process.poll() is None,
            "Invocations": self.invocations,
        }


def launch_instance(
    variant: str,
    number: int,
    model_dir: Path,
    environment: Mapping[str, str],
    *,
    work_dir: Path,
    python: str,
    threads: int,
    cache_dir: str | Path | None,
) -> Instance:
    """Start instance ``number`` of ``variant``: ``serve-model`` on a free port of 127.0.0.1,
    which it writes to a port file in ``work_dir``, logging beside it. It does not wait for
    the process to answer."""
    stem = f"{variant}-{number}-{uuid.uuid4().hex[:8]}"
    port_file = work_dir / f"{stem}.port"
    log_path = work_dir / f"{stem}.log"
    env = dict(os.environ)
    env.update({name: str(threads) for name in _THREAD_VARIABLES})
    env.update(environment)
    env[PARENT_PID_VARIABLE] = str(os.getpid())
    env.setdefault("PYTHONUNBUFFERED", "1")
    command = [
        python,
        "-m",
        "mlpilot.cli.main",
        "serve-model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--log-level",
        "warning",
    ]
    if cache_dir:
        command += ["--cache-dir", str(cache_dir)]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    return Instance(variant, number, process, port_file, log_path)


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM all (in-flight requests finish), then SIGKILL what is left after ``grace``."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill_all(processes: set[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every process still running (the runtime's last resort, also at exit)."""
    for process in list(processes):
        if process.poll() is None:
            process.kill()
