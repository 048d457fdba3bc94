"""Jobs: the orchestrator, its records and output layout, and reading results back."""

from mlpilot.jobs._job import AutoMLJob, JobObserver
from mlpilot.jobs._layout import JobLayout
from mlpilot.jobs._leaderboard import leaderboard_frame
from mlpilot.jobs._recover import finalize_interrupted
from mlpilot.jobs._results import JobResults, load_job, model_location

__all__ = [
    "AutoMLJob",
    "JobLayout",
    "JobObserver",
    "JobResults",
    "finalize_interrupted",
    "leaderboard_frame",
    "load_job",
    "model_location",
]
