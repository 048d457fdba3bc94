"""Where a job's notebooks and reports are, and making the missing ones after the job."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpilot._layout import write_json_atomic
from mlpilot.errors import ConfigError, JobNotFoundError
from mlpilot.jobs import JobResults, load_job
from mlpilot.profile import DatasetProfile
from mlpilot.reports._build_exploration import build_exploration_notebook, write_notebook
from mlpilot.reports._build_series_exploration import build_series_notebook
from mlpilot.reports._data import SAMPLE_ROWS
from mlpilot.reports._execute import execute_notebook, is_executed
from mlpilot.reports._generate import (
    generate_explainability,
    generate_model_insights,
    is_forecasting,
)
from mlpilot.reports._series_data import FACTS

__all__ = ["Artifact", "artifacts", "generate_reports"]

_RUNNING = ("InProgress", "Stopping")


@dataclass
class Artifact:
    """One notebook or report of a job."""

    name: str
    status: str  # Completed | Skipped | Failed | Missing | NotExecuted
    location: str
    html: str = ""
    candidate: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}


def _candidate(results: JobResults, name: str | None) -> dict[str, Any]:
    if name is None:
        best = results.best_candidate
        if not best:
            raise JobNotFoundError(
                f"Job {results.name} has no best candidate (status {results.status}, "
                f"{results.record.get('AutoMLJobSecondaryStatus')})"
            )
        return best
    for record in results.candidates():
        if record["CandidateName"] == name:
            if record.get("CandidateStatus") != "Completed":
                raise ConfigError(
                    f"Candidate {name} did not complete ({record.get('CandidateStatus')}): it "
                    "has no model to report on"
                )
            return record
    raise JobNotFoundError(f"Job {results.name} has no candidate named {name!r}")


def artifacts(results: JobResults, candidate: str | None = None) -> list[Artifact]:
    """Every notebook and report of the job (and of ``candidate``, default the best)."""
    layout = results.layout
    recorded = results.record.get("Mlpilot", {}).get("Reports", {})
    out = []
    path = layout.exploration_notebook
    entry = recorded.get("DataExplorationNotebook", {})
    if not path.exists():
        status = "Missing"
    elif is_executed(path):
        status = "Completed"
    else:
        status = "NotExecuted"
    html = path.with_suffix(".html")
    out.append(
        Artifact(
            "Data exploration notebook",
            status,
            str(path),
            str(html) if html.exists() else "",
            reason="" if status == "Completed" else entry.get("Reason", ""),
        )
    )
    path = layout.candidate_notebook
    skipped = recorded.get("CandidateDefinitionNotebook", {}).get("Status") == "Skipped"
    out.append(
        Artifact(
            "Candidate definition notebook",
            "Completed" if path.exists() else ("Skipped" if skipped else "Missing"),
            str(path),
            reason=""
            if path.exists()
            else recorded.get("CandidateDefinitionNotebook", {}).get(
                "Reason", "not written (ENSEMBLING jobs have none)"
            ),
        )
    )
    best = results.best_candidate
    name = candidate or (best["CandidateName"] if best else None)
    if name is None:
        return out
    for key, title, folder, document in (
        (
            "Explainability",
            "Explainability report",
            layout.explainability_for(name),
            "analysis.json",
        ),
        (
            "ModelInsights",
            "Model quality report",
            layout.model_insights_for(name),
            "statistics.json",
        ),
    ):
        entry = recorded.get(key, {}) if entry_for(recorded.get(key, {}), name) else {}
        done = (folder / document).exists() and (folder / "report.html").exists()
        status = "Completed" if done else (entry.get("Status") or "Missing")
        if status == "Completed" and not done:
            status = "Missing"
        out.append(
            Artifact(
                title,
                status,
                str(folder),
                str(folder / "report.html") if done else "",
                name,
                "" if done else entry.get("Reason", ""),
            )
        )
    return out


def entry_for(entry: dict[str, Any], candidate: str) -> bool:
    return bool(entry) and entry.get("Candidate", candidate) == candidate


def generate_reports(
    job_dir: str | Path,
    *,
    candidate: str | None = None,
    notebook: bool = True,
    explainability: bool = True,
    insights: bool = True,
    force: bool = False,
    max_rows: int | None = None,
) -> list[Artifact]:
    """Make what is missing: run the exploration notebook, and write the explainability and
    model-quality reports of ``candidate`` (default: the best). ``force`` remakes them. A
    forecasting job has no explainability report (the job recorded why)."""
    results = load_job(job_dir)
    if results.status in _RUNNING:
        raise ConfigError(f"Job {results.name} is still running; generate its reports afterwards")
    layout = results.layout
    record = results.record
    if is_forecasting(record):
        explainability = False
    reports = record.setdefault("Mlpilot", {}).setdefault("Reports", {})
    changed = False
    if notebook:
        path = layout.exploration_notebook
        if not path.exists():
            _write_exploration(results)
        if force or not is_executed(path):
            started = time.monotonic()
            try:
                execute_notebook(path)
            except Exception as exc:
                raise ConfigError(f"The data exploration notebook failed: {_first(exc)}") from None
            reports["DataExplorationNotebook"] = {
                "Status": "Completed",
                "Location": str(path),
                "Html": str(path.with_suffix(".html")),
                "Seconds": round(time.monotonic() - started, 3),
            }
            record.setdefault("AutoMLJobArtifacts", {})["DataExplorationNotebookLocation"] = str(
                path
            )
            changed = True
    chosen = None
    if (explainability or insights) and (candidate is not None or results.best_candidate):
        chosen = _candidate(results, candidate)
    if chosen is not None:
        name = chosen["CandidateName"]
        best = results.best_candidate
        is_best = best is not None and best["CandidateName"] == name
        for key, wanted, folder, document, make in (
            (
                "Explainability",
                explainability,
                layout.explainability_for(name),
                "analysis.json",
                lambda: generate_explainability(layout, record, chosen, max_rows=max_rows),
            ),
            (
                "ModelInsights",
                insights,
                layout.model_insights_for(name),
                "statistics.json",
                lambda: generate_model_insights(layout, record, chosen),
            ),
        ):
            if not wanted or (not force and (folder / document).exists()):
                continue
            started = time.monotonic()
            make()
            entry = {
                "Status": "Completed",
                "Candidate": name,
                "Location": str(folder),
                "Html": str(folder / "report.html"),
                "Seconds": round(time.monotonic() - started, 3),
            }
            if is_best:
                reports[key] = entry
            _point_to(results, name, key, str(folder))
            changed = True
    if changed:
        record["LastModifiedTime"] = time.time()
        write_json_atomic(layout.record, record)
    return artifacts(load_job(job_dir), candidate)


def _point_to(results: JobResults, name: str, key: str, location: str) -> None:
    """Set CandidateArtifactLocations.<key> of ``name`` in the record and the leaderboard."""

    def update(candidate: dict[str, Any]) -> None:
        properties = candidate.setdefault("CandidateProperties", {})
        properties.setdefault("CandidateArtifactLocations", {})[key] = location

    best = results.record.get("BestCandidate")
    if best and best["CandidateName"] == name:
        update(best)
    board = results.layout.leaderboard_json
    if board.exists():
        entries = json.loads(board.read_text())
        for entry in entries:
            if entry["CandidateName"] == name:
                update(entry)
        write_json_atomic(board, entries)


def _write_exploration(results: JobResults) -> None:
    layout = results.layout
    if is_forecasting(results.record):
        facts_path = layout.data_sample / FACTS
        if not facts_path.exists():
            raise JobNotFoundError(
                f"Job {results.name} kept no series sample: it did not prepare its series"
            )
        facts = json.loads(facts_path.read_text())
        nb = build_series_notebook(job_name=results.name, facts=facts, facts_path=facts_path)
        write_notebook(nb, layout.exploration_notebook)
        return
    if not layout.profile.exists():
        raise JobNotFoundError(f"Job {results.name} has no data profile: it did not analyse data")
    profile = DatasetProfile.load(layout.profile)
    nb = build_exploration_notebook(
        job_name=results.name,
        profile=profile,
        profile_path=layout.profile,
        sample_rows=min(profile.n_rows, SAMPLE_ROWS),
    )
    write_notebook(nb, layout.exploration_notebook)


def _first(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__
