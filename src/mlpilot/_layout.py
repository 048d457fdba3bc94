"""Where a job's artifacts live, following Autopilot's S3 output layout, and reading the job
record and candidates back from there.

It sits below every package (like :mod:`mlpilot._types`): loading a model from a job folder
(:mod:`mlpilot.package`, :mod:`mlpilot.serving`) needs the layout, not the training stack.

Under the job's root (``<S3OutputPath>/<AutoMLJobName>`` for the service, ``--output`` for the
CLI)::

    job.json                                            the job record (DescribeAutoMLJobV2 shape)
    candidates.jsonl                                    one finished candidate per line
    leaderboard.csv / leaderboard.json                  every candidate, ranked
    sagemaker-automl-candidates/<job>-pr-1-<hash>/
        profile.json                                    the data profile (analysis step)
        candidates.json                                 the candidate definitions (search space)
        notebooks/                                      the generated notebooks (+ HTML)
        data-sample/                                    rows and encoded targets the notebooks
                                                        and reports read after the job
    tuning/<job>-tuning/<candidate>/output/model/       each candidate's trained model package
    sagemaker-automl-candidates/model/<candidate>/      the best candidate, refit: model package
                                                        with model.tar.gz (ModelDataUrl)
    documentation/explainability/output/<candidate>/    explainability report
    documentation/model_monitor/output/<candidate>/     model-quality report
    documentation/backtest_results/output/<candidate>/  forecasting: each candidate's backtest
                                                        forecasts and accuracy per window
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpilot.errors import JobNotFoundError

__all__ = [
    "JobLayout",
    "job_candidates",
    "model_location",
    "read_candidates",
    "read_job_record",
    "write_json_atomic",
]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class JobLayout:
    root: Path
    job_name: str

    @property
    def processing_job(self) -> str:
        digest = hashlib.sha1(self.job_name.encode()).hexdigest()[:16]
        return f"{self.job_name}-pr-1-{digest}"

    @property
    def record(self) -> Path:
        return self.root / "job.json"

    @property
    def spec(self) -> Path:
        """The job's :class:`~mlpilot.config.JobConfig`, as :meth:`JobConfig.to_dict` wrote it."""
        return self.root / "spec.json"

    @property
    def candidates_log(self) -> Path:
        return self.root / "candidates.jsonl"

    @property
    def leaderboard_csv(self) -> Path:
        return self.root / "leaderboard.csv"

    @property
    def leaderboard_json(self) -> Path:
        return self.root / "leaderboard.json"

    @property
    def analysis(self) -> Path:
        return self.root / "sagemaker-automl-candidates" / self.processing_job

    @property
    def profile(self) -> Path:
        return self.analysis / "profile.json"

    @property
    def candidate_definitions(self) -> Path:
        return self.analysis / "candidates.json"

    @property
    def notebooks(self) -> Path:
        return self.analysis / "notebooks"

    @property
    def exploration_notebook(self) -> Path:
        return self.notebooks / "SageMakerAutopilotDataExplorationNotebook.ipynb"

    @property
    def candidate_notebook(self) -> Path:
        return self.notebooks / "SageMakerAutopilotCandidateDefinitionNotebook.ipynb"

    @property
    def data_sample(self) -> Path:
        return self.analysis / "data-sample"

    @property
    def tuning_job(self) -> str:
        return f"{self.job_name}-tuning"

    def candidate_model(self, candidate: str) -> Path:
        return self.root / "tuning" / self.tuning_job / candidate / "output" / "model"

    def final_model(self, candidate: str) -> Path:
        return self.root / "sagemaker-automl-candidates" / "model" / candidate

    @property
    def explainability(self) -> Path:
        return self.root / "documentation" / "explainability" / "output"

    @property
    def model_insights(self) -> Path:
        return self.root / "documentation" / "model_monitor" / "output"

    @property
    def backtest_results(self) -> Path:
        return self.root / "documentation" / "backtest_results" / "output"

    def explainability_for(self, candidate: str) -> Path:
        return self.explainability / candidate

    def model_insights_for(self, candidate: str) -> Path:
        return self.model_insights / candidate

    def backtest_results_for(self, candidate: str) -> Path:
        """A forecasting candidate's BacktestResults prefix (``forecasted-values/``,
        ``accuracy-metrics-values/``)."""
        return self.backtest_results / candidate

    @property
    def work(self) -> Path:
        return self.root / ".work"

    @property
    def prepared_data(self) -> Path:
        return self.work / "data"


def read_candidates(path: Path) -> list[dict[str, Any]]:
    """Candidate records from ``candidates.jsonl`` (the last line per name wins)."""
    if not path.exists():
        return []
    by_name: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_name[record["CandidateName"]] = record
    return list(by_name.values())


def read_job_record(root: Path) -> dict[str, Any]:
    """The job record (``job.json``) of the job folder ``root``."""
    record_path = root / "job.json"
    if not record_path.exists():
        raise JobNotFoundError(f"No mlpilot job at {root} (no job.json)")
    try:
        record: dict[str, Any] = json.loads(record_path.read_text())
    except json.JSONDecodeError as exc:
        raise JobNotFoundError(f"{record_path} is not a readable job record: {exc}") from exc
    return record


def job_candidates(layout: JobLayout) -> list[dict[str, Any]]:
    """Every candidate of the job: the leaderboard once written, else the candidates log."""
    if layout.leaderboard_json.exists():
        data: list[dict[str, Any]] = json.loads(layout.leaderboard_json.read_text())
        return data
    return read_candidates(layout.candidates_log)


def model_location(root: Path, candidate: str | None = None) -> Path:
    """The model package of the job's best candidate, or of ``candidate``."""
    record = read_job_record(root)
    name = record["AutoMLJobName"]
    if candidate is None:
        best = record.get("BestCandidate")
        if not best or "FinalModel" not in best.get("Mlpilot", {}):
            raise JobNotFoundError(
                f"Job {name} has no packaged best model (status {record['AutoMLJobStatus']}, "
                f"{record.get('AutoMLJobSecondaryStatus')})"
            )
        return Path(best["Mlpilot"]["FinalModel"])
    for entry in job_candidates(JobLayout(root, name)):
        if entry["CandidateName"] == candidate:
            extra = entry.get("Mlpilot", {})
            location = extra.get("FinalModel") or extra.get("ModelLocation")
            if location and Path(location).exists():
                return Path(location)
            raise JobNotFoundError(f"Candidate {candidate} has no saved model")
    raise JobNotFoundError(f"Job {name} has no candidate named {candidate!r}")
