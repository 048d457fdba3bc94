"""The explainability and model-quality reports, their numbers checked independently.

Model quality is recomputed with scikit-learn from the candidate's saved validation
predictions and the target read from the raw CSV; SHAP values are recomputed with LightGBM's
own TreeSHAP (``pred_contrib``), checked for additivity against the models' raw outputs, and
for permutation SHAP against the model's predicted probabilities. Also: the job's statuses and
records, the time budget, a failing report that must not fail the job, and ``mlpilot report``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from typer.testing import CliRunner

from helpers_data import ABALONE, PENGUINS
from helpers_whitebox import run, telco_slice
from mlpilot.cli.main import app
from mlpilot.jobs import load_job
from mlpilot.package import InferenceModel
from mlpilot.reports import artifacts, generate_reports
from mlpilot.search import load_validation_predictions

# Left out of `make test-fast`: whole jobs and their reports.
pytestmark = pytest.mark.slow


class Statuses:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_status(self, job: Any) -> None:
        if not self.seen or self.seen[-1] != job.secondary_status:
            self.seen.append(job.secondary_status)

    def on_candidate(self, job: Any, candidate: dict[str, Any]) -> None:
        pass


def invoke(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def candidate_of(job: Any, algorithm: str) -> dict[str, Any]:
    done = [
        c
        for c in job.candidates.values()
        if c["Mlpilot"]["Algorithm"] == algorithm and c["CandidateStatus"] == "Completed"
    ]
    return max(done, key=lambda c: c["FinalAutoMLJobObjectiveMetric"]["Value"])


def read(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text())


def local_shap(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "explanations_shap" / "out.csv", index_col=0)


# -- binary: reports made after the job ------------------------------------------------------
@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("reports-binary")
    data = telco_slice(root / "telco.csv", 500)
    job = run(
        data,
        root / "job",
        "binary",
        algorithms=("lightgbm", "linear-learner"),
        max_candidates=4,
        generate_reports=False,
    )
    return job, data


def test_reports_turned_off_are_recorded_and_made_later(binary: Any) -> None:
    job, _ = binary
    record = json.loads(job.layout.record.read_text())
    reports = record["Mlpilot"]["Reports"]
    for key in ("Explainability", "ModelInsights"):
        assert reports[key]["Status"] == "Skipped"
        assert "turned off" in reports[key]["Reason"]
    statuses = {a.name: a.status for a in artifacts(load_job(job.layout.root))}
    assert statuses["Data exploration notebook"] == "NotExecuted"
    assert statuses["Explainability report"] == "Skipped"
    made = generate_reports(job.layout.root, notebook=False)
    statuses = {a.name: a.status for a in made}
    assert statuses["Explainability report"] == "Completed"
    assert statuses["Model quality report"] == "Completed"
    record = json.loads(job.layout.record.read_text())
    best = record["BestCandidate"]["CandidateName"]
    assert record["Mlpilot"]["Reports"]["ModelInsights"]["Status"] == "Completed"
    locations = record["BestCandidate"]["CandidateProperties"]["CandidateArtifactLocations"]
    assert locations["ModelInsights"] == str(job.layout.model_insights_for(best))
    assert (Path(locations["Explainability"]) / "analysis.json").exists()
    board = json.loads(job.layout.leaderboard_json.read_text())
    (entry,) = [c for c in board if c["CandidateName"] == best]
    assert entry["CandidateProperties"]["CandidateArtifactLocations"] == locations


def test_binary_model_quality_matches_scikit_learn(binary: Any) -> None:
    job, data = binary
    candidate = candidate_of(job, "lightgbm")
    name = candidate["CandidateName"]
    generate_reports(job.layout.root, candidate=name, notebook=False, explainability=False)
    stats = read(job.layout.model_insights_for(name), "statistics.json")
    rows, _, proba = load_validation_predictions(str(job.layout.candidate_model(name)))
    truth = (pd.read_csv(data)["Churn"] == "Yes").to_numpy()[rows].astype(int)
    score = proba[:, 1]  # labels sorted: No, Yes
    predicted = (proba.argmax(axis=1) == 1).astype(int)
    block = stats["binary_classification_metrics"]
    expected = {
        "accuracy": skm.accuracy_score(truth, predicted),
        "precision": skm.precision_score(truth, predicted),
        "recall": skm.recall_score(truth, predicted),
        "f1": skm.f1_score(truth, predicted),
        "f0_5": skm.fbeta_score(truth, predicted, beta=0.5),
        "f2": skm.fbeta_score(truth, predicted, beta=2),
        "auc": skm.roc_auc_score(truth, score),
        "accuracy_best_constant_classifier": max(truth.mean(), 1 - truth.mean()),
        "recall_best_constant_classifier": 1.0,
        "precision_best_constant_classifier": truth.mean(),
    }
    for metric, value in expected.items():
        assert block[metric]["value"] == pytest.approx(value, abs=1e-12), metric
        assert isinstance(block[metric]["standard_deviation"], float)  # 500 rows ≥ 200
    tn, fp, fn, tp = skm.confusion_matrix(truth, predicted).ravel()
    assert block["confusion_matrix"] == {
        "No": {"No": tn, "Yes": fp},
        "Yes": {"No": fn, "Yes": tp},
    }
    assert block["false_positive_rate"]["value"] == pytest.approx(fp / (fp + tn))
    assert block["true_negative_rate"]["value"] == pytest.approx(tn / (fp + tn))
    roc = block["receiver_operating_characteristic_curve"]
    assert roc["false_positive_rates"][0] == 0 and roc["true_positive_rates"][-1] == 1
    assert stats["dataset"]["item_count"] == len(rows) == 500  # out-of-fold: every row
    # The report's own metrics are the leaderboard's.
    leaderboard = {
        d["StandardMetricName"]: d["Value"]
        for d in candidate["CandidateProperties"]["CandidateMetrics"]
    }
    for metric, entry in stats["mlpilot"]["metrics"].items():
        assert entry["value"] == pytest.approx(leaderboard[metric], rel=1e-12), metric
    html = (job.layout.model_insights_for(name) / "report.html").read_text()
    assert html.count("data:image/png;base64") == 5  # matrix, ROC, PR, threshold, gain/lift
    assert (job.layout.model_insights_for(name) / "report.pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")
def test_tree_shap_matches_shap_tree_explainer(binary: Any) -> None:
    import shap

    job, _ = binary
    name = candidate_of(job, "lightgbm")["CandidateName"]
    generate_reports(job.layout.root, candidate=name, notebook=False, insights=False)
    folder = job.layout.explainability_for(name)
    analysis = read(folder, "analysis.json")
    local = local_shap(folder)
    assert analysis["mlpilot"]["units"] == "log-odds"
    assert "TreeExplainer" in analysis["mlpilot"]["method"]
    model = InferenceModel.load(analysis["mlpilot"]["model"])
    assert len(model.members) == 5  # a cross-validated LightGBM keeps its fold models
    sample = pd.read_parquet(job.layout.data_sample / "rows.parquet")
    rows = sample.loc[local.index]
    features = model.feature_columns
    contributions = np.zeros((len(rows), len(features)))
    margin = np.zeros(len(rows))
    for pipeline, algo in model.members:
        X = pipeline.transform(rows)
        booster = algo.model_
        values = shap.TreeExplainer(booster).shap_values(X, tree_limit=booster.best_iteration)
        # Every output column of this pipeline is one input column (ordinal categories).
        assert pipeline.feature_names_out_ == pipeline.output_sources()
        for j, column in enumerate(pipeline.feature_names_out_):
            contributions[:, features.index(column)] += values[:, j] / len(model.members)
        raw = booster.predict(X, raw_score=True, num_iteration=booster.best_iteration)
        margin += raw / len(model.members)
    np.testing.assert_allclose(local[features].to_numpy(), contributions, atol=1e-8)
    entry = analysis["explanations"]["kernel_shap"]["Yes"]
    expected_global = np.abs(contributions).mean(axis=0)
    for feature, value in entry["global_shap_values"].items():
        assert value == pytest.approx(expected_global[features.index(feature)], abs=1e-8)
    ranked = [features[i] for i in np.argsort(-expected_global, kind="stable")]
    assert list(entry["global_shap_values"]) == ranked
    np.testing.assert_allclose(
        local[features].sum(axis=1) + entry["expected_value"], margin, atol=1e-6
    )


def test_permutation_shap_adds_up_to_the_predicted_probability(binary: Any) -> None:
    job, _ = binary
    name = candidate_of(job, "linear-learner")["CandidateName"]
    generate_reports(
        job.layout.root, candidate=name, notebook=False, insights=False, max_rows=15, force=True
    )
    folder = job.layout.explainability_for(name)
    analysis = read(folder, "analysis.json")
    assert analysis["mlpilot"]["method"].startswith("permutation SHAP")
    assert analysis["mlpilot"]["background_rows"] > 0
    assert analysis["mlpilot"]["units"] == "probability"
    entry = analysis["explanations"]["kernel_shap"]["Yes"]
    model = InferenceModel.load(analysis["mlpilot"]["model"])  # the package explained
    sample = pd.read_parquet(job.layout.data_sample / "rows.parquet")
    local = local_shap(folder)
    assert len(local) == 15
    probability = model.predict_proba(sample.loc[local.index])["Yes"].to_numpy()
    total = local[model.feature_columns].sum(axis=1).to_numpy() + entry["expected_value"]
    np.testing.assert_allclose(total, probability, atol=1e-6)
    baseline = pd.read_csv(folder / "explanations_shap" / "baseline.csv", dtype=str,
                           keep_default_na=False)  # fmt: skip
    background = model.predict_proba(baseline)["Yes"].mean()
    assert entry["expected_value"] == pytest.approx(background, abs=1e-9)
    means = local[model.feature_columns].abs().mean()
    values = entry["global_shap_values"]
    assert list(values) == list(means.sort_values(ascending=False, kind="stable").index)
    assert values == pytest.approx(means.to_dict(), abs=1e-9)


# -- regression: reports made by the job --------------------------------------------------------
@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("reports-regression")
    table = pd.read_csv(ABALONE).head(400)
    path = root / "abalone.csv"
    table.to_csv(path, index=False)
    statuses = Statuses()
    job = run(
        path, root / "job", "regression", target="Rings", algorithms=("lightgbm",),
        max_candidates=2, observers=[statuses],
    )  # fmt: skip
    return job, path, statuses


def test_job_generates_reports_with_autopilot_statuses(regression: Any) -> None:
    job, _, statuses = regression
    assert job.status == "Completed"
    seen = statuses.seen
    assert seen.index("GeneratingModelInsightsReport") < seen.index(
        "GeneratingExplainabilityReport"
    ) < seen.index("Completed")  # fmt: skip
    record = json.loads(job.layout.record.read_text())
    best = record["BestCandidate"]
    locations = best["CandidateProperties"]["CandidateArtifactLocations"]
    assert (Path(locations["Explainability"]) / "analysis.json").exists()
    assert (Path(locations["ModelInsights"]) / "statistics.json").exists()
    reports = record["Mlpilot"]["Reports"]
    assert {k: v["Status"] for k, v in reports.items()} == dict.fromkeys(reports, "Completed")
    assert "PartialFailureReasons" not in record
    board = json.loads(job.layout.leaderboard_json.read_text())
    assert board[0]["CandidateProperties"]["CandidateArtifactLocations"] == locations


def test_regression_model_quality_matches_scikit_learn(regression: Any) -> None:
    job, path, _ = regression
    name = job.record["BestCandidate"]["CandidateName"]
    stats = read(job.layout.model_insights_for(name), "statistics.json")
    rows, _, predicted = load_validation_predictions(str(job.layout.candidate_model(name)))
    truth = pd.read_csv(path)["Rings"].to_numpy(dtype=float)[rows]
    block = stats["regression_metrics"]
    assert block["mae"]["value"] == pytest.approx(skm.mean_absolute_error(truth, predicted))
    assert block["mse"]["value"] == pytest.approx(skm.mean_squared_error(truth, predicted))
    assert block["rmse"]["value"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(truth, predicted))
    )
    assert block["r2"]["value"] == pytest.approx(skm.r2_score(truth, predicted))
    html = (job.layout.model_insights_for(name) / "report.html").read_text()
    assert html.count("data:image/png;base64") == 3  # predicted vs actual, residuals, errors
    assert "divided by their standard deviation" in html  # the residual plot's caption


def test_regression_explanations_add_up_to_the_prediction(regression: Any) -> None:
    job, _, _ = regression
    name = job.record["BestCandidate"]["CandidateName"]
    folder = job.layout.explainability_for(name)
    analysis = read(folder, "analysis.json")
    (label,) = analysis["explanations"]["kernel_shap"]
    assert label == "label0"
    assert analysis["mlpilot"]["units"] == "Rings units"
    model = InferenceModel.load(Path(job.record["BestCandidate"]["Mlpilot"]["FinalModel"]))
    local = local_shap(folder)
    sample = pd.read_parquet(job.layout.data_sample / "rows.parquet")
    predicted = model.predict_raw(sample.loc[local.index])
    total = (
        local[model.feature_columns].sum(axis=1)
        + analysis["explanations"]["kernel_shap"][label]["expected_value"]
    )
    np.testing.assert_allclose(total, predicted, atol=1e-6)
    html = (folder / "report.html").read_text()
    assert "Global feature importance" in html and "Example rows" in html
    assert html.count("data:image/png;base64") == 1 + 4 + 3  # importance, dependence, examples
    assert (folder / "report.pdf").read_bytes()[:4] == b"%PDF"


# -- multiclass: a failing report does not fail the job; regenerated afterwards ------------------
@pytest.fixture(scope="module")
def multiclass(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("reports-multiclass")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("explainer exploded")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mlpilot.reports._whitebox.generate_explainability", broken)
        job = run(
            PENGUINS, root / "job", "multiclass", target="species",
            algorithms=("randomforest",), max_candidates=2,
        )  # fmt: skip
    return job


def test_failed_report_is_recorded_and_the_job_completes(multiclass: Any) -> None:
    record = json.loads(multiclass.layout.record.read_text())
    assert record["AutoMLJobStatus"] == "Completed"
    assert record["AutoMLJobSecondaryStatus"] == "Completed"
    reports = record["Mlpilot"]["Reports"]
    assert reports["Explainability"]["Status"] == "Failed"
    assert "explainer exploded" in reports["Explainability"]["Reason"]
    assert reports["ModelInsights"]["Status"] == "Completed"
    messages = [r["PartialFailureMessage"] for r in record["PartialFailureReasons"]]
    assert any(m.startswith("Explainability report failed") for m in messages), messages


def test_multiclass_reports_after_a_failure(multiclass: Any) -> None:
    job = multiclass
    made = {a.name: a for a in generate_reports(job.layout.root, notebook=False)}
    assert made["Explainability report"].status == "Completed"
    name = job.record["BestCandidate"]["CandidateName"]
    stats = read(job.layout.model_insights_for(name), "statistics.json")
    rows, _, proba = load_validation_predictions(str(job.layout.candidate_model(name)))
    labels = ["Adelie", "Chinstrap", "Gentoo"]
    raw = pd.read_csv(PENGUINS)
    truth = raw["species"].map({v: i for i, v in enumerate(labels)}).to_numpy()[rows]
    predicted = proba.argmax(axis=1)
    block = stats["multiclass_classification_metrics"]
    matrix = skm.confusion_matrix(truth, predicted, labels=[0, 1, 2])
    assert block["confusion_matrix"] == {
        a: {b: int(matrix[i, j]) for j, b in enumerate(labels)} for i, a in enumerate(labels)
    }
    assert block["accuracy"]["value"] == pytest.approx(skm.accuracy_score(truth, predicted))
    for metric, fn in (
        ("weighted_recall", skm.recall_score),
        ("weighted_precision", skm.precision_score),
        ("weighted_f1", skm.f1_score),
    ):
        value = fn(truth, predicted, average="weighted", zero_division=0)
        assert block[metric]["value"] == pytest.approx(value), metric
    majority = np.bincount(truth).max() / len(truth)
    assert block["accuracy_best_constant_classifier"]["value"] == pytest.approx(majority)
    html = (job.layout.model_insights_for(name) / "report.html").read_text()
    recall = skm.recall_score(truth, predicted, average=None)
    assert f"{recall[1]:.4f}" in html  # the per-class table
    # Forest SHAP values are probabilities: per class, they add up to predict_proba.
    analysis = read(job.layout.explainability_for(name), "analysis.json")
    assert set(analysis["explanations"]["kernel_shap"]) == set(labels)
    assert analysis["mlpilot"]["units"] == "probability"
    local = local_shap(job.layout.explainability_for(name))
    model = InferenceModel.load(Path(job.record["BestCandidate"]["Mlpilot"]["FinalModel"]))
    sample = pd.read_parquet(job.layout.data_sample / "rows.parquet")
    proba_rows = model.predict_proba(sample.loc[local.index])
    for label in labels:
        columns = [f"{label}_{f}" for f in model.feature_columns]
        expected = analysis["explanations"]["kernel_shap"][label]["expected_value"]
        np.testing.assert_allclose(
            local[columns].sum(axis=1) + expected, proba_rows[label], atol=1e-6
        )
    record = json.loads(job.layout.record.read_text())
    assert record["Mlpilot"]["Reports"]["Explainability"]["Status"] == "Completed"


# -- the time budget and the CLI ------------------------------------------------------------------
def test_reports_respect_the_runtime_limit_and_cli_makes_the_rest(tmp_path: Path) -> None:
    data = telco_slice(tmp_path / "telco.csv", 1000)
    started = time.monotonic()
    job = run(
        data, tmp_path / "job", "budget", algorithms=("lightgbm", "linear-learner"),
        max_runtime=10,
    )  # fmt: skip
    wall = time.monotonic() - started
    record = json.loads(job.layout.record.read_text())
    assert record["AutoMLJobStatus"] == "Completed", record.get("FailureReason")
    # The reports run inside the job's clock, which runs within the call; no candidate started
    # after the deadline. (How close a job keeps to its budget is a figure for benchmarks/.)
    assert record["Mlpilot"]["ElapsedSeconds"] <= wall
    deadline = record["CreationTime"] + 10
    assert all(c["CreationTime"] < deadline for c in job.candidates.values())
    for key, entry in record["Mlpilot"]["Reports"].items():
        assert entry["Status"] in ("Completed", "Skipped"), (key, entry)
        if entry["Status"] == "Skipped":
            assert entry["Reason"]

    listed = invoke("report", job.layout.root)
    assert listed.exit_code == 0, listed.output
    assert "Data exploration notebook" in listed.output and "Model quality report" in listed.output

    made = invoke("report", job.layout.root, "--generate", "--format", "json")
    assert made.exit_code == 0, made.output
    entries = json.loads(made.output[made.output.index("[") :])
    assert [e["status"] for e in entries] == ["Completed"] * 4, entries
    for entry in entries:
        assert Path(entry.get("html") or entry["location"]).exists()

    bad = invoke("report", job.layout.root, "--candidate", "nope", "--generate")
    assert bad.exit_code == 2 and "no candidate named 'nope'" in bad.output
    assert invoke("report", job.layout.root, "--force").exit_code == 2
    assert invoke("report", tmp_path / "missing").exit_code == 2


def test_report_open_uses_the_browser(binary: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    job, _ = binary
    generate_reports(job.layout.root, notebook=False)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    result = invoke("report", job.layout.root, "--open")
    assert result.exit_code == 0, result.output
    assert opened and all(url.startswith("file://") for url in opened)
    assert any(url.endswith("report.html") for url in opened)


def test_model_quality_says_how_the_probabilities_were_calibrated(tmp_path: Path) -> None:
    from mlpilot._types import ProblemType
    from mlpilot.reports._quality import Evaluation, write_model_insights

    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1.0, 1.0, 1.0], 300)
    y = np.array([rng.choice(3, p=p) for p in proba])
    calibration = {"Temperature": 1.8, "Floor": 0.001, "BeforeLogLoss": 0.9, "AfterLogLoss": 0.7}
    evaluation = Evaluation(
        ProblemType.MULTICLASS, ["a", "b", "c"], 0, y, proba, None, "cand", "LogLoss",
        calibration=calibration,
    )  # fmt: skip
    stats = write_model_insights(
        evaluation, tmp_path, job_name="job", algorithm="weighted-ensemble",
        validation="5-fold", pdf=False,
    )  # fmt: skip
    assert stats["mlpilot"]["calibration"] == calibration
    html = (tmp_path / "report.html").read_text()
    assert "temperature of 1.800" in html and "0.7000" in html and "0.9000" in html
    assert json.loads((tmp_path / "statistics.json").read_text())["mlpilot"]["calibration"]


def test_binary_statistics_are_scikit_learns_from_one_confusion_matrix() -> None:
    from mlpilot._types import ProblemType
    from mlpilot.reports._quality import Evaluation, _binary_scalars

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + 0.7 * rng.random(400), 0, 1)
    weight = rng.random(400) * (rng.random(400) > 0.1)  # some rows of weight 0
    e = Evaluation(
        ProblemType.BINARY, ["no", "yes"], 0, y, np.column_stack([1 - p, p]), weight, "c", "F1",
        threshold=0.4,
    )  # fmt: skip
    got = _binary_scalars(e)
    truth = (y == 0).astype(int)
    pred = (e.predicted == 0).astype(int)
    kw: dict[str, Any] = {"sample_weight": weight, "zero_division": 0}
    assert got["f1"] == pytest.approx(skm.f1_score(truth, pred, **kw))
    assert got["f0_5"] == pytest.approx(skm.fbeta_score(truth, pred, beta=0.5, **kw))
    assert got["f2"] == pytest.approx(skm.fbeta_score(truth, pred, beta=2, **kw))
    assert got["precision"] == pytest.approx(skm.precision_score(truth, pred, **kw))
    assert got["recall"] == pytest.approx(skm.recall_score(truth, pred, **kw))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, pred, sample_weight=weight))
    for c in (0, 1):
        constant = np.full_like(truth, c)
        assert (
            got["f2_best_constant_classifier"]
            >= skm.fbeta_score(truth, constant, beta=2, **kw) - 1e-12
        )
        assert (
            got["precision_best_constant_classifier"]
            >= skm.precision_score(truth, constant, **kw) - 1e-12
        )
    always = np.ones_like(truth)
    assert got["f1_best_constant_classifier"] == pytest.approx(skm.f1_score(truth, always, **kw))
    assert got["accuracy_best_constant_classifier"] == pytest.approx(
        max(skm.accuracy_score(truth, np.full_like(truth, c), sample_weight=weight) for c in (0, 1))
    )


def test_a_report_leaves_its_pdf_out_when_its_deadline_has_passed(tmp_path: Path) -> None:
    from mlpilot._types import ProblemType
    from mlpilot.reports._quality import Evaluation, write_model_insights

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 250)
    p = np.clip(0.4 * y + 0.6 * rng.random(250), 0, 1)
    e = Evaluation(ProblemType.BINARY, [0, 1], 1, y, np.column_stack([1 - p, p]), None, "c", "AUC")
    stats = write_model_insights(
        e, tmp_path / "late", job_name="job", algorithm="lightgbm", validation="5-fold",
        deadline=time.monotonic() - 1.0,
    )  # fmt: skip
    assert (tmp_path / "late" / "report.html").exists()
    assert not (tmp_path / "late" / "report.pdf").exists()
    saved = json.loads((tmp_path / "late" / "statistics.json").read_text())
    assert saved["mlpilot"]["notes"] == stats["mlpilot"]["notes"]
    assert "report.pdf left out" in stats["mlpilot"]["notes"][0]
    stats = write_model_insights(
        e, tmp_path / "in-time", job_name="job", algorithm="lightgbm", validation="5-fold",
        deadline=time.monotonic() + 600,
    )  # fmt: skip
    assert (tmp_path / "in-time" / "report.pdf").exists() and "notes" not in stats["mlpilot"]
