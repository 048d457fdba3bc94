"""The container codec: every request format, every response format and content key, and
every refusal with its HTTP status, on real trained packages (binary, multiclass, regression)."""

from __future__ import annotations

import ast
import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

import helpers_models
from helpers_models import TrainedModel, csv_lines
from mlpilot.errors import ConfigError
from mlpilot.serving import (
    InvocationError,
    InvocationResult,
    Predictor,
    ServingSettings,
    choose_accept,
    decode_rows,
    parse_output_keys,
)

ALL_KEYS = "predicted_label,probability,probabilities,labels"


@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return helpers_models.churn_model(tmp_path_factory)


@pytest.fixture(scope="session")
def insurance(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return helpers_models.insurance_model(tmp_path_factory)


@pytest.fixture(scope="session")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return helpers_models.penguins_model(tmp_path_factory)


def predictor(trained: TrainedModel, **env: str) -> Predictor:
    return Predictor(trained.model, ServingSettings.from_environment(env))


def ok(result: InvocationResult) -> str:
    assert result.status == 200, result.message
    return result.message


def refused(result: InvocationResult, status: int, *fragments: str) -> str:
    assert result.status == status, (result.status, result.message)
    assert result.content_type.startswith("text/plain")
    for fragment in fragments:
        assert fragment in result.message, (fragment, result.message)
    assert "\n" not in result.message.strip()  # one line
    return result.message


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# -- responses ----------------------------------------------------------------------------------
def test_csv_default_is_predicted_label_per_row(churn: TrainedModel) -> None:
    expected = churn.model.predict(churn.rows.iloc[:25])
    result = predictor(churn).handle(churn.csv_body(0, 25), "text/csv", None)
    assert result.content_type == "text/csv"
    lines = ok(result).splitlines()
    assert lines == [str(v) for v in expected["predicted_label"]]


def test_csv_with_every_content_key(churn: TrainedModel) -> None:
    expected = churn.model.predict(churn.rows.iloc[:10], probabilities=True)
    text = ok(predictor(churn, SAGEMAKER_INFERENCE_OUTPUT=ALL_KEYS).handle(churn.csv_body(0, 10)))
    rows = csv_rows(text)
    assert len(rows) == 10
    for row, (_, want) in zip(rows, expected.iterrows(), strict=True):
        label, probability, probabilities, labels = row
        assert label == want["predicted_label"]
        assert float(probability) == pytest.approx(want["probability"])  # of the predicted label
        assert probabilities.startswith("[") and labels.startswith("['")  # Python-style lists
        assert ast.literal_eval(labels) == ["No", "Yes"]
        values = ast.literal_eval(probabilities)
        assert values == pytest.approx([want["probability_No"], want["probability_Yes"]])
        assert float(probability) == pytest.approx(max(values))


def test_keys_follow_the_order_asked(churn: TrainedModel) -> None:
    text = ok(
        predictor(churn, SAGEMAKER_INFERENCE_OUTPUT=" probability , predicted_label").handle(
            churn.csv_body()
        )
    )
    probability, label = csv_rows(text)[0]
    assert label in ("No", "Yes") and 0.5 <= float(probability) <= 1


def test_json_and_jsonlines_responses(churn: TrainedModel) -> None:
    serve = predictor(churn, SAGEMAKER_INFERENCE_OUTPUT=ALL_KEYS)
    expected = churn.model.predict(churn.rows.iloc[:3])
    result = serve.handle(churn.csv_body(0, 3), "text/csv", "application/json")
    assert result.content_type == "application/json"
    predictions = json.loads(ok(result))["predictions"]
    assert [p["predicted_label"] for p in predictions] == list(expected["predicted_label"])
    assert predictions[0]["labels"] == ["No", "Yes"]
    assert predictions[0]["probability"] == pytest.approx(max(predictions[0]["probabilities"]))
    result = serve.handle(churn.csv_body(0, 3), "text/csv", "application/jsonlines")
    assert result.content_type == "application/jsonlines"
    lines = [json.loads(line) for line in ok(result).splitlines()]
    assert lines == predictions


def test_multiclass_lists_every_class(penguins: TrainedModel) -> None:
    serve = predictor(penguins, SAGEMAKER_INFERENCE_OUTPUT=ALL_KEYS)
    body = penguins.csv_body(0, 20)
    predictions = json.loads(ok(serve.handle(body, "text/csv", "application/json")))["predictions"]
    expected = penguins.model.predict(penguins.rows.iloc[:20])
    assert [p["predicted_label"] for p in predictions] == list(expected["predicted_label"])
    for p in predictions:
        assert sorted(p["labels"]) == ["Adelie", "Chinstrap", "Gentoo"]
        assert sum(p["probabilities"]) == pytest.approx(1)
        assert p["predicted_label"] == p["labels"][int(np.argmax(p["probabilities"]))]
        assert p["probability"] == pytest.approx(max(p["probabilities"]))


def test_regression_returns_the_value(insurance: TrainedModel) -> None:
    serve = predictor(insurance)
    expected = insurance.model.predict(insurance.rows.iloc[:5])["predicted_label"]
    text = ok(serve.handle(insurance.csv_body(0, 5), "text/csv", "text/csv"))
    assert [float(v) for v in text.split()] == pytest.approx(list(expected))
    predictions = json.loads(ok(serve.handle(insurance.csv_body(0, 2), None, "application/json")))
    assert predictions["predictions"][0]["predicted_label"] == pytest.approx(expected[0])


def test_regression_refuses_class_keys(insurance: TrainedModel) -> None:
    serve = predictor(insurance, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probability")
    refused(serve.handle(insurance.csv_body()), 400, "'probability'", "regression")


# -- requests -------------------------------------------------------------------------------------
def test_json_request_shapes(churn: TrainedModel) -> None:
    serve = predictor(churn)
    frame = churn.rows.iloc[:2]
    want = ok(serve.handle(churn.csv_body(0, 2))).splitlines()
    lists = frame.values.tolist()
    objects = frame.to_dict(orient="records")
    bodies = {
        "instances of lists": {"instances": lists},
        "instances of objects": {"instances": objects},
        "instances of features": {"instances": [{"features": r} for r in lists]},
        "list of rows": lists,
        "list of objects": objects,
    }
    for shape, document in bodies.items():
        result = serve.handle(json.dumps(document).encode(), "application/json", "text/csv")
        assert ok(result).splitlines() == want, shape
    single = {
        "one flat row": lists[0],
        "one object": objects[0],
        "one features": {"features": lists[0]},
    }
    for shape, document in single.items():
        result = serve.handle(json.dumps(document).encode(), "application/json", None)
        assert ok(result).splitlines() == want[:1], shape


def test_jsonlines_request_and_json_documents_per_line(churn: TrainedModel) -> None:
    serve = predictor(churn)
    want = ok(serve.handle(churn.csv_body(0, 3))).splitlines()
    records = churn.rows.iloc[:3].to_dict(orient="records")
    lines = "\n".join(json.dumps(r) for r in records) + "\n\n"
    assert ok(serve.handle(lines.encode(), "application/jsonlines")).splitlines() == want
    # A MultiRecord batch of JSON records: one document per line under application/json.
    assert ok(serve.handle(lines.encode(), "application/json")).splitlines() == want


def test_csv_quoting_header_and_blank_lines(churn: TrainedModel) -> None:
    serve = predictor(churn)
    frame = churn.rows.iloc[:2].copy()
    want = ok(serve.handle(csv_lines(frame))).splitlines()
    # RFC 4180: a quoted field with a comma and doubled quotes is one value.
    frame.loc[frame.index[0], "customerID"] = 'id, with "quotes"'
    body = csv_lines(frame)
    assert b'"id, with ""quotes"""' in body
    assert ok(serve.handle(b"\r\n" + body.replace(b"\n", b"\r\n") + b"\n")).splitlines() == want
    # header=present matches columns by name, in any order, ignoring extras.
    shuffled = frame[list(reversed(frame.columns))].assign(extra="x")
    with_header = shuffled.to_csv(index=False).encode()
    assert ok(serve.handle(with_header, "text/csv; header=present")).splitlines() == want


def test_missing_content_type_means_csv(churn: TrainedModel) -> None:
    assert ok(predictor(churn).handle(churn.csv_body(), None, None))


def test_accept_negotiation(churn: TrainedModel) -> None:
    assert choose_accept(None) == "text/csv"
    assert choose_accept("*/*", "application/json") == "application/json"
    assert choose_accept("application/jsonlines;q=0.5, application/json") == "application/json"
    assert choose_accept("image/png, text/*;q=0.2") == "text/csv"
    assert choose_accept("application/jsonl") == "application/jsonlines"
    serve = predictor(churn, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="application/json")
    for accept in (None, "*/*"):
        result = serve.handle(churn.csv_body(), "text/csv", accept)
        assert result.content_type == "application/json"
        assert "predictions" in json.loads(ok(result))


# -- refusals -------------------------------------------------------------------------------------
def test_wrong_number_of_values(churn: TrainedModel) -> None:
    serve = predictor(churn)
    n = len(churn.model.input_columns)
    message = refused(serve.handle(b"42,12,65.30,783.60,Month-to-month,Electronic check"), 400)
    assert f"expected {n} values" in message and "got 6" in message and "customerID" in message
    body = churn.csv_body(0, 3).splitlines()
    body[1] += b",Yes"  # the target left in the second row
    message = refused(serve.handle(b"\n".join(body)), 400, "row 2:", f"got {n + 1}")
    assert "leave out the target column 'Churn'" in message


def test_text_in_a_numeric_column_names_the_row(churn: TrainedModel) -> None:
    frame = churn.rows.iloc[:40].copy()
    frame.loc[frame.index[29], "tenure"] = "twelve"
    message = refused(predictor(churn).handle(csv_lines(frame)), 400, "row 30:", "'tenure'")
    assert "twelve" in message
    single = refused(predictor(churn).handle(csv_lines(frame.iloc[29:30])), 400, "'tenure'")
    assert not single.startswith("row")


def test_empty_and_oversized_bodies(churn: TrainedModel) -> None:
    serve = predictor(churn)
    refused(serve.handle(b""), 400, "empty")
    refused(serve.handle(b"\n  \n"), 400, "empty")
    body = churn.csv_body(0, 1) * 60_000  # about 8 MB
    assert len(body) > 6_291_456
    refused(serve.handle(body), 413, "6,291,456")
    small = predictor(churn, MAX_CONTENT_LENGTH="100")
    refused(small.handle(churn.csv_body()), 413, "100 bytes")


def test_unsupported_types_and_keys(churn: TrainedModel) -> None:
    serve = predictor(churn)
    refused(serve.handle(churn.csv_body(), "application/x-recordio-protobuf"), 415, "Content-Type")
    refused(serve.handle(churn.csv_body(), "text/csv", "image/png"), 406, "'image/png'")
    bad_default = predictor(churn, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="application/x-npy")
    refused(bad_default.handle(churn.csv_body(), "text/csv", None), 406, "application/x-npy")
    unknown = predictor(churn, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,score")
    refused(unknown.handle(churn.csv_body()), 400, "unknown content key 'score'")
    with pytest.raises(InvocationError) as caught:
        parse_output_keys("label")
    assert caught.value.status == 400


def test_unreadable_bodies(churn: TrainedModel) -> None:
    serve = predictor(churn)
    refused(serve.handle(b'{"instances": [[1, 2', "application/json"), 400, "invalid JSON")
    refused(serve.handle(b'{"instances": 3}', "application/json"), 400, "instances")
    refused(serve.handle(b"42", "application/json"), 400, "not a row")
    refused(serve.handle(b"\xff\xfe\x00", "text/csv"), 400, "UTF-8")
    refused(serve.handle(b'a,"b"c,d', "text/csv"), 400, "malformed CSV")
    row = churn.rows.iloc[0].to_dict()
    nested = {**row, "tenure": [1, 2]}
    refused(serve.handle(json.dumps(nested).encode(), "application/json"), 400, "'tenure'")
    partial = {k: v for k, v in row.items() if k != "Contract"}
    refused(serve.handle(json.dumps([row, partial]).encode(), "application/json"), 400, "row 2")
    lines = (json.dumps(row) + "\nnot json\n").encode()
    refused(serve.handle(lines, "application/jsonlines"), 400, "line 2", "invalid JSON")


def test_settings_from_environment() -> None:
    settings = ServingSettings.from_environment(
        {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "20", "SAGEMAKER_BATCH_STRATEGY": "single_record"}
    )
    assert settings.max_payload_bytes == 20 * 2**20
    assert settings.execution_parameters()["BatchStrategy"] == "SINGLE_RECORD"
    assert settings.execution_parameters()["MaxPayloadInMB"] == 20
    assert ServingSettings.from_environment({}).max_payload_bytes == 6_291_456
    with pytest.raises(ConfigError, match="MAX_CONTENT_LENGTH"):
        ServingSettings.from_environment({"MAX_CONTENT_LENGTH": "lots"})
    with pytest.raises(ConfigError, match="SAGEMAKER_BATCH_STRATEGY"):
        ServingSettings.from_environment({"SAGEMAKER_BATCH_STRATEGY": "sometimes"})


def test_many_rows_match_the_package(churn: TrainedModel) -> None:
    """200 rows in one request (the package's vectorized path) agree with predict()."""
    expected = churn.model.predict(churn.rows)
    text = ok(
        predictor(churn, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probability").handle(
            churn.csv_body(0, len(churn.rows))
        )
    )
    got = pd.DataFrame(csv_rows(text), columns=["predicted_label", "probability"])
    assert list(got["predicted_label"]) == list(expected["predicted_label"])
    assert got["probability"].astype(float).to_numpy() == pytest.approx(
        expected["probability"].to_numpy()
    )


def test_rows_of_the_used_features_only_are_accepted() -> None:
    """The seed recipe sends rows without the id column the model ignores."""
    columns = ["customer_id", "age", "plan"]
    frame = decode_rows(
        b"42,monthly\n55,yearly\n", "text/csv", columns, used_columns=["age", "plan"]
    )
    assert list(frame.columns) == columns
    assert frame["customer_id"].isna().all()
    assert frame["age"].tolist() == ["42", "55"]
    full = decode_rows(b"7,42,monthly\n", "text/csv", columns, used_columns=["age", "plan"])
    assert full.iloc[0].tolist() == ["7", "42", "monthly"]
    with pytest.raises(InvocationError) as caught:
        decode_rows(b"42\n", "text/csv", columns, used_columns=["age", "plan"])
    assert (
        "expected 3 values" in caught.value.message and "(or 2: age, plan)" in caught.value.message
    )


# -- forgiving requests ---------------------------------------------------------------------------
def test_every_body_shape_predicts_the_same(churn: TrainedModel) -> None:
    """A headered CSV in any column order, with extra columns, without a header; JSON records,
    JSON lines and Parquet: the same predictions and probabilities."""
    serve = predictor(churn, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probability")
    frame = churn.rows.iloc[:20]
    want = ok(serve.handle(csv_lines(frame)))
    shuffled = frame[list(reversed(frame.columns))]
    extra = shuffled.assign(Churn="No", note="x")
    objects = frame.to_dict(orient="records")
    parquet = io.BytesIO()
    extra.to_parquet(parquet)
    bodies = {
        "header, training order": (frame.to_csv(index=False).encode(), "text/csv"),
        "header, reversed": (shuffled.to_csv(index=False).encode(), "text/csv"),
        "header, extras": (extra.to_csv(index=False).encode(), "text/csv;header=present"),
        "JSON records": (json.dumps(objects).encode(), "application/json"),
        "JSON lines": ("\n".join(map(json.dumps, objects)).encode(), "application/jsonlines"),
        "Parquet": (parquet.getvalue(), "application/x-parquet"),
    }
    for shape, (body, content_type) in bodies.items():
        assert ok(serve.handle(body, content_type)) == want, shape


def test_header_rule_and_its_override(churn: TrainedModel) -> None:
    serve = predictor(churn)
    frame = churn.rows.iloc[:3]
    headered = frame.to_csv(index=False).encode()
    want = ok(serve.handle(csv_lines(frame))).splitlines()
    # Every value of the first line is a column name: a header, unless the parameter says not.
    assert ok(serve.handle(headered, "text/csv")).splitlines() == want
    refused(serve.handle(headered, "text/csv;header=absent"), 400, "row 1:", "must be numeric")
    # A data row is not a header, unless the parameter says it is (then columns are missing).
    assert ok(serve.handle(csv_lines(frame), "text/csv;header=absent")).splitlines() == want
    refused(serve.handle(csv_lines(frame), "text/csv;header=present"), 400, "header lacks")
    refused(serve.handle(headered, "text/csv;header=yes"), 400, "header=present or absent")
    # A header with an unknown column is data by the rule: the error says what to send.
    extra = frame.assign(note="x").to_csv(index=False).encode()
    refused(serve.handle(extra), 400, "row 1:", "text/csv;header=present")


def test_missing_columns_are_named(churn: TrainedModel) -> None:
    serve = predictor(churn)
    frame = churn.rows.iloc[:2].drop(columns=["tenure", "Contract"])
    body = frame.to_csv(index=False).encode()
    refused(serve.handle(body, "text/csv;header=present"), 400, "tenure", "Contract", "lacks")
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    refused(serve.handle(parquet.getvalue(), "application/x-parquet"), 400, "Parquet", "tenure")
    refused(serve.handle(b"not parquet", "application/x-parquet"), 400, "not a readable Parquet")


def test_dropped_identifier_may_be_present_or_absent() -> None:
    columns = ["customer_id", "age", "plan"]
    used = ["age", "plan"]
    for body, content_type in (
        (b"plan,age\nmonthly,42\n", "text/csv"),
        (b"age,plan,customer_id\n42,monthly,7\n", "text/csv"),
        (b'[{"age": 42, "plan": "monthly"}]', "application/json"),
        (b"42,monthly\n", "text/csv"),
    ):
        frame = decode_rows(body, content_type, columns, used_columns=used)
        assert frame[["age", "plan"]].astype(str).values.tolist() == [["42", "monthly"]]
    with pytest.raises(InvocationError) as caught:
        decode_rows(b"customer_id,age\n7,42\n", "text/csv", columns, used_columns=used)
    assert "lacks column(s) plan" in caught.value.message


def test_probabilities_by_label(penguins: TrainedModel) -> None:
    expected = penguins.model.predict(penguins.rows.iloc[:4], probabilities=True)
    serve = predictor(penguins, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probabilities_by_label")
    result = serve.handle(penguins.csv_body(0, 4), "text/csv", "application/json")
    records = json.loads(ok(result))["predictions"]
    for (_, want), got in zip(expected.iterrows(), records, strict=True):
        by_label = got["probabilities_by_label"]
        assert set(by_label) == {c.removeprefix("probability_") for c in want.index[2:]}
        for label, value in by_label.items():
            assert value == pytest.approx(want[f"probability_{label}"])
    text = ok(serve.handle(penguins.csv_body(0, 1), "text/csv", "text/csv"))
    assert isinstance(ast.literal_eval(csv_rows(text)[0][1]), dict)


@pytest.mark.parametrize("n_rows", [1, 64, 65])
def test_decoded_rows_are_one_object_block_of_the_values_sent(n_rows: int) -> None:
    """A few rows are decoded into one object block value by value (JSON scalars kept as sent);
    the DataFrame is the one pandas builds from the rows, for a few rows and for more."""
    columns = ["a", "b", "c"]
    rows = [[str(i), i + 0.5 if i % 2 else True, None] for i in range(n_rows)]
    body = json.dumps({"instances": [dict(zip(columns, row, strict=True)) for row in rows]})
    decoded = decode_rows(body.encode(), "application/json", columns)
    expected = pd.DataFrame(rows, columns=columns, dtype=object)
    pd.testing.assert_frame_equal(decoded, expected)
    assert decoded.iloc[0, 1] is True and decoded._mgr.nblocks == 1
    text = "\n".join(f"{i},x{i}," for i in range(n_rows)).encode()
    decoded = decode_rows(text, "text/csv", columns)
    expected = pd.DataFrame([[str(i), f"x{i}", ""] for i in range(n_rows)], columns=columns)
    pd.testing.assert_frame_equal(decoded, expected.astype(object))
