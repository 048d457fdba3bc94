"""A job's observers: the optional events, the time reserve, and the white box as an observer.

The data are made here (no shared data sets): the tests are about the job's wiring, not about
models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlpilot.config import JobConfig
from mlpilot.errors import MlpilotError
from mlpilot.jobs import AutoMLJob, JobHooks
from mlpilot.reports import WhiteBox, report_reserve
from mlpilot.reports._whitebox import timed_reserve
from mlpilot.search import SearchSpace


def table(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y})


def config(tmp_path: Path, **settings: Any) -> JobConfig:
    settings.setdefault("mode", "HYPERPARAMETER_TUNING")
    settings.setdefault("algorithms", ("linear-learner",))
    return JobConfig.tabular(
        name="observed",
        training_data=table(),
        target="label",
        output_path=str(tmp_path / "job"),
        parallelism=1,
        **settings,
    )


class Events(JobHooks):
    """Records the events it is told of, in order, with what the job showed then."""

    def __init__(self, reserve: float = 0.0) -> None:
        self.events: list[str] = []
        self.reserve = reserve
        self.space: Any = None
        self.best_at_packaging: str | None = None

    def time_reserve(self, job: AutoMLJob) -> float:
        self.events.append("time_reserve")
        return self.reserve

    def on_candidates_defined(self, job: AutoMLJob, space: SearchSpace) -> None:
        self.events.append("on_candidates_defined")
        self.space = space
        assert job.layout.candidate_definitions.exists()
        assert not job.candidates

    def on_packaged(self, job: AutoMLJob) -> None:
        self.events.append("on_packaged")
        assert job.best is not None
        self.best_at_packaging = job.best.name
        assert not job.layout.leaderboard_csv.exists()  # written after this event

    def on_finishing(self, job: AutoMLJob) -> None:
        self.events.append("on_finishing")
        assert "EndTime" not in job.record  # the end is recorded after this event


class OnlyRequired:
    """An observer with the two required methods only (the optional events are skipped)."""

    def __init__(self) -> None:
        self.statuses: list[str] = []
        self.candidates: list[str] = []

    def on_status(self, job: AutoMLJob) -> None:
        self.statuses.append(job.secondary_status)

    def on_candidate(self, job: AutoMLJob, candidate: dict[str, Any]) -> None:
        self.candidates.append(candidate["CandidateName"])


def unique(events: list[str]) -> list[str]:
    """The events in order, repeats of the same event in a row folded into one."""
    return [e for i, e in enumerate(events) if i == 0 or events[i - 1] != e]


def test_optional_events_come_in_order_and_the_reserve_is_asked(tmp_path: Path) -> None:
    events = Events(reserve=2.0)
    plain = OnlyRequired()
    job = AutoMLJob(config(tmp_path, max_candidates=2, max_runtime=120), observers=[events, plain])
    job.run()
    assert job.status == "Completed"
    # The reserve is asked once, as the job starts, and kept back at the end of its budget;
    # the other events come once each, in order.
    assert events.events == [
        "time_reserve",
        "on_candidates_defined",
        "on_packaged",
        "on_finishing",
    ]
    assert job.budget.end_extra == 2.0
    assert job.budget.end_reserve() == pytest.approx(1.5 + 0.03 * 120 + 2.0)
    assert [c.key for c in events.space.resolved()] == ["linear-learner"]
    assert events.best_at_packaging is not None
    assert events.best_at_packaging == job.record["BestCandidate"]["CandidateName"]
    # An observer without the optional events still hears of every status and candidate.
    assert plain.statuses[-1] == "Completed"
    assert len(plain.candidates) == 2


def test_a_job_built_without_the_white_box_writes_no_notebooks(tmp_path: Path) -> None:
    events = Events()
    job = AutoMLJob(config(tmp_path, candidates_only=True), observers=[events])
    job.run()
    assert job.secondary_status == "CandidateDefinitionsGenerated"
    assert events.events == ["time_reserve", "on_candidates_defined", "on_finishing"]
    assert not job.layout.notebooks.exists()
    record = json.loads(job.layout.record.read_text())
    assert "Reports" not in record.get("Mlpilot", {})
    assert "CandidateDefinitionNotebookLocation" not in record["AutoMLJobArtifacts"]


def test_the_white_box_attached_writes_the_notebooks(tmp_path: Path) -> None:
    box = WhiteBox()
    job = AutoMLJob(config(tmp_path, candidates_only=True), observers=[box])
    job.run()
    assert box.job is job
    assert job.layout.candidate_notebook.exists()
    assert job.layout.exploration_notebook.exists()
    record = json.loads(job.layout.record.read_text())
    artifacts = record["AutoMLJobArtifacts"]
    assert artifacts["CandidateDefinitionNotebookLocation"] == str(job.layout.candidate_notebook)
    assert record["Mlpilot"]["Reports"]["CandidateDefinitionNotebook"]["Status"] == "Completed"


def test_the_reports_reserve_grows_with_the_time_a_figure_takes_within_a_share() -> None:
    # A figure in 0.1 s: the fixed reserve (7 s at 60 s) covers 16 figures and the rest.
    assert timed_reserve(60.0, 0.1) == pytest.approx(7.0)
    # In 0.5 s (a loaded machine): 2 s + 16 figures = 10 s.
    assert timed_reserve(60.0, 0.5) == pytest.approx(10.0)
    # In 1 s: capped at 20 % of the budget.
    assert timed_reserve(60.0, 1.0) == pytest.approx(12.0)
    assert timed_reserve(30.0, 0.0) == pytest.approx(3.6)


def test_the_white_box_reserve_follows_the_budget_and_the_reports_switch(tmp_path: Path) -> None:
    job = AutoMLJob(config(tmp_path, max_runtime=30))
    assert WhiteBox().time_reserve(job) == report_reserve(job.config) == pytest.approx(3.6)
    job = AutoMLJob(config(tmp_path, max_runtime=600))
    assert WhiteBox().time_reserve(job) == pytest.approx(7.0)
    job = AutoMLJob(config(tmp_path, max_runtime=600, generate_reports=False))
    assert WhiteBox().time_reserve(job) == 0.0
    job = AutoMLJob(config(tmp_path))
    assert WhiteBox().time_reserve(job) == 0.0


def test_a_job_failing_before_its_candidates_tells_the_white_box_to_finish(
    tmp_path: Path,
) -> None:
    box = WhiteBox()
    events = Events()
    bad = JobConfig.tabular(
        name="observed",
        training_data=table().drop(columns=["label"]).assign(label=np.nan),
        target="label",
        output_path=str(tmp_path / "job"),
        parallelism=1,
    )
    job = AutoMLJob(bad, observers=[box, events])
    with pytest.raises(MlpilotError):
        job.run()
    assert job.status == "Failed"
    assert events.events == ["time_reserve", "on_finishing"]
    assert box.job is None  # never started: nothing to wait for or record
    assert not job.layout.notebooks.exists()
