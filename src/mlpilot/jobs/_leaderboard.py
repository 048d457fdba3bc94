"""The leaderboard: every candidate of a job, best first, as a DataFrame."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from mlpilot.metrics import objective_direction

__all__ = ["leaderboard_frame", "objective_maximized", "progress_frame"]


def objective_maximized(objective: str, candidates: list[dict[str, Any]]) -> bool:
    """Whether larger is better for the job's ``objective``: the metric's own direction, or
    for a job's own objective read elsewhere (a user metric), the direction its candidates'
    ``FinalAutoMLJobObjectiveMetric`` declares."""
    declared = next(
        (
            c["FinalAutoMLJobObjectiveMetric"].get("Type")
            for c in candidates
            if c.get("FinalAutoMLJobObjectiveMetric")
        ),
        None,
    )
    return objective_direction(objective, declared)


_STATUS_ORDER = {"Completed": 0, "Stopped": 1, "Failed": 2, "InProgress": 3, "Stopping": 3}


def leaderboard_frame(candidates: list[dict[str, Any]], objective: str) -> pd.DataFrame:
    """One row per candidate: rank, name, algorithm, status, objective and its spread
    (``objective_std``, see :mod:`mlpilot.metrics._spread`), every metric, steps,
    hyperparameters, training time, prediction time per row, failure reason; in a job with a
    sensitive attribute, its disparity (``Mlpilot.Disparity``) after the metrics."""
    maximize = objective_maximized(objective, candidates)
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
            # The objective's standard deviation over the folds (resamples of a holdout,
            # backtest windows) it was scored on.
            "objective_std": extra.get("ObjectiveStd"),
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
    frame["_score"] = -score if maximize else score
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
    maximize = objective_maximized(objective, candidates)
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
        improved = value is not None and (
            best is None or (value > best if maximize else value < best)
        )
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
