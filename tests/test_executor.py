"""Tests for mlpilot.runtime.LocalProcessExecutor with real ``spawn``ed worker processes.

Task functions live in ``tests/helpers_tasks.py`` (workers import them by path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers_tasks import FAILURE_MESSAGE
from mlpilot.runtime import LocalProcessExecutor, TaskOutcome, import_beside


def collect(executor: LocalProcessExecutor, n: int, timeout: float = 15.0) -> list[TaskOutcome]:
    """Wait until ``n`` outcomes arrived (or ``timeout`` passed); return them."""
    outcomes: list[TaskOutcome] = []
    deadline = time.monotonic() + timeout
    while len(outcomes) < n and time.monotonic() < deadline:
        outcomes += executor.wait(deadline - time.monotonic())
    return outcomes


def run_one(executor: LocalProcessExecutor, function: str, argument: object) -> TaskOutcome:
    task_id = executor.submit(f"helpers_tasks:{function}", argument)
    (outcome,) = collect(executor, 1)
    assert outcome.task_id == task_id
    return outcome


def worker_pid(executor: LocalProcessExecutor) -> int:
    outcome = run_one(executor, "pid", None)
    assert outcome.state == "ok", outcome
    return int(outcome.value)


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def executor() -> Iterator[LocalProcessExecutor]:
    with LocalProcessExecutor(workers=1, threads=1) as ex:
        assert isinstance(ex, LocalProcessExecutor)
        yield ex


def test_task_returns_its_value(executor: LocalProcessExecutor) -> None:
    assert executor.capacity == 1
    assert executor.running() == 0
    assert executor.wait(0.1) == []  # nothing submitted: returns at once, empty

    started = time.monotonic()
    task_id = executor.submit("helpers_tasks:sleep_then_double", (0.2, 21))
    assert executor.running() == 1
    (outcome,) = collect(executor, 1)
    waited = time.monotonic() - started

    assert outcome.task_id == task_id
    assert outcome.state == "ok"
    assert outcome.value == 42
    assert outcome.error == ""
    # The task's own time: at least its sleep, within what the caller waited (no figure for
    # the overhead: under load it has none).
    assert 0.2 <= outcome.seconds <= waited
    assert executor.running() == 0
    # Task ids are unique: the next one differs.
    assert run_one(executor, "double", 1.5).value == 3.0


def test_raising_task_reports_error_and_keeps_the_worker(executor: LocalProcessExecutor) -> None:
    before = worker_pid(executor)

    outcome = run_one(executor, "fail", None)

    assert outcome.state == "error"
    assert outcome.value is None
    assert "ValueError" in outcome.error
    assert FAILURE_MESSAGE in outcome.error
    assert "Traceback" in outcome.detail
    assert "helpers_tasks.py" in outcome.detail
    # An exception is not fatal: the same long-lived worker runs the next task.
    assert worker_pid(executor) == before


def test_unpicklable_result_is_an_error(executor: LocalProcessExecutor) -> None:
    outcome = run_one(executor, "unpicklable", None)

    assert outcome.state == "error"
    assert "could not be sent back" in outcome.error
    assert run_one(executor, "double", 2).value == 4


def test_task_past_hard_limit_is_killed_and_replaced(executor: LocalProcessExecutor) -> None:
    before = worker_pid(executor)

    started = time.monotonic()
    task_id = executor.submit("helpers_tasks:sleep_then_double", (30, 1), hard_limit=1.0)
    # An outcome at all means the task was cut short: it sleeps 30 s, collect waits 15 s.
    (outcome,) = collect(executor, 1)
    elapsed = time.monotonic() - started

    assert outcome.task_id == task_id
    assert outcome.state == "timeout"
    assert outcome.value is None
    assert "limit of 1 s" in outcome.error
    # Not stopped before its limit; the seconds reported are the ones it ran.
    assert 1.0 <= outcome.seconds <= elapsed
    assert is_gone(before)  # the worker was killed, not left sleeping
    assert executor.running() == 0
    # The executor keeps working, on a fresh worker.
    assert worker_pid(executor) != before
    assert run_one(executor, "double", 5).value == 10


def test_fractional_hard_limit_is_reported_as_given(executor: LocalProcessExecutor) -> None:
    executor.submit("helpers_tasks:sleep_then_double", (30, 1), hard_limit=0.5)
    (outcome,) = collect(executor, 1)

    assert outcome.state == "timeout"
    assert outcome.seconds >= 0.5  # the limit, not rounded down to 0 s
    assert "limit of 0.5 s" in outcome.error


def test_task_within_hard_limit_is_not_killed(executor: LocalProcessExecutor) -> None:
    executor.submit("helpers_tasks:sleep_then_double", (0.3, 4), hard_limit=5.0)
    (outcome,) = collect(executor, 1)

    assert outcome.state == "ok"
    assert outcome.value == 8


def test_worker_exiting_is_reported_as_crash(executor: LocalProcessExecutor) -> None:
    before = worker_pid(executor)

    outcome = run_one(executor, "exit_with", 3)

    assert outcome.state == "crashed"
    assert "exit code 3" in outcome.error
    assert is_gone(before)
    assert run_one(executor, "double", 7).value == 14


def test_worker_killed_by_signal_is_reported_as_crash(executor: LocalProcessExecutor) -> None:
    outcome = run_one(executor, "kill_self", None)

    assert outcome.state == "crashed"
    assert "signal 9" in outcome.error
    assert run_one(executor, "double", 8).value == 16


def test_cancel_stops_a_running_task(executor: LocalProcessExecutor) -> None:
    before = worker_pid(executor)
    task_id = executor.submit("helpers_tasks:sleep_then_double", (30, 1))
    assert executor.wait(0.3) == []  # still running

    executor.cancel(task_id)
    # An outcome at all means the task was stopped: it sleeps 30 s, collect waits 15 s.
    (outcome,) = collect(executor, 1)

    assert outcome.task_id == task_id
    assert outcome.state == "cancelled"
    assert outcome.seconds > 0  # it ran before it was stopped (timed in the worker)
    assert is_gone(before)
    assert executor.running() == 0
    executor.cancel(task_id)  # cancelling a finished task is a no-op
    assert executor.wait(0.1) == []
    assert run_one(executor, "double", 1).value == 2


def test_submit_beyond_capacity_raises(executor: LocalProcessExecutor) -> None:
    task_id = executor.submit("helpers_tasks:sleep_then_double", (30, 1))

    with pytest.raises(RuntimeError, match="no idle worker"):
        executor.submit("helpers_tasks:double", 1)

    executor.cancel(task_id)
    assert [o.state for o in collect(executor, 1)] == ["cancelled"]
    # The cancelled task's slot is free again.
    assert run_one(executor, "double", 3).value == 6


def test_unpicklable_argument_leaves_the_worker_free(executor: LocalProcessExecutor) -> None:
    with pytest.raises(Exception, match="pickle"):
        executor.submit("helpers_tasks:double", lambda: 1)

    # No phantom task holds the only worker.
    assert executor.running() == 0
    assert executor.wait(0.1) == []
    assert run_one(executor, "double", 4).value == 8


def test_two_workers_run_tasks_in_parallel(tmp_path: Path) -> None:
    with LocalProcessExecutor(workers=2, threads=1) as executor:
        assert executor.capacity == 2
        # Both workers started (imports done), so neither task waits out the other's start.
        executor.warm_up()
        for x in (1, 2):
            executor.submit("helpers_tasks:double", x)
        assert sorted(o.value for o in collect(executor, 2)) == [2, 4]

        # Each task waits for the other's file: both see it only if they run at the same time.
        # Patience is long enough for a loaded machine; a serial run would take it all.
        ids = {
            executor.submit("helpers_tasks:rendezvous", (str(tmp_path), me, other, 12.0))
            for me, other in (("a", "b"), ("b", "a"))
        }
        assert executor.running() == 2
        outcomes = collect(executor, 2, timeout=30)

    assert {o.task_id for o in outcomes} == ids
    assert all(o.state == "ok" for o in outcomes)
    assert [o.value for o in outcomes] == [True, True]


def test_thread_limits_reach_the_worker() -> None:
    with LocalProcessExecutor(workers=1, threads=3) as executor:
        assert executor.threads == 3
        outcome = run_one(executor, "thread_environment", None)

    assert outcome.state == "ok"
    assert outcome.value == {
        "OMP_NUM_THREADS": "3",
        "OPENBLAS_NUM_THREADS": "3",
        "MKL_NUM_THREADS": "3",
        "MLPILOT_WORKER_THREADS": "3",
    }


def test_thread_limits_are_set_before_numpy_loads() -> None:
    pytest.importorskip("threadpoolctl")
    with LocalProcessExecutor(workers=1, threads=1) as executor:
        outcome = run_one(executor, "blas_threads", None)

    assert outcome.state == "ok", outcome.error
    assert outcome.value, "numpy loaded no thread pool threadpoolctl could see"
    assert set(outcome.value) == {1}


def test_default_threads_split_the_cores() -> None:
    executor = LocalProcessExecutor(workers=1)
    try:
        assert executor.capacity == 1
        assert executor.threads >= 1
        assert LocalProcessExecutor(workers=10_000).threads == 1
    finally:
        executor.shutdown()  # nothing started: a no-op


def test_shutdown_stops_every_worker() -> None:
    executor = LocalProcessExecutor(workers=2, threads=1)
    for _ in range(2):
        executor.submit("helpers_tasks:pid", None)
    pids = {o.value for o in collect(executor, 2)}
    assert len(pids) == 2
    busy = 60.0
    executor.submit("helpers_tasks:sleep_then_double", (busy, 1))  # a busy worker too

    started = time.monotonic()
    executor.shutdown()

    # The busy worker was stopped, not waited for (its task would still be sleeping).
    assert time.monotonic() - started < busy
    assert all(is_gone(pid) for pid in pids)
    assert executor.running() == 0


def test_what_a_task_printed_survives_the_shutdown_of_its_worker() -> None:
    # A parent whose workers print into a pipe, buffered, and are killed when idle at shutdown.
    script = (
        "from mlpilot.runtime import LocalProcessExecutor\n"
        "executor = LocalProcessExecutor(workers=1, threads=1)\n"
        "executor.submit('helpers_tasks:say', 'printed by the task')\n"
        "while not executor.wait(1.0):\n"
        "    pass\n"
        "executor.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "printed by the task" in done.stdout


def test_workers_import_every_warm_up_path_as_they_start() -> None:
    with LocalProcessExecutor(workers=1, threads=1) as executor:
        # A path that does not import is skipped (its task would report the reason).
        executor.warm_up("helpers_tasks:double", "wave:open", "no_such_module:x", "colorsys")
        executor.submit("helpers_tasks:loaded", ["wave", "colorsys", "no_such_module"])
        (outcome,) = collect(executor, 1)
    assert outcome.value == [True, True, False]


def test_imports_beside_load_in_this_process_and_skip_what_does_not_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slow_library_for_refits.py").write_text("VALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "slow_library_for_refits" not in sys.modules
    # ``after`` runs first (the job waits there for its workers): nothing is imported yet.
    seen_first: list[bool] = []
    thread = import_beside(
        "no_such_module:x",
        "slow_library_for_refits:VALUE",
        after=lambda: seen_first.append("slow_library_for_refits" in sys.modules),
    )
    thread.join(timeout=30)
    assert not thread.is_alive() and thread.daemon
    assert seen_first == [False]
    assert sys.modules["slow_library_for_refits"].VALUE == 7
    monkeypatch.delitem(sys.modules, "slow_library_for_refits")


def test_a_tabular_job_warms_torch_up_where_a_network_may_train() -> None:
    from mlpilot.config import JobConfig, TabularConfig
    from mlpilot.problems.tabular import TabularProblem

    def imports(**settings: Any) -> list[str]:
        config = JobConfig(
            name="j",
            training_data="t.csv",
            output_path="out",
            problem=TabularConfig(target="y", **settings),
        )
        return TabularProblem().worker_imports(config)

    trial = TabularProblem.trial_function
    torch = "torch._dynamo"
    assert imports() == [trial, torch]  # AUTO: either mode's algorithms, networks among them
    assert imports(mode="HYPERPARAMETER_TUNING") == [trial, torch]  # its mlp is a torch network
    assert imports(mode="ENSEMBLING", algorithms=("lightgbm", "xgboost")) == [trial]
    assert imports(mode="ENSEMBLING", algorithms=("nn-torch", "fastai")) == [trial, torch]
    # Its refits run in the workers: the job's own process needs none of them.
    config = JobConfig(
        name="j", training_data="t.csv", output_path="out", problem=TabularConfig(target="y")
    )
    assert TabularProblem().package_imports(config) == []


def test_a_forecasting_job_warms_torch_up_where_its_network_may_train() -> None:
    from mlpilot.config import ForecastingConfig, JobConfig
    from mlpilot.problems.forecasting import ForecastingProblem

    def config(algorithms: tuple[str, ...] | None) -> JobConfig:
        problem = ForecastingConfig(
            target="y",
            timestamp="t",
            item_id="i",
            frequency="D",
            horizon=7,
            algorithms=algorithms,
        )
        return JobConfig(name="j", training_data="t.csv", output_path="out", problem=problem)

    def imports(algorithms: tuple[str, ...] | None) -> list[str]:
        return ForecastingProblem().worker_imports(config(algorithms))

    trial = ForecastingProblem.trial_function
    stats, torch = "statsforecast.models", "torch._dynamo"
    assert imports(None) == [trial, stats, torch]  # the defaults hold the quantile network
    assert imports(("ets", "arima")) == [trial, stats]
    assert imports(("npts",)) == [trial]  # NumPy alone
    assert imports(("deepar", "cnn-qr")) == [trial, torch]
    # The job's own process refits the best models on all history: it loads the same, beside
    # the search (3 s of torch imports had come out of the reports' reserve at the end).
    assert ForecastingProblem().package_imports(config(None)) == [stats, torch]
    assert ForecastingProblem().package_imports(config(("npts",))) == []


@pytest.mark.parametrize(
    ("module", "workers", "ready_at_once"),
    [
        # A warm-up import that takes 1.5 s: not ready within 0.2 s, then ready (and stays so).
        ("import time\ntime.sleep(1.5)\n", 2, False),
        # A worker that dies importing: not waited for (False would mean 60 s waited out).
        ("import os\nos._exit(3)\n", 1, None),
    ],
    ids=["slow-import", "died-starting"],
)
def test_wait_ready_holds_until_the_workers_have_imported_their_warm_up(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    workers: int,
    ready_at_once: bool | None,
) -> None:
    (tmp_path / "warm_up_for_ready.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    with LocalProcessExecutor(workers) as executor:
        executor.warm_up("warm_up_for_ready")
        if ready_at_once is not None:
            assert executor.wait_ready(0.2) is ready_at_once
        assert executor.wait_ready(60)
        assert executor.wait_ready(0)
