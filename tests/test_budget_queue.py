"""The job's time budget and the one task-queue loop every phase runs its work through.

Most tests drive :class:`TaskQueue` with a scripted in-process executor (each task ends when the
test says so), so they check the loop's rules without timing anything; one runs the real local
process pool.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mlpilot.runtime import (
    GRACE,
    MIN_TASK_SECONDS,
    Budget,
    Executor,
    LocalProcessExecutor,
    QueueItem,
    TaskOutcome,
    TaskQueue,
)


class ScriptedExecutor(Executor):
    """Tasks end in submission order, one per ``wait`` call, each with state ``"ok"`` and its
    argument as value; ``cancel`` ends a task as cancelled at the next ``wait``."""

    def __init__(self, capacity: int = 2) -> None:
        self._capacity = capacity
        self.submitted: list[tuple[int, str, Any, float | None]] = []
        self.cancelled: list[int] = []
        self._running: dict[int, Any] = {}
        self._next = 0
        self.waits = 0
        #: Called at every wait (a test sets the stop flag from here).
        self.on_wait: Any = None

    @property
    def capacity(self) -> int:
        return self._capacity

    def submit(self, function: str, argument: Any, *, hard_limit: float | None = None) -> int:
        assert len(self._running) < self._capacity, "submitted beyond capacity"
        task_id = self._next
        self._next += 1
        self.submitted.append((task_id, function, argument, hard_limit))
        self._running[task_id] = argument
        return task_id

    def wait(self, timeout: float) -> list[TaskOutcome]:
        self.waits += 1
        if self.on_wait is not None:
            self.on_wait(self)
        if not self._running:
            return []
        cancelled = [t for t in self._running if t in self.cancelled]
        if cancelled:
            for task_id in cancelled:
                del self._running[task_id]
            return [TaskOutcome(t, "cancelled") for t in cancelled]
        task_id = min(self._running)
        value = self._running.pop(task_id)
        return [TaskOutcome(task_id, "ok", value=value, seconds=0.1)]

    def cancel(self, task_id: int) -> None:
        if task_id in self._running:
            self.cancelled.append(task_id)

    def running(self) -> int:
        return len(self._running)

    def shutdown(self) -> None:
        self._running.clear()


# -- Budget ------------------------------------------------------------------------------------
def test_unlimited_budget_has_no_deadline_and_keeps_the_per_task_limit() -> None:
    budget = Budget(None, per_task=30)
    assert not budget.limited
    assert budget.deadline() is None and budget.left() is None
    assert budget.end_reserve() == 0.0
    assert budget.task_limit(None, 0.4) == 30
    assert Budget(None).task_limit(None) is None


def test_budget_counts_down_from_its_start() -> None:
    now = time.monotonic()
    budget = Budget(100.0, started=now - 40)
    left = budget.left()
    assert left is not None and 59 < left <= 60
    assert budget.deadline() == pytest.approx(now + 60)
    assert 40 <= budget.elapsed() < 41
    reduced = budget.left(reserve=10)
    assert reduced is not None and 49 < reduced <= 50


def test_end_reserve_is_fixed_plus_a_share_plus_what_observers_ask() -> None:
    assert Budget(100.0).end_reserve() == pytest.approx(1.5 + 3.0)
    assert Budget(100.0, end_extra=7.0).end_reserve() == pytest.approx(1.5 + 3.0 + 7.0)


def test_task_limit_takes_the_tightest_of_per_task_left_and_share() -> None:
    budget = Budget(100.0, per_task=30)
    assert budget.task_limit(50, share=0.25) == 25  # the share of the whole budget
    assert budget.task_limit(20, share=0.25) == 20  # the time left
    assert budget.task_limit(50) == 30  # the per-task limit
    tiny = Budget(2.0)
    # A share never cuts a task below the least a task is started with.
    assert tiny.task_limit(10, share=0.1) == MIN_TASK_SECONDS


def test_a_reserving_view_ends_earlier_and_follows_its_reserve() -> None:
    reserve = [10.0]
    budget = Budget(100.0)
    view = budget.reserving(lambda: reserve[0])
    nested = view.reserving(lambda: 5.0)
    end = budget.deadline()
    assert end is not None
    assert view.deadline() == pytest.approx(end - 10)
    assert nested.deadline() == pytest.approx(end - 15)
    reserve[0] = 30.0  # e.g. the best candidate so far got bigger: its refit needs more
    assert view.deadline() == pytest.approx(end - 30)
    assert nested.deadline() == pytest.approx(end - 35)
    # Same clock, same stop flag, same per-task limit.
    budget.stop.set()
    assert view.stop_requested() and nested.stop_requested()
    assert nested.total == budget.total and nested.started == budget.started
    # What the job sets on its budget later (its observers' reserve) holds for the views too.
    budget.end_extra = 7.0
    assert nested.end_reserve() == pytest.approx(budget.end_reserve()) == pytest.approx(11.5)


def test_package_seconds_scales_with_size() -> None:
    assert Budget.package_seconds(300e6) == pytest.approx(2 * Budget.package_seconds(150e6))
    assert Budget.package_seconds(0) == 0
    # Shipping copies, loads (for the card) and compresses: more than two plain passes.
    assert Budget.shipping_seconds(150e6) > 2 * Budget.package_seconds(150e6)
    assert Budget.shipping_seconds(0) == 0


# -- TaskQueue ---------------------------------------------------------------------------------
def test_queue_fills_free_slots_and_hands_every_outcome_back_with_its_key() -> None:
    executor = ScriptedExecutor(capacity=2)
    queue = TaskQueue(executor, Budget(None))
    pending = list(range(5))
    seen: list[tuple[str, int]] = []

    def fill() -> None:
        while pending and queue.free > 0:
            n = pending.pop(0)
            queue.submit("mod:fn", n * 10, limit=3.0, key=f"task-{n}")

    queue.run(fill, lambda key, outcome: seen.append((key, outcome.value)))
    assert seen == [(f"task-{n}", n * 10) for n in range(5)]
    # Never more at once than the executor takes; each hard limit is the limit plus the grace.
    assert [hard for *_, hard in executor.submitted] == [3.0 + GRACE] * 5
    assert queue.running == 0 and queue.free == 2


def test_a_stop_request_cancels_running_tasks_and_starts_nothing_more() -> None:
    executor = ScriptedExecutor(capacity=2)
    budget = Budget(None)
    queue = TaskQueue(executor, budget)
    fills = []

    def fill() -> None:
        fills.append(queue.free)
        while queue.free > 0:
            queue.submit("mod:fn", len(executor.submitted), limit=None, key=len(executor.submitted))

    def stop_after_first_wait(ex: ScriptedExecutor) -> None:
        if ex.waits == 1:
            budget.stop.set()

    executor.on_wait = stop_after_first_wait
    states: list[str] = []
    queue.run(fill, lambda key, outcome: states.append(outcome.state))
    # The first wait ended task 0; then the stop: task 1 is cancelled, nothing new starts.
    assert len(fills) == 1 and len(executor.submitted) == 2
    assert states == ["ok", "cancelled"]
    assert executor.cancelled == [1]
    assert executor.submitted[0][3] is None  # no limit: no hard limit


def test_run_items_skips_what_no_longer_fits_the_budget() -> None:
    executor = ScriptedExecutor(capacity=1)
    budget = Budget(10.0)
    queue = TaskQueue(executor, budget)
    items = [QueueItem("mod:fn", n, limit=None if n else 100.0, key=n) for n in range(3)]
    reserve = [0.0]
    skipped: list[int] = []
    done: list[int] = []

    def handle(key: int, outcome: TaskOutcome) -> None:
        done.append(key)
        reserve[0] = 9.8  # after the first item the time left drops under the minimum

    queue.run_items(
        items, handle, reserve=lambda: reserve[0], skipped=lambda item: skipped.append(item.key)
    )
    assert done == [0] and skipped == [1, 2]
    # The first item's limit was cut to the time the budget left.
    hard = executor.submitted[0][3]
    assert hard is not None and hard <= 10.0 + GRACE


def test_queue_runs_real_tasks_on_the_local_pool() -> None:
    with LocalProcessExecutor(workers=2, threads=1) as executor:
        queue = TaskQueue(executor, Budget(None))
        results: dict[str, Any] = {}
        items = [QueueItem("helpers_tasks:double", n, None, f"n{n}") for n in range(4)]
        items.append(QueueItem("helpers_tasks:fail", None, None, "bad"))
        queue.run_items(items, lambda key, outcome: results.setdefault(key, outcome))
    assert {k: o.value for k, o in results.items() if o.state == "ok"} == {
        "n0": 0,
        "n1": 2,
        "n2": 4,
        "n3": 6,
    }
    assert results["bad"].state == "error"
