"""Reading a job's output folder back: record, leaderboard, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot.errors import JobNotFoundError
from mlpilot.jobs._layout import JobLayout
from mlpilot.jobs._leaderboard import leaderboard_frame, read_candidates

__all__ = ["JobResults", "load_job", "model_location"]


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
        if self.layout.leaderboard_json.exists():
            data: list[dict[str, Any]] = json.loads(self.layout.leaderboard_json.read_text())
            return data
        return read_candidates(self.layout.candidates_log)

    def leaderboard(self) -> pd.DataFrame:
        return leaderboard_frame(self.candidates(), self.objective)

    def model(self, candidate: str | None = None) -> Any:
        from mlpilot.package import InferenceModel

        return InferenceModel.load(model_location(self.root, candidate))


def load_job(path: str | Path) -> JobResults:
    root = Path(path)
    record_path = root / "job.json"
    if not record_path.exists():
        raise JobNotFoundError(f"No mlpilot job at {root} (no job.json)")
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError as exc:
        raise JobNotFoundError(f"{record_path} is not a readable job record: {exc}") from exc
    return JobResults(root, record)


def model_location(root: Path, candidate: str | None = None) -> Path:
    """The model package of the job's best candidate, or of ``candidate``."""
    job = load_job(root)
    if candidate is None:
        best = job.best_candidate
        if not best or "FinalModel" not in best.get("Mlpilot", {}):
            raise JobNotFoundError(
                f"Job {job.name} has no packaged best model (status {job.status}, "
                f"{job.record.get('AutoMLJobSecondaryStatus')})"
            )
        return Path(best["Mlpilot"]["FinalModel"])
    for record in job.candidates():
        if record["CandidateName"] == candidate:
            extra = record.get("Mlpilot", {})
            location = extra.get("FinalModel") or extra.get("ModelLocation")
            if location and Path(location).exists():
                return Path(location)
            raise JobNotFoundError(f"Candidate {candidate} has no saved model")
    raise JobNotFoundError(f"Job {job.name} has no candidate named {candidate!r}")
