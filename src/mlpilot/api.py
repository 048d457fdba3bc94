"""The one-call Python entry point."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot.config import JobConfig
from mlpilot.jobs import AutoMLJob, JobObserver
from mlpilot.reports import WhiteBox

__all__ = ["default_job_name", "run_job"]


def default_job_name(data: Any) -> str:
    stem = "job" if isinstance(data, pd.DataFrame) else Path(str(data).rstrip("/")).stem
    stem = "".join(ch if ch.isalnum() else "-" for ch in stem.split(".")[0]).strip("-") or "job"
    return f"{stem[:14]}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_job(
    data: str | Path | pd.DataFrame,
    *,
    target: str,
    output: str | Path | None = None,
    name: str | None = None,
    observers: list[JobObserver] | None = None,
    **settings: Any,
) -> AutoMLJob:
    """Run an AutoML job on ``data`` and return it, finished.

    ``settings`` are :class:`~mlpilot.config.JobConfig` fields (``max_runtime``,
    ``max_candidates``, ``objective``, ``seed``...) and :class:`~mlpilot.config.TabularConfig`
    fields (``problem_type``, ``mode``, ``algorithms``, ``sample_weight``...). The job
    writes its notebooks and reports (a :class:`~mlpilot.reports.WhiteBox` observes it) besides
    telling ``observers``.

    Examples
    --------
    >>> job = run_job("examples/churn.csv", target="Churn", max_runtime=60)   # doctest: +SKIP
    >>> job.leaderboard()[["candidate", "objective"]].head(3)                  # doctest: +SKIP
    """
    name = name or default_job_name(data)
    output = output or Path("runs") / name
    config = JobConfig.tabular(
        name=name,
        training_data=data if isinstance(data, pd.DataFrame) else str(data),
        output_path=str(output),
        target=target,
        **settings,
    )
    job = AutoMLJob(config, observers=[*(observers or []), WhiteBox()])
    job.run()
    return job
