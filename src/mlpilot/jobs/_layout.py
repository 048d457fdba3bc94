"""Where a job's artifacts live, following Autopilot's S3 output layout.

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
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JobLayout", "write_json_atomic"]


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

    def explainability_for(self, candidate: str) -> Path:
        return self.explainability / candidate

    def model_insights_for(self, candidate: str) -> Path:
        return self.model_insights / candidate

    @property
    def work(self) -> Path:
        return self.root / ".work"

    @property
    def prepared_data(self) -> Path:
        return self.work / "data"
