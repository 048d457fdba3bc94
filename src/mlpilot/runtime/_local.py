"""Local executor: a pool of worker processes, one task each at a time, killed when over time.

Each worker is a long-lived ``spawn``ed process, so imports are paid once per worker and a task
that overruns its limit, or a library that crashes, takes down only its own process (which is
replaced on the next submit).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from mlpilot.runtime._executor import Executor, TaskOutcome

__all__ = ["LocalProcessExecutor", "default_parallelism"]

#: Seconds a worker may take to start (spawn and imports) before its task's limit begins.
STARTUP_ALLOWANCE = 60.0
#: Seconds idle workers get to leave at shutdown before they are killed.
SHUTDOWN_GRACE = 0.2


def default_parallelism() -> int:
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


@dataclass
class _Worker:
    process: Any
    connection: Connection
    task_id: int | None = None
    started: float = 0.0
    hard_limit: float | None = None
    cancelled: bool = False
    #: The worker said it began the task (until then it may still be starting up).
    running: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: Set by the worker once its warm-up imports are done.
    ready: Any = None


class LocalProcessExecutor(Executor):
    """Runs tasks on ``workers`` local processes with ``threads`` threads each.

    Parameters
    ----------
    workers:
        Parallel tasks (default: the number of cores).
    threads:
        Threads a task may use (default: cores divided by workers, at least 1).
    warm_up:
        Import paths (``"module:name"`` or ``"module"``) each worker loads as it starts, so
        that the first task does not pay for them.
    """

    def __init__(
        self,
        workers: int | None = None,
        threads: int | None = None,
        warm_up: Sequence[str] = (),
    ) -> None:
        cores = default_parallelism()
        self._size = max(1, workers or cores)
        self.threads = max(1, threads or cores // self._size)
        self._warm_up = tuple(warm_up)
        self._context = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._next_id = 0
        self._pending: list[TaskOutcome] = []

    @property
    def capacity(self) -> int:
        return self._size

    def _start_worker(self) -> _Worker:
        parent, child = self._context.Pipe(duplex=True)
        from mlpilot.runtime._worker import worker_main

        ready = self._context.Event()
        process = self._context.Process(
            target=worker_main, args=(child, self.threads, self._warm_up, ready), daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent, ready=ready)
        self._workers.append(worker)
        return worker

    def warm_up(self, *paths: str) -> None:
        if paths:
            self._warm_up = paths
        while len(self._workers) < self._size:
            self._start_worker()

    def wait_ready(self, timeout: float) -> bool:
        end = time.monotonic() + max(0.0, timeout)
        for worker in list(self._workers):
            # A worker that died starting up is not waited for (its task reports the crash).
            while worker.process.is_alive() and not worker.ready.is_set():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                worker.ready.wait(min(left, 0.1))
        return True

    def _idle_worker(self) -> _Worker:
        for worker in self._workers:
            if worker.task_id is None and worker.process.is_alive():
                return worker
        self._workers = [w for w in self._workers if w.process.is_alive() or w.task_id is not None]
        if len(self._workers) >= self._size:
            raise RuntimeError("no idle worker: wait for a task to finish before submitting")
        return self._start_worker()

    def submit(self, function: str, argument: Any, *, hard_limit: float | None = None) -> int:
        worker = self._idle_worker()
        task_id = self._next_id
        # Send before marking the worker busy: an argument that cannot be pickled raises here
        # (nothing reaches the pipe) and must not leave a phantom task holding the worker.
        worker.connection.send((task_id, function, argument))
        self._next_id += 1
        worker.task_id, worker.started, worker.hard_limit = task_id, time.monotonic(), hard_limit
        worker.running = False
        worker.cancelled = False
        return task_id

    def running(self) -> int:
        return sum(1 for w in self._workers if w.task_id is not None) + len(self._pending)

    def _kill(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join(timeout=5)
        worker.connection.close()
        self._workers.remove(worker)

    def cancel(self, task_id: int) -> None:
        for worker in list(self._workers):
            if worker.task_id == task_id:
                seconds = time.monotonic() - worker.started
                self._kill(worker)
                self._pending.append(TaskOutcome(task_id, "cancelled", seconds=seconds))

    @staticmethod
    def _limit_end(worker: _Worker) -> float | None:
        if worker.task_id is None or worker.hard_limit is None:
            return None
        # Until the worker says it began, it may still be starting (spawn, imports).
        return worker.started + worker.hard_limit + (0.0 if worker.running else STARTUP_ALLOWANCE)

    def _reap_overdue(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            end = self._limit_end(worker)
            if end is not None and now > end and worker.task_id is not None:
                self._kill(worker)
                self._pending.append(
                    TaskOutcome(
                        worker.task_id,
                        "timeout",
                        error=f"ran past its limit of {worker.hard_limit:g} s and was stopped",
                        seconds=now - worker.started,
                    )
                )

    def _next_deadline(self) -> float | None:
        ends = [e for e in (self._limit_end(w) for w in self._workers) if e is not None]
        return min(ends) if ends else None

    def wait(self, timeout: float) -> list[TaskOutcome]:
        end = time.monotonic() + max(0.0, timeout)
        while True:
            self._reap_overdue()
            if self._pending:
                done, self._pending = self._pending, []
                return done
            busy = [w for w in self._workers if w.task_id is not None]
            if not busy:
                return []
            now = time.monotonic()
            until = end
            limit = self._next_deadline()
            if limit is not None:
                until = min(until, limit + 0.01)
            handles: list[Any] = [w.connection for w in busy] + [w.process.sentinel for w in busy]
            ready = wait(handles, timeout=max(0.0, until - now))
            outcomes = []
            for worker in busy:
                if worker.connection in ready:
                    try:
                        task_id, state, value, error, detail, seconds = worker.connection.recv()
                    except (EOFError, OSError):
                        outcomes.append(self._crashed(worker))
                        continue
                    if state == "started":
                        # Spawning and imports do not count against the task's limit.
                        worker.started, worker.running = time.monotonic(), True
                        continue
                    worker.task_id, worker.running = None, False
                    outcomes.append(TaskOutcome(task_id, state, value, error, detail, seconds))
                elif worker.process.sentinel in ready:
                    outcomes.append(self._crashed(worker))
            if outcomes:
                return outcomes
            if time.monotonic() >= end:
                return []

    def _crashed(self, worker: _Worker) -> TaskOutcome:
        task_id = worker.task_id if worker.task_id is not None else -1
        seconds = time.monotonic() - worker.started
        worker.process.join(timeout=1)
        if worker.process.is_alive():  # closed its pipe but did not exit: it is no use now
            worker.process.kill()
            worker.process.join(timeout=5)
        code = worker.process.exitcode
        self._workers.remove(worker)
        worker.connection.close()
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return TaskOutcome(
            task_id, "crashed", error=f"the worker process died ({how})", seconds=seconds
        )

    def shutdown(self) -> None:
        for worker in list(self._workers):
            try:
                if worker.task_id is None:
                    worker.connection.send(None)
            except OSError:
                pass
        # An idle worker holds nothing unsaved (each task's output is flushed before its
        # reply): it gets a moment to leave, then is killed rather than waited for through
        # the second or more its interpreter's teardown takes with torch loaded.
        deadline = time.monotonic() + SHUTDOWN_GRACE
        for worker in list(self._workers):
            if worker.task_id is None:
                worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            worker.connection.close()
        self._workers = []
