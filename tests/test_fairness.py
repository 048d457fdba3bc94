"""Fairness by a sensitive attribute (``--sensitive-attribute``, ``--max-disparity``, tags
``mlpilot:SensitiveAttribute``/``MaxDisparity``/``DisparityMetric``): fairlearn's group
metrics in the model-quality report, and the choice of the shipped model within a disparity
limit."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

import mlpilot
from helpers_data import PENGUINS, TITANIC
from mlpilot._types import ProblemType
from mlpilot.config import TabularConfig
from mlpilot.ensemble import EnsembleLimits
from mlpilot.ensemble._final import FinalPhase
from mlpilot.errors import ConfigError, DataError
from mlpilot.metrics import (
    DisparityMeasure,
    DisparityOption,
    choose_within_disparity,
    get_metric,
    group_metrics,
    sensitive_groups,
)
from mlpilot.problems.tabular._fairness import fairness_measure
from mlpilot.profile import build_profile
from mlpilot.reports._quality import Evaluation, Tradeoff, write_model_insights

RNG = np.random.default_rng(7)
N = 300
#: Made-up binary truth and predictions: group "b" is predicted positive far more often.
GROUPS = sensitive_groups(pd.Series(RNG.choice(["a", "b", None], N, p=[0.5, 0.4, 0.1])))
Y = RNG.integers(0, 2, N)
PRED = np.where(GROUPS == "b", RNG.random(N) < 0.8, RNG.random(N) < 0.3).astype(int)
WEIGHT = RNG.uniform(0.5, 2.0, N)


# -- group metrics --------------------------------------------------------------------------------
def test_group_metrics_are_fairlearns_and_a_missing_value_is_a_group() -> None:
    out = group_metrics(Y, PRED, GROUPS, binary=True, positive_index=1, sample_weight=WEIGHT)
    weighted = {"sample_weight": WEIGHT}
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=Y,
        y_pred=PRED,
        sensitive_features=GROUPS,
        sample_params={
            k: weighted
            for k in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
        },
    )
    assert set(out["by_group"]) == {"a", "b", "(missing)"}
    for group, row in frame.by_group.iterrows():
        mine = out["by_group"][group]
        assert mine["count"] == int((group == GROUPS).sum())
        for name in row.index:
            assert mine[name] == pytest.approx(row[name])
    assert out["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(Y, PRED, sensitive_features=GROUPS, sample_weight=WEIGHT)
    )
    assert out["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(Y, PRED, sensitive_features=GROUPS, sample_weight=WEIGHT)
    )
    # The made-up gap shows: "b" is selected far more often than "a".
    assert out["demographic_parity_difference"] > 0.3


def test_the_positive_class_may_be_index_zero() -> None:
    flipped = group_metrics(1 - Y, 1 - PRED, GROUPS, binary=True, positive_index=0)
    plain = group_metrics(Y, PRED, GROUPS, binary=True, positive_index=1)
    assert flipped == plain


def test_multiclass_has_count_and_accuracy_per_group_and_no_disparity() -> None:
    y = RNG.integers(0, 3, N)
    pred = RNG.integers(0, 3, N)
    out = group_metrics(y, pred, GROUPS, binary=False)
    assert "demographic_parity_difference" not in out
    for group, row in out["by_group"].items():
        assert set(row) == {"count", "accuracy"}
        rows = group == GROUPS
        assert row["accuracy"] == pytest.approx(accuracy_score(y[rows], pred[rows]))


def test_a_disparity_measure_reads_the_labels_at_the_decision_threshold() -> None:
    proba = np.column_stack([1 - PRED * 0.6 - 0.2, PRED * 0.6 + 0.2])  # 0.2 or 0.8
    measure = DisparityMeasure("demographic_parity", GROUPS, Y, positive_index=1)
    rows = np.arange(N)
    assert measure.measure(rows, proba) == pytest.approx(
        demographic_parity_difference(Y, PRED, sensitive_features=GROUPS)
    )
    # At a threshold under every probability everyone is selected: no gap.
    assert measure.measure(rows, proba, threshold=0.1) == 0.0
    eo = DisparityMeasure("equalized_odds", GROUPS, Y, positive_index=1)
    assert eo.measure(rows[:100], proba[:100]) == pytest.approx(
        equalized_odds_difference(Y[:100], PRED[:100], sensitive_features=GROUPS[:100])
    )


# -- the report ---------------------------------------------------------------------------------
def test_the_model_quality_report_carries_the_group_metrics_and_the_tradeoff(
    tmp_path: Path,
) -> None:
    proba = np.column_stack([1 - PRED * 0.6 - 0.2, PRED * 0.6 + 0.2])
    evaluation = Evaluation(
        problem_type=ProblemType.BINARY,
        labels=[0, 1],
        positive_index=1,
        y=Y,
        predictions=proba,
        weight=None,
        candidate="c2",
        objective="F1",
        sensitive_attribute="gender",
        groups=GROUPS,
    )
    tradeoff = Tradeoff(
        "F1", "demographic_parity", 0.1, "c2", [("c1", 0.8, 0.3), ("c2", 0.7, 0.05)]
    )
    stats = write_model_insights(
        evaluation,
        tmp_path,
        job_name="j",
        algorithm="a",
        validation="v",
        pdf=False,
        tradeoff=tradeoff,
    )
    saved = json.loads((tmp_path / "statistics.json").read_text())["mlpilot"]["fairness"]
    expected = group_metrics(Y, PRED, GROUPS, binary=True, positive_index=1)
    assert saved["sensitive_attribute"] == "gender"
    assert saved["demographic_parity_difference"] == pytest.approx(
        expected["demographic_parity_difference"]
    )
    assert saved["by_group"]["b"] == pytest.approx(expected["by_group"]["b"])
    assert saved["tradeoff"]["shipped"] == "c2"
    assert [c["candidate"] for c in saved["tradeoff"]["candidates"]] == ["c1", "c2"]
    assert stats["mlpilot"]["fairness"]["groups"] == 3
    html = (tmp_path / "report.html").read_text()
    assert "Fairness by gender" in html and "equalized odds difference" in html


# -- the constrained choice ---------------------------------------------------------------------
F1 = get_metric("F1")
OPTIONS = [
    DisparityOption("best", 0.90, 0.30),
    DisparityOption("unmeasured", 0.89, float("nan")),
    DisparityOption("fair", 0.85, 0.04),
    DisparityOption("fairest", 0.70, 0.01),
]


def test_the_best_candidate_within_the_limit_ships_and_the_better_ones_are_named() -> None:
    choice = choose_within_disparity(OPTIONS, F1, 0.05, "demographic_parity")
    assert choice is not None and choice.name == "fair" and choice.within
    assert choice.skipped == ("best", "unmeasured")
    assert "skipped 2 better candidate(s) over the demographic_parity limit 0.05" in choice.note
    assert "shipped fair (F1 0.85, demographic_parity 0.0400), the best within it" in choice.note


def test_with_none_within_the_limit_the_least_disparate_ships_with_the_reason() -> None:
    choice = choose_within_disparity(OPTIONS, F1, 0.001, "equalized_odds")
    assert choice is not None and choice.name == "fairest" and not choice.within
    assert choice.skipped == ("best", "unmeasured", "fair")
    assert choice.note.startswith(
        "no candidate is within the equalized_odds limit 0.001: shipped the one with the least "
        "disparity, fairest (F1 0.7, equalized_odds 0.0100), instead of the best, best"
    )
    loose = choose_within_disparity(OPTIONS, F1, 0.5, "demographic_parity")
    assert loose is not None and loose.name == "best" and loose.skipped == ()


def test_a_metric_to_minimize_ranks_the_lowest_first() -> None:
    options = [DisparityOption("low", 0.2, 0.2), DisparityOption("high", 0.5, 0.02)]
    choice = choose_within_disparity(options, get_metric("LogLoss"), 0.1, "demographic_parity")
    assert choice is not None and choice.name == "high" and choice.skipped == ("low",)


def test_ensembling_ships_the_best_option_within_the_limit() -> None:
    """The final phase's choice between the selected ensemble and each single model, on their
    out-of-fold predictions."""
    fair = np.column_stack([np.full(N, 0.4), np.full(N, 0.6)])  # everyone selected: gap 0
    biased = np.column_stack([1 - PRED * 0.6 - 0.2, PRED * 0.6 + 0.2])
    models = [
        SimpleNamespace(name="biased", oof=biased, score=0.9),
        SimpleNamespace(name="fair", oof=fair, score=0.6),
    ]
    measure = DisparityMeasure("demographic_parity", GROUPS, Y, 1, max_disparity=0.05)
    builder: Any = SimpleNamespace(
        limits=EnsembleLimits(max_candidates=2, disparity=measure),
        rows=np.arange(N),
        models=models,
        selection_metric=F1,
        objective=get_metric("AUC"),
        problem_type=ProblemType.BINARY,
        fairness=None,
    )
    phase = FinalPhase(builder)
    chosen, weights = phase._within_disparity(
        models,
        {"biased": 0.7, "fair": 0.3},
        ensemble_score=0.95,  # type: ignore[arg-type]
    )
    assert [m.name for m in chosen] == ["fair"] and weights == {"fair": 1.0}
    assert builder.fairness.skipped == ("the weighted ensemble", "biased")
    # No limit: the selection stands.
    builder.limits = EnsembleLimits(max_candidates=2, disparity=None)
    kept, _ = phase._within_disparity(models, {"biased": 1.0}, None)  # type: ignore[arg-type]
    assert [m.name for m in kept] == ["biased", "fair"]


# -- the rules that need the data -----------------------------------------------------------------
def test_the_data_checks_name_the_problem() -> None:
    titanic = pd.read_csv(TITANIC)
    profile = build_profile(titanic, "Survived")
    y = profile.target.encode(titanic["Survived"])
    spec = TabularConfig(target="Survived", sensitive_attribute="Gender")
    with pytest.raises(DataError, match="Sensitive attribute 'Gender' is not a column"):
        fairness_measure(spec, titanic, y, profile)
    measure = fairness_measure(
        TabularConfig(target="Survived", sensitive_attribute="Sex"), titanic, y, profile
    )
    assert measure is not None and set(measure.groups) == {"male", "female"}
    penguins = pd.read_csv(PENGUINS)
    species = build_profile(penguins, "species")
    labels = species.target.encode(penguins["species"])
    limited = TabularConfig(target="species", sensitive_attribute="sex", max_disparity=0.1)
    with pytest.raises(ConfigError, match="not defined for this multiclass job"):
        fairness_measure(limited, penguins, labels, species)
    # Without a limit, a multiclass job's report still gets its groups.
    assert (
        fairness_measure(
            TabularConfig(target="species", sensitive_attribute="sex"), penguins, labels, species
        )
        is None
    )
    numeric = build_profile(penguins, "body_mass_g")
    with pytest.raises(ConfigError, match="apply to classification jobs; this job is a Regression"):
        fairness_measure(
            TabularConfig(target="body_mass_g", sensitive_attribute="sex"),
            penguins,
            np.zeros(len(penguins)),
            numeric,
        )


# -- a whole job ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_job_with_a_sensitive_attribute_reports_groups_and_ships_within_the_limit(
    tmp_path: Path,
) -> None:
    """HYPERPARAMETER_TUNING on Titanic by Sex with a limit no model meets (survival differs
    hugely between the groups): the least disparate candidate ships, the record says why, the
    leaderboard and the report carry the same disparities."""
    job = mlpilot.run_job(
        str(TITANIC),
        target="Survived",
        output=tmp_path / "job",
        name="fair",
        mode="HYPERPARAMETER_TUNING",
        algorithms=("linear-learner",),
        max_candidates=2,
        validation_fraction=0.3,
        sensitive_attribute="Sex",
        max_disparity=0.01,
        parallelism=2,
        max_runtime=30,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    record = json.loads((job.layout.root / "job.json").read_text())
    board = pd.read_csv(job.layout.leaderboard_csv)
    disparity = dict(zip(board["candidate"], board["disparity"], strict=True))
    assert len(disparity) == 2 and all(0.01 < d <= 1 for d in disparity.values())
    shipped = record["BestCandidate"]["CandidateName"]
    assert disparity[shipped] == min(disparity.values())
    notes = record["Mlpilot"]
    assert notes["FairnessNote"].startswith(
        "no candidate is within the demographic_parity limit 0.01"
    )
    insights = Path(notes["Reports"]["ModelInsights"]["Location"]) / "statistics.json"
    fairness = json.loads(insights.read_text())["mlpilot"]["fairness"]
    assert set(fairness["by_group"]) == {"male", "female"}
    assert fairness["demographic_parity_difference"] == pytest.approx(disparity[shipped], abs=1e-6)
    assert fairness["tradeoff"]["shipped"] == shipped
