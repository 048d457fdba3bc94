"""The job's time, in one object: the deadline, what is kept back from it, per-task limits.

Every phase of a job (the search, the ensemble builder, the final refit) asks the same
:class:`Budget` how long it has, so the reserves and the per-task rules live here once. A phase
that must leave time for later work looks through :meth:`Budget.reserving`, a view whose
deadline ends that much earlier (the amount may change as results come in).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["GRACE", "MIN_TASK_SECONDS", "Budget"]

#: Seconds a task may run past its own limit before the executor kills it: the task stops
#: itself at its limit (early-stopping callbacks, deadline checks); the kill is the backstop.
GRACE = 2.0
#: No task is started with less time than this.
MIN_TASK_SECONDS = 1.0
#: Seconds always kept back at the end of a limited job (records, leaderboard, stopping the
#: workers), plus this share of the whole budget.
END_SECONDS, END_SHARE = 1.5, 0.03
#: Longest a job's side work (the white box's notebook run and imports, imports for packaging)
#: waits for the workers to start before it starts anyway: seconds, and share of the budget.
#: On 2 cores that work slowed the workers' start-up from about 5 s to 13 s of a 60 s job.
READY_WAIT_SECONDS, READY_WAIT_SHARE = 15.0, 0.2
#: Rough speed of loading and writing model packages (bytes per second), for time plans: a
#: 253 MB forest loaded at ~170 MB/s and was written faster on the project's machine.
PACKAGE_BYTES_PER_SECOND = 150e6
#: Rough speed of compressing a package into ``model.tar.gz`` (gzip level 1): a 194 MB forest
#: took 3.5 s on the project's machine.
ARCHIVE_BYTES_PER_SECOND = 55e6


def _no_reserve() -> float:
    return 0.0


@dataclass
class Budget:
    """A job's runtime budget.

    Parameters
    ----------
    total:
        Seconds the whole job may take (``MaxAutoMLJobRuntimeInSeconds``); None: unlimited.
    started:
        ``time.monotonic()`` when the job's clock started.
    per_task:
        Seconds one candidate may take (``MaxRuntimePerTrainingJobInSeconds``), if limited.
    end_extra:
        Seconds the job's observers need after the model is packaged (e.g. its reports).
    stop:
        Set when the user asks the job to stop: nothing new starts, running work is cancelled.

    Examples
    --------
    >>> budget = Budget(60.0)
    >>> search = budget.reserving(lambda: 10.0)   # the search leaves 10 s for the final model
    >>> 49 < search.left() <= 50
    True
    """

    total: float | None
    started: float = field(default_factory=time.monotonic)
    per_task: float | None = None
    end_extra: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    #: Seconds this view keeps back before the job's deadline (see :meth:`reserving`).
    reserve: Callable[[], float] = field(default=_no_reserve, repr=False)
    #: The job's own budget, for a view: what is set on it later (``end_extra``) holds here too.
    root: Budget | None = field(default=None, repr=False, compare=False)

    @property
    def limited(self) -> bool:
        return self.total is not None

    def deadline(self) -> float | None:
        """Monotonic time by which this view's work must end (None: no limit)."""
        if self.total is None:
            return None
        return self.started + self.total - self.reserve()

    def left(self, reserve: float = 0.0) -> float | None:
        """Seconds until the deadline, less ``reserve`` (None: unlimited)."""
        end = self.deadline()
        return None if end is None else end - time.monotonic() - reserve

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def reserving(self, reserve: Callable[[], float]) -> Budget:
        """A view of this budget whose deadline comes ``reserve()`` seconds earlier (on top of
        what this view already keeps back); same clock, same stop flag."""
        outer = self.reserve

        def both() -> float:
            return outer() + reserve()

        root = self.root or self
        return Budget(
            self.total, self.started, self.per_task, root.end_extra, self.stop, both, root
        )

    def end_reserve(self) -> float:
        """Seconds kept back for the job's own end: writing records and the leaderboard, and
        what the observers asked for."""
        if self.total is None:
            return 0.0
        return END_SECONDS + END_SHARE * self.total + (self.root or self).end_extra

    def ready_wait(self) -> float:
        """Seconds side work waits at most for the job's workers to start (see
        READY_WAIT_SECONDS)."""
        if self.total is None:
            return READY_WAIT_SECONDS
        return min(READY_WAIT_SECONDS, READY_WAIT_SHARE * self.total)

    def task_limit(self, left: float | None, share: float | None = None) -> float | None:
        """A task's time limit: the per-task limit, within ``left`` seconds, and (for a limited
        budget) within ``share`` of the whole budget (never under MIN_TASK_SECONDS)."""
        limit = self.per_task
        if left is not None:
            if share is not None and self.total:
                left = min(left, max(share * self.total, MIN_TASK_SECONDS))
            limit = left if limit is None else min(limit, left)
        return limit

    @staticmethod
    def package_seconds(size_bytes: float) -> float:
        """Estimated seconds to load or write ``size_bytes`` of model package."""
        return size_bytes / PACKAGE_BYTES_PER_SECOND

    @staticmethod
    def shipping_seconds(size_bytes: float) -> float:
        """Estimated seconds for a job to ship a model package of ``size_bytes``: copy it
        into place, load it for the model card, and compress it into ``model.tar.gz``."""
        return 2 * size_bytes / PACKAGE_BYTES_PER_SECOND + size_bytes / ARCHIVE_BYTES_PER_SECOND
