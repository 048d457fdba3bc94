"""Training the candidates of a candidates-only job, and small helpers for the notebook."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot._layout import write_json_atomic
from mlpilot._types import Mode, SecondaryStatus
from mlpilot.config import JobConfig, TabularConfig
from mlpilot.errors import ConfigError
from mlpilot.jobs import AutoMLJob, load_job
from mlpilot.reports import WhiteBox
from mlpilot.search import CandidateDefinition

__all__ = [
    "ProgressPrinter",
    "TrainingSettings",
    "describe_candidates",
    "load_candidate_definitions",
    "prepare_training",
    "run_training",
    "train_candidates",
]


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
    settings = TrainingSettings(
        candidates=candidates,
        algorithms=algorithms,
        max_candidates=max_candidates,
        parallelism=parallelism,
        max_runtime=max_runtime,
        max_runtime_per_candidate=max_runtime_per_candidate,
        generate_reports=generate_reports,
    )
    job, old = prepare_training(job_dir, settings, observers=observers)
    return run_training(job, old)


@dataclass(frozen=True)
class TrainingSettings:
    """What training a candidates-only job may change (None keeps the job's own)."""

    #: The pipelines to train (default: the job's candidate definitions).
    candidates: Sequence[CandidateDefinition] | None = None
    #: Names of the pipelines to train, out of ``candidates``.
    algorithms: Sequence[str] | None = None
    max_candidates: int | None = None
    parallelism: int | None = None
    max_runtime: int | None = None
    max_runtime_per_candidate: int | None = None
    generate_reports: bool = True


def prepare_training(
    job_dir: str | Path,
    settings: TrainingSettings,
    *,
    observers: list[Any] | None = None,
    started: float | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The :class:`~mlpilot.jobs.AutoMLJob` that trains a candidates-only job (not started),
    with its notebooks and reports (a :class:`~mlpilot.reports.WhiteBox`) besides
    ``observers``, and the job's current record. Checks everything first: nothing changes on
    error."""
    candidates, algorithms = settings.candidates, settings.algorithms
    max_candidates, max_runtime = settings.max_candidates, settings.max_runtime
    max_runtime_per_candidate = settings.max_runtime_per_candidate
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
    spec = read_spec(results.layout.spec, results.name)
    problem = spec.problem
    if not isinstance(problem, TabularConfig):
        raise ConfigError(f"Job {results.name} is not a tabular job; it has no candidates to train")
    config = replace(
        spec,
        max_candidates=spec.max_candidates if max_candidates is None else max_candidates,
        max_runtime=spec.max_runtime if max_runtime is None else max_runtime,
        max_runtime_per_candidate=spec.max_runtime_per_candidate
        if max_runtime_per_candidate is None
        else max_runtime_per_candidate,
        output_path=str(results.root),
        parallelism=settings.parallelism,
        generate_reports=settings.generate_reports,
        # The candidates define the algorithms; the mode is the one candidates belong to.
        problem=replace(
            problem,
            candidates=tuple(chosen),
            algorithms=None,
            mode=Mode.HYPERPARAMETER_TUNING,
            candidates_only=False,
        ),
    )
    job = AutoMLJob(config, observers=[*(observers or []), WhiteBox()], started=started)
    job.state.created = record.get("CreationTime", job.state.created)
    job.note(
        "CandidateDefinitionsGenerated",
        {"Time": record.get("EndTime"), "Trained": [c.key for c in chosen]},
    )
    return job, record


def run_training(job: Any, old_record: dict[str, Any]) -> Any:
    """Run a job from :func:`prepare_training` in place of the candidates-only record."""
    old_spec = job.layout.spec.read_text()
    job.layout.record.unlink(missing_ok=True)
    try:
        job.run()
    except ConfigError:
        # Nothing was trained: put the candidates-only record and spec back so the user can
        # fix the request and train again.
        if not job.candidates:
            job.layout.spec.write_text(old_spec)
            _restore(job.layout.record, old_record)
        raise
    return job


def read_spec(path: Path, job_name: str) -> JobConfig:
    """The job's :class:`~mlpilot.config.JobConfig` as it wrote it when it started."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"Job {job_name} has no {path.name} (an earlier mlpilot made it); run it again "
            "with --candidates-only"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not readable JSON: {exc}") from None
    return JobConfig.from_dict(data)


def _restore(path: Path, record: dict[str, Any]) -> None:
    record = dict(record)
    record["LastModifiedTime"] = time.time()
    write_json_atomic(path, record)
