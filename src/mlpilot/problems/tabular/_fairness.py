"""The disparity limit in a tabular job: measuring each candidate and which one ships.

Every completed candidate's disparity (``Mlpilot.Disparity``, on the leaderboard) is measured on
its saved validation predictions — out-of-fold in ENSEMBLING, the validation rows in
HYPERPARAMETER_TUNING — at the labels it returns. With ``max_disparity``, HYPERPARAMETER_TUNING
ships the best candidate within the limit, else the one with the least disparity, as the
latency limit does (``_latency.py``); ENSEMBLING makes the same choice between its selected
ensemble and each single model (:mod:`mlpilot.ensemble`). The record says what the limit
changed (``Mlpilot.FairnessNote``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlpilot.config import TabularConfig
from mlpilot.errors import ConfigError, DataError
from mlpilot.metrics import (
    DisparityMeasure,
    DisparityOption,
    choose_within_disparity,
    get_metric,
    sensitive_groups,
)
from mlpilot.problems._protocol import JobSession
from mlpilot.problems.tabular._analysis import sample_weights
from mlpilot.problems.tabular._latency import TimedCandidate
from mlpilot.profile import DatasetProfile
from mlpilot.search import VALIDATION_PREDICTIONS, load_validation_predictions

__all__ = ["candidate_disparity", "fairness_measure", "ship_within_disparity"]


def fairness_measure(
    spec: TabularConfig, table: pd.DataFrame, y: np.ndarray, profile: DatasetProfile
) -> DisparityMeasure | None:
    """How the job measures disparity over its prepared ``table`` (None without a sensitive
    attribute); the rules that need the data (the column, the problem type) are checked here."""
    column = spec.sensitive_attribute
    if column is None:
        return None
    if column not in table.columns:
        raise DataError(
            f"Sensitive attribute {column!r} is not a column of the data; columns are: "
            f"{', '.join(map(str, table.columns[:30]))}"
        )
    problem_type = profile.problem_type
    if not problem_type.is_classification:
        raise ConfigError(
            f"Fairness metrics (sensitive attribute {column!r}) apply to classification jobs; "
            f"this job is a {problem_type.value}"
        )
    binary = len(profile.target.labels) == 2
    if spec.max_disparity is not None and not binary:
        raise ConfigError(
            "A maximum disparity applies to binary classification: demographic parity and "
            "equalized odds are not defined for this multiclass job (its report still shows "
            "the count and accuracy per group)"
        )
    if not binary:
        return None
    return DisparityMeasure(
        metric=spec.disparity_metric,
        groups=sensitive_groups(table[column]),
        y=np.asarray(y),
        positive_index=profile.target.positive_index,
        weight=sample_weights(spec, table),
        max_disparity=spec.max_disparity,
    )


def candidate_disparity(
    measure: DisparityMeasure, model_dir: str | None, threshold: float | None
) -> float | None:
    """A candidate's disparity from the validation predictions it saved (None without them)."""
    if not model_dir or not os.path.exists(os.path.join(model_dir, VALIDATION_PREDICTIONS)):
        return None
    rows, _, predictions = load_validation_predictions(model_dir)
    value = measure.measure(rows, predictions, threshold)
    return round(value, 6) if math.isfinite(value) else None


def ship_within_disparity(
    session: JobSession,
    trained: Sequence[TimedCandidate],
    objective: str,
    measure: DisparityMeasure,
    exclude: Sequence[str] = (),
) -> None:
    """Make the best candidate within the disparity limit (else the least disparate) the
    job's model, and record what the limit changed. ``exclude``: candidates out of the
    choice (under a latency limit too, those the latency limit left out)."""
    assert measure.max_disparity is not None
    skipped = set(exclude)
    options = [
        DisparityOption(c.name, float(c.objective_value), _disparity(c))
        for c in trained
        if c.objective_value is not None and c.name not in skipped
    ]
    choice = choose_within_disparity(
        options, get_metric(objective), measure.max_disparity, measure.metric
    )
    if choice is None:
        return
    if session.best is None or session.best.name != choice.name:
        session.choose_best(choice.name)
    session.note("FairnessNote", choice.note)
    if choice.skipped:
        session.note("FairnessSkipped", list(choice.skipped))


def _disparity(candidate: TimedCandidate) -> float:
    value = candidate.details.get("Disparity")
    return float(value) if isinstance(value, int | float) else math.nan
