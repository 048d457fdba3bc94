"""Reading a job's output folder back: record, leaderboard, models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot._layout import JobLayout, job_candidates, model_location, read_job_record
from mlpilot.jobs._leaderboard import leaderboard_frame
from mlpilot.package import InferenceModel

__all__ = ["JobResults", "load_job"]


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
