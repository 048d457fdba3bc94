"""Making one candidate's reports from a job folder (during the job or any time after)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlpilot._layout import JobLayout, read_candidates
from mlpilot.errors import ConfigError, JobNotFoundError
from mlpilot.jobs import activate_job_objective
from mlpilot.package import InferenceModel
from mlpilot.profile import DatasetProfile
from mlpilot.reports._data import load_sample, load_targets
from mlpilot.reports._explain import explain_model, write_explainability
from mlpilot.reports._forecast_quality import write_forecast_insights
from mlpilot.reports._quality import Evaluation, Tradeoff, write_model_insights
from mlpilot.search import load_validation_predictions

__all__ = [
    "candidate_model_dir",
    "final_model_dir",
    "generate_explainability",
    "generate_model_insights",
    "is_forecasting",
    "load_evaluation",
]


def candidate_model_dir(layout: JobLayout, record: dict[str, Any]) -> Path:
    """The folder holding the candidate's search model and its validation predictions."""
    name = record["CandidateName"]
    own = layout.candidate_model(name)
    if own.exists():
        return own
    stored = record.get("Mlpilot", {}).get("ModelLocation")
    if stored and Path(stored).exists():
        return Path(stored)
    raise JobNotFoundError(f"Candidate {name} has no saved model (looked in {own})")


def final_model_dir(layout: JobLayout, record: dict[str, Any]) -> Path:
    """The packaged model of the candidate: its final package if it has one, else the model
    trained in the search."""
    extra = record.get("Mlpilot", {})
    if extra.get("FinalModel"):
        own = layout.final_model(record["CandidateName"])
        if own.exists():
            return own
        if Path(extra["FinalModel"]).exists():
            return Path(extra["FinalModel"])
    return candidate_model_dir(layout, record)


def is_forecasting(job_record: dict[str, Any]) -> bool:
    return job_record.get("AutoMLProblemTypeConfigName") == "TimeSeriesForecasting"


def _objective(record: dict[str, Any]) -> str:
    return str(
        record.get("ResolvedAttributes", {}).get("AutoMLJobObjective", {}).get("MetricName", "F1")
    )


def load_evaluation(
    layout: JobLayout, job_record: dict[str, Any], candidate: dict[str, Any]
) -> Any:
    """The candidate's validation predictions with the saved truth."""
    profile = DatasetProfile.load(layout.profile)
    rows, _, predictions = load_validation_predictions(str(candidate_model_dir(layout, candidate)))
    if len(rows) == 0:
        raise JobNotFoundError(
            f"Candidate {candidate['CandidateName']} has no validation predictions"
        )
    targets = load_targets(layout.data_sample)
    activate_job_objective(layout)
    costs = profile.target.decision_costs
    fairness = job_record.get("Mlpilot", {}).get("Fairness") or {}
    return Evaluation(
        problem_type=profile.problem_type,
        labels=list(profile.target.labels),
        positive_index=profile.target.positive_index,
        y=np.asarray(targets.y)[rows],
        predictions=np.asarray(predictions),
        weight=None if targets.weight is None else np.asarray(targets.weight)[rows],
        candidate=candidate["CandidateName"],
        objective=_objective(job_record),
        threshold=candidate.get("Mlpilot", {}).get("DecisionThreshold"),
        calibration=candidate.get("Mlpilot", {}).get("Calibration"),
        costs=None if costs is None else np.asarray(costs, dtype=float),
        sensitive_attribute=fairness.get("SensitiveAttribute"),
        groups=None if targets.groups is None else targets.groups[rows],
    )


def _validation_text(job_record: dict[str, Any]) -> str:
    profile = job_record.get("Mlpilot", {}).get("Profile", {})
    return str(profile.get("ValidationReason") or profile.get("Validation") or "validation rows")


def generate_model_insights(
    layout: JobLayout,
    job_record: dict[str, Any],
    candidate: dict[str, Any],
    *,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Write the model-quality report of ``candidate``; returns its statistics. ``deadline``:
    a tabular candidate's report.pdf is left out when there is no time for it."""
    if is_forecasting(job_record):
        try:
            model: Path | None = final_model_dir(layout, candidate)
        except JobNotFoundError:
            model = None  # the report goes without the forecast after the history
        return write_forecast_insights(layout, job_record, candidate, model_dir=model)
    evaluation = load_evaluation(layout, job_record, candidate)
    return write_model_insights(
        evaluation,
        layout.model_insights_for(candidate["CandidateName"]),
        job_name=layout.job_name,
        algorithm=str(candidate.get("Mlpilot", {}).get("Algorithm", "")),
        validation=_validation_text(job_record),
        tradeoff=_tradeoff(layout, job_record, candidate),
        deadline=deadline,
    )


def _tradeoff(
    layout: JobLayout, job_record: dict[str, Any], candidate: dict[str, Any]
) -> Tradeoff | None:
    """Objective against disparity over the job's candidates, for the job's best candidate
    in a job with a sensitive attribute (None otherwise)."""
    extra = job_record.get("Mlpilot", {})
    fairness = extra.get("Fairness")
    best = (job_record.get("BestCandidate") or {}).get("CandidateName")
    if not fairness or candidate["CandidateName"] != best or not layout.candidates_log.exists():
        return None
    rows = []
    for record in read_candidates(layout.candidates_log):
        value = (record.get("FinalAutoMLJobObjectiveMetric") or {}).get("Value")
        disparity = record.get("Mlpilot", {}).get("Disparity")
        if isinstance(value, int | float) and isinstance(disparity, int | float):
            rows.append((str(record["CandidateName"]), float(value), float(disparity)))
    return Tradeoff(
        objective=_objective(job_record),
        disparity_metric=str(fairness.get("DisparityMetric")),
        max_disparity=fairness.get("MaxDisparity"),
        shipped=str(best),
        rows=rows,
        note=extra.get("FairnessNote"),
    )


def generate_explainability(
    layout: JobLayout,
    job_record: dict[str, Any],
    candidate: dict[str, Any],
    *,
    deadline: float | None = None,
    report_deadline: float | None = None,
    max_rows: int | None = None,
) -> dict[str, Any]:
    """Write the explainability report of ``candidate`` (its packaged model); returns the
    analysis document. ``deadline``: the SHAP values stop by then; ``report_deadline``: its
    report.pdf is left out when there is no time for it."""
    if is_forecasting(job_record):
        raise ConfigError(
            "Explainability reports are not made for forecasting jobs yet (no impact scores); "
            "the model-quality report and BacktestResults show how the forecasts did"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        location = final_model_dir(layout, candidate)
        model = InferenceModel.load(location)
        sample = load_sample(layout.data_sample)
        seed = int(job_record.get("Mlpilot", {}).get("Seed", 0))
        explanation = explain_model(model, sample, deadline=deadline, seed=seed, max_rows=max_rows)
    profile = DatasetProfile.load(layout.profile)
    kinds = {c.name: c.kind for c in profile.columns}
    return write_explainability(
        explanation,
        layout.explainability_for(candidate["CandidateName"]),
        candidate=candidate["CandidateName"],
        job_name=layout.job_name,
        algorithm=str(candidate.get("Mlpilot", {}).get("Algorithm", "")),
        kinds=kinds,
        model_location=str(location),
        deadline=report_deadline,
    )
