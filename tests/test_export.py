"""``mlpilot export``: ONNX graphs that onnxruntime runs to mlpilot's own predictions, and
MLflow pyfunc models that MLflow loads in a fresh process.

The models are trained in-process on small slices (LightGBM with its native categorical
splits, as a job's trial runner fits it), saved as packages once per module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers_data import INSURANCE, PENGUINS, TELCO
from mlpilot.algorithms import FitContext, get_algorithm
from mlpilot.cli.main import app
from mlpilot.data import read_table
from mlpilot.ensemble import EnsemblePredictor, Unit, stack_column_names, stack_features
from mlpilot.errors import ExportError
from mlpilot.features import FeaturePipeline
from mlpilot.package import InferenceModel
from mlpilot.profile import build_profile

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxmltools")
pytest.importorskip("skl2onnx")

from mlpilot.export import export_mlflow, export_onnx, onnx_feed  # noqa: E402

TRAIN_ROWS, HELD_OUT = 300, 60


def _member(raw: pd.DataFrame, profile: Any, name: str, params: dict[str, Any], seed: int = 0):
    """A (pipeline, algorithm) pair fitted as the trial runner fits it."""
    cls = get_algorithm(name)
    y = profile.target.encode(raw[profile.target.name])
    pipeline = FeaturePipeline.from_profile(profile, cls.preprocessing, seed=seed)
    X = pipeline.fit_transform(raw, y)
    context = FitContext(
        categorical_features=pipeline.categorical_features_,
        category_cardinalities=pipeline.category_cardinalities_,
    )
    n_classes = len(profile.target.labels or [])
    model = cls(profile.problem_type, n_classes, params, seed=seed).fit(X, y, context=context)
    return pipeline, model


def _rows(path: Path, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = read_table(path)
    if path == PENGUINS:  # ordered by species: interleave so every species trains
        table = pd.concat([table.iloc[::2], table.iloc[1::2]]).reset_index(drop=True)
    train = table.iloc[:TRAIN_ROWS].reset_index(drop=True)
    held = table.iloc[TRAIN_ROWS : TRAIN_ROWS + HELD_OUT].drop(columns=[target])
    return train, held.reset_index(drop=True)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pd.DataFrame]]:
    """Single-LightGBM packages (binary, multiclass, regression), a bag, a blend, a stacker."""
    root = tmp_path_factory.mktemp("export-models")
    built: dict[str, tuple[Path, pd.DataFrame]] = {}
    lightgbm = {"n_estimators": 40, "min_child_samples": 5}
    for key, path, target in [
        ("binary", TELCO, "Churn"),
        ("multiclass", PENGUINS, "species"),
        ("regression", INSURANCE, "charges"),
    ]:
        train, held = _rows(path, target)
        profile = build_profile(train, target)
        members = [_member(train, profile, "lightgbm", lightgbm)]
        if key == "binary":  # rows the cleaner reads as missing, unseen or blank categories
            held.loc[0, "TotalCharges"] = " "
            held.loc[1, "Contract"] = "Three years"
            held.loc[2, "PaymentMethod"] = ""
            held.loc[3, "tenure"] = np.nan
        model = InferenceModel.build(members, profile, candidate={"CandidateName": key})
        built[key] = (model.save(root / key, archive=False), held)
        if key == "multiclass":  # a cost matrix job's decision: the least expected cost
            costs = [[0.0, 3.0, 3.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
            candidate = {"CandidateName": "costly", "DecisionCosts": costs}
            model = InferenceModel.build(members, profile, candidate=candidate)
            built["costly"] = (model.save(root / "costly", archive=False), held)
            # A log-loss job's calibration: a temperature and a floor on the probabilities.
            calibration = {"Temperature": 1.7, "Floor": 0.01}
            candidate = {"CandidateName": "calibrated", "Calibration": calibration}
            model = InferenceModel.build(members, profile, candidate=candidate)
            built["calibrated"] = (model.save(root / "calibrated", archive=False), held)
        if key != "binary":
            continue
        bag = [members[0], _member(train.iloc[::-1], profile, "lightgbm", lightgbm, seed=1)]
        model = InferenceModel.build(bag, profile, candidate={"CandidateName": "bag"})
        built["bag"] = (model.save(root / "bag", archive=False), held)
        units = [
            Unit("lightgbm", [members[0]]),
            Unit("linear", [_member(train, profile, "linear-learner", {})]),
            Unit("forest", [_member(train, profile, "randomforest", {"n_estimators": 15})]),
            Unit("xgboost", [_member(train, profile, "xgboost", {"n_estimators": 30})]),
        ]
        blend = EnsemblePredictor(units, [0.4, 0.2, 0.15, 0.25], profile.problem_type, 2)
        model = InferenceModel.build(blend, profile, candidate={"CandidateName": "blend"})
        built["blend"] = (model.save(root / "blend", archive=False), held)
        # A stacker on the blend's first two units' outputs (one of them weighted 0).
        names = stack_column_names(2, profile.problem_type, 2)
        outputs = [
            m.predict_proba(p.transform(train)) for p, m in (members[0], units[1].members[0])
        ]
        stacked = pd.concat(
            [train, pd.DataFrame(stack_features(outputs, profile.problem_type), columns=names)],
            axis=1,
        )
        stacker = _member(stacked, build_profile(stacked, "Churn"), "lightgbm", lightgbm)
        layers = [*units[:2], Unit("stacker", [stacker], inputs=[0, 1])]
        stack = EnsemblePredictor(layers, [0.3, 0.0, 0.7], profile.problem_type, 2)
        model = InferenceModel.build(stack, profile, candidate={"CandidateName": "stack"})
        built["stack"] = (model.save(root / "stack", archive=False), held)
        # An algorithm without a converter (the constant helper; a network would do the same).
        constant = [_member(train, profile, "helpers_algorithms:Constant", {})]
        other = InferenceModel.build(constant, profile, candidate={"CandidateName": "other"})
        built["other"] = (other.save(root / "other", archive=False), held)
    return built


def _onnx_predictions(model_file: Path, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(str(model_file))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, onnx_feed(session, rows)), strict=True))


@pytest.mark.parametrize(
    "key", ["binary", "multiclass", "costly", "calibrated", "regression", "bag", "blend", "stack"]
)
def test_onnx_graph_predicts_as_mlpilot(packages: Any, tmp_path: Path, key: str) -> None:
    package, rows = packages[key]
    model = InferenceModel.load(package)
    written = export_onnx(package, tmp_path / "onnx")
    assert written == tmp_path / "onnx" / "model.onnx"
    out = _onnx_predictions(written, rows)
    expected = model.predict(rows, probabilities=True)
    if key == "regression":
        np.testing.assert_allclose(out["predicted_label"], expected["predicted_label"], rtol=1e-5)
        return
    assert list(out["predicted_label"]) == [str(v) for v in expected["predicted_label"]]
    np.testing.assert_allclose(out["probabilities"], model.predict_raw(rows), atol=1e-4)
    assert len(set(out["predicted_label"])) > 1  # the rows are not all one class
    if key == "calibrated":  # the graph applies the calibration, not only the package
        uncalibrated = InferenceModel.load(packages["multiclass"][0]).predict_raw(rows)
        assert np.abs(out["probabilities"] - uncalibrated).max() > 1e-2
        assert out["probabilities"].min() >= 0.01 / 1.03 - 1e-9
    if key == "costly":  # the cost rule parts from the arg-max on some rows
        raw = model.predict_raw(rows)
        assert (model.decide(raw) != raw.argmax(axis=1)).any()


def test_onnx_graph_takes_one_input_per_used_column(packages: Any, tmp_path: Path) -> None:
    package, _ = packages["binary"]
    session = onnxruntime.InferenceSession(str(export_onnx(package, tmp_path / "onnx")))
    inputs = {i.name: i.type for i in session.get_inputs()}
    assert "customerID" not in inputs  # the identifier the profile dropped
    assert inputs["tenure"] == "tensor(double)" and inputs["Contract"] == "tensor(string)"
    assert [o.name for o in session.get_outputs()] == ["probabilities", "predicted_label"]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["labels"] == '["No", "Yes"]' and meta["problem_type"] == "BinaryClassification"


def test_onnx_refuses_a_model_without_converter_naming_it(packages: Any, tmp_path: Path) -> None:
    package, _ = packages["other"]
    with pytest.raises(ExportError, match=r"the test-constant model has no ONNX converter; export"):
        export_onnx(package, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()  # nothing half-written
    result = CliRunner().invoke(
        app, ["export", str(package), "--format", "onnx", "--output", str(tmp_path / "cli")]
    )
    assert result.exit_code == 2
    assert "Error: the test-constant model has no ONNX converter" in result.output
    assert "Traceback" not in result.output


def test_export_cli_writes_onnx_and_refuses_bad_input(packages: Any, tmp_path: Path) -> None:
    package, _ = packages["multiclass"]

    def run(*args: Any) -> Any:
        return CliRunner().invoke(app, ["export", *map(str, args)])

    done = run(package, "--format", "onnx", "--output", tmp_path / "out")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "out" / "model.onnx").stat().st_size > 1000
    again = run(package, "--format", "onnx", "--output", tmp_path / "out")
    assert again.exit_code == 2 and "already exists" in again.output
    unknown = run(package, "--format", "pmml", "--output", tmp_path / "x")
    assert unknown.exit_code == 2 and "use mlflow or onnx" in unknown.output


@pytest.mark.slow
def test_mlflow_model_predicts_as_mlpilot_in_a_fresh_process(packages: Any, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    package, rows = packages["blend"]
    folder = export_mlflow(package, tmp_path / "mlflow", example=rows.head(3))
    assert (folder / "MLmodel").exists() and (folder / "artifacts" / "mlpilot-model").is_dir()
    typed = rows.copy()
    for column in ("tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"):
        typed[column] = pd.to_numeric(typed[column], errors="coerce")
    typed.to_parquet(tmp_path / "rows.parquet")
    script = (
        "import sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print(model.metadata.get_input_schema().input_names()[:2])\n"
        "model.predict(pd.read_parquet(sys.argv[2])).to_csv(sys.argv[3], index=False)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, folder, tmp_path / "rows.parquet", tmp_path / "out.csv"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "['customerID', 'gender']" in done.stdout
    got = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    expected = InferenceModel.load(package).predict(rows, probabilities=True)
    assert list(got["predicted_label"]) == list(expected["predicted_label"])
    np.testing.assert_allclose(got["probability_Yes"], expected["probability_Yes"], atol=1e-9)
