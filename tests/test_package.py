"""Tests of the model package a job leaves behind: loading it (folder, archive, job folder),
version checks, and predicting on rows that differ from the training table."""

from __future__ import annotations

import json
import shutil
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlpilot
from helpers_data import TELCO
from helpers_models import with_recorded_version
from mlpilot.errors import JobNotFoundError, ModelPackageError, PredictionInputError
from mlpilot.package import InferenceModel, ModelVersionWarning, installed_versions

# Left out of `make test-fast`: a whole job (with its reports) makes the packages.
pytestmark = pytest.mark.slow

ALGORITHMS = ("lightgbm", "linear-learner", "xgboost")


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small finished binary job: Telco's first 1,500 rows, one candidate per algorithm (the
    tree models get ordinal categories, the linear model one-hot ones)."""
    root = tmp_path_factory.mktemp("package")
    with TELCO.open(encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(1501)]
    data = root / "train.csv"
    data.write_text("".join(lines), encoding="utf-8")
    job = mlpilot.run_job(
        str(data),
        target="Churn",
        output=root / "job",
        name="package",
        mode="HYPERPARAMETER_TUNING",
        algorithms=ALGORITHMS,
        max_candidates=3,
        parallelism=2,
    )
    assert job.status == "Completed", job.record.get("FailureReason")
    return root / "job"


@pytest.fixture(scope="module")
def model(job_dir: Path) -> InferenceModel:
    loaded: InferenceModel = mlpilot.load_model(job_dir)
    return loaded


@pytest.fixture(scope="module")
def every_model(job_dir: Path) -> dict[str, InferenceModel]:
    """Each candidate's model, by algorithm."""
    results = mlpilot.load_job(job_dir)
    out = {}
    for record in results.candidates():
        out[record["Mlpilot"]["Algorithm"]] = results.model(record["CandidateName"])
    assert set(out) == set(ALGORITHMS)
    return out


@pytest.fixture
def rows() -> pd.DataFrame:
    """Telco rows the job did not train on, without the target."""
    table = pd.read_csv(TELCO, skiprows=range(1, 3001), nrows=200)
    table.index = pd.RangeIndex(3000, 3200)  # predictions keep the caller's index
    return table.drop(columns=["Churn"])


def best_final_model(job_dir: Path) -> Path:
    record = json.loads((job_dir / "job.json").read_text())
    return Path(record["BestCandidate"]["Mlpilot"]["FinalModel"])


def test_package_facts(model: InferenceModel, job_dir: Path) -> None:
    record = json.loads((job_dir / "job.json").read_text())
    assert model.candidate_name == record["BestCandidate"]["CandidateName"]
    assert model.problem_type.value == "BinaryClassification"
    assert sorted(model.labels) == ["No", "Yes"]
    assert model.info["target"] == "Churn"
    assert model.info["positive_label"] == "Yes"
    assert "Churn" not in model.input_columns
    assert model.input_columns[:3] == ["customerID", "gender", "SeniorCitizen"]
    # The ID-like column is read but not used.
    assert "customerID" not in model.feature_columns
    assert {"tenure", "MonthlyCharges", "Contract"} <= set(model.feature_columns)
    assert model.info["versions"]["scikit-learn"] == installed_versions()["scikit-learn"]


def test_probabilities_sum_to_one_and_label_is_the_argmax(
    model: InferenceModel, rows: pd.DataFrame
) -> None:
    out = model.predict(rows, probabilities=True)
    assert list(out.columns) == [
        "predicted_label",
        "probability",
        *[f"probability_{label}" for label in model.labels],
    ]
    assert len(out) == len(rows)
    assert out.index.equals(rows.index)
    columns = [f"probability_{label}" for label in model.labels]
    proba = out[columns].to_numpy()
    assert ((proba >= 0) & (proba <= 1)).all()
    assert np.allclose(proba.sum(axis=1), 1.0)
    argmax = np.asarray(model.labels, dtype=object)[proba.argmax(axis=1)]
    assert (out["predicted_label"].to_numpy() == argmax).all()
    assert np.allclose(out["probability"], proba.max(axis=1))
    # predict_proba gives the same numbers, one column per label.
    frame = model.predict_proba(rows)
    assert list(frame.columns) == list(model.labels)
    assert np.allclose(frame.to_numpy(), proba)
    # Without probabilities=True: just the label and its probability.
    plain = model.predict(rows)
    assert list(plain.columns) == ["predicted_label", "probability"]
    assert plain["predicted_label"].equals(out["predicted_label"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unseen_categories_are_predicted(
    algorithm: str, every_model: dict[str, InferenceModel], rows: pd.DataFrame
) -> None:
    model = every_model[algorithm]
    changed = rows.copy()
    changed["PaymentMethod"] = "Bitcoin"
    changed["Contract"] = "Ten year"
    changed.loc[changed.index[::2], "gender"] = "Unknown"
    changed.loc[changed.index[::3], "InternetService"] = None
    out = model.predict(changed, probabilities=True)
    assert len(out) == len(rows)
    assert set(out["predicted_label"]) <= {"No", "Yes"}
    proba = out[["probability_No", "probability_Yes"]].to_numpy()
    assert np.isfinite(proba).all()
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_missing_feature_column_is_named(model: InferenceModel, rows: pd.DataFrame) -> None:
    with pytest.raises(PredictionInputError, match=r"'tenure'"):
        model.predict(rows.drop(columns=["tenure"]))
    with pytest.raises(PredictionInputError, match=r"'Contract'") as caught:
        model.predict(rows.drop(columns=["Contract", "tenure"]))
    assert "'tenure'" in str(caught.value)


def test_unused_column_may_be_missing(model: InferenceModel, rows: pd.DataFrame) -> None:
    """customerID was dropped as an identifier: rows without it predict the same."""
    full = model.predict(rows, probabilities=True)
    without = model.predict(rows.drop(columns=["customerID"]), probabilities=True)
    pd.testing.assert_frame_equal(full, without)


def test_extra_columns_and_column_order_do_not_matter(
    model: InferenceModel, rows: pd.DataFrame
) -> None:
    expected = model.predict(rows, probabilities=True)
    extra = rows.assign(
        note="free text", score=np.arange(len(rows)), Churn=np.where(rows.index % 2, "Yes", "No")
    )
    shuffled = extra[list(reversed(extra.columns))]
    got = model.predict(shuffled, probabilities=True)
    pd.testing.assert_frame_equal(got, expected)


def test_text_in_a_numeric_column_is_named(model: InferenceModel, rows: pd.DataFrame) -> None:
    bad = rows.copy()
    bad["MonthlyCharges"] = bad["MonthlyCharges"].astype(object)
    bad.loc[bad.index[3], "MonthlyCharges"] = "abc"
    with pytest.raises(PredictionInputError, match=r"'MonthlyCharges'") as caught:
        model.predict(bad)
    assert "abc" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_markers_in_numeric_columns_are_fine(
    model: InferenceModel, rows: pd.DataFrame
) -> None:
    marked = rows.copy()
    for column in ("tenure", "MonthlyCharges", "TotalCharges"):
        marked[column] = marked[column].astype(object)
    marked.loc[marked.index[0], "TotalCharges"] = " "
    marked.loc[marked.index[1], "TotalCharges"] = "?"
    marked.loc[marked.index[2], "tenure"] = "?"
    marked.loc[marked.index[3], "MonthlyCharges"] = ""
    marked.loc[marked.index[4], "MonthlyCharges"] = np.nan
    out = model.predict(marked, probabilities=True)
    assert len(out) == len(rows)
    assert out[["probability_No", "probability_Yes"]].notna().all().all()
    # The untouched rows are predicted as before.
    before = model.predict(rows, probabilities=True)
    pd.testing.assert_frame_equal(out.iloc[5:], before.iloc[5:])


def test_rows_read_as_text_predict_the_same(model: InferenceModel) -> None:
    typed = pd.read_csv(TELCO, skiprows=range(1, 3001), nrows=100).drop(columns=["Churn"])
    text = pd.read_csv(
        TELCO, skiprows=range(1, 3001), nrows=100, dtype=str, keep_default_na=False
    ).drop(columns=["Churn"])
    pd.testing.assert_frame_equal(
        model.predict(text, probabilities=True), model.predict(typed, probabilities=True)
    )


@pytest.mark.parametrize(
    "change",
    ["category dtype", "pyarrow strings", "bool flag", "duplicate index", "single row"],
)
def test_other_column_types_predict_the_same(
    change: str, model: InferenceModel, rows: pd.DataFrame
) -> None:
    expected = model.predict(rows, probabilities=True)
    if change == "category dtype":
        changed = rows.astype({"Contract": "category", "PaymentMethod": "category"})
    elif change == "pyarrow strings":
        changed = rows.astype({"gender": "string[pyarrow]", "Partner": "string[pyarrow]"})
    elif change == "bool flag":
        changed = rows.assign(SeniorCitizen=rows["SeniorCitizen"].astype(bool))
    elif change == "duplicate index":
        changed = rows.set_axis([7] * len(rows))
        expected = expected.set_axis([7] * len(rows))
    else:
        changed, expected = rows.iloc[[5]], expected.iloc[[5]]
    got = model.predict(changed, probabilities=True)
    pd.testing.assert_frame_equal(got, expected)


def test_no_rows_or_no_dataframe_is_an_input_error(
    model: InferenceModel, rows: pd.DataFrame
) -> None:
    with pytest.raises(PredictionInputError):
        model.predict(rows.iloc[:0])
    with pytest.raises(PredictionInputError):
        model.predict(rows.to_numpy())  # type: ignore[arg-type]


def test_folder_archive_and_job_give_identical_predictions(
    job_dir: Path, rows: pd.DataFrame
) -> None:
    folder = best_final_model(job_dir)
    archive = folder / "model.tar.gz"
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [
            "mlpilot-model.json",
            "model-card.json",
            "model-card.md",
            "pipeline.joblib",
        ]
    predictions = [
        mlpilot.load_model(source).predict(rows, probabilities=True)
        for source in (folder, archive, job_dir, str(job_dir))
    ]
    for other in predictions[1:]:
        pd.testing.assert_frame_equal(other, predictions[0])
    by_results = mlpilot.load_job(job_dir).model().predict(rows, probabilities=True)
    pd.testing.assert_frame_equal(by_results, predictions[0])


def test_a_named_candidate_can_be_loaded(job_dir: Path, rows: pd.DataFrame) -> None:
    results = mlpilot.load_job(job_dir)
    names = [c["CandidateName"] for c in results.candidates()]
    assert len(names) == 3
    for name in names:
        model = mlpilot.load_model(job_dir, candidate=name)
        assert model.candidate_name == name
        assert len(model.predict(rows.head(5))) == 5
    with pytest.raises(JobNotFoundError, match="no candidate named 'nope'"):
        mlpilot.load_model(job_dir, candidate="nope")


def test_other_library_version_warns_or_refuses(
    job_dir: Path, tmp_path: Path, rows: pd.DataFrame
) -> None:
    installed = installed_versions()["scikit-learn"]
    package = with_recorded_version(
        best_final_model(job_dir), tmp_path / "old-model", "scikit-learn", "0.24.2"
    )
    with pytest.warns(ModelVersionWarning) as caught:
        model = mlpilot.load_model(package)
    (warning,) = [w for w in caught if issubclass(w.category, ModelVersionWarning)]
    message = str(warning.message)
    assert "scikit-learn" in message
    assert "0.24.2" in message
    assert installed in message
    assert "numpy" not in message  # only the library that differs
    assert len(model.predict(rows.head(3))) == 3  # a warning, not a failure

    with pytest.raises(ModelPackageError, match="scikit-learn") as refused:
        mlpilot.load_model(package, strict=True)
    assert "0.24.2" in str(refused.value)
    assert installed in str(refused.value)


def test_same_versions_load_without_warning(job_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelVersionWarning)
        mlpilot.load_model(best_final_model(job_dir), strict=True)


def test_no_package_is_job_not_found(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(JobNotFoundError, match="No model package"):
        mlpilot.load_model(empty)
    with pytest.raises(JobNotFoundError):
        mlpilot.load_model(tmp_path / "does-not-exist")
    with pytest.raises(JobNotFoundError):
        mlpilot.load_job(empty)


def test_broken_packages_are_package_errors(job_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-pipeline"
    shutil.copytree(best_final_model(job_dir), folder)
    (folder / "pipeline.joblib").unlink()
    with pytest.raises(ModelPackageError, match=r"pipeline\.joblib"):
        mlpilot.load_model(folder)
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"not a tar archive at all")
    with pytest.raises(ModelPackageError, match="not a readable model archive"):
        mlpilot.load_model(corrupt)
