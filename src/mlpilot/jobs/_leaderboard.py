"""The leaderboard: every candidate of a job, best first, as a DataFrame."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from mlpilot.metrics import get_metric

__all__ = ["leaderboard_frame", "progress_frame"]

_STATUS_ORDER = {"Completed": 0, "Stopped": 1, "Failed": 2, "InProgress": 3, "Stopping": 3}


def leaderboard_frame(candidates: list[dict[str, Any]], objective: str) -> pd.DataFrame:
    """One row per candidate: rank, name, algorithm, status, objective, every metric, steps,
    hyperparameters, training time, prediction time per row, failure reason; in a job with a
    sensitive attribute, its disparity (``Mlpilot.Disparity``) after the metrics."""
    metric = get_metric(objective)
    rows = []
    for c in candidates:
        extra = c.get("Mlpilot", {})
        metrics = {
            d["StandardMetricName"]: d["Value"]
            for d in c.get("CandidateProperties", {}).get("CandidateMetrics", [])
        }
        final = c.get("FinalAutoMLJobObjectiveMetric", {})
        row: dict[str, Any] = {
            "candidate": c["CandidateName"],
            "algorithm": extra.get("Algorithm"),
            "status": c["CandidateStatus"],
            "objective": final.get("Value"),
        }
        row.update(metrics)
        if "Disparity" in extra:
            row["disparity"] = extra["Disparity"]
        row.update(
            {
                "train_seconds": extra.get("TrainSeconds"),
                "predict_ms_per_row": (
                    extra["PredictSecondsPerRow"] * 1000
                    if extra.get("PredictSecondsPerRow") is not None
                    else None
                ),
                "steps": " | ".join(
                    [*extra.get("PreprocessingSteps", []), extra.get("Algorithm") or ""]
                ),
                "hyperparameters": json.dumps(extra.get("Hyperparameters", {}), sort_keys=True),
                "failure_reason": c.get("FailureReason", ""),
                "trial": extra.get("TrialNumber"),
            }
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["rank", "candidate", "algorithm", "status", "objective"])
    score = frame["objective"].astype(float)
    frame["_status"] = frame["status"].map(_STATUS_ORDER).fillna(4)
    frame["_score"] = -score if metric.maximize else score
    frame = frame.sort_values(["_status", "_score", "trial"], na_position="last", kind="stable")
    frame = frame.drop(columns=["_status", "_score"]).reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame


def progress_frame(record: dict[str, Any], candidates: list[dict[str, Any]]) -> pd.DataFrame:
    """The best score against the job's time spent: one row per candidate that ended, in the
    order they ended, with ``run`` (0: the first run, n: the n-th resume), ``seconds`` (job
    time spent when it ended, runs added end to end), ``candidate``, ``value`` (its objective,
    if it scored), ``best`` (the best so far) and ``improved``."""
    objective = record.get("ResolvedAttributes", {}).get("AutoMLJobObjective", {}).get("MetricName")
    columns = ["run", "seconds", "candidate", "value", "best", "improved"]
    if not objective:
        return pd.DataFrame(columns=columns)
    metric = get_metric(objective)
    # Each run: when it started (wall clock) and the job time spent before it.
    runs = [(float(record["CreationTime"]), 0.0)]
    notes = record.get("Mlpilot", {})
    pending = [notes["Resuming"]] if notes.get("Resuming") else []  # a resume still running
    for resume in [*notes.get("Resumes", []), *pending]:
        runs.append((float(resume["StartTime"]), float(resume["ElapsedBefore"])))
    ended = sorted(
        (c for c in candidates if c.get("EndTime") is not None), key=lambda c: float(c["EndTime"])
    )
    rows = []
    best: float | None = None
    for c in ended:
        end = float(c["EndTime"])
        run = max(i for i, (start, _) in enumerate(runs) if start <= end or i == 0)
        start, before = runs[run]
        value = (c.get("FinalAutoMLJobObjectiveMetric") or {}).get("Value")
        improved = value is not None and (best is None or metric.is_better(value, best))
        if improved:
            best = value
        rows.append(
            {
                "run": run,
                "seconds": round(before + max(0.0, end - start), 3),
                "candidate": c["CandidateName"],
                "value": value,
                "best": best,
                "improved": improved,
            }
        )
    return pd.DataFrame(rows, columns=columns)
