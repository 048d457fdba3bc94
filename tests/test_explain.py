"""SHAP values of blends (``mlpilot.explain.explain_model``) on small in-process ensembles: each
row's values add up to the blend's own prediction minus the base value, by the fast method."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from helpers_data import TELCO
from mlpilot.algorithms import get_algorithm
from mlpilot.data import read_table
from mlpilot.ensemble import EnsemblePredictor
from mlpilot.ensemble._predictor import Unit
from mlpilot.explain import explain_model
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
    assert x.method.startswith("TreeSHAP") and "blend's weights" in x.method
    assert x.background is None and len(x.rows) == 40
    check_additive(model, x)
