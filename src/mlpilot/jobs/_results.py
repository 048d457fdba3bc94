"""Reading a job's output folder back: record, leaderboard, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot._layout import JobLayout, job_candidates, model_location, read_job_record
from mlpilot._types import ProblemType
from mlpilot.jobs._leaderboard import leaderboard_frame
from mlpilot.metrics import (
    ActiveObjective,
    CostMatrix,
    ObjectiveFunction,
    activate_objective,
)
from mlpilot.package import InferenceModel
from mlpilot.profile import DatasetProfile, label_key

__all__ = ["JobResults", "activate_job_objective", "load_job"]


def activate_job_objective(layout: JobLayout) -> ActiveObjective | None:
    """Make the job's own objective (its cost matrix or user metric, from its spec) this
    process's, bound to the classes of its profile, so that a later reader (the reports, the
    card) scores it as the job did; None, and none active, when the job has none. Nothing of a
    user metric's module is imported until it is scored."""
    try:
        problem = json.loads(layout.spec.read_text()).get("problem") or {}
        profile = DatasetProfile.load(layout.profile)
    except (OSError, ValueError):
        return activate_objective(None, ProblemType.REGRESSION, [])
    objective: CostMatrix | ObjectiveFunction | None = None
    if problem.get("cost_matrix") is not None:
        objective = CostMatrix.parse(problem["cost_matrix"])
    elif problem.get("objective_function") is not None:
        objective = ObjectiveFunction(**problem["objective_function"])
    target = profile.target
    return activate_objective(objective, target.problem_type, [label_key(v) for v in target.labels])


class JobResults:
    """A finished (or running) job as found in its output folder."""

    def __init__(self, root: Path, record: dict[str, Any]) -> None:
        self.root = root
        self.record = record
        self.layout = JobLayout(root, record["AutoMLJobName"])

    @property
    def name(self) -> str:
        return str(self.record["AutoMLJobName"])

    @property
    def status(self) -> str:
        return str(self.record["AutoMLJobStatus"])

    @property
    def objective(self) -> str:
        resolved = self.record.get("ResolvedAttributes", {})
        return str(resolved.get("AutoMLJobObjective", {}).get("MetricName", "F1"))

    @property
    def best_candidate(self) -> dict[str, Any] | None:
        best: dict[str, Any] | None = self.record.get("BestCandidate")
        return best

    def candidates(self) -> list[dict[str, Any]]:
        return job_candidates(self.layout)

    def leaderboard(self) -> pd.DataFrame:
        return leaderboard_frame(self.candidates(), self.objective)

    def model(self, candidate: str | None = None) -> Any:
        return InferenceModel.load(model_location(self.root, candidate))


def load_job(path: str | Path) -> JobResults:
    root = Path(path)
    return JobResults(root, read_job_record(root))
