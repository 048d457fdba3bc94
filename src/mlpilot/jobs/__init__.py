"""Jobs: the orchestrator, its records and output layout, and reading results back."""

from mlpilot._layout import JobLayout, model_location, read_candidates
from mlpilot.jobs._job import AutoMLJob, JobHooks, JobObserver
from mlpilot.jobs._leaderboard import leaderboard_frame, objective_maximized, progress_frame
from mlpilot.jobs._records import (
    CandidateRecord,
    JobRecord,
    describe_v1,
    echo_request,
    job_summary,
)
from mlpilot.jobs._recover import finalize_interrupted
from mlpilot.jobs._results import JobResults, activate_job_objective, load_job

__all__ = [
    "AutoMLJob",
    "CandidateRecord",
    "JobHooks",
    "JobLayout",
    "JobObserver",
    "JobRecord",
    "JobResults",
    "activate_job_objective",
    "describe_v1",
    "echo_request",
    "finalize_interrupted",
    "job_summary",
    "leaderboard_frame",
    "load_job",
    "model_location",
    "objective_maximized",
    "progress_frame",
    "read_candidates",
]
