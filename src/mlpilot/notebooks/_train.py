"""Training the candidates of a candidates-only job, and small helpers for the notebook."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot._layout import write_json_atomic
from mlpilot._types import Mode, SecondaryStatus
from mlpilot.config import JobConfig
from mlpilot.errors import ConfigError
from mlpilot.jobs import AutoMLJob, load_job
from mlpilot.reports import WhiteBox
from mlpilot.search import CandidateDefinition

__all__ = [
    "ProgressPrinter",
    "describe_candidates",
    "load_candidate_definitions",
    "prepare_training",
    "run_training",
    "train_candidates",
]

#: Request fields of a job record (DescribeAutoMLJobV2 echoes CreateAutoMLJobV2's request).
_REQUEST_FIELDS = (
    "AutoMLJobName",
    "AutoMLJobInputDataConfig",
    "OutputDataConfig",
    "AutoMLProblemTypeConfig",
    "AutoMLJobObjective",
    "DataSplitConfig",
    "RoleArn",
    "Tags",
)


class ProgressPrinter:
    """A job observer that prints each finished candidate and each phase (for notebooks)."""

    def __init__(self) -> None:
        self._phase = ""

    def on_status(self, job: Any) -> None:
        phase = job.secondary_status
        if phase != self._phase:
            self._phase = phase
            print(f"[{job.elapsed():6.1f} s] {phase}", flush=True)

    def on_candidate(self, job: Any, candidate: dict[str, Any]) -> None:
        value = candidate.get("FinalAutoMLJobObjectiveMetric", {}).get("Value")
        shown = f"{value:.6g}" if value is not None else candidate.get("FailureReason", "")
        print(
            f"[{job.elapsed():6.1f} s]   {candidate['CandidateName']}: "
            f"{candidate['CandidateStatus']} {shown}",
            flush=True,
        )


def describe_candidates(candidates: Sequence[CandidateDefinition]) -> pd.DataFrame:
    """One row per pipeline: algorithm, preprocessing steps, tuned hyperparameters."""
    rows = []
    for c in candidates:
        rows.append(
            {
                "pipeline": c.key,
                "algorithm": c.algorithm,
                "preprocessing": "; ".join(c.preprocessing.describe()) if c.preprocessing else "",
                "tuned": ", ".join(c.ranges or {}),
            }
        )
    return pd.DataFrame(rows).set_index("pipeline")


def load_candidate_definitions(path: str | Path) -> list[CandidateDefinition]:
    """The pipelines a job wrote in ``candidates.json``, in the job's order."""
    data = json.loads(Path(path).read_text())
    return [
        CandidateDefinition.from_dict({**entry, "name": key})
        for key, entry in data["Algorithms"].items()
    ]


def train_candidates(
    job_dir: str | Path,
    *,
    candidates: Sequence[CandidateDefinition] | None = None,
    algorithms: Sequence[str] | None = None,
    max_candidates: int | None = None,
    parallelism: int | None = None,
    max_runtime: int | None = None,
    max_runtime_per_candidate: int | None = None,
    generate_reports: bool = True,
    observers: list[Any] | None = None,
) -> Any:
    """Train the candidates of a candidates-only job into that job.

    The job (stopped at ``CandidateDefinitionsGenerated``) runs its search with the pipelines
    it defined (or ``candidates``, e.g. edited in its notebook; ``algorithms`` picks some by
    name), then ranks, packages and reports as any job does: the candidates appear on its
    leaderboard. Returns the finished :class:`~mlpilot.jobs.AutoMLJob`.

    Raises
    ------
    ConfigError
        The job is not waiting for training, or a name in ``algorithms`` is unknown.

    Examples
    --------
    >>> job = train_candidates("runs/churn", algorithms=["lightgbm"], max_candidates=10)
    ...                                                                 # doctest: +SKIP
    >>> job.leaderboard().head()                                        # doctest: +SKIP
    """
    job, old = prepare_training(
        job_dir,
        candidates=candidates,
        algorithms=algorithms,
        max_candidates=max_candidates,
        parallelism=parallelism,
        max_runtime=max_runtime,
        max_runtime_per_candidate=max_runtime_per_candidate,
        generate_reports=generate_reports,
        observers=observers,
    )
    return run_training(job, old)


def prepare_training(
    job_dir: str | Path,
    *,
    candidates: Sequence[CandidateDefinition] | None = None,
    algorithms: Sequence[str] | None = None,
    max_candidates: int | None = None,
    parallelism: int | None = None,
    max_runtime: int | None = None,
    max_runtime_per_candidate: int | None = None,
    generate_reports: bool = True,
    observers: list[Any] | None = None,
    started: float | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The :class:`~mlpilot.jobs.AutoMLJob` that trains a candidates-only job (not started),
    with its notebooks and reports (a :class:`~mlpilot.reports.WhiteBox`) besides
    ``observers``, and the job's current record. Checks everything first: nothing changes on
    error."""
    results = load_job(job_dir)
    record = results.record
    if record.get("AutoMLJobSecondaryStatus") != SecondaryStatus.CANDIDATE_DEFINITIONS_GENERATED:
        raise ConfigError(
            f"Job {results.name} is not a candidates-only job waiting for training (it is "
            f"{record.get('AutoMLJobStatus')}, {record.get('AutoMLJobSecondaryStatus')}); "
            "start a new job to search again"
        )
    if candidates is None:
        candidates = load_candidate_definitions(results.layout.candidate_definitions)
    chosen = list(candidates)
    if algorithms:
        by_name = {c.key: c for c in chosen}
        unknown = [a for a in algorithms if a not in by_name]
        if unknown:
            raise ConfigError(
                f"Job {results.name} defines no candidate named {', '.join(unknown)}; its "
                f"candidates are {', '.join(by_name)}"
            )
        chosen = [by_name[a] for a in algorithms]
    request = json.loads(json.dumps({k: record[k] for k in _REQUEST_FIELDS if k in record}))
    tabular = request["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    tabular.pop("GenerateCandidateDefinitionsOnly", None)
    # The candidates define the algorithms; the mode is the one candidates belong to.
    (tabular.get("CandidateGenerationConfig") or {}).pop("AlgorithmsConfig", None)
    tabular["Mode"] = Mode.HYPERPARAMETER_TUNING.value
    criteria = dict(tabular.get("CompletionCriteria") or {})
    for key, value in (
        ("MaxCandidates", max_candidates),
        ("MaxAutoMLJobRuntimeInSeconds", max_runtime),
        ("MaxRuntimePerTrainingJobInSeconds", max_runtime_per_candidate),
    ):
        if value is not None:
            criteria[key] = value
    tabular["CompletionCriteria"] = criteria
    arn_parts = str(record.get("AutoMLJobArn", "")).split(":")
    extra: dict[str, Any] = {}
    if len(arn_parts) > 4:
        extra = {"region": arn_parts[3], "account_id": arn_parts[4]}
    config = JobConfig.from_request(
        request,
        output_path=str(results.root),
        candidates=tuple(chosen),
        seed=int(record.get("Mlpilot", {}).get("Seed", 0)),
        parallelism=parallelism,
        generate_reports=generate_reports,
        **extra,
    )
    job = AutoMLJob(config, observers=[*(observers or []), WhiteBox()], started=started)
    job.record["CreationTime"] = record.get("CreationTime", job.record["CreationTime"])
    job.record["Mlpilot"] = {
        "CandidateDefinitionsGenerated": {
            "Time": record.get("EndTime"),
            "Trained": [c.key for c in chosen],
        }
    }
    return job, record


def run_training(job: Any, old_record: dict[str, Any]) -> Any:
    """Run a job from :func:`prepare_training` in place of the candidates-only record."""
    job.layout.record.unlink(missing_ok=True)
    try:
        job.run()
    except ConfigError:
        # Nothing was trained: put the candidates-only record back so the user can fix the
        # request and train again.
        if not job.candidates:
            _restore(job.layout.record, old_record)
        raise
    return job


def _restore(path: Path, record: dict[str, Any]) -> None:
    record = dict(record)
    record["LastModifiedTime"] = time.time()
    write_json_atomic(path, record)
