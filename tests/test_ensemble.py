"""ENSEMBLING mode (``mlpilot.ensemble``): greedy selection, stacking features, the bagging
plan, the NumPy twin of the feature pipelines, forests' out-of-bag scoring, and whole jobs on
slices of the test data sets (stacking against its base models on held-out rows, the
package interface, the time budget, AUTO's choice, determinism).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

import mlpilot
from helpers_data import ADULT, AMES, CAR, TELCO
from mlpilot._types import ProblemType
from mlpilot.algorithms import FitContext, get_algorithm
from mlpilot.data import read_table
from mlpilot.ensemble import (
    BaggingPlan,
    EnsemblePredictor,
    build_portfolio,
    choose_final,
    greedy_selection,
    plan_bagging,
    sample_rows,
    stack_column_names,
    stack_features,
)
from mlpilot.ensemble._caruana import STEPS
from mlpilot.ensemble._final import BuiltModel, FinalPhase
from mlpilot.ensemble._portfolio import HEAD, PortfolioEntry, learned_portfolio
from mlpilot.ensemble._predictor import AssembleResult
from mlpilot.ensemble._runner import SELECTION_SHARE, EnsembleBuilder, EnsembleLimits
from mlpilot.features import FeaturePipeline, TableCleaner
from mlpilot.jobs import AutoMLJob
from mlpilot.metrics import get_metric
from mlpilot.package import InferenceModel
from mlpilot.profile import build_profile
from mlpilot.runtime import Budget, LocalProcessExecutor
from mlpilot.search import TrialResult, load_validation_predictions


# -- greedy selection ----------------------------------------------------------------------------
def test_greedy_selection_blends_complementary_models() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    signal = np.where(y == 1, 1.0, -1.0)

    def model(noise_seed: int) -> np.ndarray:
        noise = np.random.default_rng(noise_seed).normal(0, 2.0, len(y))
        p = 1 / (1 + np.exp(-(signal + noise)))
        return np.column_stack([1 - p, p])

    good, other, useless = model(1), model(2), np.full((len(y), 2), 0.5)
    metric = get_metric("LogLoss")
    selection = greedy_selection([useless, good, other], y, metric, n_classes=2)
    assert selection.weights[0] == 0  # never helps, never chosen
    assert selection.weights[1] > 0 and selection.weights[2] > 0  # independent errors blend
    assert selection.weights.sum() == pytest.approx(1.0)
    single = min(log_loss(y, good), log_loss(y, other))
    assert selection.score < single
    blended = selection.weights[1] * good + selection.weights[2] * other
    assert selection.score == pytest.approx(log_loss(y, blended), rel=1e-9)


def test_greedy_selection_respects_a_cost_limit() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=1000)
    a = y + rng.normal(0, 0.5, 1000)
    b = y + rng.normal(0, 0.5, 1000)
    metric = get_metric("MSE")
    free = greedy_selection([a, b], y, metric)
    assert (free.weights > 0).all()
    capped = greedy_selection([a, b], y, metric, cost=[1.0, 1.0], max_cost=1.5)
    assert (capped.weights > 0).sum() == 1


def test_greedy_selection_stops_adding_steps_at_its_deadline() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=500)
    a, b = y + rng.normal(0, 0.5, 500), y + rng.normal(0, 0.5, 500)
    metric = get_metric("MSE")
    assert len(greedy_selection([a, b], y, metric).trajectory) == STEPS
    late = greedy_selection([a, b], y, metric, deadline=time.monotonic() - 1.0)
    # Only the best single model: every step scores every model, and none had time.
    assert late.trajectory == [late.score] and (late.weights > 0).sum() == 1


# -- the final phase's time plan -----------------------------------------------------------------
def _binary_plan(n_rows: int, budget: float) -> BaggingPlan:
    """The bagging plan of a binary table of ``n_rows`` (alternating classes) at ``budget``."""
    return plan_bagging(
        n_rows,
        np.arange(n_rows) % 2,
        classification=True,
        seed=0,
        fraction=None,
        n_validation_rows=0,
        budget=budget,
        row_cap=None,
        cap_reason="",
    )


def _builder(tmp_path: Path, total: float, elapsed: float, n_models: int) -> EnsembleBuilder:
    """A builder of a 60 s job on 800 rows, ``elapsed`` seconds in, holding ``n_models`` bagged
    base models of 1 MB each (5-fold bags, 0.2 s per fit), as the base-model phase leaves it."""
    y = np.arange(800) % 2
    plan = _binary_plan(800, total)
    budget = Budget(total, started=time.monotonic() - elapsed, end_extra=6.0)
    builder = EnsembleBuilder(
        job_name="plan",
        executor=LocalProcessExecutor(2),  # nothing is submitted: no worker starts
        data_dir=tmp_path,
        work_dir=tmp_path / "work",
        candidate_dir=lambda name: tmp_path / name,
        final_dir=lambda name: tmp_path / "final" / name,
        problem_type=ProblemType.BINARY,
        n_classes=2,
        positive_index=1,
        y=y,
        weight=None,
        plan=plan,
        objective="AUC",
        portfolio=[],
        seed=0,
        budget=budget,
        limits=EnsembleLimits(max_candidates=100),
        on_start=lambda task, extra: None,
        on_result=lambda task, result, extra: None,
    )
    folds = len(plan.validation.eval_folds)
    for number in range(n_models):
        name = f"model-{number}"
        (tmp_path / name).mkdir()
        (tmp_path / name / "pipeline.joblib").write_bytes(b"\0" * 1_000_000)
        task = builder._trial_task(
            name=name,
            algorithm="lightgbm",
            params={},
            data_dir=tmp_path,
            model_dir=tmp_path / name,
            limit=None,
            left=None,
            out_of_bag=False,
        )
        result = TrialResult(
            number, name, "Completed", train_seconds=0.2 * folds, latency_seconds=5e-4,
            model_dir=str(tmp_path / name),
        )  # fmt: skip
        oof = np.column_stack([np.full(len(builder.rows), 0.5)] * 2)
        builder.models.append(
            BuiltModel(name, number, 1, "lightgbm", task, result, oof, 0.7 - number / 100, 0.2)
        )
    # One score of out-of-fold predictions took 2 ms (scikit-learn's AUC on a loaded machine).
    builder._score_seconds = [0.002]
    return builder


def test_the_final_phase_plans_for_selection_refits_and_shipping(tmp_path: Path) -> None:
    builder = _builder(tmp_path, 60.0, 40.0, n_models=43)
    # 40 steps over 43 models and the 2 stackers would take 3.6 s: capped at 5 % of 60 s.
    assert builder._selection_seconds() == pytest.approx(SELECTION_SHARE * 60)
    assert builder._selection_seconds(10) == pytest.approx(STEPS * 10 * 0.002)
    units = builder._top_models(5, layer=1)
    assert builder._final_seconds(units) == pytest.approx(
        builder._selection_seconds()
        + builder._refit_seconds(units)
        + builder._assemble_seconds(units)
    )
    phase = FinalPhase(builder)
    end = builder._end_reserve()  # 1.5 s + 3 % + the reports' 6 s
    assert end == pytest.approx(1.5 + 1.8 + 6.0)
    left = builder._left()
    refit_left = phase._refit_left(units)
    assert left is not None and refit_left is not None
    # The refits end in time for the refit package to be assembled and shipped before the
    # end reserve (which holds the reports' time) begins.
    after = builder._refit_package_seconds(units)
    assert after >= builder._shipping_seconds(units, refit=True) > 0
    assert refit_left + after + end <= left
    # A task that would run into that reserve is not started.
    task = builder._trial_task(
        name="late", algorithm="lightgbm", params={}, data_dir=tmp_path,
        model_dir=tmp_path / "late", limit=None, left=None, out_of_bag=False,
    )  # fmt: skip
    handled: list[str] = []
    phase._run_queue([("refit", task, None)], lambda *a: handled.append(a[0]), left - 0.2)
    assert handled == [] and builder.notes == ["no time left for refit late"]


def test_a_base_model_stops_training_in_time_for_the_rest_of_its_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = _builder(tmp_path, 60.0, 10.0, n_models=2)
    # Finished tasks spent 3-5 s beyond their training (start, data, predictions, saving).
    builder._task_overheads = [3.0, 4.0, 5.0]
    submitted: list[tuple[Any, float | None]] = []
    monkeypatch.setattr(
        builder.queue,
        "submit",
        lambda function, task, *, limit, key: submitted.append((task, limit)),
    )
    started = time.time()
    builder._start_base(PortfolioEntry("lightgbm-r1", "lightgbm"), 12.0)
    ((task, limit),) = submitted
    assert limit == pytest.approx(12.0)  # the task's own limit: the time the tail leaves
    # Its training stops the median overhead (4 s) earlier.
    assert task.deadline_at - started == pytest.approx(8.0, abs=0.5)


def test_stacking_without_time_skips_its_selection_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = _builder(tmp_path, 60.0, 55.0, n_models=4)

    def selection(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a selection for stackers that cannot run")

    monkeypatch.setattr(builder, "_greedy_selection", selection)
    builder._stackers()
    assert builder.notes == ["no stacking layer: no time left for it"]


def test_a_model_with_an_untrained_fold_feeds_no_stacker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = _builder(tmp_path, 60.0, 5.0, n_models=4)
    # model-1 stopped at 0 iterations on one fold (its time ran out before its first epoch).
    builder.models[1].result.time_cuts = {0: 3, 1: 0}
    builder.models[2].result.time_cuts = {0: 40, 1: 35}
    seen: list[list[str]] = []

    class Stop(Exception):
        pass

    def selection(models: list[Any], **limits: Any) -> Any:
        seen.append([m.name for m in models])
        raise Stop  # what the stackers read is decided by now

    monkeypatch.setattr(builder, "_greedy_selection", selection)
    with pytest.raises(Stop):
        builder._stackers()
    assert seen and "model-1" not in seen[0] and len(seen[0]) == 3
    assert builder.notes == ["stacking inputs leave out model-1: a fold stopped at 0 iterations"]
    # With fewer than two models trained on every fold, no stacking layer.
    for m in builder.models[2:]:
        m.result.time_cuts = {0: 0}
    builder.notes.clear()
    builder._stackers()
    assert builder.notes[-1] == "no stacking layer: fewer than two base models trained every fold"


def test_assembly_is_planned_by_what_writing_the_bags_took_when_that_says_more(
    tmp_path: Path,
) -> None:
    builder = _builder(tmp_path, 60.0, 40.0, n_models=5)
    units = builder._top_models(5, layer=1)
    by_size = builder._assemble_seconds(units)  # five 1 MB bags: a fraction of a second
    # Text bags: a few MB each, but many small objects: 1.5 s each to write in the worker.
    for m in units:
        m.result.save_seconds = 1.5
    assert builder._assemble_seconds(units) == pytest.approx(by_size - 2 * 5e6 / 150e6 + 22.5)


@pytest.mark.parametrize("full", [True, False])
def test_stackers_read_the_original_features_only_when_the_problem_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full: bool
) -> None:
    builder = _builder(tmp_path, 300.0, 100.0, n_models=4)
    builder.limits = EnsembleLimits(max_candidates=100, stack_features=full)
    builder.portfolio = [PortfolioEntry("l", "lightgbm"), PortfolioEntry("r", "linear-learner")]
    monkeypatch.setattr(
        builder, "_greedy_selection", lambda models, **kw: SimpleNamespace(weights=[1, 1, 0, 0])
    )
    planned: list[list[tuple[str, str, bool]]] = []
    monkeypatch.setattr(
        builder, "_stacker_tasks", lambda plans, inputs, window: planned.append(plans) or iter(())
    )
    builder._stackers()
    ((booster, linear),) = planned
    assert booster[0] == "lightgbm" and booster[2] is full
    assert linear == ("linear-learner", "stack-preds", False)
    assert booster[1] != linear[1]  # each stacker's data in its own folder


# -- stacking features, portfolio, plan -----------------------------------------------------------
def test_stack_features_are_log_odds_and_log_probabilities() -> None:
    binary = np.array([[0.8, 0.2], [0.5, 0.5]])
    out = stack_features([binary, binary], ProblemType.BINARY)
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out[:, 0], [np.log(0.2 / 0.8), 0.0])
    multi = np.array([[0.7, 0.2, 0.1]])
    out = stack_features([multi], ProblemType.MULTICLASS)
    np.testing.assert_allclose(out, np.log(multi))
    assert stack_column_names(2, ProblemType.MULTICLASS, 3) == [
        f"__stack_{i:02d}_{k}" for i in range(2) for k in range(3)
    ]


def test_portfolio_follows_algorithms_config_and_data_size() -> None:
    learned = [e["algorithm"] for e in learned_portfolio()["entries"]]
    allowed = ["lightgbm", "catboost", "fastai"]
    small = build_portfolio(ProblemType.BINARY, 5_000, 2, allowed)
    assert {e.algorithm for e in small} == set(allowed)
    # Algorithms the user chose each get a model first (in learned order), then the learned
    # order goes on.
    in_order = list(dict.fromkeys(a for a in learned if a in allowed))
    assert [e.algorithm for e in small[:3]] == in_order
    labels = [e["label"] for e in learned_portfolio()["entries"]]
    assert [e.label for e in small[3:]] == [
        label
        for label, a in zip(labels, learned, strict=True)
        if a in allowed and label not in {e.label for e in small[:3]}
    ]
    assert len({e.key() for e in small}) == len(small)  # no configuration twice
    everything = ["lightgbm", "catboost", "xgboost", "randomforest", "nn-torch", "fastai"]
    usual = build_portfolio(ProblemType.BINARY, 5_000, 2, everything)
    large = build_portfolio(ProblemType.BINARY, 80_000, 2, everything)
    head = [e.algorithm for e in large[:HEAD]]
    slow = {"catboost", "randomforest", "nn-torch", "fastai"}
    # On a large table the slow algorithms of the first entries wait behind the fast ones...
    assert head == [a for a in head if a not in slow] + [a for a in head if a in slow]
    # ...and nothing else changes.
    assert sorted(e.key() for e in large[:HEAD]) == sorted(e.key() for e in usual[:HEAD])
    assert [e.key() for e in large[HEAD:]] == [e.key() for e in usual[HEAD:]]
    regression = build_portfolio(ProblemType.REGRESSION, 1_000, 0, ["randomforest"])
    assert all(e.params.get("criterion") in (None, "squared_error") for e in regression)
    custom = build_portfolio(ProblemType.REGRESSION, 100, 0, ["mlp"])
    assert [e.algorithm for e in custom] == ["mlp"]


def test_bagging_plan_folds_and_memory_sample() -> None:
    y = np.arange(30_000) % 2
    plan = _binary_plan(30_000, 60)
    assert plan.bagged and plan.validation.eval_folds == (0, 1, 2)  # large table, short budget
    assert set(np.unique(plan.validation.folds)) == {0, 1, 2}
    cap, why = sample_rows(
        1_000_000, 4 * 2**30, n_outputs=2, workers=2, budget=None, memory=24 * 2**30
    )
    assert cap is not None and cap < 1_000_000 and "memory" in why
    sampled = plan_bagging(
        30_000,
        y,
        classification=True,
        seed=0,
        fraction=None,
        n_validation_rows=0,
        budget=None,
        row_cap=10_000,
        cap_reason=why,
    )
    assert sampled.sample is not None and len(sampled.sample) == 10_000
    assert "sample of 10,000 of 30,000 rows" in sampled.sample_reason
    holdout = plan_bagging(
        1000,
        y[:1000],
        classification=True,
        seed=0,
        fraction=0.25,
        n_validation_rows=0,
        budget=None,
        row_cap=None,
        cap_reason="",
    )
    assert not holdout.bagged and holdout.validation.eval_folds == (1,)


def test_final_model_rule() -> None:
    fast = AssembleResult("refit", 0.0006, 1, 1.0)
    slow = AssembleResult("bag", 0.0025, 1, 1.0)  # churn's bag of three networks and a stacker
    quick_bag = AssembleResult("bag", 0.0012, 1, 1.0)
    assert choose_final(slow, fast, None)[0] == "refit"
    assert choose_final(quick_bag, fast, None)[0] == "bagged"
    assert choose_final(quick_bag, fast, 0.001)[0] == "refit"
    assert choose_final(slow, fast, 0.005)[0] == "bagged"  # a user's looser limit
    assert choose_final(slow, None, None)[0] == "bagged"
    # A bag timed just under the target inside the job is too close to it: timings vary.
    borderline = AssembleResult("bag", 0.0019, 1, 1.0)
    assert choose_final(borderline, fast, None)[0] == "refit"


# -- the feature pipelines' NumPy twin, forests ------------------------------------------------
@pytest.mark.parametrize("algorithm", ["lightgbm", "linear-learner", "mlp", "nn-torch"])
@pytest.mark.parametrize("path,target", [(TELCO, "Churn"), (AMES, "SalePrice")])
def test_fast_transform_matches_scikit_learn(algorithm: str, path: Path, target: str) -> None:
    raw = read_table(path).sample(800, random_state=0).reset_index(drop=True)
    profile = build_profile(raw, target)
    clean = TableCleaner.from_profile(profile).fit().transform(raw)
    options = get_algorithm(algorithm).preprocessing.with_(max_onehot_levels=8)
    pipeline = FeaturePipeline.from_profile(profile, options, seed=0)
    pipeline.fit_transform_clean(clean, profile.target.encode(raw[target]))
    assert pipeline.fast_ is not None
    rows = clean.iloc[:40].copy()
    for name in profile.features("categorical")[:3]:
        rows.loc[rows.index[:5], name] = "never seen"
        rows.loc[rows.index[5:8], name] = np.nan
    for name in profile.features("numeric")[:3]:
        rows.loc[rows.index[8:12], name] = np.nan
    expected = pipeline.columns_.transform(rows)
    np.testing.assert_allclose(pipeline.fast_.transform(rows), expected, rtol=1e-5, atol=1e-5)
    arrays = {c: rows[c].to_numpy() for c in rows.columns}
    np.testing.assert_allclose(pipeline.transform_clean(arrays), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algorithm", ["randomforest", "extra-trees"])
def test_forest_out_of_bag_and_small_batch_prediction(algorithm: str) -> None:
    raw = read_table(CAR)
    profile = build_profile(raw, "class")
    y = profile.target.encode(raw["class"])
    cls = get_algorithm(algorithm)
    pipeline = FeaturePipeline.from_profile(profile, cls.preprocessing)
    X = pipeline.fit_transform(raw, y)
    model = cls(profile.problem_type, 4, {"n_estimators": 60}, seed=0)
    oob = model.fit_oob(X, y, context=FitContext())
    assert oob.shape == (len(y), 4)
    np.testing.assert_allclose(oob.sum(axis=1), 1.0)
    assert (oob.argmax(axis=1) == y).mean() > 0.85  # out of bag, yet clearly learned
    few = model.predict_proba(X[:10])
    np.testing.assert_allclose(few, model.model_.predict_proba(X[:10]), atol=1e-12)


# -- whole jobs ----------------------------------------------------------------------------------
def telco_split(tmp: Path) -> tuple[Path, pd.DataFrame]:
    table = pd.read_csv(TELCO).sample(frac=1.0, random_state=1).reset_index(drop=True)
    train, test = table.iloc[:2200], table.iloc[2200:].reset_index(drop=True)
    path = tmp / "telco-train.csv"
    train.to_csv(path, index=False)
    return path, test


@pytest.fixture(scope="module")
def ensemble_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[AutoMLJob, pd.DataFrame]:
    """An ENSEMBLING job without a time limit: six base models (each of the three algorithms
    first), stackers, the ensemble."""
    root = tmp_path_factory.mktemp("ensemble")
    data, test = telco_split(root)
    job = mlpilot.run_job(
        str(data),
        target="Churn",
        output=root / "job",
        name="ens",
        mode="ENSEMBLING",
        algorithms=("lightgbm", "linear-learner", "extra-trees"),
        objective="LogLoss",
        problem_type="BinaryClassification",
        max_candidates=6,
        parallelism=2,
        generate_reports=False,
    )
    return job, test


def held_out_log_loss(model: InferenceModel, test: pd.DataFrame) -> float:
    proba = model.predict_proba(test.drop(columns=["Churn"]))
    truth = (test["Churn"] == "Yes").astype(int)
    return float(log_loss(truth, proba["Yes"]))


def by_layer(job: AutoMLJob, layer: int) -> list[dict[str, Any]]:
    return [
        c
        for c in job.candidates.values()
        if c["Mlpilot"].get("Layer") == layer and c["CandidateStatus"] == "Completed"
    ]


@pytest.mark.slow
def test_ensembling_job_trains_every_layer(ensemble_job: tuple[AutoMLJob, pd.DataFrame]) -> None:
    job, _ = ensemble_job
    assert job.status == "Completed", job.record.get("FailureReason")
    profile = job.record["Mlpilot"]["Profile"]
    assert profile["Mode"] == "ENSEMBLING"
    assert profile["Validation"] == "bagged cross-validation"
    assert {c["Mlpilot"]["Algorithm"] for c in by_layer(job, 1)} == {
        "lightgbm",
        "linear-learner",
        "extra-trees",
    }
    assert len(by_layer(job, 2)) == 2  # a tree stacker and a linear one
    (ensemble,) = by_layer(job, 3)
    best = job.record["BestCandidate"]
    assert best["CandidateName"] == ensemble["CandidateName"]
    weights = ensemble["Mlpilot"]["Weights"]
    assert len(weights) >= 2 and sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in by_layer(job, 1)]
    assert best["FinalAutoMLJobObjectiveMetric"]["Value"] <= min(values) + 1e-12
    # LogLoss: the blend's calibration is fitted and recorded (kept only when it gains).
    calibration = ensemble["Mlpilot"]["Calibration"]
    assert calibration["AfterLogLoss"] == best["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert calibration["AfterLogLoss"] <= calibration["BeforeLogLoss"]
    assert 0.25 <= calibration["Temperature"] <= 4.0


@pytest.mark.slow
def test_every_candidate_saves_validation_predictions_and_latency(
    ensemble_job: tuple[AutoMLJob, pd.DataFrame],
) -> None:
    job, _ = ensemble_job
    n = job.profile.n_rows if job.profile else 0
    for candidate in [*by_layer(job, 1), *by_layer(job, 2), *by_layer(job, 3)]:
        folder = Path(candidate["Mlpilot"]["ModelLocation"])
        rows, folds, predictions = load_validation_predictions(str(folder))
        assert sorted(rows.tolist()) == list(range(n))
        assert predictions.shape == (n, 2) and set(folds.tolist()) == set(range(5))
        assert candidate["Mlpilot"]["PredictSecondsPerRow"] > 0
        InferenceModel.load(folder)  # each stands alone
    board = pd.read_csv(job.layout.leaderboard_csv)
    assert board["predict_ms_per_row"].notna().all()
    assert board.iloc[0]["algorithm"] == "weighted-ensemble"
    # Every candidate, the ensemble of out-of-fold predictions included, states its spread.
    assert (board["objective_std"] > 0).all()
    for candidate in [*by_layer(job, 1), *by_layer(job, 2), *by_layer(job, 3)]:
        assert candidate["Mlpilot"]["ObjectiveStdOver"] == "5 folds"


@pytest.mark.slow
def test_stacking_and_ensemble_beat_or_tie_the_best_base_model_on_held_out_rows(
    ensemble_job: tuple[AutoMLJob, pd.DataFrame],
) -> None:
    job, test = ensemble_job
    base = min(
        held_out_log_loss(InferenceModel.load(c["Mlpilot"]["ModelLocation"]), test)
        for c in by_layer(job, 1)
    )
    stackers = [
        held_out_log_loss(InferenceModel.load(c["Mlpilot"]["ModelLocation"]), test)
        for c in by_layer(job, 2)
    ]
    final = held_out_log_loss(mlpilot.load_model(job.layout.root), test)
    # On 4,800 held-out rows; "ties" allows 1 % (the log loss's sampling noise is about that).
    assert min(stackers) <= base * 1.01
    assert final <= base * 1.01


@pytest.mark.slow
def test_ensemble_package_interface(ensemble_job: tuple[AutoMLJob, pd.DataFrame]) -> None:
    job, test = ensemble_job
    best = job.record["BestCandidate"]
    extra = best["Mlpilot"]
    assert extra["RefitNote"]
    archive = Path(best["InferenceContainers"][0]["ModelDataUrl"])
    for model in (mlpilot.load_model(job.layout.root), InferenceModel.load(archive)):
        assert isinstance(model.members, EnsemblePredictor)
        assert model.problem_type is ProblemType.BINARY
        assert sorted(model.labels) == ["No", "Yes"]
        assert "Churn" not in model.input_columns and "tenure" in model.input_columns
        assert model.info["candidate"]["CandidateName"] == best["CandidateName"]
        rows = test.drop(columns=["Churn"]).head(100)
        out = model.predict(rows, probabilities=True)
        assert list(out.columns[:2]) == ["predicted_label", "probability"]
        raw = model.predict_raw(rows)
        np.testing.assert_allclose(raw.sum(axis=1), 1.0)
        # One row at a time (the small-batch path) agrees with the batch.
        one = np.vstack([model.predict_raw(rows.iloc[[i]]) for i in range(5)])
        np.testing.assert_allclose(one, raw[:5], rtol=1e-5, atol=1e-6)
    assert extra["PredictSecondsPerRow"] > 0
    if extra["Refit"]:
        assert extra["PredictSecondsPerRow"] < extra["BaggedPredictSecondsPerRow"]


@pytest.mark.slow
def test_same_seed_gives_the_same_ensemble(tmp_path: Path) -> None:
    # Two runs of a smaller job than the module's (600 rows, four base models), so that the
    # check costs two short jobs rather than a second long one.
    table = pd.read_csv(TELCO).sample(600, random_state=2)
    data = tmp_path / "telco600.csv"
    table.to_csv(data, index=False)

    def run(output: str) -> AutoMLJob:
        return mlpilot.run_job(
            str(data),
            target="Churn",
            output=tmp_path / output,
            name="ens",
            mode="ENSEMBLING",
            algorithms=("lightgbm", "linear-learner", "extra-trees"),
            objective="LogLoss",
            problem_type="BinaryClassification",
            max_candidates=4,
            parallelism=2,
            generate_reports=False,
        )

    job, again = run("first"), run("again")

    def signature(j: AutoMLJob) -> list[tuple[str, float]]:
        return sorted(
            (name, round(c["FinalAutoMLJobObjectiveMetric"]["Value"], 10))
            for name, c in j.candidates.items()
            if c["CandidateStatus"] == "Completed"
        )

    assert len(signature(job)) >= 4  # base models and stackers
    assert signature(again) == signature(job)
    assert (
        again.record["BestCandidate"]["Mlpilot"]["Weights"]
        == (job.record["BestCandidate"]["Mlpilot"]["Weights"])
    )


@pytest.mark.slow
def test_small_budget_is_kept_and_a_model_is_ready(tmp_path: Path) -> None:
    adult = pd.read_csv(ADULT).sample(8_000, random_state=0)
    data = tmp_path / "adult.csv"
    adult.to_csv(data, index=False)
    started = time.monotonic()
    job = mlpilot.run_job(
        str(data),
        target="income",
        output=tmp_path / "job",
        name="budget",
        mode="ENSEMBLING",
        max_runtime=15,
        parallelism=2,
        generate_reports=False,
    )
    wall = time.monotonic() - started
    assert job.status == "Completed", job.record.get("FailureReason")
    # The budget is kept: no model started after the deadline (the job's clock starts before
    # CreationTime) and the job's clock runs within the call. How close the job keeps to its
    # budget is a benchmark figure: a loaded machine misses any fixed margin.
    criteria = job.record["ResolvedAttributes"]["CompletionCriteria"]
    assert criteria["MaxAutoMLJobRuntimeInSeconds"] == 15
    # (The weighted ensemble's record is assembled from them in the final phase, which a loaded
    # machine can push past the deadline: it is not a model that starts training.)
    deadline = job.record["CreationTime"] + 15
    trained = [c for c in job.candidates.values() if c["Mlpilot"].get("Layer") in (1, 2)]
    assert trained and all(c["CreationTime"] < deadline for c in trained)
    assert job.record["Mlpilot"]["ElapsedSeconds"] <= wall
    model = mlpilot.load_model(job.layout.root)
    assert len(model.predict(adult.drop(columns=["income"]).head(20))) == 20


@pytest.mark.slow
def test_auto_mode_records_its_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpilot.problems.tabular import _analysis

    slice_ = pd.read_csv(CAR).sample(300, random_state=0)
    settings: dict[str, Any] = {
        "target": "class",
        "max_candidates": 1,
        "parallelism": 2,
        "generate_reports": False,
    }
    small = mlpilot.run_job(slice_, output=tmp_path / "small", name="auto-small", **settings)
    assert small.status == "Completed", small.record.get("FailureReason")
    profile = small.record["Mlpilot"]["Profile"]
    assert profile["Mode"] == "ENSEMBLING"
    assert profile["ModeReason"].startswith("AUTO chose ENSEMBLING")
    definitions = json.loads(small.layout.candidate_definitions.read_text())
    assert definitions["Portfolio"][0]["Algorithm"] == "lightgbm"
    monkeypatch.setattr(_analysis, "AUTO_ENSEMBLING_MAX_BYTES", 1_000)
    large = mlpilot.run_job(slice_, output=tmp_path / "large", name="auto-large", **settings)
    profile = large.record["Mlpilot"]["Profile"]
    assert profile["Mode"] == "HYPERPARAMETER_TUNING"
    assert "100 MB or more" in profile["ModeReason"]


@pytest.mark.slow
def test_f1_objective_tunes_the_decision_threshold(tmp_path: Path) -> None:
    """Churn's positives are a minority: F1 gains from predicting them below 0.5. The job
    finds the cut on out-of-fold predictions, records it, and every way of predicting (the
    package, the serving codec) labels by it."""
    from sklearn.metrics import f1_score

    from mlpilot.serving import Predictor

    data, test = telco_split(tmp_path)
    job = mlpilot.run_job(
        str(data),
        target="Churn",
        output=tmp_path / "job",
        name="f1",
        mode="ENSEMBLING",
        algorithms=("lightgbm", "linear-learner"),
        objective="F1",
        problem_type="BinaryClassification",
        max_candidates=4,
        parallelism=2,
        generate_reports=False,
    )
    best = job.record["BestCandidate"]
    assert best["Mlpilot"]["Layer"] == 3, "expected the weighted ensemble to win"
    threshold = best["Mlpilot"]["DecisionThreshold"]
    assert 0.05 < threshold < 0.5
    assert any("decision threshold" in note for note in job.record["Mlpilot"]["EnsembleNotes"])
    # The recorded F1 is the tuned one: above every base model's F1 at 0.5.
    assert best["FinalAutoMLJobObjectiveMetric"]["Value"] > max(
        c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in by_layer(job, 1)
    )

    model = mlpilot.load_model(job.layout.root)
    assert model.decision_threshold == pytest.approx(threshold)
    X = test.drop(columns=["Churn"])
    proba = model.predict_proba(X)["Yes"].to_numpy()
    labels = model.predict(X)["predicted_label"].to_numpy()
    np.testing.assert_array_equal(labels == "Yes", proba >= threshold)
    assert ((proba >= threshold) & (proba < 0.5)).any()  # rows the arg-max would call "No"
    truth = (test["Churn"] == "Yes").to_numpy()
    assert f1_score(truth, labels == "Yes") > f1_score(truth, proba >= 0.5)

    # The container's codec answers with the same labels.
    body = X.head(50).to_csv(header=False, index=False).encode()
    answer = Predictor(model).invoke(body, "text/csv", "application/json")[0]
    served = [r["predicted_label"] for r in json.loads(answer)["predictions"]]
    assert served == list(labels[:50])


def test_machine_memory_honours_a_container_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlpilot.ensemble import _plan

    limit = tmp_path / "memory.max"
    monkeypatch.setattr(_plan, "CGROUP_LIMITS", (str(limit),))
    limit.write_text("max\n")  # cgroup v2: no limit
    physical = _plan._machine_memory()
    assert physical > 2**30
    limit.write_text(f"{2**30}\n")  # a 1 GiB container
    assert _plan._machine_memory() == 2**30
    rows, why = sample_rows(1_000_000, 500 * 1_000_000, n_outputs=1, workers=2, budget=None)
    assert rows is not None and rows < 1_000_000
    assert "1 GiB of memory" in why
