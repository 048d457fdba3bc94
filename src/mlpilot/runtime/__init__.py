"""Where candidates run: the executor interface and its local process-pool implementation."""

from mlpilot.runtime._executor import Executor, TaskOutcome
from mlpilot.runtime._local import LocalProcessExecutor, default_parallelism

__all__ = ["Executor", "LocalProcessExecutor", "TaskOutcome", "default_parallelism"]
