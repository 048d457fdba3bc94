"""Starting a child process that outlives a Ctrl-C to its parent (a job's notebook run, the
service's job and transform runners), and running work beside a job's training at a lower CPU
priority than the training itself."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

__all__ = ["BACKGROUND_NICENESS", "lower_thread_priority", "start_detached"]

#: Niceness added to work that runs beside a job's training but is needed only at its end (the
#: white box's notebook run and imports): on a machine whose cores the workers fill, it then
#: runs in the time they leave instead of slowing them. Measured on a 2-core machine, 60 s
#: bike-sharing job: the workers were ready 13.1 s into the job at equal priority, 7.2 s at 10.
BACKGROUND_NICENESS = 10


def start_detached(
    command: Sequence[str], log: IO[bytes], *, niceness: int = 0
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session (and process group) of its own, stdin closed, stdout and
    stderr to ``log``, ``niceness`` added to its scheduling priority (and its children's).

    A signal to the parent's process group does not reach the child, and
    ``os.killpg(process.pid, ...)`` reaches the child and all it started. The caller may close
    ``log`` once this returns: the child holds its own descriptor.
    """
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if niceness > 0 and hasattr(os, "setpriority"):
        # Set from here rather than in the child (no preexec_fn: unsafe in a process with
        # threads); the child is still starting its interpreter, before it starts any other.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, process.pid, niceness)
    return process


def lower_thread_priority(niceness: int = BACKGROUND_NICENESS) -> bool:
    """Add ``niceness`` to the calling thread's scheduling priority, the rest of the process
    unchanged. Only on Linux, where each thread has its own; elsewhere nothing changes.
    Returns whether it changed."""
    if not sys.platform.startswith("linux") or niceness <= 0:
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except OSError:
        return False
    return True
