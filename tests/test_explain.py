"""SHAP values of blends (``mlpilot.explain.explain_model``) on small in-process ensembles: each
row's values add up to the blend's own prediction minus the base value, by the fast method."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from helpers_data import TELCO
from mlpilot.algorithms import get_algorithm
from mlpilot.data import read_table
from mlpilot.ensemble import EnsemblePredictor
from mlpilot.ensemble._predictor import Unit
from mlpilot.explain import RowExplainer, explain_model
from mlpilot.features import FeaturePipeline
from mlpilot.package import InferenceModel
from mlpilot.profile import build_profile


@pytest.fixture(scope="module")
def telco() -> Any:
    raw = read_table(TELCO).head(300).drop(columns=["customerID"])
    return raw, build_profile(raw, "Churn")


def blend(telco: Any, algorithms: dict[str, float], params: dict[str, Any]) -> InferenceModel:
    raw, profile = telco
    y = profile.target.encode(raw["Churn"])
    units = []
    for name in algorithms:
        cls = get_algorithm(name)
        pipeline = FeaturePipeline.from_profile(profile, cls.preprocessing, seed=0)
        X = pipeline.fit_transform(raw, y)
        model = cls(profile.problem_type, 2, params.get(name, {}), seed=0).fit(X, y)
        units.append(Unit(name, [(pipeline, model)]))
    predictor = EnsemblePredictor(units, list(algorithms.values()), profile.problem_type, 2)
    return InferenceModel.build(predictor, profile, candidate={"CandidateName": "blend"})


def check_additive(model: InferenceModel, x: Any) -> None:
    (key,) = x.values
    probability = model.predict_proba(x.rows)[key].to_numpy()
    np.testing.assert_allclose(x.values[key].sum(axis=1) + x.expected[key], probability, atol=1e-6)
    assert np.abs(x.values[key]).sum(axis=0).max() > 0  # some feature matters


def test_blend_with_boosting_gets_exact_permutation_shap(telco: Any) -> None:
    model = blend(
        telco, {"lightgbm": 0.7, "linear-learner": 0.3}, {"lightgbm": {"n_estimators": 20}}
    )
    x = explain_model(model, telco[0], max_rows=12)
    assert x.method.startswith("permutation SHAP")
    assert x.units == "probability"
    assert len(x.rows) == 12 and x.background is not None and len(x.background) > 0
    check_additive(model, x)
    # The base value is the blend's mean prediction on the background rows.
    base = model.predict_proba(x.background)[next(iter(x.values))].mean()
    assert next(iter(x.expected.values())) == pytest.approx(base, abs=1e-12)


def test_blend_of_forests_gets_tree_shap_combined_by_weight(telco: Any) -> None:
    params = {"n_estimators": 15}
    model = blend(
        telco, {"randomforest": 0.25, "extra-trees": 0.75},
        {"randomforest": params, "extra-trees": params},
    )  # fmt: skip
    x = explain_model(model, telco[0], max_rows=40)
    assert x.method.startswith("TreeSHAP, interventional against 100 background rows")
    assert "blend's weights" in x.method
    # The background: rows of the sample other than the explained ones.
    assert x.background is not None and len(x.background) == 100 and len(x.rows) == 40
    assert not set(x.background.index) & set(x.rows.index)
    check_additive(model, x)
    # Feature unknown means a background row's value: the base is their mean probability.
    base = model.predict_proba(x.background)[next(iter(x.values))].mean()
    assert next(iter(x.expected.values())) == pytest.approx(base, abs=1e-9)


def test_regression_blend_of_boosting_and_forest_mixes_both_tree_shaps_exactly(
    telco: Any,
) -> None:
    raw, _ = telco
    frame = raw.drop(columns=["Churn"])
    profile = build_profile(frame, "MonthlyCharges")
    y = frame["MonthlyCharges"].to_numpy(dtype=float)
    units = []
    for name, params in (("lightgbm", {"n_estimators": 20}), ("extra-trees", {"n_estimators": 10})):
        cls = get_algorithm(name)
        pipeline = FeaturePipeline.from_profile(profile, cls.preprocessing, seed=0)
        X = pipeline.fit_transform(frame, y)
        units.append(
            Unit(name, [(pipeline, cls(profile.problem_type, 0, params, seed=0).fit(X, y))])
        )
    predictor = EnsemblePredictor(units, [0.6, 0.4], profile.problem_type, 0)
    model = InferenceModel.build(predictor, profile, candidate={"CandidateName": "blend"})
    x = explain_model(model, frame, max_rows=30)
    assert x.method.startswith("TreeSHAP: path-dependent")
    assert "interventional against 100 background rows" in x.method
    assert x.method.index("for the boosting models") < x.method.index("for the forests")
    (key,) = x.values
    predicted = model.predict(x.rows).iloc[:, 0].to_numpy(dtype=float)
    np.testing.assert_allclose(x.values[key].sum(axis=1) + x.expected[key], predicted, atol=1e-6)


def test_forests_trade_background_rows_for_explained_rows_when_time_is_short(
    telco: Any,
) -> None:
    from mlpilot.explain._sample import FOREST_BACKGROUND_LADDER, _forest_background

    model = blend(telco, {"extra-trees": 1.0}, {"extra-trees": {"n_estimators": 10}})
    ((pipeline, algo),) = model.members.units[0].members
    raw = telco[0]
    index = {f: i for i, f in enumerate(model.feature_columns)}
    sources = np.asarray([index[s] for s in pipeline.output_sources()])
    forests = [(pipeline, algo, sources)]
    rows, background = raw.head(10), raw.iloc[10:200]
    n = len(model.feature_columns)
    roomy = _forest_background(forests, rows, background, n, time.monotonic() + 3600)
    assert roomy == FOREST_BACKGROUND_LADDER[0]
    assert _forest_background(forests, rows, background, n, None) == FOREST_BACKGROUND_LADDER[0]
    # No time left: the least background on the ladder.
    short = _forest_background(forests, rows, background, n, time.monotonic())
    assert short == FOREST_BACKGROUND_LADDER[-1]
    # Fewer background rows than the ladder's largest: all of them.
    assert _forest_background(forests, rows, background.head(30), n, None) == 20


def test_row_explainer_mixes_tree_shap_and_permutation_shap_additively(telco: Any) -> None:
    """An endpoint's explainer on a blend of a boosting model (its own TreeSHAP, rescaled to
    probabilities), a forest (interventional TreeSHAP against the package's typical row) and a
    linear model (permutation SHAP on its matrix against that row): each row's values add up to
    its probability minus the base value, in probabilities and with UseLogit in log-odds."""
    params = {"lightgbm": {"n_estimators": 20}, "extra-trees": {"n_estimators": 15}}
    model = blend(telco, {"lightgbm": 0.5, "extra-trees": 0.2, "linear-learner": 0.3}, params)
    raw = telco[0]
    rows = raw[model.input_columns].head(6)
    explainer = RowExplainer(model, samples=40)
    kinds = explainer.describe()
    assert kinds[0].endswith(": TreeSHAP over 1 model(s)")
    assert kinds[1].endswith("interventional TreeSHAP over 1 model(s) x 1 baseline row(s)")
    assert "permutation SHAP, 4 orders x 1 baseline row(s)" in kinds[2]  # 40 / (2 x 17 steps)
    assert explainer.sampled and model.baseline is not None
    x = explainer.explain(rows)
    assert x.values.shape == (6, len(model.input_columns), 1)
    probability = model.predict_proba(rows).iloc[:, model.positive_index].to_numpy()
    np.testing.assert_allclose(x.base + x.values[:, :, 0].sum(axis=1), probability, atol=1e-6)
    np.testing.assert_allclose(x.predictions[:, 0], probability, atol=1e-6)
    assert (np.abs(x.values).sum(axis=(0, 2)) > 0).sum() > 5  # many features matter
    again = explainer.explain(rows.iloc[[2]])  # the same row, alone: the same values
    np.testing.assert_allclose(again.values[0], x.values[2], atol=1e-6)
    logit = RowExplainer(model, samples=40, use_logit=True).explain(rows)
    np.testing.assert_allclose(
        logit.base + logit.values[:, :, 0].sum(axis=1),
        np.log(probability / (1 - probability)),
        atol=1e-6,
    )
    clear = np.abs(x.values) > 1e-6  # rescaling keeps each clear value's sign
    np.testing.assert_array_equal(np.sign(logit.values[clear]), np.sign(x.values[clear]))


def test_row_explainer_explains_the_calibrated_probabilities(telco: Any) -> None:
    """A LogLoss job's calibrated package: the values add up to the probability it returns."""
    params = {"lightgbm": {"n_estimators": 20}}
    model = blend(telco, {"lightgbm": 0.6, "linear-learner": 0.4}, params)
    candidate = {**model.info["candidate"], "Calibration": {"Temperature": 2.0, "Floor": 0.01}}
    calibrated = InferenceModel(model.members, {**model.info, "candidate": candidate})
    rows = telco[0][model.input_columns].head(4)
    probability = calibrated.predict_proba(rows).iloc[:, model.positive_index].to_numpy()
    uncalibrated = model.predict_proba(rows).iloc[:, model.positive_index].to_numpy()
    assert np.abs(probability - uncalibrated).max() > 1e-3
    x = RowExplainer(calibrated, samples=40).explain(rows)
    np.testing.assert_allclose(x.base + x.values[:, :, 0].sum(axis=1), probability, atol=1e-6)
    np.testing.assert_allclose(x.predictions[:, 0], probability, atol=1e-6)


def test_row_explainer_on_one_boosting_model_is_its_own_tree_shap(telco: Any) -> None:
    model = blend(telco, {"lightgbm": 1.0}, {"lightgbm": {"n_estimators": 20}})
    rows = telco[0][model.input_columns].head(4)
    x = RowExplainer(model, use_logit=True).explain(rows)
    ((pipeline, algo),) = model.members.units[0].members
    values, base = algo.tree_shap()(pipeline.transform(rows))
    assert x.base[0] == pytest.approx(base[0], abs=1e-9)
    np.testing.assert_allclose(
        x.values[:, :, 0].sum(axis=1), values[:, :, 0].sum(axis=1), atol=1e-9
    )


def test_row_explainer_gives_a_forest_exact_values_against_the_baseline(telco: Any) -> None:
    """Interventional TreeSHAP per input column: a row that differs from the baseline row in
    two columns gets values in those two columns only, adding up to the change of the
    forest's probability (a sampled or path-dependent method spreads values further)."""
    model = blend(telco, {"extra-trees": 1.0}, {"extra-trees": {"n_estimators": 15}})
    raw = telco[0]
    baseline = raw[model.input_columns].head(1).reset_index(drop=True)
    row = baseline.copy()
    row.loc[0, "tenure"] = int(raw["tenure"].max())
    row.loc[0, "Contract"] = next(v for v in raw["Contract"] if v != baseline.loc[0, "Contract"])
    explainer = RowExplainer(model, baseline=baseline)
    assert explainer.describe() == [
        "weight 1: interventional TreeSHAP over 1 model(s) x 1 baseline row(s)"
    ]
    x = explainer.explain(row)
    changed = [model.input_columns.index(c) for c in ("tenure", "Contract")]
    others = np.delete(x.values[0, :, 0], changed)
    np.testing.assert_array_equal(others, 0.0)
    key = model.positive_index
    before, after = (model.predict_proba(r).iloc[0, key] for r in (baseline, row))
    assert x.base[0] == pytest.approx(before, abs=1e-12)
    assert x.values[0, changed, 0].sum() == pytest.approx(after - before, abs=1e-12)
