"""The one loop that runs tasks through an executor: submit while there is room, wait for what
finishes, hand each outcome back, cancel everything once the job is asked to stop.

The search, the ensemble builder and the final refit all run their work through a
:class:`TaskQueue`; what differs between them (which task comes next, what a result means) is
the caller's ``fill`` and ``handle``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mlpilot.runtime._budget import GRACE, Budget
from mlpilot.runtime._executor import Executor, TaskOutcome

__all__ = ["QueueItem", "TaskQueue"]

#: Seconds between checks of the stop flag while tasks run.
POLL_SECONDS = 0.5


@dataclass
class QueueItem:
    """A task waiting for a slot: ``function`` (``"module:name"``) on ``argument``, within
    ``limit`` seconds (None: whatever the budget leaves); ``key`` comes back with its outcome."""

    function: str
    argument: Any
    limit: float | None
    key: Any


class TaskQueue:
    """Runs tasks on ``executor`` within ``budget``.

    Each task's hard limit (after which the executor kills it) is its own limit plus
    :data:`~mlpilot.runtime.GRACE`. Once ``budget.stop_requested()``, :meth:`run` starts nothing
    more and cancels what runs; the cancelled outcomes still reach ``handle``.
    """

    def __init__(self, executor: Executor, budget: Budget) -> None:
        self.executor = executor
        self.budget = budget
        self._keys: dict[int, Any] = {}

    @property
    def capacity(self) -> int:
        return self.executor.capacity

    @property
    def free(self) -> int:
        """Tasks that may start now."""
        return self.executor.capacity - len(self._keys)

    @property
    def running(self) -> int:
        return len(self._keys)

    def submit(
        self, function: str, argument: Any, *, limit: float | None, key: Any, grace: float = GRACE
    ) -> int:
        hard = None if limit is None else limit + grace
        task_id = self.executor.submit(function, argument, hard_limit=hard)
        self._keys[task_id] = key
        return task_id

    def cancel_all(self) -> None:
        for task_id in list(self._keys):
            self.executor.cancel(task_id)

    def wait(self, timeout: float = POLL_SECONDS) -> list[tuple[Any, TaskOutcome]]:
        """Block up to ``timeout`` seconds; return ``(key, outcome)`` for each task that ended."""
        return [(self._keys.pop(o.task_id), o) for o in self.executor.wait(timeout=timeout)]

    def run(
        self,
        fill: Callable[[], object],
        handle: Callable[[Any, TaskOutcome], object],
    ) -> None:
        """Call ``fill`` (it submits what may start now; it sees :attr:`free`), then wait and
        ``handle`` each outcome, until nothing runs after a fill. A stop request cancels the
        running tasks and ends the filling."""
        while True:
            if self.budget.stop_requested():
                self.cancel_all()
            else:
                fill()
            if not self._keys:
                return
            for key, outcome in self.wait():
                handle(key, outcome)

    def run_items(
        self,
        items: Iterable[QueueItem],
        handle: Callable[[Any, TaskOutcome], object],
        *,
        reserve: Callable[[], float] | None = None,
        min_seconds: float = 0.5,
        skipped: Callable[[QueueItem], object] | None = None,
    ) -> None:
        """Run ``items`` in order, as many at once as there are free slots, each within the
        time the budget leaves (less ``reserve()``). An item that no longer gets ``min_seconds``
        is skipped (``skipped`` is told)."""
        pending = deque(items)

        def fill() -> None:
            while pending and self.free > 0:
                item = pending.popleft()
                limit = item.limit
                left = self.budget.left(reserve() if reserve else 0.0)
                if left is not None:
                    limit = left if limit is None else min(limit, left)
                    if limit <= min_seconds:
                        if skipped is not None:
                            skipped(item)
                        continue
                self.submit(item.function, item.argument, limit=limit, key=item.key)

        self.run(fill, handle)
