"""Named crash points: a process kills itself (SIGKILL, as ``kill -9`` would) where a test asks.

Set ``MLPILOT_CRASH_AT=<point>`` (or ``<point>:<n>`` to die the n-th time the point is reached)
in the environment of ``mlpilot serve`` or of a job, and the first process that reaches that
point kills itself there. The variable is read once per process; when it is unset
:func:`crash_point` is a comparison with ``None``. Processes inherit it, so the service's job
runners and transform runners see it too (endpoints are hosted in the service process).

The points (:data:`POINTS`) are where a real crash would hurt: in the middle of data
analysis, after a search candidate is told, between the ensemble's phases, before a refit,
between publishing the final model package and recording it in the job, while the white box
writes its reports, while an endpoint's host starts, after a batch transform's first output
object. Every point but ``trial`` fires only in an orchestrating process (the service, a job
runner, a transform runner, a CLI job), ``trial`` only in a trial worker of the executor pool, so
one setting aims at one kind of process.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys

__all__ = ["CRASH_ENV", "POINTS", "crash_point"]

CRASH_ENV = "MLPILOT_CRASH_AT"
POINTS = frozenset(
    {
        "analysis",
        "search",
        "trial",
        "ensembling",
        "refit",
        "packaging",
        "reports",
        "endpoint-create",
        "transform",
    }
)


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    point, _, count = value.strip().partition(":")
    if point not in POINTS or (count and not count.isdigit()) or count == "0":
        print(
            f"mlpilot: ignoring {CRASH_ENV}={value!r}: expected one of {sorted(POINTS)}, "
            "optionally followed by :<n>",
            file=sys.stderr,
            flush=True,
        )
        return None
    return point, int(count or 1)


_TARGET = _parse(os.environ.get(CRASH_ENV))
_reached = 0


def crash_point(name: str) -> None:
    """Kill this process here if ``MLPILOT_CRASH_AT`` names ``name`` (see the module)."""
    global _reached
    if _TARGET is None or _TARGET[0] != name:
        return
    in_worker = multiprocessing.parent_process() is not None
    if in_worker != (name == "trial"):
        return
    _reached += 1
    if _reached < _TARGET[1]:
        return
    print(f"mlpilot: crash point {name!r} reached: killing process {os.getpid()}", flush=True)
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
