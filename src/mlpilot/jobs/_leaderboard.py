"""The leaderboard: every candidate of a job, best first, as a DataFrame."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from mlpilot.metrics import get_metric

__all__ = ["leaderboard_frame"]

_STATUS_ORDER = {"Completed": 0, "Stopped": 1, "Failed": 2, "InProgress": 3, "Stopping": 3}


def leaderboard_frame(candidates: list[dict[str, Any]], objective: str) -> pd.DataFrame:
    """One row per candidate: rank, name, algorithm, status, objective, every metric, steps,
    hyperparameters, training time, prediction time per row, failure reason."""
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
