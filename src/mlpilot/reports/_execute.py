"""Executing a notebook with nbclient and exporting it to HTML with nbconvert.

A job runs this in a child process (``python -m mlpilot.notebooks NOTEBOOK``) so
that it can run beside the search and be killed at the job's deadline, kernel and all.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from mlpilot.reports._build_exploration import write_notebook
from mlpilot.runtime import start_detached

__all__ = [
    "NotebookRun",
    "execute_notebook",
    "export_html",
    "is_executed",
    "run_notebook_command",
    "start_execution",
]

#: Seconds one cell may take (the exploration notebook's cells take well under a second).
CELL_TIMEOUT = 600


def execute_notebook(path: str | Path, *, html: bool = True, timeout: int = CELL_TIMEOUT) -> Path:
    """Run every cell of the notebook at ``path`` in place (working directory: its folder);
    write ``<name>.html`` beside it unless ``html=False``. Raises on a failing cell."""
    # nbclient and nbconvert (below) load on first use: a job that runs no notebook in this
    # process (it runs them in a child) does not pay for their imports.
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    try:
        # The kernel's own stderr is start-up chatter; cell errors come back as outputs.
        client.execute(stderr=subprocess.DEVNULL)
    finally:
        # A failed run is still written: its outputs show where it stopped.
        write_notebook(nb, path)
    if html:
        export_html(path)
    return path


def export_html(path: str | Path, *, include_code: bool = False) -> Path:
    """``<name>.html`` beside the notebook; code cells are left out unless asked for (the HTML
    is the report, the notebook the code)."""
    from nbconvert import HTMLExporter

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    exporter = HTMLExporter(exclude_input=not include_code, exclude_input_prompt=True)
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    out = path.with_suffix(".html")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return out


def is_executed(path: str | Path) -> bool:
    """Whether every code cell of the notebook has run (and none failed)."""
    try:
        nb = nbformat.read(Path(path), as_version=4)
    except (OSError, ValueError):
        return False
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or any(c.get("execution_count") is None for c in code):
        return False
    return not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))


class NotebookRun:
    """A notebook executing in a child process; :meth:`wait` ends it by a deadline."""

    def __init__(self, path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
        self.path = path
        self.process = process
        self.log = log
        self.started = time.monotonic()
        self.seconds = 0.0

    def done(self) -> bool:
        return self.process.poll() is not None

    def wait(self, deadline: float | None) -> tuple[str, str]:
        """Wait until it ends or ``deadline`` (monotonic); kill it then. Returns (status,
        reason): ``"Completed"``, ``"Failed"`` or ``"Skipped"`` (out of time)."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.seconds = time.monotonic() - self.started
            return "Skipped", "the job's time ran out before the notebook finished running"
        self.seconds = time.monotonic() - self.started
        if code == 0:
            self.log.unlink(missing_ok=True)
            return "Completed", ""
        tail = (
            self.log.read_text(errors="replace").strip().splitlines()[-1:]
            if (self.log.exists())
            else []
        )
        self.log.unlink(missing_ok=True)
        return "Failed", (tail[0] if tail else f"exit code {code}")[:500]

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.unlink(missing_ok=True)


def start_execution(path: Path, *, html: bool = True) -> NotebookRun:
    """Execute the notebook in a child process of its own process group."""
    fd, log_name = tempfile.mkstemp(prefix=".execute-", suffix=".log", dir=path.parent)
    args = [sys.executable, "-m", "mlpilot.notebooks", str(path)]
    if not html:
        args.append("--no-html")
    with os.fdopen(fd, "wb") as log:
        process = start_detached(args, log)
    return NotebookRun(path, process, Path(log_name))


def run_notebook_command(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute a notebook in place (and export HTML).")
    parser.add_argument("notebook")
    parser.add_argument("--no-html", action="store_true")
    args = parser.parse_args(argv)
    try:
        execute_notebook(args.notebook, html=not args.no_html)
    except Exception as exc:
        message: Any = str(exc).strip().splitlines()
        print(f"{type(exc).__name__}: {message[-1] if message else ''}", file=sys.stderr)
        return 1
    return 0
