"""mlpilot: white-box tabular AutoML that speaks the SageMaker Autopilot API.

The Python API in a few names::

    import mlpilot
    job = mlpilot.run_job("examples/churn.csv", target="Churn", output="runs/churn",
                          max_runtime=120)
    job.leaderboard()                       # every candidate, best first (a DataFrame)
    model = mlpilot.load_model("runs/churn")
    model.predict(new_rows)                 # predicted_label, probability

Heavy modules load on first use, so ``import mlpilot`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlpilot._version import __version__

if TYPE_CHECKING:
    from mlpilot.api import run_job
    from mlpilot.config import JobConfig, TabularConfig
    from mlpilot.jobs import AutoMLJob, JobResults, load_job
    from mlpilot.package import InferenceModel, load_model

__all__ = [
    "AutoMLJob",
    "InferenceModel",
    "JobConfig",
    "JobResults",
    "TabularConfig",
    "__version__",
    "load_job",
    "load_model",
    "run_job",
]

_LAZY = {
    "AutoMLJob": "mlpilot.jobs",
    "JobResults": "mlpilot.jobs",
    "load_job": "mlpilot.jobs",
    "JobConfig": "mlpilot.config",
    "TabularConfig": "mlpilot.config",
    "InferenceModel": "mlpilot.package",
    "load_model": "mlpilot.package",
    "run_job": "mlpilot.api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlpilot' has no attribute {name!r}")
