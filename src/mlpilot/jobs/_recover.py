"""Ending a job whose process died (killed, crashed, machine restarted) honestly.

The job folder holds everything a finished candidate left: ``candidates.jsonl`` and each
candidate's model package under ``tuning/``. :func:`finalize_interrupted` turns that into an
ended job: the best finished candidate (if any) is packaged as the job's model (as trained
during the search: a refit is not attempted), the leaderboard is written, and the record ends
``Stopped`` with the reason — or ``Failed`` when no candidate had finished. A resumed run
(``AutoMLJob.resume``) killed this way keeps the earlier run's model unless it had found a
better candidate, and its ``Resuming`` note becomes an entry of ``Resumes``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from mlpilot._layout import JobLayout, read_candidates, write_json_atomic
from mlpilot.jobs._leaderboard import leaderboard_frame, objective_maximized
from mlpilot.jobs._records import inference_container
from mlpilot.package import InferenceModel

__all__ = ["finalize_interrupted"]

_ENDED = ("Completed", "Failed", "Stopped")


def finalize_interrupted(root: str | Path, why: str) -> dict[str, Any]:
    """End the job in ``root`` after its process died; return its record.

    ``why`` says what happened (e.g. "the job's process was killed"). A job already ended is
    returned unchanged.
    """
    root = Path(root)
    record: dict[str, Any] = json.loads((root / "job.json").read_text())
    if record.get("AutoMLJobStatus") in _ENDED:
        return record
    layout = JobLayout(root, record["AutoMLJobName"])
    phase = record.get("AutoMLJobSecondaryStatus", "Starting")
    # Packages the process was writing when it died: never published, never to be.
    for staging in list(root.rglob(".staging-*")):
        shutil.rmtree(staging, ignore_errors=True)
    now = time.time()
    objective = record.get("ResolvedAttributes", {}).get("AutoMLJobObjective", {}).get("MetricName")
    found = read_candidates(layout.candidates_log)
    candidates: dict[str, dict[str, Any]] = {c["CandidateName"]: c for c in found}
    # Candidates that were running when the process died.
    for name, c in list(candidates.items()):
        if c["CandidateStatus"] == "InProgress":
            candidates[name] = {
                **c,
                "CandidateStatus": "Stopped",
                "FailureReason": f"interrupted: {why}",
                "EndTime": now,
                "LastModifiedTime": now,
            }
    best = _best(list(candidates.values()), objective)
    block = record.setdefault("Mlpilot", {})
    # The process's time ran until it last wrote the record.
    last = float(record.get("LastModifiedTime") or now)
    resuming = block.pop("Resuming", None)
    run_seconds = 0.0
    if resuming is not None:  # a resumed run killed: its time is added to the runs before
        run_seconds = round(max(0.0, last - float(resuming["StartTime"])), 3)
        block["ElapsedSeconds"] = round(float(resuming["ElapsedBefore"]) + run_seconds, 3)
    elif "ElapsedSeconds" not in block:
        block["ElapsedSeconds"] = round(max(0.0, last - float(record["CreationTime"])), 3)
    record["EndTime"] = now
    record["LastModifiedTime"] = now
    block["Interrupted"] = {"Phase": phase, "Reason": why}
    if best is None:
        record["AutoMLJobStatus"] = "Failed"
        record["AutoMLJobSecondaryStatus"] = "Failed"
        record["FailureReason"] = (
            f"The job was interrupted during {phase} ({why}) before any candidate finished"
        )[:1024]
        record.pop("BestCandidate", None)
    else:
        packaged = record.get("BestCandidate") or {}
        final = packaged.get("Mlpilot", {}).get("FinalModel")
        if (
            packaged.get("CandidateName") == best["CandidateName"]
            and final
            and (Path(final) / "model.tar.gz").exists()
        ):
            # A resumed run killed before it found better: the earlier run's model stays.
            best = packaged
        else:
            best = _package(layout, best, record)
        candidates[best["CandidateName"]] = best
        record["BestCandidate"] = best
        record["AutoMLJobStatus"] = "Stopped"
        record["AutoMLJobSecondaryStatus"] = "Stopped"
        record["FailureReason"] = (
            f"The job was interrupted during {phase} ({why}); it was ended with the best of "
            f"its {sum(c['CandidateStatus'] == 'Completed' for c in candidates.values())} "
            "finished candidates, packaged as trained during the search"
        )[:1024]
    if resuming is not None:
        block["Resumes"] = [
            *block.get("Resumes", []),
            {
                **resuming,
                "EndTime": now,
                "ElapsedSeconds": run_seconds,
                "CandidatesAfter": len(candidates),
                "BestAfter": None
                if best is None
                else {
                    "CandidateName": best["CandidateName"],
                    "Value": best["FinalAutoMLJobObjectiveMetric"]["Value"],
                },
            },
        ]
    if candidates and objective:
        frame = leaderboard_frame(list(candidates.values()), objective)
        frame.to_csv(layout.leaderboard_csv, index=False)
        write_json_atomic(layout.leaderboard_json, [candidates[n] for n in frame["candidate"]])
        block["Leaderboard"] = str(layout.leaderboard_csv)
    write_json_atomic(layout.record, record)
    shutil.rmtree(layout.work, ignore_errors=True)
    return record


def _best(candidates: list[dict[str, Any]], objective: str | None) -> dict[str, Any] | None:
    if not objective:
        return None
    maximize = objective_maximized(objective, candidates)
    best = None
    for c in candidates:
        value = (c.get("FinalAutoMLJobObjectiveMetric") or {}).get("Value")
        location = c.get("Mlpilot", {}).get("ModelLocation")
        if c["CandidateStatus"] != "Completed" or value is None or not location:
            continue
        if not (Path(location) / "mlpilot-model.json").exists():
            continue  # its package was never completely written
        incumbent = None if best is None else best["FinalAutoMLJobObjectiveMetric"]["Value"]
        if incumbent is None or (value > incumbent if maximize else value < incumbent):
            best = c
    return best


def _package(layout: JobLayout, best: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    name = best["CandidateName"]
    extra = best.get("Mlpilot", {})
    destination = layout.final_model(name)
    InferenceModel.copy_package(extra["ModelLocation"], destination, archive=True)
    problem = (
        record.get("ResolvedAttributes", {})
        .get("AutoMLProblemTypeResolvedAttributes", {})
        .get("TabularResolvedAttributes", {})
        .get("ProblemType", "")
    )
    classification = problem != "Regression"
    packaged = dict(best)
    packaged["InferenceContainers"] = [
        inference_container(str(destination / "model.tar.gz"), classification, name)
    ]
    packaged["CandidateProperties"] = {
        **best.get("CandidateProperties", {}),
        # Where its reports go, as a job's best candidate names them (a resume writes them).
        "CandidateArtifactLocations": {
            "Explainability": str(layout.explainability_for(name)),
            "ModelInsights": str(layout.model_insights_for(name)),
        },
    }
    packaged["Mlpilot"] = {
        **extra,
        "FinalModel": str(destination),
        "Refit": False,
        "RefitNote": "the job was interrupted: packaged the candidate as trained in the search",
    }
    return packaged
