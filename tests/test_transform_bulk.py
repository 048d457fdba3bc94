"""Batch transform's fast path gives the general path's answers: large CSV payloads read column
by column (pyarrow, distinct values once, the features' NumPy twin, the CSV answer a column at a
time) and lines packed a block at a time, against the row reader and the line-by-line packer,
on a small mixed-type table."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlpilot.ensemble import EnsemblePredictor, Unit
from mlpilot.features import FeaturePipeline, PreprocessingOptions
from mlpilot.metrics import calibrate_probabilities
from mlpilot.package import InferenceModel
from mlpilot.serving import (
    ModelInvoker,
    TransformError,
    TransformSpec,
    _codec,
    _transform,
    run_transform,
)
from mlpilot.serving._codec import BULK_BYTES, Predictor, ServingSettings, encode_predictions

COLUMNS = [
    ("id", "drop"),
    ("plan", "categorical"),
    ("tenure", "numeric"),
    ("region", "categorical"),
    ("charges", "numeric"),
    ("pressure", "numeric"),
]
USED = [name for name, kind in COLUMNS if kind != "drop"]


def _table(rows: int, seed: int, unseen: bool = False) -> pd.DataFrame:
    """Strings as a CSV gives them: blanks, missing markers, whole floats, padded levels."""
    rng = np.random.default_rng(seed)
    plans = ["basic", "plus", "pro", "", " plus", "1", "1.0"] + (["enterprise"] if unseen else [])
    regions = ["north", "south", "east", "west", "NA"] + (["mars"] if unseen else [])
    tenure = rng.integers(0, 72, rows).astype(str).astype(object)
    tenure[rng.random(rows) < 0.1] = ""
    charges = np.round(rng.normal(70, 30, rows), 2).astype(str).astype(object)
    charges[rng.random(rows) < 0.05] = " "
    charges[rng.random(rows) < 0.05] = "nan"
    pressure = rng.integers(0, 5, rows).astype(str).astype(object)  # 0 means missing
    return pd.DataFrame(
        {
            "id": [f"c{seed}-{i}" for i in range(rows)],
            "plan": rng.choice(plans, rows),
            "tenure": tenure,
            "region": rng.choice(regions, rows),
            "charges": charges,
            "pressure": pressure,
        }
    )


@pytest.fixture(scope="module")
def mixed() -> InferenceModel:
    """Three members averaged: LightGBM on ordinal codes (the fast twin's exact blocks), a
    logistic regression on one-hot, imputed, standardized features (exact too), and one on
    quantile-scaled numbers (no exact twin: scikit-learn on the materialized columns)."""
    train = _table(600, seed=0)
    y = (
        (pd.to_numeric(train["tenure"], errors="coerce").fillna(30) < 20)
        ^ (train["region"] == "south")
    ).map({True: "Yes", False: "No"})
    profile = [
        {
            "name": name,
            "kind": kind,
            "zero_means_missing": name == "pressure",
            "missing_tokens": [" "] if name == "charges" else [],
            "n_unique": 8,
        }
        for name, kind in COLUMNS
        if kind != "drop"
    ]
    members: list[tuple[Any, Any]] = []
    for options, model in (
        (
            PreprocessingOptions(categorical="ordinal", high_cardinality="ordinal"),
            lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1),
        ),
        (
            PreprocessingOptions(categorical="onehot", impute=True, numeric_scaling="standard"),
            LogisticRegression(max_iter=500),
        ),
        (
            PreprocessingOptions(categorical="onehot", impute=True, numeric_scaling="quantile"),
            LogisticRegression(max_iter=500),
        ),
    ):
        pipeline = FeaturePipeline(profile, options, "BinaryClassification")
        matrix = pipeline.fit_transform(train, y)
        assert pipeline.fast_ is not None
        members.append((pipeline, model.fit(matrix, y.to_numpy())))
    info = {
        "problem_type": "BinaryClassification",
        "labels": ["No", "Yes"],
        "positive_label": "Yes",
        "target": "churn",
        "input_columns": [{"name": n, "kind": k} for n, k in COLUMNS],
        "feature_columns": USED,
        "candidate": {"CandidateName": "mixed"},
    }
    return InferenceModel(members, info)


def _csv(frame: pd.DataFrame, header: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(frame.columns)
    writer.writerows(frame.values.tolist())
    return buffer.getvalue().encode()


@pytest.mark.parametrize(
    "keys", ["predicted_label", "predicted_label,probability", "probability,predicted_label"]
)
def test_bulk_answers_what_the_row_reader_answers(
    mixed: InferenceModel, keys: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _table(1000, seed=1, unseen=True)
    shuffled = ["charges", "region", "id", "plan", "pressure", "tenure"]
    bodies = {
        "all columns": (_csv(rows), "text/csv"),
        "a header, shuffled": (_csv(rows[shuffled], header=True), "text/csv"),
        "header=present, an extra column": (
            _csv(rows.assign(note="x")[["note", *shuffled]], header=True),
            "text/csv; header=present",
        ),
        "the used columns only": (_csv(rows[USED]), "text/csv"),
    }
    predictor = Predictor(
        mixed, ServingSettings.from_environment({"SAGEMAKER_INFERENCE_OUTPUT": keys})
    )
    calls: list[int] = []
    bulk = mixed.predict_coded
    monkeypatch.setattr(mixed, "predict_coded", lambda c: calls.append(1) or bulk(c))
    for what, (body, content_type) in bodies.items():
        assert len(body) >= BULK_BYTES
        for accept in ("text/csv", "application/jsonlines"):
            fast, kind = predictor.invoke(body, content_type, accept)
            _, raw, general, general_kind = predictor.predict_body(body, content_type, accept)
            assert (fast, kind) == (general, general_kind), what
            assert len(fast.splitlines()) == len(rows)
    assert len(calls) == 2 * len(bodies)  # each body went through the bulk path
    # Every member's answer counts: the unseen levels and missing values reach all three.
    assert 0 < int((raw[:, 1] > 0.5).sum()) < len(rows)


def test_an_ensemble_reads_the_bulk_columns_as_its_rows(mixed: InferenceModel) -> None:
    """An ensemble package predicts from the cleaned columns (materialized): the same answer."""
    units = [Unit(f"unit-{i}", [member]) for i, member in enumerate(mixed.members)]
    blend = EnsemblePredictor(units, [0.5, 0.3, 0.2], "BinaryClassification", 2)
    model = InferenceModel(blend, mixed.info)
    settings = ServingSettings.from_environment({"SAGEMAKER_INFERENCE_OUTPUT": "probability"})
    predictor = Predictor(model, settings)
    body = _csv(_table(800, seed=5, unseen=True))
    fast, _ = predictor.invoke(body, "text/csv", "text/csv")
    _, _, general, _ = predictor.predict_body(body, "text/csv", "text/csv")
    assert fast == general and fast.count(b"\n") == 800
    read = _codec.bulk_csv_columns(body, "text/csv", predictor.columns, USED)
    assert read is not None
    assert np.array_equal(
        model.predict_coded(read), model.predict_raw(_table(800, seed=5, unseen=True))
    )


def test_a_calibrated_package_answers_alike_on_every_path(mixed: InferenceModel) -> None:
    """A log-loss job's calibration (temperature and floor) is part of the package: the
    in-process prediction, an endpoint's row reader, batch transform's bulk path and the
    ensemble all give the calibrated probabilities."""
    calibration = {"Temperature": 2.5, "Floor": 0.02}
    info = {**mixed.info, "candidate": {"CandidateName": "calibrated", "Calibration": calibration}}
    plain = InferenceModel(mixed.members, mixed.info)
    calibrated = InferenceModel(mixed.members, info)
    rows = _table(800, seed=6, unseen=True)
    expected = calibrate_probabilities(plain.predict_raw(rows), 2.5, 0.02)
    np.testing.assert_allclose(calibrated.predict_raw(rows), expected, rtol=1e-12)
    assert not np.allclose(expected, plain.predict_raw(rows), atol=1e-3)
    assert expected.min() >= 0.02 / 1.04 - 1e-12
    shown = calibrated.predict(rows.head(5), probabilities=True)
    np.testing.assert_allclose(shown["probability_Yes"], expected[:5, 1], rtol=1e-12)
    body = _csv(rows)
    read = _codec.bulk_csv_columns(body, "text/csv", [n for n, _ in COLUMNS], USED)
    assert read is not None
    np.testing.assert_allclose(calibrated.predict_coded(read), expected, rtol=1e-12)
    settings = ServingSettings.from_environment({"SAGEMAKER_INFERENCE_OUTPUT": "probabilities"})
    predictor = Predictor(calibrated, settings)
    fast, _ = predictor.invoke(body, "text/csv", "application/jsonlines")
    _, raw, general, _ = predictor.predict_body(body, "text/csv", "application/jsonlines")
    assert fast == general
    np.testing.assert_allclose(raw, expected, rtol=1e-12)
    answered = [json.loads(line)["probabilities"] for line in fast.splitlines()]
    np.testing.assert_allclose(answered, expected, atol=1e-6)
    units = [Unit(f"unit-{i}", [member]) for i, member in enumerate(mixed.members)]
    blend = EnsemblePredictor(units, [0.5, 0.3, 0.2], "BinaryClassification", 2)
    ensemble = InferenceModel(blend, info)
    blended = InferenceModel(blend, mixed.info).predict_raw(rows)
    np.testing.assert_allclose(
        ensemble.predict_coded(read), calibrate_probabilities(blended, 2.5, 0.02), rtol=1e-12
    )


def test_a_package_copied_with_a_calibration_predicts_calibrated(
    mixed: InferenceModel, tmp_path: Path
) -> None:
    """What an ENSEMBLING job with no time left to assemble a calibrated single model ships:
    the model's own package, files as they are, its manifest given the calibration."""
    source = mixed.save(tmp_path / "model", archive=False)
    facts = {"CandidateName": "calibrated", "Calibration": {"Temperature": 0.5, "Floor": 0.0}}
    InferenceModel.copy_package(source, tmp_path / "copy", archive=True, candidate=facts)
    copied = InferenceModel.load(tmp_path / "copy" / "model.tar.gz")
    assert copied.candidate_name == "calibrated" and copied.calibration == (0.5, 0.0)
    rows = _table(100, seed=7)
    as_trained = InferenceModel.load(source).predict_raw(rows)
    assert InferenceModel.load(source).calibration is None
    np.testing.assert_allclose(
        copied.predict_raw(rows), calibrate_probabilities(as_trained, 0.5, 0.0), rtol=1e-12
    )


def test_bodies_the_bulk_reader_leaves_to_the_row_reader(mixed: InferenceModel) -> None:
    """Quoted fields, rows of another length, too few rows: the bulk reader declines; a bad
    number: the model declines. The row reader answers, naming the row."""
    fast = Predictor(mixed, ServingSettings.from_environment({}))
    rows_only = Predictor(mixed, ServingSettings.from_environment({}))
    rows_only._bulk_columns = None
    rows = _table(1500, seed=2)
    quoted = rows.copy()
    quoted.loc[3, "plan"] = "pro, annual"
    bad = rows.copy()
    bad.loc[700, "tenure"] = "forever"
    declined = {"quoted": _csv(quoted), "short row": _csv(rows) + b"a,b\n", "few": _csv(rows[:60])}
    for what, body in declined.items():
        read = _codec.bulk_csv_columns(
            body, "text/csv", fast.columns, USED, used_columns=fast.used_columns
        )
        assert read is None, what
    for body in [*declined.values(), _csv(bad), b"\xef\xbb\xbf" + _csv(rows)]:
        answer, expected = fast.handle(body, "text/csv"), rows_only.handle(body, "text/csv")
        assert (answer.status, answer.body) == (expected.status, expected.body)
    refused = fast.handle(_csv(bad), "text/csv")
    assert refused.status == 400 and "row 701" in refused.message and "forever" in refused.message
    assert fast.handle(declined["short row"], "text/csv").status == 400


def test_csv_answers_a_column_at_a_time_as_csv_writer_writes_them() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet([1, 1, 1], 200)  # over BULK_MIN_ROWS: written a column at a time
    proba[0] = [1e-300, 0.5, 0.5]
    proba[1] = [1 / 3, 1 / 3, 1 / 3]
    for labels in (["a", "b", "c"], [0.0, 1.0, 2.0], ["x,y", "b", "c"], ["", "b", "c"]):
        for keys in (("predicted_label",), ("predicted_label", "probability"), ("probability",)):
            expected = io.StringIO()
            records = _codec._records(proba, labels, keys, True)
            csv.writer(expected, lineterminator="\n").writerows(
                [_codec._csv_value(r[k]) for k in keys] for r in records
            )
            got = encode_predictions(
                proba, labels=labels, classification=True, keys=keys, accept="text/csv"
            )
            assert got == expected.getvalue().encode()
    values = np.tile([0.1, 1e-7, 123456789.125, -0.0, 1e22], 20)
    got = encode_predictions(
        values, labels=[], classification=False, keys=("predicted_label",), accept="text/csv"
    )
    assert got == b"0.1\n1e-07\n123456789.125\n-0.0\n1e+22\n" * 20


def _spec(tmp: Any, strategy: str, source: str) -> TransformSpec:
    return TransformSpec.from_request(
        {
            "TransformJobName": f"bulk-{strategy}",
            "ModelName": "mixed",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": {"S3OutputPath": str(tmp / strategy), "AssembleWith": "Line"},
            "BatchStrategy": strategy,
            "MaxPayloadInMB": 1,
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        }
    )


def test_multirecord_output_equals_single_records(
    mixed: InferenceModel, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path end to end (lines packed by the block, payloads read in bulk) writes what
    one record per request through the row reader writes."""
    calls: list[str] = []
    bulk = mixed.predict_coded
    monkeypatch.setattr(mixed, "predict_coded", lambda c: calls.append("bulk") or bulk(c))
    folder = tmp_path / "in"
    folder.mkdir()
    rows = _table(700, seed=4, unseen=True)
    (folder / "data.csv").write_bytes(_csv(rows[:300]) + b"\n  \n" + _csv(rows[300:]))
    outputs = {}
    for strategy in ("MultiRecord", "SingleRecord"):
        spec = _spec(tmp_path, strategy, str(folder))
        invoker = ModelInvoker(mixed, spec.container_environment())
        result = run_transform(spec, invoker)
        assert result.status == "Completed" and result.records == len(rows)
        outputs[strategy] = (tmp_path / strategy / "data.csv.out").read_bytes()
        calls.append(strategy)
    assert calls == ["bulk", "MultiRecord", "SingleRecord"]  # one payload, read in bulk
    assert outputs["MultiRecord"] == outputs["SingleRecord"]
    assert outputs["MultiRecord"].count(b"\n") == len(rows)


def _packed(run: Any, data: bytes, fast: bool) -> list[Any]:
    """Every batch (payload, records, line range, count), then the error if one is raised."""
    out: list[Any] = []
    stream = io.BytesIO(data)
    batches = (
        _transform._LinePacker(run, "in.csv").batches(stream)
        if fast
        else run.batches(run.records_of(stream, "in.csv"), "in.csv")
    )
    try:
        for b in batches:
            out.append((b.payload, [(r.line, r.data) for r in b.records], b.lines(), b.count))
    except TransformError as exc:
        out.append(str(exc))
    return out


def test_lines_packed_by_the_block_as_one_by_one(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blank and whitespace lines, carriage returns, a byte-order mark, lines over the limit,
    payloads spanning blocks: the same payloads, line numbers and errors."""
    monkeypatch.setattr(_transform, "_BLOCK", 37)
    run = _transform._Run(
        _spec(tmp_path, "MultiRecord", str(tmp_path)), lambda *a: None, None, None
    )
    pieces = [b"a,b", b"1,2,3", b"", b"  ", b"\r", b"x\r", b"\xef\xbb\xbfh", b" lead", b"w" * 80]
    rng = random.Random(0)
    for _ in range(3000):
        data = b"\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        data += b"\n" if rng.random() < 0.5 else b""
        run.max_bytes = rng.choice([10, 20, 50, 1000])
        assert _packed(run, data, fast=True) == _packed(run, data, fast=False), data
