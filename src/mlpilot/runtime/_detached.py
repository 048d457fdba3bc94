"""Starting a child process that outlives a Ctrl-C to its parent: a job's notebook run, the
service's job and transform runners."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import IO

__all__ = ["start_detached"]


def start_detached(command: Sequence[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session (and process group) of its own, stdin closed, stdout and
    stderr to ``log``.

    A signal to the parent's process group does not reach the child, and
    ``os.killpg(process.pid, ...)`` reaches the child and all it started. The caller may close
    ``log`` once this returns: the child holds its own descriptor.
    """
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
