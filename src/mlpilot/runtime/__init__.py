"""Where candidates run: the executor interface, the local process pool, the one task queue
loop over an executor, the job's time budget, and how a detached child process starts."""

from mlpilot.runtime._budget import GRACE, MIN_TASK_SECONDS, Budget
from mlpilot.runtime._detached import start_detached
from mlpilot.runtime._executor import Executor, TaskOutcome
from mlpilot.runtime._local import LocalProcessExecutor, default_parallelism
from mlpilot.runtime._queue import QueueItem, TaskQueue
from mlpilot.runtime._worker import import_beside

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
    "import_beside",
    "start_detached",
]
