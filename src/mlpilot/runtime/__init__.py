"""Where candidates run: the executor interface, the local process pool, the one task queue
loop over an executor, and the job's time budget."""

from mlpilot.runtime._budget import GRACE, MIN_TASK_SECONDS, Budget
from mlpilot.runtime._executor import Executor, TaskOutcome
from mlpilot.runtime._local import LocalProcessExecutor, default_parallelism
from mlpilot.runtime._queue import QueueItem, TaskQueue

__all__ = [
    "GRACE",
    "MIN_TASK_SECONDS",
    "Budget",
    "Executor",
    "LocalProcessExecutor",
    "QueueItem",
    "TaskOutcome",
    "TaskQueue",
    "default_parallelism",
]
