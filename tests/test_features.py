"""Tests for mlpilot.features: the table cleaner and the per-candidate feature pipeline, on
slices of real data sets (helpers_data) read as raw strings."""

from __future__ import annotations

import pickle
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import helpers_data as data
from mlpilot.data import read_table
from mlpilot.errors import PredictionInputError
from mlpilot.features import (
    MISSING_CODE,
    UNKNOWN_CODE,
    FeaturePipeline,
    PreprocessingOptions,
    TableCleaner,
)
from mlpilot.profile import ColumnKind, DatasetProfile, FeatureSpecification, build_profile

TELCO = (data.TELCO, "Churn")
PIMA = (data.PIMA, "Outcome")
TITANIC = (data.TITANIC, "Survived")
BIKE = (data.BIKES, "cnt")
SMS = (data.SMS, "label")
AMES = (data.AMES, "SalePrice")

#: Sizes on either side of any small-batch fast path (the cleaner has one at 64 rows).
BATCH_SIZES = [1, 10, 200]


@cache
def _raw(relative: Path, rows: int | None) -> pd.DataFrame:
    table = read_table(relative)
    return table if rows is None else table.head(rows)


def raw(relative: Path, rows: int | None = None) -> pd.DataFrame:
    """The data set (or its first ``rows`` rows) as read_table gives it, as a fresh copy."""
    return _raw(relative, rows).copy()


@cache
def _profile(relative: Path, target: str, rows: int | None) -> DatasetProfile:
    return build_profile(_raw(relative, rows), target)


def profile(relative: Path, target: str, rows: int | None = None) -> DatasetProfile:
    return _profile(relative, target, rows)


def cleaner(relative: Path, target: str, rows: int | None = None) -> TableCleaner:
    return TableCleaner.from_profile(profile(relative, target, rows)).fit()


def fit_pipeline(
    relative: Path,
    target: str,
    options: PreprocessingOptions,
    rows: int | None = None,
    p: DatasetProfile | None = None,
    table: pd.DataFrame | None = None,
) -> tuple[FeaturePipeline, Any, np.ndarray, pd.DataFrame]:
    """Fit a pipeline on the data set (or on ``table`` with its profile ``p``)."""
    table = raw(relative, rows) if table is None else table
    p = p or profile(relative, target, rows)
    y = p.target.encode(table[target])
    pipeline = FeaturePipeline.from_profile(p, options, seed=0)
    return pipeline, pipeline.fit_transform(table, y), y, table


def dense(matrix: Any) -> np.ndarray:
    return matrix.toarray() if sparse.issparse(matrix) else np.asarray(matrix)


def awkward_rows(table: pd.DataFrame, categorical: str, numeric: str) -> pd.DataFrame:
    """Five rows with an unseen category, missing values and missing markers."""
    rows = table.head(5).copy()
    rows[categorical] = ["never-seen-before", None, " ", "?", rows[categorical].iloc[4]]
    rows[numeric] = ["", " ", "?", "NA", None]
    return rows


# --- the table cleaner -----------------------------------------------------------------------


def test_cleaner_types_telco_columns() -> None:
    table = raw(*TELCO[:1])
    clean = cleaner(*TELCO).transform(table)
    assert "customerID" not in clean.columns and "Churn" not in clean.columns
    assert list(clean.columns) == profile(*TELCO).features()
    total = clean["TotalCharges"]
    assert total.dtype == np.float64
    blank = table["TotalCharges"] == " "
    assert blank.sum() == 11
    assert total[blank].isna().all() and total[~blank].notna().all()
    assert total.iloc[1] == pytest.approx(1889.5)
    assert clean["tenure"].dtype == np.float64
    contract = clean["Contract"]
    assert all(type(v) is str for v in contract)
    assert set(contract) == {"Month-to-month", "One year", "Two year"}
    assert clean.index.equals(table.index)


def test_cleaner_reads_pima_zeros_as_missing_where_the_profile_says_so() -> None:
    table = raw(PIMA[0])
    clean = cleaner(*PIMA).transform(table)
    for name in ("Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI"):
        zero = table[name] == "0"
        assert zero.any()
        assert clean.loc[zero, name].isna().all(), name
        assert clean.loc[~zero, name].notna().all(), name
    pregnancies = table["Pregnancies"] == "0"
    assert (clean.loc[pregnancies, "Pregnancies"] == 0.0).all()


def test_cleaner_categories_are_python_strings_or_nan() -> None:
    table = raw(TITANIC[0])
    clean = cleaner(*TITANIC).transform(table)
    embarked = clean["Embarked"]
    missing = table["Embarked"].isna()
    assert missing.sum() == 2
    assert embarked[missing].isna().all()
    assert all(type(v) is str for v in embarked[~missing])
    cabin = clean["Cabin"]
    assert cabin.isna().sum() == 687
    # Text stays text, with "" for missing.
    assert clean["Name"].iloc[0] == "Braund, Mr. Owen Harris"


def test_cleaner_parses_datetimes() -> None:
    table = raw(BIKE[0], 500)
    clean = cleaner(*BIKE, 500).transform(table)
    assert pd.api.types.is_datetime64_any_dtype(clean["dteday"])
    assert clean["dteday"].iloc[0] == pd.Timestamp("2011-01-01")
    rows = table.head(3).copy()
    rows["dteday"] = ["2011-02-03", "NA", None]
    stamps = cleaner(*BIKE, 500).transform(rows)["dteday"]
    assert stamps.iloc[0] == pd.Timestamp("2011-02-03")
    assert stamps.iloc[1:].isna().all()


@pytest.mark.parametrize("dataset", [TELCO, TITANIC, PIMA, BIKE])
def test_cleaner_gives_the_same_rows_whatever_the_batch_size(dataset: tuple[str, str]) -> None:
    """A row is read the same alone, in a small batch, or in a large one."""
    relative, target = dataset
    table = raw(relative, 300)
    c = cleaner(relative, target, 300)
    full = c.transform(table)
    for n in BATCH_SIZES:
        part = c.transform(table.head(n))
        expected = full.head(n)
        assert list(part.columns) == list(expected.columns)
        for name in part.columns:
            got, want = part[name].to_numpy(), expected[name].to_numpy()
            assert pd.isna(got).tolist() == pd.isna(want).tolist(), (n, name)
            present = ~pd.isna(want)
            assert got[present].tolist() == want[present].tolist(), (n, name)


@pytest.mark.parametrize("n", BATCH_SIZES)
def test_cleaner_reads_markers_as_missing_in_any_batch(n: int) -> None:
    table = raw(TELCO[0], 300).head(n).copy()
    markers = ["", " ", "?", "NA", "n/a", "null"]
    table["MonthlyCharges"] = [markers[i % len(markers)] for i in range(n)]
    c = cleaner(*TELCO)
    c.check_input(table)  # markers are accepted at prediction time
    assert c.transform(table)["MonthlyCharges"].isna().all()


@pytest.mark.parametrize("n", BATCH_SIZES)
def test_check_input_names_a_numeric_column_holding_text(n: int) -> None:
    table = raw(TELCO[0], 300).head(n).copy()
    table.loc[table.index[-1], "tenure"] = "twelve"
    with pytest.raises(PredictionInputError) as info:
        cleaner(*TELCO).check_input(table)
    message = str(info.value)
    assert "'tenure'" in message and "twelve" in message
    assert "\n" not in message


def test_check_input_names_missing_columns() -> None:
    table = raw(TELCO[0], 20).drop(columns=["tenure", "Contract"])
    with pytest.raises(PredictionInputError) as info:
        cleaner(*TELCO).check_input(table)
    message = str(info.value)
    assert message.startswith("2 feature column(s)")
    assert "'tenure'" in message and "'Contract'" in message
    assert "customerID" not in message  # dropped columns are not required


def test_check_input_accepts_extra_and_dropped_columns_and_typed_values() -> None:
    table = raw(TELCO[0], 100).drop(columns=["customerID", "Churn"])
    table["extra"] = "anything"
    c = cleaner(*TELCO)
    c.check_input(table)
    typed = table.copy()
    typed["tenure"] = pd.to_numeric(typed["tenure"])
    typed["SeniorCitizen"] = typed["SeniorCitizen"] == "1"
    c.check_input(typed)
    clean = c.transform(typed)
    assert clean["tenure"].tolist() == pd.to_numeric(table["tenure"]).astype(float).tolist()
    assert clean["SeniorCitizen"].tolist() == (table["SeniorCitizen"] == "1").astype(float).tolist()


@pytest.mark.parametrize("n", [5, 100])
def test_categories_read_the_same_from_csv_strings_and_typed_numbers(n: int) -> None:
    """A categorical column of numbers: "1" from CSV, 1 or 1.0 from a DataFrame, same level."""
    document = {"FeatureDataTypes": {"Pclass": "categorical"}}
    table = raw(TITANIC[0])
    p = build_profile(table, "Survived", feature_spec=FeatureSpecification.from_dict(document))
    c = TableCleaner.from_profile(p).fit()
    rows = table.head(n)
    from_csv = c.transform(rows)["Pclass"].tolist()
    for typed in (pd.to_numeric(rows["Pclass"]), pd.to_numeric(rows["Pclass"]).astype(float)):
        assert c.transform(rows.assign(Pclass=typed))["Pclass"].tolist() == from_csv


@pytest.mark.parametrize("n", [5, 100])
def test_infinite_and_odd_number_spellings_are_missing_in_any_batch(n: int) -> None:
    table = raw(TELCO[0], 300).head(n).copy()
    table["tenure"] = [["inf", "-Infinity", "1_000", "12"][i % 4] for i in range(n)]
    clean = cleaner(*TELCO).transform(table)["tenure"].to_numpy()
    expected = np.array([[np.nan, np.nan, np.nan, 12.0][i % 4] for i in range(n)])
    np.testing.assert_array_equal(clean, expected)


@pytest.mark.parametrize("n", [5, 100])
def test_booleans_in_a_numeric_column_read_as_numbers_in_any_batch(n: int) -> None:
    table = raw(TELCO[0], 300).head(n).copy()
    flags = table["SeniorCitizen"] == "1"
    clean = cleaner(*TELCO).transform(table.assign(SeniorCitizen=flags), strict=True)
    assert clean["SeniorCitizen"].tolist() == flags.astype(float).tolist()


@pytest.mark.parametrize("n", [5, 100])
def test_integral_floats_in_an_object_column_are_the_csv_level_in_any_batch(n: int) -> None:
    document = {"FeatureDataTypes": {"Pclass": "categorical"}}
    table = raw(TITANIC[0])
    p = build_profile(table, "Survived", feature_spec=FeatureSpecification.from_dict(document))
    rows = table.head(n).copy()
    rows["Pclass"] = pd.Series(
        [[3.0, "2"][i % 2] for i in range(n)], dtype=object, index=rows.index
    )
    clean = TableCleaner.from_profile(p).fit().transform(rows)["Pclass"]
    assert clean.tolist() == [["3", "2"][i % 2] for i in range(n)]


def test_check_input_accepts_the_training_rows_of_a_column_with_unparsed_values() -> None:
    table = raw(TELCO[0], 1000)
    table.loc[table.index[:3], "TotalCharges"] = "n.a."
    p = build_profile(table, "Churn")
    assert p.column("TotalCharges").kind == ColumnKind.NUMERIC
    assert p.column("TotalCharges").unparsed_values == 3
    TableCleaner.from_profile(p).fit().check_input(table)


# --- the feature pipeline --------------------------------------------------------------------


def test_ordinal_pipeline_puts_category_codes_first() -> None:
    pipe, X, _, table = fit_pipeline(*TELCO, PreprocessingOptions(), rows=2000)
    p = profile(*TELCO, 2000)
    categorical = p.features(ColumnKind.CATEGORICAL)
    numeric = p.features(ColumnKind.NUMERIC)
    assert isinstance(X, np.ndarray) and X.dtype == np.float32
    assert X.shape == (2000, len(categorical) + len(numeric))
    assert pipe.categorical_features_ == list(range(len(categorical)))
    assert pipe.feature_names_out_[: len(categorical)] == categorical
    assert pipe.category_cardinalities_ == [p.column(c).n_unique for c in categorical]
    for j, k in zip(pipe.categorical_features_, pipe.category_cardinalities_, strict=True):
        codes = X[:, j]
        assert codes.min() == 0 and codes.max() == k - 1
        assert np.all(codes == np.round(codes))
    # Numbers pass through unchanged (no imputation: NaN stays NaN).
    total = pipe.feature_names_out_.index("TotalCharges")
    expected = pd.to_numeric(table["TotalCharges"].str.strip().replace("", None))
    np.testing.assert_allclose(X[:, total], expected.to_numpy(dtype=np.float32), equal_nan=True)
    assert np.isnan(X[:, total]).sum() == (table["TotalCharges"] == " ").sum()


def test_ordinal_codes_for_unseen_and_missing_categories() -> None:
    pipe, X, _, table = fit_pipeline(*TELCO, PreprocessingOptions(), rows=2000)
    rows = awkward_rows(table, "PaymentMethod", "MonthlyCharges")
    Z = pipe.transform(rows)
    assert Z.shape == (5, X.shape[1])
    j = pipe.feature_names_out_.index("PaymentMethod")
    assert Z[0, j] == UNKNOWN_CODE
    assert Z[3, j] == UNKNOWN_CODE  # "?" is a category this column never had
    # None and a blank: this column had no missing values in training, so scikit-learn's
    # encoder codes them as unknown; either way a negative code no training row has.
    assert Z[1, j] < 0 and Z[2, j] < 0
    assert Z[4, j] == X[4, j]
    m = pipe.feature_names_out_.index("MonthlyCharges")
    assert np.isnan(Z[:, m]).all()


@pytest.mark.parametrize("n", [3, 100])
def test_ordinal_missing_code_where_training_had_missing_values(n: int) -> None:
    pipe, X, _, table = fit_pipeline(*TITANIC, PreprocessingOptions(text_svd=4))
    j = pipe.feature_names_out_.index("Embarked")
    assert (X[table["Embarked"].isna().to_numpy(), j] == MISSING_CODE).all()
    rows = table.head(n).copy()
    rows["Embarked"] = [[None, " ", "Q"][i % 3] for i in range(n)]
    Z = pipe.transform(rows)
    assert Z[0, j] == MISSING_CODE and Z[1, j] == MISSING_CODE
    assert Z[2, j] == X[table["Embarked"].eq("Q").to_numpy(), j][0]


def test_onehot_pipeline_expands_categories() -> None:
    options = PreprocessingOptions(categorical="onehot")
    pipe, X, _, table = fit_pipeline(*TELCO, options, rows=2000)
    p = profile(*TELCO, 2000)
    assert pipe.categorical_features_ == [] and pipe.category_cardinalities_ == []
    n_numeric = len(p.features(ColumnKind.NUMERIC))
    n_levels = sum(p.column(c).n_unique for c in p.features(ColumnKind.CATEGORICAL))
    assert X.shape == (2000, n_numeric + n_levels)
    assert "Contract_Two year" in pipe.feature_names_out_
    onehot = X[:, n_numeric:]
    assert set(np.unique(onehot)) == {0.0, 1.0}
    # One indicator per categorical column is set in every row.
    assert np.all(onehot.sum(axis=1) == len(p.features(ColumnKind.CATEGORICAL)))
    rows = awkward_rows(table, "PaymentMethod", "MonthlyCharges")
    Z = pipe.transform(rows)
    assert Z.shape == (5, X.shape[1])
    payment = [i for i, n in enumerate(pipe.feature_names_out_) if n.startswith("PaymentMethod_")]
    assert Z[0, payment].sum() == 0.0  # unseen: no indicator
    assert Z[4, payment].sum() == 1.0


def test_high_cardinality_ticket_is_target_encoded() -> None:
    pipe, X, y, table = fit_pipeline(*TITANIC, PreprocessingOptions(text_svd=4))
    names = pipe.feature_names_out_
    assert pipe.categorical_features_ == [0, 1]  # Sex, Embarked
    assert names[:2] == ["Sex", "Embarked"]
    ticket = names.index("Ticket")
    assert ticket not in pipe.categorical_features_
    encoded = X[:, ticket]
    assert np.all((encoded >= 0) & (encoded <= 1))  # a smoothed survival rate
    # Training rows get cross-fitted encodings: not the same as encoding them afterwards.
    again = pipe.transform(table)[:, ticket]
    assert not np.allclose(encoded, again)
    # A ticket never seen is encoded as the overall survival rate.
    rows = table.head(3).copy()
    rows["Ticket"] = ["NEW-1", "NEW-2", None]
    unseen = pipe.transform(rows)[:, ticket]
    assert unseen[0] == pytest.approx(y.mean(), abs=1e-6)
    assert unseen[1] == unseen[0]
    # Within the ordinary values of a frequent ticket, the encoding follows the target.
    frequent = table["Ticket"].value_counts().index[0]
    same = (table["Ticket"] == frequent).to_numpy()
    assert np.ptp(again[same]) == 0


def test_high_cardinality_ordinal_option_codes_ticket() -> None:
    options = PreprocessingOptions(high_cardinality="ordinal", text_svd=4)
    pipe, X, _, table = fit_pipeline(*TITANIC, options)
    names = pipe.feature_names_out_
    assert names[:4] == ["Sex", "Embarked", "Ticket", "Cabin"]
    assert pipe.categorical_features_ == [0, 1, 2, 3]
    # Levels, plus one where training had missing values (Embarked, Cabin): scikit-learn's
    # encoder lists NaN among the categories, although it codes it MISSING_CODE.
    assert pipe.category_cardinalities_ == [2, 3 + 1, 681, 147 + 1]
    for j, k in zip(pipe.categorical_features_, pipe.category_cardinalities_, strict=True):
        codes = X[:, j]
        assert set(np.unique(codes[codes >= 0])) <= set(range(k))
    rows = table.head(2).copy()
    rows["Ticket"] = ["NEW", "113803"]
    rows["Cabin"] = ["Z99", None]
    Z = pipe.transform(rows)
    assert Z[0, 2] == UNKNOWN_CODE and Z[0, 3] == UNKNOWN_CODE
    assert Z[1, 3] == MISSING_CODE
    assert Z[1, 2] == X[table["Ticket"].eq("113803").to_numpy(), 2][0] >= 0


def test_onehot_with_ordinal_high_cardinality_keeps_codes_first() -> None:
    options = PreprocessingOptions(categorical="onehot", high_cardinality="ordinal", text_svd=4)
    pipe, X, _, _ = fit_pipeline(*TITANIC, options)
    assert X.shape[1] == len(pipe.feature_names_out_)
    assert pipe.feature_names_out_[:2] == ["Ticket", "Cabin"]
    assert pipe.categorical_features_ == [0, 1]
    assert "Sex_female" in pipe.feature_names_out_


@pytest.mark.parametrize(
    ("target", "problem_type", "width"),
    [("Embarked", "MulticlassClassification", 3), ("Fare", "Regression", 1)],
)
def test_target_encoding_for_multiclass_and_regression(
    target: str, problem_type: str, width: int
) -> None:
    table = raw(TITANIC[0])
    table = table[table[target].notna()]
    p = build_profile(table, target, problem_type=problem_type)
    assert p.column("Ticket").high_cardinality
    options = PreprocessingOptions(text_svd=4)
    pipe, X, _, _ = fit_pipeline(TITANIC[0], target, options, p=p, table=table)
    ticket_columns = [n for n in pipe.feature_names_out_ if n.startswith("Ticket")]
    assert len(ticket_columns) == width
    rows = awkward_rows(table, "Ticket", "Age")
    Z = pipe.transform(rows)
    assert Z.shape == (5, X.shape[1])
    columns = [pipe.feature_names_out_.index(n) for n in ticket_columns]
    assert np.isfinite(Z[:, columns]).all()


def test_text_tfidf_is_sparse_without_svd() -> None:
    options = PreprocessingOptions(text_svd=0)
    pipe, X, _, _ = fit_pipeline(*SMS, options, rows=1500)
    assert sparse.issparse(X) and X.format == "csr"
    assert X.dtype == np.float32
    assert X.shape[1] == len(pipe.feature_names_out_) > 1000
    assert all(n.startswith("message__") for n in pipe.feature_names_out_)
    # TF-IDF rows are L2-normalised; an empty message is all zeros.
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)
    rows = pd.DataFrame({"message": ["FREE prize call now", None, "", "zzzz qqqq"]})
    # A few rows (serving) come from the NumPy twin, dense; many from scikit-learn, sparse,
    # with the same values.
    Z = pipe.transform(rows)
    assert not sparse.issparse(Z) and Z.shape == (4, X.shape[1])
    filled = (Z != 0).sum(axis=1)
    assert filled[0] > 0 and (filled[1:] == 0).all()
    many = pipe.transform(pd.concat([rows] * 20, ignore_index=True))
    assert sparse.issparse(many)
    np.testing.assert_allclose(many[:4].toarray(), Z, rtol=1e-6, atol=1e-7)


def test_text_svd_gives_dense_components() -> None:
    options = PreprocessingOptions(text_svd=8)
    pipe, X, y, _ = fit_pipeline(*SMS, options, rows=1500)
    assert isinstance(X, np.ndarray) and X.shape == (1500, 8)
    assert pipe.feature_names_out_ == [f"message__svd{i}" for i in range(8)]
    assert np.isfinite(X).all()
    # The components carry the signal: spam and ham differ on average.
    gap = np.abs(X[y == 1].mean(axis=0) - X[y == 0].mean(axis=0))
    assert gap.max() > 0.05
    Z = pipe.transform(pd.DataFrame({"message": ["Win cash now!!", None]}))
    assert Z.shape == (2, 8) and np.isfinite(Z).all()


@pytest.mark.parametrize("svd", [0, 8])
def test_text_of_a_few_rows_matches_scikit_learn_exactly(svd: int) -> None:
    # The small-batch path counts, weights and normalizes without scikit-learn's checks; the
    # values must be scikit-learn's, bit for bit (serving and validation use different paths).
    pipe, _, _, table = fit_pipeline(*SMS, PreprocessingOptions(text_svd=svd), rows=400)
    text = pipe.columns_.named_transformers_["text_message"]
    documents = [*table["message"].head(6), "", "zzzz qqqq", "free FREE free call call", np.nan]
    texts = np.asarray(documents, dtype=object)
    saved = pickle.dumps(text)  # the cached analyzer is not saved (pipelines are hashed)
    for rows in (texts, texts[:1], texts[6:7], texts[-1:]):
        got = text.transform_texts(rows)
        assert sparse.issparse(got) == (svd == 0)
        expected = dense(text.transform(pd.DataFrame({"message": rows})))
        np.testing.assert_array_equal(dense(got), expected)
    assert np.count_nonzero(dense(text.transform_texts(texts[:1]))) > 0  # not vacuous
    assert pickle.dumps(text) == saved


def test_titanic_single_rows_through_the_twin_match_scikit_learn() -> None:
    pipe, _, _, table = fit_pipeline(*TITANIC, PreprocessingOptions(text_svd=8))
    assert pipe.fast_ is not None
    rows = awkward_rows(table, "Embarked", "Age")
    rows.loc[rows.index[1], "Name"] = None
    for i in range(len(rows)):
        clean = pipe.cleaner_.transform_arrays(rows.iloc[[i]], strict=True)
        fast = pipe.transform_clean(clean)
        slow = pipe.columns_.transform(pd.DataFrame(clean)).astype(np.float32)
        np.testing.assert_array_equal(fast, slow)


def test_quantile_scaling_of_single_rows_is_scikit_learns() -> None:
    """The twin's normal-output quantile mapping (interpolation per column, bounds and the
    normal quantile function on the whole matrix) gives scikit-learn's values bit for bit, row
    by row: in range, on and past both ends, between tied quantiles, and missing."""
    from sklearn.preprocessing import QuantileTransformer

    from mlpilot.features._fast import _quantile_normal

    rng = np.random.default_rng(3)
    train = np.column_stack(
        [
            rng.normal(size=300),
            rng.integers(0, 4, size=300).astype(float),  # ties: flat stretches of quantiles
            rng.exponential(size=300),
        ]
    )
    scaler = QuantileTransformer(n_quantiles=50, output_distribution="normal").fit(train)
    rows = np.vstack(
        [
            train[:40],
            [[-9.0, -1.0, 0.0], [9.0, 3.0, 1e6], [np.nan, 2.0, np.nan], [0.0, np.nan, 0.5]],
            [train.min(axis=0), train.max(axis=0)],
        ]
    )
    expected = scaler.transform(rows)
    for i in range(len(rows)):
        got = _quantile_normal(rows[i : i + 1], scaler.quantiles_, scaler.references_)
        np.testing.assert_array_equal(got, expected[i : i + 1])
    np.testing.assert_array_equal(
        _quantile_normal(rows, scaler.quantiles_, scaler.references_), expected
    )
    assert np.isnan(expected).sum() == 3 and len(np.unique(expected[:, 1])) > 2  # not vacuous


def test_titanic_sparse_output_mixes_numbers_categories_and_text() -> None:
    options = PreprocessingOptions(categorical="onehot", impute=True, text_svd=0)
    pipe, X, _, table = fit_pipeline(*TITANIC, options)
    assert sparse.issparse(X)
    assert X.shape[1] == len(pipe.feature_names_out_)
    assert any(n.startswith("Name__") for n in pipe.feature_names_out_)
    rows = awkward_rows(table, "Embarked", "Age")
    Z = pipe.transform(rows)  # a few rows: the NumPy twin's dense matrix
    assert not sparse.issparse(Z) and Z.shape == (5, X.shape[1])
    assert np.isfinite(Z).all()
    with pytest.raises(PredictionInputError, match="missing: 'Age'"):
        pipe.check_input(rows.drop(columns=["Age"]))
    rows.loc[rows.index[0], "Fare"] = "free"
    with pytest.raises(PredictionInputError, match="'Fare' must be numeric"):
        pipe.check_input(rows)


def test_dates_of_a_few_rows_match_datetime_parts_exactly() -> None:
    # The twin's NumPy calendar arithmetic against DatetimeParts' pandas accessors, with hours,
    # leap days, dates before 1970 and a missing stamp; then through a whole pipeline.
    from mlpilot.features import DatetimeParts
    from mlpilot.features._fast import _dates_twin

    stamps = pd.to_datetime(
        ["2012-02-29 13:45:10", "1969-12-31 23:59:59.5", None, "2024-12-31 00:00:01", "1900-03-01"],
        format="ISO8601",
    ).to_numpy()
    frame = pd.DataFrame({"when": stamps})
    parts = DatetimeParts().fit(frame)
    assert parts.with_hour_["when"]
    twin = _dates_twin(["when"], parts)
    for i in range(len(stamps)):
        one = {"when": stamps[i : i + 1]}
        np.testing.assert_array_equal(twin(one, 1), parts.transform(frame.iloc[[i]]))
    np.testing.assert_array_equal(twin({"when": stamps}, 5), parts.transform(frame))

    pipe, _, _, table = fit_pipeline(*BIKE, PreprocessingOptions(), rows=500)
    assert pipe.fast_ is not None
    assert any(getattr(b, "_dates", lambda: None)() is not None for _, b in pipe.fast_.blocks)
    rows = table.iloc[[0, 100, 499]].copy()
    rows.loc[rows.index[1], "dteday"] = "?"
    for i in range(len(rows)):
        clean = pipe.cleaner_.transform_arrays(rows.iloc[[i]], strict=True)
        assert clean["dteday"].dtype == np.dtype("datetime64[ns]")
        fast = pipe.transform_clean(clean)
        slow = pipe.columns_.transform(pd.DataFrame(clean)).astype(np.float32)
        np.testing.assert_array_equal(fast, slow)


def test_datetime_parts() -> None:
    table = raw(BIKE[0], 2000)
    pipe, X, _, _ = fit_pipeline(*BIKE, PreprocessingOptions(), rows=2000)
    names = pipe.feature_names_out_
    parts = ["year", "month", "day", "weekday", "dayofyear", "days"]
    assert [n for n in names if n.startswith("dteday__")] == [f"dteday__{p}" for p in parts]
    stamps = pd.to_datetime(table["dteday"])
    expected = {
        "year": stamps.dt.year,
        "month": stamps.dt.month,
        "day": stamps.dt.day,
        "weekday": stamps.dt.day_of_week,
        "dayofyear": stamps.dt.day_of_year,
        "days": (stamps - pd.Timestamp("1970-01-01")).dt.days,
    }
    for part, values in expected.items():
        column = X[:, names.index(f"dteday__{part}")]
        np.testing.assert_allclose(column, values.to_numpy(dtype=float), err_msg=part)
    first = X[0, names.index("dteday__weekday")]
    assert first == 5.0  # 2011-01-01 was a Saturday
    rows = table.head(2).copy()
    rows["dteday"] = ["2013-06-15", "?"]
    Z = pipe.transform(rows)
    assert Z[0, names.index("dteday__year")] == 2013
    assert np.isnan(Z[1, names.index("dteday__year")])


def test_datetime_with_hours_gets_an_hour_part() -> None:
    table = raw(BIKE[0], 1000)
    table["when"] = table["dteday"] + " " + table["hr"].str.zfill(2) + ":00:00"
    table = table.drop(columns=["dteday"])
    p = build_profile(table, "cnt")
    assert p.column("when").kind == ColumnKind.DATETIME
    pipe, X, _, _ = fit_pipeline(BIKE[0], "cnt", PreprocessingOptions(), p=p, table=table)
    names = [n for n in pipe.feature_names_out_ if n.startswith("when__")]
    assert names == [
        f"when__{part}" for part in ("year", "month", "day", "weekday", "dayofyear", "hour", "days")
    ]
    hour = X[:, pipe.feature_names_out_.index("when__hour")]
    np.testing.assert_array_equal(hour, pd.to_numeric(table["hr"]).to_numpy(dtype=np.float32))


@pytest.mark.parametrize("scaling", ["standard", "quantile"])
def test_impute_leaves_no_missing_values(scaling: str) -> None:
    options = PreprocessingOptions(
        categorical="onehot", impute=True, numeric_scaling=scaling, text_svd=4
    )
    pipe, X, _, table = fit_pipeline(*TITANIC, options)
    assert not np.isnan(X).any()
    names = pipe.feature_names_out_
    # The indicator goes through the scaler too: two values, the larger one where Age is missing.
    indicator = X[:, names.index("missingindicator_Age")]
    assert len(np.unique(indicator)) == 2
    flagged = indicator == indicator.max()
    np.testing.assert_array_equal(flagged, table["Age"].isna().to_numpy())
    Z = pipe.transform(awkward_rows(table, "Embarked", "Age"))
    assert not np.isnan(Z).any()
    assert (Z[:, names.index("missingindicator_Age")] == indicator.max()).all()


def test_impute_fills_missing_dates() -> None:
    table = raw(BIKE[0], 1000)
    table.loc[table.index[:30], "dteday"] = "NA"
    p = build_profile(table, "cnt")
    pipe = FeaturePipeline.from_profile(p, PreprocessingOptions(impute=True), seed=0)
    X = pipe.fit_transform(table, p.target.encode(table["cnt"]))
    assert not np.isnan(X).any()


def test_standard_scaling_centres_numeric_columns() -> None:
    options = PreprocessingOptions(impute=True, numeric_scaling="standard")
    pipe, X, _, _ = fit_pipeline(*PIMA, options)
    names = pipe.feature_names_out_
    for name in ("Pregnancies", "Glucose", "Insulin", "Age"):
        column = X[:, names.index(name)].astype(np.float64)
        assert abs(column.mean()) < 1e-5, name
        assert column.std() == pytest.approx(1.0, abs=1e-4), name


def test_no_scaling_keeps_raw_numbers() -> None:
    pipe, X, _, table = fit_pipeline(*PIMA, PreprocessingOptions())
    age = X[:, pipe.feature_names_out_.index("Age")]
    np.testing.assert_array_equal(age, pd.to_numeric(table["Age"]).to_numpy(dtype=np.float32))


OPTION_SETS = [
    PreprocessingOptions(text_svd=4),
    PreprocessingOptions(categorical="onehot", impute=True, numeric_scaling="standard", text_svd=0),
    PreprocessingOptions(categorical="onehot", impute=True, numeric_scaling="quantile", text_svd=4),
    PreprocessingOptions(high_cardinality="ordinal", impute=True, text_svd=4),
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: "-".join(o.describe()[:3]))
@pytest.mark.parametrize("dataset", [TITANIC, AMES])
def test_new_rows_with_unseen_and_missing_values_keep_the_width(
    options: PreprocessingOptions, dataset: tuple[str, str]
) -> None:
    relative, target = dataset
    pipe, X, _, table = fit_pipeline(relative, target, options, rows=600)
    p = profile(relative, target, 600)
    assert X.shape == (600, len(pipe.feature_names_out_))
    rows = table.tail(6).copy()
    for name in p.features(ColumnKind.CATEGORICAL):
        rows[name] = ["zz-unseen", None, "", " ", "?", rows[name].iloc[5]]
    for name in p.features(ColumnKind.NUMERIC):
        rows[name] = ["", " ", "?", "NA", None, rows[name].iloc[5]]
    for name in p.features(ColumnKind.TEXT):
        rows[name] = ["completely new words here", None, "", " ", "?", rows[name].iloc[5]]
    pipe.check_input(rows)
    Z = pipe.transform(rows)
    assert Z.shape == (6, X.shape[1])
    assert dense(Z).dtype == np.float32
    # The last row is a training row, unchanged: it gets exactly its training-time features,
    # except target encodings, which are cross-fitted during training.
    target_encoded = set()
    if options.high_cardinality == "target":
        target_encoded = {c.name for c in p.columns if c.kind == "categorical" and c.n_unique > 64}
    keep = [i for i, n in enumerate(pipe.feature_names_out_) if n not in target_encoded]
    np.testing.assert_allclose(dense(Z)[5, keep], dense(X)[-1, keep], rtol=1e-5, equal_nan=True)
    if options.impute:
        assert not np.isnan(dense(Z)).any()


def test_describe_lists_the_steps() -> None:
    steps = PreprocessingOptions(
        categorical="onehot", impute=True, numeric_scaling="quantile", text_svd=0
    ).describe()
    assert steps[0] == "categorical: one-hot"
    assert "numeric: median imputation + missing indicators" in steps
    assert "numeric: quantile scaling" in steps
    assert "text: TF-IDF" in steps
    assert PreprocessingOptions().describe()[0] == "categorical: ordinal codes"
    assert "text: TF-IDF + SVD(64)" in PreprocessingOptions().describe()


def test_text_columns_of_a_few_rows_read_as_many_rows_do() -> None:
    cleaner = TableCleaner([{"name": "t", "kind": ColumnKind.TEXT}]).fit()
    for values in (["Braund, Mr. Owen", " x ", ""], ["a", None, np.nan], [1.5, "b", "c"]):
        rows = pd.DataFrame({"t": values}, dtype=object)
        few = cleaner.transform_arrays(rows)["t"]
        many = cleaner.transform_arrays(pd.concat([rows] * 30))["t"][:3]  # over SMALL_BATCH
        assert few.dtype == many.dtype == object
        assert list(few) == list(many), values


def test_small_text_batch_reads_columns_by_position_exactly() -> None:
    # A serving request decodes to a few all-text rows, read from one object block; a frame
    # with a typed extra column (ignored by the cleaner) takes the per-column path instead.
    cleaner = TableCleaner(
        [
            {"name": "n", "kind": ColumnKind.NUMERIC, "missing_tokens": ["none"]},
            {"name": "z", "kind": ColumnKind.NUMERIC, "zero_means_missing": True},
            {"name": "c", "kind": ColumnKind.CATEGORICAL},
        ]
    ).fit()
    text = pd.DataFrame(
        {"c": ["a", "", None], "z": ["0", "2", " 3 "], "n": ["1.5", "none", "inf"]}, dtype=object
    )
    typed = text.assign(extra=[1, 2, 3])
    fast, slow = cleaner.transform_arrays(text, strict=True), cleaner.transform_arrays(typed)
    assert list(fast) == ["n", "z", "c"]
    for name in fast:
        assert fast[name].dtype == slow[name].dtype
        assert pd.Series(fast[name]).equals(pd.Series(slow[name])), name
    assert fast["c"][0] == "a"
    np.testing.assert_array_equal(fast["z"], [np.nan, 2.0, 3.0])
    bad = text.assign(n=["1", "x", "2"])
    with pytest.raises(PredictionInputError) as fast_error:
        cleaner.transform_arrays(bad, strict=True)
    with pytest.raises(PredictionInputError) as slow_error:
        cleaner.transform_arrays(bad.assign(extra=0), strict=True)
    assert str(fast_error.value) == str(slow_error.value)
