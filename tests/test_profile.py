"""Tests for mlpilot.profile: column kinds, the target and problem type, feature specifications,
and the profile's JSON round trip, on real data sets (helpers_data) read as raw strings."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import helpers_data as data
from mlpilot._types import ProblemType
from mlpilot.data import read_table
from mlpilot.errors import ConfigError, DataError
from mlpilot.profile import (
    MISSING_TOKENS,
    ColumnKind,
    DatasetProfile,
    FeatureSpecification,
    TargetProfile,
    build_profile,
    infer_target,
    label_key,
    parse_numeric,
)

B, M, R = ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION


@cache
def _raw(relative: Path) -> pd.DataFrame:
    return read_table(relative)


def raw(relative: Path) -> pd.DataFrame:
    """The data set as ``read_table`` gives it (strings; only empty fields missing), a copy."""
    return _raw(relative).copy()


@cache
def _profile(relative: Path, target: str) -> DatasetProfile:
    return build_profile(_raw(relative), target)


def profile(relative: Path, target: str) -> DatasetProfile:
    """The profile of a whole data set (cached: profiles are not modified by the tests)."""
    return _profile(relative, target)


TELCO = (data.TELCO, "Churn")
ADULT = (data.ADULT, "income")
BANK = (data.BANK, "y")
PIMA = (data.PIMA, "Outcome")
AMES = (data.AMES, "SalePrice")
TITANIC = (data.TITANIC, "Survived")
BIKE = (data.BIKES, "cnt")
WINE = (data.WINE, "quality")
ABALONE = (data.ABALONE, "Rings")
CALIFORNIA = (data.CALIFORNIA, "median_house_value")
SMS = (data.SMS, "label")
PENGUINS = (data.PENGUINS, "species")


# --- column decisions on real data ---------------------------------------------------------


def test_telco_total_charges_blank_is_missing_and_customer_id_dropped() -> None:
    p = profile(*TELCO)
    total = p.column("TotalCharges")
    assert total.kind == ColumnKind.NUMERIC
    assert total.missing_tokens == [" "]
    assert "' ' read as missing" in total.reason
    assert total.missing_ratio == pytest.approx(11 / 7043)
    assert total.stats["min"] == pytest.approx(18.8)
    customer = p.column("customerID")
    assert customer.kind == ColumnKind.DROP
    assert customer.reason.startswith("identifier-like")
    assert p.column("Contract").kind == ColumnKind.CATEGORICAL
    assert p.column("Contract").n_unique == 3
    assert p.column("tenure").kind == ColumnKind.NUMERIC
    assert "customerID" not in p.features()
    assert p.target.name == "Churn" and "Churn" not in p.input_columns
    assert p.n_rows == 7043 and p.n_columns == 21 and len(p.columns) == 20


def test_telco_target_is_binary_with_yes_positive() -> None:
    target = profile(*TELCO).target
    assert target.problem_type is B
    assert target.labels == ["No", "Yes"]
    assert target.positive_label == "Yes"
    assert target.positive_index == 1
    assert "positive answer" in target.positive_reason
    assert target.class_counts == {"No": 5174, "Yes": 1869}
    codes = target.encode(raw(TELCO[0])["Churn"])
    assert codes.dtype == np.int64
    assert codes.sum() == 1869


def test_adult_question_mark_is_kept_as_a_category_and_minority_is_positive() -> None:
    p = profile(*ADULT)
    for name in ("workclass", "occupation", "native-country"):
        col = p.column(name)
        assert col.kind == ColumnKind.CATEGORICAL, name
        assert col.category_tokens == ["?"], name
        assert col.missing_tokens == [], name
        assert col.missing_ratio == 0.0, name
        assert "'?' kept as categories" in col.reason
    assert p.column("workclass").stats["top"]["?"] == 595  # in the 10,000-row slice
    target = p.target
    assert target.problem_type is B
    assert target.labels == ["<=50K", ">50K"]
    assert target.positive_label == ">50K"
    assert "minority" in target.positive_reason
    assert target.class_counts[">50K"] < target.class_counts["<=50K"]


def test_bank_unknown_is_kept_as_a_category() -> None:
    p = profile(*BANK)
    for name in ("job", "marital", "education", "default", "housing", "loan"):
        col = p.column(name)
        assert col.kind == ColumnKind.CATEGORICAL, name
        assert col.category_tokens == ["unknown"], name
    marital = raw(BANK[0])["marital"]
    assert p.column("marital").stats["top"]["unknown"] == int((marital == "unknown").sum()) > 0
    assert p.column("job").n_unique == 12  # 11 jobs + "unknown"
    assert p.column("pdays").kind == ColumnKind.NUMERIC
    assert p.target.positive_label == "yes"


def test_pima_zeros_mean_missing_in_measurements_but_not_in_pregnancies() -> None:
    p = profile(*PIMA)
    zeros = {"Glucose": 5, "BloodPressure": 35, "SkinThickness": 227, "Insulin": 374, "BMI": 11}
    for name, count in zeros.items():
        col = p.column(name)
        assert col.kind == ColumnKind.NUMERIC
        assert col.zero_means_missing is True, name
        assert col.missing_ratio == pytest.approx(count / 768), name
        assert f"{count} zero(s) read as missing" in col.reason
        assert col.stats["min"] > 0, name  # the stats no longer see the zeros
    for name in ("Pregnancies", "DiabetesPedigreeFunction", "Age"):
        assert p.column(name).zero_means_missing is False, name
    assert p.column("Pregnancies").stats["min"] == 0.0
    assert p.target.labels == ["0", "1"]
    assert p.target.positive_label == "1"


def test_ames_none_is_a_category_na_is_missing_in_numbers_and_id_dropped() -> None:
    p = profile(*AMES)
    veneer = p.column("MasVnrType")
    assert veneer.kind == ColumnKind.CATEGORICAL
    assert "None" in veneer.category_tokens
    assert veneer.stats["top"]["None"] == 864
    frontage = p.column("LotFrontage")
    assert frontage.kind == ColumnKind.NUMERIC
    assert frontage.missing_tokens == ["NA"]
    assert frontage.missing_ratio == pytest.approx(259 / 1460)
    identifier = p.column("Id")
    assert identifier.kind == ColumnKind.DROP
    assert "identifier-like" in identifier.reason
    assert p.problem_type is R
    assert p.target.labels == [] and p.target.positive_label is None
    assert p.target.stats["min"] == 34900.0 and p.target.stats["max"] == 755000.0
    # "NA" in Alley means "no alley access": a level, not a missing value.
    assert p.column("Alley").category_tokens == ["NA"]


def test_titanic_name_text_ticket_high_cardinality_passenger_id_dropped() -> None:
    p = profile(*TITANIC)
    assert p.column("Name").kind == ColumnKind.TEXT
    assert p.column("Name").stats["mean_words"] >= 3
    assert p.column("PassengerId").kind == ColumnKind.DROP
    ticket = p.column("Ticket")
    assert ticket.kind == ColumnKind.CATEGORICAL
    assert ticket.high_cardinality is True
    assert ticket.n_unique == 681
    assert "high cardinality (681 levels)" in ticket.reason
    assert p.column("Sex").high_cardinality is False
    assert p.column("Cabin").missing_ratio == pytest.approx(687 / 891)
    assert p.column("Age").missing_ratio == pytest.approx(177 / 891)
    assert p.features(ColumnKind.TEXT) == ["Name"]
    assert p.problem_type is B


def test_bike_sharing_date_is_datetime_and_instant_dropped() -> None:
    p = profile(*BIKE)
    day = p.column("dteday")
    assert day.kind == ColumnKind.DATETIME
    assert day.n_unique == 88  # the slice's first 2,000 hours
    assert day.stats["min"].startswith("2011-01-01")
    assert day.stats["max"].startswith("2011-03-29")
    assert p.column("instant").kind == ColumnKind.DROP
    assert "row number" in p.column("instant").reason
    assert p.problem_type is R
    assert p.features(ColumnKind.DATETIME) == ["dteday"]


def test_wine_quality_is_multiclass_with_seven_integer_classes() -> None:
    p = profile(*WINE)
    target = p.target
    assert target.problem_type is M
    assert target.labels == ["3", "4", "5", "6", "7", "8", "9"]
    assert sum(target.class_counts.values()) == 4898
    assert target.class_counts["9"] == 5
    assert target.positive_label is None
    assert "7 distinct integers" in target.reason
    codes = target.encode(raw(WINE[0])["quality"])
    assert sorted(set(codes.tolist())) == list(range(7))
    assert all(c.kind == ColumnKind.NUMERIC for c in p.columns)


def test_abalone_rings_is_regression() -> None:
    p = profile(*ABALONE)
    assert p.problem_type is R
    assert "28 distinct integers" in p.target.reason
    assert p.column("Sex").kind == ColumnKind.CATEGORICAL
    values = p.target.encode(raw(ABALONE[0])["Rings"])
    assert values.dtype == np.float64
    assert values.min() == 1.0 and values.max() == 29.0


def test_california_housing_is_regression_with_categorical_ocean_proximity() -> None:
    p = profile(*CALIFORNIA)
    assert p.problem_type is R
    ocean = p.column("ocean_proximity")
    assert ocean.kind == ColumnKind.CATEGORICAL
    assert ocean.n_unique == 5
    assert ocean.stats["top"]["ISLAND"] == 5
    assert p.column("total_bedrooms").missing_ratio == pytest.approx(27 / 3004)  # the slice


def test_sms_spam_is_binary_text_with_spam_positive() -> None:
    p = profile(*SMS)
    assert p.problem_type is B
    assert p.column("message").kind == ColumnKind.TEXT
    assert p.target.positive_label == "spam"
    assert p.target.positive_index == 1
    assert p.duplicate_rows == int(raw(SMS[0]).duplicated().sum()) > 0
    assert any("duplicate" in note for note in p.notes)


def test_kddcup_slice_profiles_quickly_and_drops_constant_columns() -> None:
    table = read_table(data.KDD)  # the first 20,000 of 494,021 rows
    assert len(table) == 20000
    p = build_profile(table, "label")
    assert p.problem_type is M
    assert p.column("protocol_type").kind == ColumnKind.CATEGORICAL
    constant = [c.name for c in p.columns if c.reason.startswith("constant")]
    assert constant  # e.g. num_outbound_cmds is always 0
    for name in constant:
        assert table[name].nunique() == 1


# --- problem type overrides and target errors --------------------------------------------


def test_problem_type_override_is_honoured_and_reported() -> None:
    pima = raw(PIMA[0])
    as_regression = build_profile(pima, "Outcome", problem_type="Regression")
    assert as_regression.problem_type is R
    assert as_regression.target.reason == "set by the job"
    assert as_regression.target.stats["mean"] == pytest.approx(268 / 768)
    abalone = raw(ABALONE[0])
    as_classes = build_profile(abalone, "Rings", problem_type=M)
    assert as_classes.problem_type is M
    # Numeric labels are sorted as numbers, not as strings ("1", "2", ..., "29").
    assert as_classes.target.labels[:3] == ["1", "2", "3"]
    assert as_classes.target.labels[-1] == "29"
    assert len(as_classes.target.labels) == 28
    binary = build_profile(pima, "Outcome", problem_type=ProblemType.BINARY)
    assert binary.problem_type is B and binary.target.reason == "set by the job"


def test_missing_target_column_lists_the_columns() -> None:
    with pytest.raises(DataError) as info:
        build_profile(raw(TELCO[0]), "churn")
    message = str(info.value)
    assert "'churn'" in message
    assert "customerID, gender, SeniorCitizen" in message
    assert "\n" not in message


def test_single_valued_target_is_an_error() -> None:
    table = raw(TELCO[0])
    table = table[table["Churn"] == "Yes"]
    with pytest.raises(DataError, match="'Churn' has a single distinct value"):
        build_profile(table, "Churn")


def test_regression_on_a_text_target_is_an_error() -> None:
    with pytest.raises(DataError, match="must be numeric for Regression; found"):
        build_profile(raw(TELCO[0]), "Churn", problem_type="Regression")


def test_binary_on_three_classes_is_an_error() -> None:
    with pytest.raises(DataError, match="3 distinct values; BinaryClassification needs exactly 2"):
        build_profile(raw(PENGUINS[0]), "species", problem_type=B)


def test_multiclass_on_two_classes_is_an_error() -> None:
    with pytest.raises(DataError, match="MulticlassClassification needs at least 3"):
        build_profile(raw(TELCO[0]), "Churn", problem_type=M)


def test_empty_table_is_an_error() -> None:
    with pytest.raises(DataError, match="no rows"):
        build_profile(raw(TELCO[0]).head(0), "Churn")


def test_rows_without_target_are_counted_and_noted() -> None:
    table = raw(TITANIC[0]).head(300)
    table.loc[table.index[:7], "Survived"] = pd.NA
    table.loc[table.index[7:10], "Survived"] = " NA "
    p = build_profile(table, "Survived")
    assert p.target.missing_rows == 10
    assert p.dropped_rows == {"missing_target": 10}
    assert any("10 row(s) without a target value" in note for note in p.notes)
    assert sum(p.target.class_counts.values()) == 290


def test_infinite_target_values_are_missing_not_numbers() -> None:
    table = raw(ABALONE[0]).head(500)
    table.loc[table.index[:3], "Rings"] = ["inf", "-inf", "Infinity"]
    p = build_profile(table, "Rings")
    assert p.problem_type is R
    assert p.target.missing_rows == 3
    assert np.isfinite(p.target.stats["max"])
    assert np.isnan(p.target.encode(table["Rings"])[:3]).all()


def test_numeric_labels_spelled_two_ways_are_one_class() -> None:
    """A training file writes "1", a validation file "1.0": still two classes, not three."""
    table = raw(TITANIC[0])
    validation = table.index[-200:]
    table.loc[validation, "Survived"] = table.loc[validation, "Survived"] + ".0"
    p = build_profile(table, "Survived")
    assert p.problem_type is B
    assert p.target.labels == ["0", "1"]  # the spelling most rows use
    assert p.target.class_counts == {"0": 549, "1": 342}
    assert p.target.positive_label == "1"
    codes = p.target.encode(table["Survived"])
    expected = pd.to_numeric(raw(TITANIC[0])["Survived"]).to_numpy()
    np.testing.assert_array_equal(codes, expected)
    wine = raw(WINE[0])
    wine.loc[wine.index[:50], "quality"] = wine.loc[wine.index[:50], "quality"] + ".0"
    assert build_profile(wine, "quality").target.labels == ["3", "4", "5", "6", "7", "8", "9"]


def test_encode_rejects_labels_unseen_in_training() -> None:
    target = profile(*TELCO).target
    with pytest.raises(DataError, match=r"unseen in training: \['Maybe'\]"):
        target.encode(pd.Series(["Yes", "Maybe", " No "]))
    assert target.encode(pd.Series([" Yes", "No "])).tolist() == [1, 0]


def test_infer_target_on_typed_values() -> None:
    booleans = infer_target("flag", pd.Series([True, False, True, True] * 5))
    assert booleans.problem_type is B
    assert booleans.labels == [False, True]
    assert booleans.positive_label is True
    floats = infer_target("y", pd.Series([0.0, 1.0, 1.0, np.nan] * 5))
    assert floats.problem_type is B
    assert floats.missing_rows == 5
    assert [label_key(v) for v in floats.labels] == ["0", "1"]
    # A CSV spelling of the same labels encodes to the same classes.
    assert floats.encode(pd.Series(["1", "0"])).tolist() == [1, 0]


# --- sample weights ---------------------------------------------------------------------------


def test_sample_weight_column_is_not_a_feature_and_bad_weights_are_counted() -> None:
    table = raw(TITANIC[0])
    table["w"] = table["Fare"]
    table.loc[table.index[:4], "w"] = ["", "abc", "NA", "inf"]
    p = build_profile(table, "Survived", sample_weight="w")
    assert p.sample_weight == "w"
    assert "w" not in p.input_columns
    assert p.dropped_rows["missing_weight"] == 4
    assert any("4 row(s) without a valid sample weight" in note for note in p.notes)


def test_negative_sample_weights_are_an_error() -> None:
    table = raw(TITANIC[0])
    table["w"] = "1"
    table.loc[table.index[5], "w"] = "-0.5"
    with pytest.raises(DataError, match="'w' has negative values"):
        build_profile(table, "Survived", sample_weight="w")


def test_sample_weight_errors() -> None:
    table = raw(TITANIC[0])
    with pytest.raises(DataError, match="Sample weight column 'weight' is not in the data"):
        build_profile(table, "Survived", sample_weight="weight")
    with pytest.raises(ConfigError, match="cannot be the target"):
        build_profile(table, "Survived", sample_weight="Survived")


# --- feature specification -------------------------------------------------------------------


def spec(doc: dict[str, object]) -> FeatureSpecification:
    return FeatureSpecification.from_dict(doc)


def test_feature_attribute_names_restrict_the_features() -> None:
    names = ["Pclass", "Sex", "Age", "Name"]
    p = build_profile(
        raw(TITANIC[0]), "Survived", feature_spec=spec({"FeatureAttributeNames": names})
    )
    assert p.features() == ["Pclass", "Name", "Sex", "Age"]  # in table order
    for col in p.columns:
        if col.name not in names:
            assert col.kind == ColumnKind.DROP
            assert col.reason == "not listed in FeatureAttributeNames"
    # The listed columns keep their inferred kinds.
    assert p.column("Name").kind == ColumnKind.TEXT
    assert p.column("Sex").kind == ColumnKind.CATEGORICAL


def test_feature_data_types_override_numeric_to_categorical() -> None:
    document = {"FeatureDataTypes": {"Pregnancies": "categorical", "Glucose": "categorical"}}
    p = build_profile(raw(PIMA[0]), "Outcome", feature_spec=spec(document))
    for name in ("Pregnancies", "Glucose"):
        col = p.column(name)
        assert col.kind == ColumnKind.CATEGORICAL
        assert "FeatureSpecification (categorical)" in col.reason
        assert "inference said numbers stored as text" in col.reason
        # Zeros are a level of a categorical column, not missing values.
        assert col.zero_means_missing is False
    assert p.column("Glucose").high_cardinality is True  # 136 levels
    assert p.column("Pregnancies").high_cardinality is False
    assert p.column("Insulin").kind == ColumnKind.NUMERIC


def test_feature_data_type_agreeing_with_inference_is_noted() -> None:
    document = {"FeatureDataTypes": {"Age": "numeric", "Name": "sequence"}}
    p = build_profile(raw(TITANIC[0]), "Survived", feature_spec=spec(document))
    assert p.column("Age").kind == ColumnKind.NUMERIC
    assert p.column("Age").reason.startswith("FeatureSpecification (numeric); inference agreed")
    assert p.column("Name").kind == ColumnKind.TEXT  # "sequence" reads as text


def test_forcing_numeric_on_a_text_column_is_an_error() -> None:
    document = {"FeatureDataTypes": {"Name": "numeric"}}
    with pytest.raises(DataError, match="declares 'Name' numeric, but its values are not numbers"):
        build_profile(raw(TITANIC[0]), "Survived", feature_spec=spec(document))


def test_forcing_numeric_keeps_an_identifier_the_user_asked_for() -> None:
    p = build_profile(
        raw(AMES[0]), "SalePrice", feature_spec=spec({"FeatureDataTypes": {"Id": "numeric"}})
    )
    col = p.column("Id")
    assert col.kind == ColumnKind.NUMERIC
    assert "inference said identifier-like" in col.reason
    assert col.stats["min"] == 1.0 and col.stats["max"] == 1460.0
    assert "Id" in p.features(ColumnKind.NUMERIC)


def test_forcing_categorical_on_an_identifier_keeps_it() -> None:
    document = {"FeatureDataTypes": {"customerID": "categorical"}}
    p = build_profile(raw(TELCO[0]), "Churn", feature_spec=spec(document))
    col = p.column("customerID")
    assert col.kind == ColumnKind.CATEGORICAL
    assert col.high_cardinality is True
    assert "inference said identifier-like" in col.reason


def test_feature_specification_naming_the_target_is_an_error() -> None:
    for document in (
        {"FeatureAttributeNames": ["Age", "Survived"]},
        {"FeatureDataTypes": {"Survived": "categorical"}},
    ):
        with pytest.raises(ConfigError, match="must not list the target 'Survived'"):
            build_profile(raw(TITANIC[0]), "Survived", feature_spec=spec(document))


def test_feature_specification_naming_absent_columns_is_an_error() -> None:
    document = {"FeatureAttributeNames": ["Age", "Deck"], "FeatureDataTypes": {"Boat": "text"}}
    with pytest.raises(DataError, match=r"columns not in the data: \['Boat', 'Deck'\]"):
        build_profile(raw(TITANIC[0]), "Survived", feature_spec=spec(document))


def test_feature_specification_selecting_nothing_is_an_error() -> None:
    with pytest.raises(DataError, match="No usable feature columns"):
        build_profile(raw(TITANIC[0]), "Survived", feature_spec=spec({"FeatureAttributeNames": []}))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"FeatureDataTypes": {"Age": "integer"}}, "data type 'integer' for column 'Age'"),
        ({"FeatureAttributeNames": "Age"}, "FeatureAttributeNames must be a list"),
        ({"FeatureAttributeNames": ["Age", 3]}, "FeatureAttributeNames must be a list"),
        ({"FeatureDataTypes": ["Age"]}, "FeatureDataTypes must be an object"),
        ({"FeatureNames": ["Age"]}, r"unknown key\(s\) \['FeatureNames'\]"),
        (["Age"], "expected a JSON object"),
    ],
)
def test_feature_specification_document_errors(document: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureSpecification.from_dict(document)  # type: ignore[arg-type]


def test_feature_specification_round_trip(tmp_path: Path) -> None:
    document = {"FeatureAttributeNames": ["Age", "Sex"], "FeatureDataTypes": {"Age": "numeric"}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document))
    loaded = FeatureSpecification.load(str(path))
    assert loaded.attribute_names == ("Age", "Sex")
    assert loaded.to_dict() == document
    with pytest.raises(ConfigError, match="does not exist"):
        FeatureSpecification.load(str(tmp_path / "absent.json"))
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        FeatureSpecification.load(str(path))


# --- raw value handling --------------------------------------------------------------------


def test_infinite_numbers_are_read_as_missing() -> None:
    table = raw(TELCO[0]).head(1000)
    table.loc[table.index[:2], "MonthlyCharges"] = ["inf", "-Infinity"]
    p = build_profile(table, "Churn")
    col = p.column("MonthlyCharges")
    assert col.kind == ColumnKind.NUMERIC
    assert "2 infinite value(s) read as missing" in col.reason
    assert col.missing_ratio == pytest.approx(2 / 1000)
    assert np.isfinite(col.stats["max"]) and np.isfinite(col.stats["mean"])
    parsed = parse_numeric(table["MonthlyCharges"], MISSING_TOKENS)
    assert parsed.iloc[:2].isna().all() and parsed.iloc[2:].notna().all()
    typed = parse_numeric(pd.Series([1.5, np.inf, -np.inf]), MISSING_TOKENS)
    assert typed.iloc[0] == 1.5 and typed.iloc[1:].isna().all()


def test_parse_numeric_reads_markers_blanks_and_garbage_as_missing() -> None:
    values = pd.Series([" 12.5", "NA", " ", "?", "1e3", "abc", None, "-4"], dtype="str")
    parsed = parse_numeric(values, MISSING_TOKENS)
    expected = [12.5, np.nan, np.nan, np.nan, 1000.0, np.nan, np.nan, -4.0]
    np.testing.assert_array_equal(parsed.to_numpy(), np.array(expected))
    assert parsed.index.equals(values.index)


def test_blank_tokens_in_a_categorical_column_are_missing_not_categories() -> None:
    table = raw(TELCO[0]).head(500)
    table.loc[table.index[:5], "Contract"] = " "
    table.loc[table.index[5:8], "Contract"] = "?"
    p = build_profile(table, "Churn")
    col = p.column("Contract")
    assert col.kind == ColumnKind.CATEGORICAL
    assert col.missing_tokens == [" "]
    assert col.category_tokens == ["?"]
    assert col.missing_ratio == pytest.approx(5 / 500)
    assert " " not in col.stats["top"] and col.stats["top"]["?"] == 3


def test_every_value_missing_or_constant_is_dropped() -> None:
    table = raw(TITANIC[0])
    table["empty"] = pd.Series(["", "NA", "?"] * 297, index=table.index).replace("", pd.NA)
    table["same"] = "x"
    table["zeros"] = "0"
    p = build_profile(table, "Survived")
    assert p.column("empty").kind == ColumnKind.DROP
    assert p.column("empty").missing_ratio == 1.0
    assert p.column("same").reason.startswith("constant")
    assert p.column("zeros").reason.startswith("constant")


def test_typed_columns_from_a_dataframe() -> None:
    table = raw(TITANIC[0])
    typed = pd.DataFrame(
        {
            "Survived": table["Survived"].astype(int),
            "Age": pd.to_numeric(table["Age"]),
            "Sex": table["Sex"].astype("category"),
            "Adult": pd.to_numeric(table["Age"]) >= 18,
            "When": pd.Timestamp("1912-04-10") + pd.to_timedelta(np.arange(891) % 5, unit="D"),
        }
    )
    p = build_profile(typed, "Survived")
    assert p.column("Age").kind == ColumnKind.NUMERIC
    assert p.column("Age").reason == "stored as a numeric type"
    assert p.column("Sex").kind == ColumnKind.CATEGORICAL
    assert p.column("Sex").n_unique == 2
    assert p.column("Adult").kind == ColumnKind.CATEGORICAL
    assert p.column("When").kind == ColumnKind.DATETIME
    assert p.target.labels == [0, 1]
    assert p.target.positive_label == 1


# --- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", [TELCO, TITANIC, BIKE, WINE, AMES, PIMA])
def test_profile_round_trip_keeps_every_decision(dataset: tuple[str, str], tmp_path: Path) -> None:
    original = profile(*dataset)
    as_dict = original.to_dict()
    assert as_dict["problem_type"] == original.problem_type.value
    assert DatasetProfile.from_dict(json.loads(json.dumps(as_dict))).to_dict() == as_dict
    path = tmp_path / "profile.json"
    original.save(path)
    loaded = DatasetProfile.load(path)
    assert loaded.to_dict() == as_dict
    assert loaded.problem_type is original.problem_type
    assert isinstance(loaded.target, TargetProfile)
    assert loaded.features() == original.features()
    for before, after in zip(original.columns, loaded.columns, strict=True):
        assert (after.name, after.kind, after.reason) == (before.name, before.kind, before.reason)
        assert after.missing_tokens == before.missing_tokens
        assert after.category_tokens == before.category_tokens
        assert after.zero_means_missing is before.zero_means_missing
        assert after.high_cardinality is before.high_cardinality
    target = dataset[1]
    y = raw(dataset[0])[target]
    np.testing.assert_array_equal(loaded.target.encode(y), original.target.encode(y))
    assert loaded.target.positive_label == original.target.positive_label


def test_column_lookup_of_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        profile(*TELCO).column("Churn")


def test_short_table_identifier_is_dropped_by_its_name_only() -> None:
    table = pd.DataFrame(
        {
            "customer_id": [str(i) for i in range(1, 11)],
            "visits": [str(i) for i in range(1, 11)],
            "churn": ["Yes", "No"] * 5,
        }
    )
    profile = build_profile(table, "churn")
    kinds = {c.name: c.kind for c in profile.columns}
    assert kinds["customer_id"] == "drop"
    assert kinds["visits"] == "numeric"  # consecutive, but 10 rows and no id-like name
