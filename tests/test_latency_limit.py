"""The latency limit (``max_latency_ms``, ``--max-latency-ms``, tag ``mlpilot:MaxLatencyMs``):
the job ships a model within it, and its record says what the limit changed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlpilot
from helpers_data import TELCO
from mlpilot.ensemble import greedy_selection, latency_selection_note
from mlpilot.metrics import get_metric
from mlpilot.problems.tabular import choose_within_latency
from mlpilot.search import CandidateDefinition


@dataclass
class Made:
    """A made-up candidate: what the choice reads of a job's record."""

    name: str
    objective_value: float | None
    details: dict[str, Any] = field(default_factory=dict)


def made(name: str, score: float | None, ms: float | None) -> Made:
    return Made(name, score, {} if ms is None else {"PredictSecondsPerRow": ms / 1e3})


# -- which searched candidate ships ----------------------------------------------------------------
AUC = get_metric("AUC")
SEARCHED = [
    made("slow-best", 0.90, 6.0),
    made("failed", None, None),
    made("mid", 0.88, 2.5),
    made("fast", 0.85, 0.4),
    made("untimed", 0.89, None),
]


def test_the_best_candidate_within_the_limit_ships_and_the_better_ones_are_named() -> None:
    choice = choose_within_latency(SEARCHED, AUC, 0.003)
    assert choice is not None and choice.name == "mid"
    # Ranked by the objective: an untimed candidate counts as over the limit.
    assert choice.skipped == ("slow-best", "untimed")
    assert "skipped 2 better candidate(s) over the 3 ms limit" in choice.note
    assert "slow-best (AUC 0.9, 6.00 ms per row)" in choice.note
    assert "shipped mid (AUC 0.88, 2.50 ms per row), the best within it" in choice.note


def test_a_best_candidate_within_the_limit_changes_nothing() -> None:
    choice = choose_within_latency(SEARCHED, AUC, 0.010)
    assert choice is not None and choice.name == "slow-best" and choice.skipped == ()
    assert choice.note.startswith("the best candidate is within the 10 ms limit")


def test_with_none_within_the_limit_the_fastest_ships() -> None:
    choice = choose_within_latency(SEARCHED, AUC, 0.0001)
    assert choice is not None and choice.name == "fast"
    assert choice.skipped == ("slow-best", "untimed", "mid")
    assert "no candidate answers a row within the 0.1 ms limit: shipped the fastest" in choice.note
    alone = choose_within_latency([made("only", 0.7, 3.0)], AUC, 0.0001)
    assert alone is not None and alone.name == "only" and "is also the fastest" in alone.note
    assert choose_within_latency([made("failed", None, None)], AUC, 0.001) is None


def test_a_metric_to_minimize_ranks_the_lowest_first() -> None:
    log_loss = get_metric("LogLoss")
    losses = [
        made("a", 0.30, 5.0),
        made("b", 0.25, 8.0),
        made("c", 0.40, 1.0),
        made("d", 0.25, 2.0),
    ]
    choice = choose_within_latency(losses, log_loss, 0.006)
    # b and d tie on the objective: the earlier (b) ranks first, and is over the limit.
    assert choice is not None and choice.name == "d" and choice.skipped == ("b",)


# -- ensemble selection under the limit ------------------------------------------------------------
def test_ensemble_selection_within_the_limit_says_what_it_gave_up() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    signal = y + rng.normal(0, 0.8, 400)
    # Three noisy views of the same signal: the best model (0) is the slowest.
    preds = [1 / (1 + np.exp(-(signal + rng.normal(0, s, 400)))) for s in (0.3, 0.9, 1.2)]
    preds = [np.column_stack([1 - p, p]) for p in preds]
    cost = [0.004, 0.0005, 0.0005]
    metric = get_metric("LogLoss")
    free = greedy_selection(preds, y, metric, n_classes=2)
    limited = greedy_selection(preds, y, metric, n_classes=2, cost=cost, max_cost=0.002)
    assert 0 in free.chosen and 0 not in limited.chosen
    note = latency_selection_note(cost, 0.002, limited, free, "LogLoss")
    assert note.startswith("ensemble selection within the 2 ms limit: ")
    assert f"LogLoss {limited.score:.4f}; without the limit: " in note
    assert f"LogLoss {free.score:.4f}" in note
    roomy = greedy_selection(preds, y, metric, n_classes=2, cost=cost, max_cost=1.0)
    assert "changed nothing" in latency_selection_note(cost, 1.0, roomy, free, "LogLoss")
    tight = greedy_selection(preds, y, metric, n_classes=2, cost=cost, max_cost=0.0001)
    assert "no model's estimated refit latency is within the 0.1 ms limit" in (
        latency_selection_note(cost, 0.0001, tight, free, "LogLoss")
    )


# -- a whole job ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_tiny_latency_limit_ships_a_faster_model_than_the_best(tmp_path: Path) -> None:
    """HYPERPARAMETER_TUNING with a 0.05 ms limit no model meets: on Precision the random forest
    beats the linear model on this slice, and the linear one ships. The forest has 2,000 trees
    (~0.6 ms per row against the linear model's ~0.2 ms): with the default 300 its compiled
    few-row walk answers in ~0.25 ms, as fast as the linear pipeline, and which is faster was up
    to the machine."""
    with TELCO.open(encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(1001)]
    data = tmp_path / "telco.csv"
    data.write_text("".join(lines), encoding="utf-8")
    job = mlpilot.run_job(
        str(data),
        target="Churn",
        output=tmp_path / "job",
        name="latency",
        mode="HYPERPARAMETER_TUNING",
        algorithms=("randomforest", "linear-learner"),
        candidates=(
            CandidateDefinition("randomforest", defaults={"n_estimators": 2000}, ranges={}),
            CandidateDefinition("linear-learner"),
        ),
        objective="Precision",
        max_candidates=2,
        validation_fraction=0.3,
        max_latency_ms=0.05,
        parallelism=2,
        generate_reports=False,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    record = json.loads((job.layout.root / "job.json").read_text())
    board = pd.read_csv(job.layout.leaderboard_csv)
    # The leaderboard still ranks by the objective: the forest first.
    best, other = board["candidate"].tolist()
    assert board["algorithm"].tolist()[0] == "randomforest"
    shipped = record["BestCandidate"]
    assert shipped["CandidateName"] == other
    latency = {
        c["CandidateName"]: c["Mlpilot"]["PredictSecondsPerRow"] for c in job.candidates.values()
    }
    assert latency[other] < latency[best]
    # The leaderboard shows the same latencies the choice read.
    shown = dict(zip(board["candidate"], board["predict_ms_per_row"], strict=True))
    assert shown[other] == pytest.approx(latency[other] * 1e3, rel=0.01)
    notes = record["Mlpilot"]
    assert notes["LatencySkipped"] == [best]
    assert notes["LatencyNote"].startswith(
        f"no candidate answers a row within the 0.05 ms limit: shipped the fastest, {other} "
    )
    assert f"instead of the best, {best} (Precision" in notes["LatencyNote"]
    # The shipped package is the linear model's.
    model = mlpilot.load_model(job.layout.root)
    assert model.info["candidate"]["CandidateName"] == other
