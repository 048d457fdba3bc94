"""Batch transform: CreateTransformJob's semantics on local folders, manifests, gzip and S3,
through the in-process model and a real ``serve-model`` container; failures name the object
and line and leave no output; memory does not grow with the input."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

import helpers_models
from conftest import S3Server
from helpers_models import TrainedModel, csv_lines
from mlpilot.cli.main import app
from mlpilot.errors import ConfigError
from mlpilot.package import Keyring
from mlpilot.package._crypto import MAGIC
from mlpilot.serving import (
    HttpInvoker,
    InvocationResult,
    JsonPathError,
    JsonPathMismatch,
    ModelInvoker,
    TransformError,
    TransformProgress,
    TransformSpec,
    compile_path,
    run_transform,
)

KEYS = {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"}


@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return helpers_models.churn_model(tmp_path_factory)


class Counting:
    """An invoker that counts calls and payload sizes around another."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def __call__(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> InvocationResult:
        with self.lock:
            self.sizes.append(len(body))
        result: InvocationResult = self.inner(body, content_type, accept)
        return result

    def execution_parameters(self) -> dict[str, Any]:
        parameters: dict[str, Any] = self.inner.execution_parameters()
        return parameters


def spec(source: str | Path, output: str | Path, **fields: Any) -> TransformSpec:
    """A CreateTransformJob request for ``source``: CSV split by line, assembled by line."""
    processing = fields.pop("DataProcessing", None)
    request: dict[str, Any] = {
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": fields.pop("S3DataType", "S3Prefix"),
                    "S3Uri": str(source),
                }
            },
            "ContentType": fields.pop("ContentType", "text/csv"),
            "SplitType": fields.pop("SplitType", "Line"),
            "CompressionType": fields.pop("CompressionType", "None"),
        },
        "TransformOutput": {
            "S3OutputPath": str(output),
            "Accept": fields.pop("Accept", "text/csv"),
            "AssembleWith": fields.pop("AssembleWith", "Line"),
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        **fields,
    }
    if processing:
        request["DataProcessing"] = processing
    return TransformSpec.from_request(request)


def labels(trained: TrainedModel, frame: pd.DataFrame) -> list[str]:
    return [str(v) for v in trained.model.predict(frame)["predicted_label"]]


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_folder_with_sub_folder(churn: TrainedModel, tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    (source / "a.csv").write_bytes(csv_lines(churn.rows.iloc[:40]))
    # A blank line is skipped; a missing final newline is fine.
    (source / "sub" / "b.csv").write_bytes(
        csv_lines(churn.rows.iloc[40:50]) + b"\n" + csv_lines(churn.rows.iloc[50:60]).rstrip()
    )
    (source / "_SUCCESS").write_text("")  # hidden markers are not inputs
    reports: list[TransformProgress] = []
    result = run_transform(
        spec(source, tmp_path / "out"), ModelInvoker(churn.model), progress=reports.append
    )
    assert result.status == "Completed" and result.records == 60 and result.files == 2
    assert files_under(tmp_path / "out") == ["a.csv.out", "sub/b.csv.out"]
    a = (tmp_path / "out" / "a.csv.out").read_text().splitlines()
    b = (tmp_path / "out" / "sub" / "b.csv.out").read_text().splitlines()
    assert a == labels(churn, churn.rows.iloc[:40])
    assert b == labels(churn, churn.rows.iloc[40:60])
    assert result.outputs[str(source / "sub" / "b.csv")] == str(
        tmp_path / "out" / "sub" / "b.csv.out"
    )
    assert reports[-1] == TransformProgress(2, 2, 60, None)
    assert [r.records_done for r in reports if r.current] == [40, 60]


def test_multi_record_packs_payloads_single_record_does_not(
    churn: TrainedModel, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    big = pd.concat([churn.rows] * 40, ignore_index=True)  # 8,000 rows, about 1.2 MB
    source.write_bytes(csv_lines(big))
    assert source.stat().st_size > 2**20
    multi = Counting(ModelInvoker(churn.model))
    run_transform(spec(source, tmp_path / "multi", MaxPayloadInMB=1), multi)
    assert len(multi.sizes) == 2 and max(multi.sizes) <= 2**20
    single = Counting(ModelInvoker(churn.model))
    small = tmp_path / "small" / "in.csv"
    small.parent.mkdir()
    small.write_bytes(csv_lines(churn.rows.iloc[:25]))
    run_transform(spec(small, tmp_path / "single", BatchStrategy="SingleRecord"), single)
    assert len(single.sizes) == 25
    packed = Counting(ModelInvoker(churn.model))
    run_transform(spec(small, tmp_path / "packed", BatchStrategy="MultiRecord"), packed)
    assert len(packed.sizes) == 1
    assert (tmp_path / "single" / "in.csv.out").read_text() == (
        tmp_path / "packed" / "in.csv.out"
    ).read_text()
    assert (tmp_path / "multi" / "in.csv.out").read_text().splitlines() == labels(churn, big)


def test_join_with_id_column_and_filters(churn: TrainedModel, tmp_path: Path) -> None:
    """Autopilot's recipe: keep an ID column out of the features, join it back."""
    frame = churn.rows.iloc[:30].copy()
    frame.insert(0, "row_id", [f"id-{i}" for i in range(30)])
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_bytes(csv_lines(frame))
    processing = {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
    run_transform(
        spec(
            tmp_path / "in", tmp_path / "out", DataProcessing=processing, MaxConcurrentTransforms=2
        ),
        ModelInvoker(churn.model, KEYS),
    )
    lines = (tmp_path / "out" / "data.csv.out").read_text().splitlines()
    expected = churn.model.predict(churn.rows.iloc[:30])
    assert [line.split(",")[0] for line in lines] == list(frame["row_id"])
    assert [float(line.split(",")[1]) for line in lines] == pytest.approx(
        list(expected["probability"])
    )
    # The whole joined record: the input columns (ID included), then the output columns.
    processing = {"InputFilter": "$[1:]", "JoinSource": "Input"}
    run_transform(
        spec(tmp_path / "in", tmp_path / "whole", DataProcessing=processing),
        ModelInvoker(churn.model, KEYS),
    )
    first = (tmp_path / "whole" / "data.csv.out").read_text().splitlines()[0]
    assert first.startswith(csv_lines(frame.iloc[:1]).decode().strip() + ",")
    assert first.split(",")[-2] == expected["predicted_label"].iloc[0]
    # An index outside the joined record fails the job, naming the line and the filter.
    processing = {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,40]"}
    with pytest.raises(
        TransformError, match=r"data\.csv line 1: OutputFilter \$\[0,40\]: index 40"
    ):
        run_transform(
            spec(tmp_path / "in", tmp_path / "outside", DataProcessing=processing),
            ModelInvoker(churn.model, KEYS),
        )
    assert not list((tmp_path / "outside").glob("*.out"))


def test_json_lines_input(churn: TrainedModel, tmp_path: Path) -> None:
    records = churn.rows.iloc[:12].to_dict(orient="records")
    (tmp_path / "in").mkdir()
    with (tmp_path / "in" / "rows.jsonl").open("w") as handle:
        for i, record in enumerate(records):
            handle.write(json.dumps({"id": i, **record}) + "\n")
    processing = {"JoinSource": "Input", "OutputFilter": "$['id','SageMakerOutput']"}
    run_transform(
        spec(
            tmp_path / "in",
            tmp_path / "out",
            ContentType="application/jsonlines",
            Accept="application/jsonlines",
            DataProcessing=processing,
        ),
        ModelInvoker(churn.model, KEYS),
    )
    lines = [
        json.loads(line) for line in (tmp_path / "out" / "rows.jsonl.out").read_text().splitlines()
    ]
    assert [line["id"] for line in lines] == list(range(12))
    assert set(lines[0]) == {"id", "SageMakerOutput"}
    assert [line["SageMakerOutput"]["predicted_label"] for line in lines] == labels(
        churn, churn.rows.iloc[:12]
    )
    # Records that are not objects are wrapped; JSON without a join passes answers through.
    with (tmp_path / "in" / "rows.jsonl").open("w") as handle:
        for row in churn.rows.iloc[:3].values.tolist():
            handle.write(json.dumps(row) + "\n")
    run_transform(
        spec(
            tmp_path / "in",
            tmp_path / "wrapped",
            ContentType="application/json",
            Accept="application/json",
            DataProcessing={"JoinSource": "Input"},
        ),
        ModelInvoker(churn.model),
    )
    wrapped = [
        json.loads(line)
        for line in (tmp_path / "wrapped" / "rows.jsonl.out").read_text().splitlines()
    ]
    assert wrapped[0]["SageMakerInput"] == churn.rows.iloc[0].tolist()
    assert wrapped[0]["SageMakerOutput"] == {
        "predicted_label": labels(churn, churn.rows.iloc[:1])[0]
    }


def test_whole_json_document(churn: TrainedModel, tmp_path: Path) -> None:
    document = {"batch": "b1", "instances": churn.rows.iloc[:4].values.tolist()}
    (tmp_path / "doc.json").write_text(json.dumps(document))
    run_transform(
        spec(
            tmp_path / "doc.json",
            tmp_path / "out",
            ContentType="application/json",
            SplitType="None",
            Accept="application/json",
            AssembleWith="None",
            DataProcessing={
                "JoinSource": "Input",
                "OutputFilter": "$.SageMakerOutput.predictions[*].predicted_label",
            },
        ),
        ModelInvoker(churn.model),
    )
    assert json.loads((tmp_path / "out" / "doc.json.out").read_text()) == labels(
        churn, churn.rows.iloc[:4]
    )


def test_manifest_and_gzip(churn: TrainedModel, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "day1").mkdir(parents=True)
    (data / "day1" / "part.csv.gz").write_bytes(gzip.compress(csv_lines(churn.rows.iloc[:15])))
    (data / "other.csv.gz").write_bytes(gzip.compress(csv_lines(churn.rows.iloc[15:20])))
    (data / "unlisted.csv.gz").write_bytes(gzip.compress(b"not,a,row\n"))
    manifest = tmp_path / "inputs.manifest"
    manifest.write_text(json.dumps([{"prefix": f"{data}/"}, "day1/part.csv.gz", "other.csv.gz"]))
    result = run_transform(
        spec(manifest, tmp_path / "out", S3DataType="ManifestFile", CompressionType="Gzip"),
        ModelInvoker(churn.model),
    )
    assert result.records == 20
    assert files_under(tmp_path / "out") == ["day1/part.csv.gz.out", "other.csv.gz.out"]
    text = (tmp_path / "out" / "day1" / "part.csv.gz.out").read_text()
    assert text.splitlines() == labels(churn, churn.rows.iloc[:15])


def test_a_bad_row_fails_the_job_without_output(churn: TrainedModel, tmp_path: Path) -> None:
    frame = churn.rows.iloc[:80].copy()
    frame.loc[frame.index[56], "tenure"] = "forever"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_bytes(csv_lines(churn.rows.iloc[:5]))
    (tmp_path / "in" / "b.csv").write_bytes(csv_lines(frame))
    (tmp_path / "in" / "c.csv").write_bytes(csv_lines(churn.rows.iloc[:5]))
    for strategy in ("MultiRecord", "SingleRecord"):
        out = tmp_path / f"out-{strategy}"
        with pytest.raises(TransformError) as caught:
            run_transform(
                spec(tmp_path / "in", out, BatchStrategy=strategy), ModelInvoker(churn.model)
            )
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / 'in' / 'b.csv'} line 57:"), message
        assert "'tenure'" in message and "forever" in message and "status 400" in message
        # a.csv finished before the failure; b.csv (and c.csv after it) have no output at all.
        assert files_under(out) == ["a.csv.out"]


def test_wrong_column_count_names_the_line(churn: TrainedModel, tmp_path: Path) -> None:
    body = csv_lines(churn.rows.iloc[:10]).splitlines()
    body[6] = b"42,12,65.30,783.60,Month-to-month,Electronic check"
    (tmp_path / "in.csv").write_bytes(b"\n".join(body) + b"\n")
    with pytest.raises(TransformError, match=r"in\.csv line 7: .*got 6"):
        run_transform(spec(tmp_path / "in.csv", tmp_path / "out"), ModelInvoker(churn.model))
    assert not (tmp_path / "out").exists() or files_under(tmp_path / "out") == []


def test_stop_leaves_no_output(churn: TrainedModel, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("a.csv", "b.csv", "c.csv"):
        (tmp_path / "in" / name).write_bytes(csv_lines(churn.rows.iloc[:10]))
    stop = threading.Event()

    def progress(report: TransformProgress) -> None:
        if report.files_done == 2:
            stop.set()

    result = run_transform(
        spec(tmp_path / "in", tmp_path / "out"),
        ModelInvoker(churn.model),
        stop_event=stop,
        progress=progress,
    )
    assert result.status == "Stopped"
    assert files_under(tmp_path / "out") == []


def test_retries_on_server_errors(churn: TrainedModel, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(csv_lines(churn.rows.iloc[:3]))
    inner = ModelInvoker(churn.model)
    calls = {"n": 0}

    def flaky(body: bytes, content_type: str | None, accept: str | None) -> InvocationResult:
        calls["n"] += 1
        if calls["n"] <= 2:
            return InvocationResult(503, b"warming up", "text/plain")
        return inner(body, content_type, accept)

    run_transform(spec(tmp_path / "in.csv", tmp_path / "out"), flaky)
    assert calls["n"] == 3
    assert (tmp_path / "out" / "in.csv.out").read_text().splitlines() == labels(
        churn, churn.rows.iloc[:3]
    )

    def broken(body: bytes, content_type: str | None, accept: str | None) -> InvocationResult:
        return InvocationResult(500, b"model exploded", "text/plain")

    with pytest.raises(
        TransformError,
        match=r"lines 1-3: the model failed after 2 attempt\(s\): status 500: model exploded",
    ):
        run_transform(
            spec(
                tmp_path / "in.csv",
                tmp_path / "out2",
                ModelClientConfig={"InvocationsMaxRetries": 1},
            ),
            broken,
        )


def test_split_none_sends_whole_objects(churn: TrainedModel, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_bytes(csv_lines(churn.rows.iloc[:20]))
    counting = Counting(ModelInvoker(churn.model))
    run_transform(spec(tmp_path / "in", tmp_path / "out", SplitType="None"), counting)
    assert len(counting.sizes) == 1
    assert (tmp_path / "out" / "a.csv.out").read_text().splitlines() == labels(
        churn, churn.rows.iloc[:20]
    )
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "a.csv").write_bytes(csv_lines(pd.concat([churn.rows] * 40)))
    with pytest.raises(TransformError, match="over MaxPayloadInMB"):
        run_transform(
            spec(tmp_path / "big", tmp_path / "out2", SplitType="None", MaxPayloadInMB=1), counting
        )


def test_kms_key_encrypts_each_output_and_mlpilot_decrypt_reads_it(
    churn: TrainedModel, tmp_path: Path
) -> None:
    key_id, key = "alias/transform-test", os.urandom(32)
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    (source / "a.csv").write_bytes(csv_lines(churn.rows.iloc[:20]))
    (source / "sub" / "b.csv").write_bytes(csv_lines(churn.rows.iloc[20:30]))
    request = spec(source, tmp_path / "out")
    sealed = dataclasses.replace(request, kms_key_id=key_id)
    result = run_transform(sealed, ModelInvoker(churn.model), keyring=Keyring({key_id: key}))
    assert result.status == "Completed" and result.records == 30
    assert files_under(tmp_path / "out") == ["a.csv.out", "sub/b.csv.out"]
    for name in ("a.csv.out", "sub/b.csv.out"):
        data = (tmp_path / "out" / name).read_bytes()
        assert data.startswith(MAGIC) and key_id.encode() in data[:64]
        assert b"Yes" not in data and b"No\n" not in data
    # Read back with the CLI: a folder into a folder, the same relative paths.
    key_file = tmp_path / "key.hex"
    key_file.write_text(key.hex())
    answer = CliRunner().invoke(
        app,
        [
            "decrypt",
            str(tmp_path / "out"),
            str(tmp_path / "plain"),
            "--kms-key",
            f"{key_id}={key_file}",
        ],
    )
    assert answer.exit_code == 0, answer.output
    plain = tmp_path / "plain"
    assert (plain / "a.csv.out").read_text().splitlines() == labels(churn, churn.rows.iloc[:20])
    assert (plain / "sub" / "b.csv.out").read_text().splitlines() == labels(
        churn, churn.rows.iloc[20:30]
    )
    # A wrong key under the same name writes nothing and says why, in one line.
    wrong = tmp_path / "wrong.hex"
    wrong.write_text(os.urandom(32).hex())
    answer = CliRunner().invoke(
        app,
        [
            "decrypt",
            str(tmp_path / "out" / "a.csv.out"),
            str(tmp_path / "w.csv"),
            "--kms-key",
            f"{key_id}={wrong}",
        ],
    )
    assert answer.exit_code == 2 and "fails authentication" in answer.output
    assert not (tmp_path / "w.csv").exists() and not list(tmp_path.glob(".w.csv*"))
    # A key the process was not given: refused before anything is read or written.
    with pytest.raises(TransformError, match=f"KmsKeyId {key_id} is not among"):
        run_transform(sealed, ModelInvoker(churn.model), keyring=Keyring())


@pytest.mark.slow  # a moto S3 server in a subprocess
def test_s3_in_and_out(churn: TrainedModel, s3: S3Server) -> None:
    s3.put("in/a.csv", csv_lines(churn.rows.iloc[:10]))
    s3.put("in/sub/b.csv.gz", gzip.compress(csv_lines(churn.rows.iloc[10:14])))
    s3.put("elsewhere/c.csv", csv_lines(churn.rows.iloc[:2]))
    # One job reads one compression: the plain object, then the gzip folder.
    result = run_transform(spec(s3.uri("in/a.csv"), s3.uri("out")), ModelInvoker(churn.model))
    assert result.outputs == {s3.uri("in/a.csv"): s3.uri("out/a.csv.out")}
    gz = run_transform(
        spec(s3.uri("in/sub/"), s3.uri("out/sub/"), CompressionType="Gzip"),
        ModelInvoker(churn.model),
    )
    assert gz.outputs == {s3.uri("in/sub/b.csv.gz"): s3.uri("out/sub/b.csv.gz.out")}
    listed = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix="out/")
    assert sorted(o["Key"] for o in listed["Contents"]) == ["out/a.csv.out", "out/sub/b.csv.gz.out"]
    body = s3.client.get_object(Bucket=s3.bucket, Key="out/a.csv.out")["Body"].read().decode()
    assert body.splitlines() == labels(churn, churn.rows.iloc[:10])
    # S3Prefix is a key prefix: s3://bucket/in/a matches in/a.csv.
    prefixed = run_transform(spec(s3.uri("in/a"), s3.uri("by-prefix/")), ModelInvoker(churn.model))
    assert prefixed.outputs == {s3.uri("in/a.csv"): s3.uri("by-prefix/a.csv.out")}


class Container:
    def __init__(self, package: Path, workdir: Path) -> None:
        port_file = workdir / "port"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "mlpilot.cli.main", "serve-model", str(package)),
                *("--port", "0", "--port-file", str(port_file), "--log-level", "warning"),
            ],
            env={**os.environ, **KEYS},
        )
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert self.process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        while httpx.get(f"{self.url}/ping").status_code != 200:
            time.sleep(0.05)


@pytest.fixture
def container(churn: TrainedModel, tmp_path: Path) -> Iterator[Container]:
    served = Container(churn.package, tmp_path)
    yield served
    served.process.terminate()
    served.process.wait(timeout=20)


@pytest.mark.slow  # a serving container in a subprocess
def test_through_a_serve_model_container(
    churn: TrainedModel, container: Container, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_bytes(csv_lines(churn.rows.iloc[:50]))
    (tmp_path / "in" / "b.csv").write_bytes(csv_lines(churn.rows.iloc[50:60]))
    with HttpInvoker(container.url, timeout=30) as invoker:
        assert invoker.execution_parameters()["BatchStrategy"] == "MULTI_RECORD"
        result = run_transform(spec(tmp_path / "in", tmp_path / "http", Accept="text/csv"), invoker)
    assert result.records == 60
    run_transform(spec(tmp_path / "in", tmp_path / "local"), ModelInvoker(churn.model, KEYS))
    for name in ("a.csv.out", "b.csv.out"):
        assert (tmp_path / "http" / name).read_text() == (tmp_path / "local" / name).read_text()
    # A container that went away: no answer, retried, then a clear failure.
    container.process.terminate()
    container.process.wait(timeout=20)
    with (
        HttpInvoker(container.url, timeout=5) as invoker,
        pytest.raises(TransformError, match="gave no answer"),
    ):
        run_transform(
            spec(
                tmp_path / "in", tmp_path / "gone", ModelClientConfig={"InvocationsMaxRetries": 0}
            ),
            invoker,
        )


@pytest.mark.slow  # 200,000 rows through the transform
def test_memory_does_not_grow_with_input(tmp_path: Path) -> None:
    """Streaming: the peak of traced allocations is the same for 20k and 200k rows."""

    def echo(body: bytes, content_type: str | None, accept: str | None) -> InvocationResult:
        return InvocationResult(200, b"0.5\n" * (body.count(b"\n") + 1), "text/csv")

    row = b"0001,Female,0,Yes,No,12,Yes,No,DSL,No,Yes,No,No,No,No,One year,Yes,Mailed check,"
    row += b"65.3,783.6\n"
    peaks = {}
    for rows in (20_000, 200_000):
        folder = tmp_path / f"in-{rows}"
        folder.mkdir()
        with (folder / "data.csv").open("wb") as handle:
            for _ in range(rows // 1000):
                handle.write(row * 1000)
        tracemalloc.start()
        try:
            result = run_transform(spec(folder, tmp_path / f"out-{rows}", MaxPayloadInMB=1), echo)
            peaks[rows] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.records == rows
        assert (tmp_path / f"out-{rows}" / "data.csv.out").stat().st_size == 4 * rows
    assert (tmp_path / "in-200000" / "data.csv").stat().st_size > 16 * 2**20
    # A payload's records, the payload itself and the reader's buffer (each about 1 MiB), and
    # no more for 10 times the rows: the 17 MB input is never held whole.
    assert peaks[200_000] < 12 * 2**20, peaks
    assert peaks[200_000] < 1.3 * peaks[20_000], peaks


def test_spec_validation(tmp_path: Path) -> None:
    cases = [
        ({"MaxPayloadInMB": 0}, "chunked"),
        ({"MaxPayloadInMB": 101}, "MaxPayloadInMB 101 is out of range"),
        ({"MaxPayloadInMB": 20, "MaxConcurrentTransforms": 6}, "over 100"),
        ({"SplitType": "RecordIO"}, "RecordIO"),
        ({"S3DataType": "AugmentedManifestFile"}, "not valid for batch transform"),
        ({"BatchStrategy": "Everything"}, "use MultiRecord or SingleRecord"),
        ({"DataProcessing": {"JoinSource": "Input"}, "Accept": "application/json"}, "Accept equal"),
        ({"DataProcessing": {"JoinSource": "Input"}, "AssembleWith": "None"}, "AssembleWith equal"),
        (
            {"DataProcessing": {"InputFilter": "$[1:]"}, "SplitType": "None"},
            "needs SplitType 'Line'",
        ),
        ({"DataProcessing": {"InputFilter": "$..a"}}, "deep scan"),
        ({"DataProcessing": {"OutputFilter": "a.b"}}, "must start with '\\$'"),
        (
            {"ContentType": "application/x-parquet", "DataProcessing": {"InputFilter": "$[0]"}},
            "ContentType",
        ),
        ({"ModelClientConfig": {"InvocationsMaxRetries": 4}}, "InvocationsMaxRetries"),
    ]
    for fields, message in cases:
        with pytest.raises(ConfigError, match=message):
            spec(tmp_path, tmp_path / "out", **fields)
    with pytest.raises(ConfigError, match="S3Uri is required"):
        TransformSpec.from_request({"TransformOutput": {"S3OutputPath": "s3://b/o"}})
    environment = spec(
        tmp_path,
        tmp_path / "out",
        MaxPayloadInMB=20,
        BatchStrategy="SingleRecord",
        Environment={"A": "1"},
    ).container_environment()
    assert environment == {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "A": "1",
    }


def test_jsonpath_subset() -> None:
    row = ["id", "a", "b", "c", "d", "e"]
    assert compile_path("$").apply(row) is row
    assert compile_path(None).is_root
    assert compile_path("$[1:]").apply(row) == ["a", "b", "c", "d", "e"]
    assert compile_path("$[1:4]").apply(row) == ["a", "b", "c", "d"]  # inclusive end
    assert compile_path("$[:-2]").apply(row) == ["id", "a", "b", "c", "d"]
    assert compile_path("$[-2:]").apply(row) == ["d", "e"]
    assert compile_path("$[0,-1]").apply(row) == ["id", "e"]
    assert compile_path("$[2]").apply(row) == "b"
    assert compile_path("$[*]").apply(row) == row
    record = {"id": 1, "f": {"x": [10, 20, 30]}, "SageMakerOutput": {"predicted_label": "Yes"}}
    assert compile_path("$.id").apply(record) == 1
    assert compile_path("$['id']").apply(record) == 1
    assert compile_path("$.f.x[-1]").apply(record) == 30
    assert compile_path("$.f.x[0:1]").apply(record) == [10, 20]
    assert compile_path("$['id','SageMakerOutput']").apply(record) == {
        "id": 1,
        "SageMakerOutput": {"predicted_label": "Yes"},
    }
    assert compile_path("$.SageMakerOutput.predicted_label").apply(record) == "Yes"
    assert compile_path("$.*").apply({"a": 1, "b": 2}) == [1, 2]
    for bad in ("$[6]", "$[0,9]", "$.missing"):
        with pytest.raises(JsonPathMismatch):
            compile_path(bad).apply(row if "[" in bad else record)
    for unsupported in (
        "$..id",
        "$[?(@.a)]",
        "$.f['a','b.c']",
        "$[1:2:3]",
        "id",
        "$[0",
        "$.f[[0]]",
    ):
        with pytest.raises(JsonPathError):
            compile_path(unsupported)


def test_parquet_objects_and_probabilities_by_label(churn: TrainedModel, tmp_path: Path) -> None:
    """A Parquet object goes whole (SplitType None); the job's Environment asks for the
    per-class probabilities keyed by label."""
    (tmp_path / "in").mkdir()
    frame = churn.rows.iloc[:12]
    frame[list(reversed(frame.columns))].to_parquet(tmp_path / "in" / "a.parquet")
    job = spec(
        tmp_path / "in",
        tmp_path / "out",
        ContentType="application/x-parquet",
        SplitType="None",
        Accept="application/jsonlines",
        AssembleWith="None",
        Environment={"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probabilities_by_label"},
    )
    run_transform(job, ModelInvoker(churn.model, job.container_environment()))
    lines = (tmp_path / "out" / "a.parquet.out").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    expected = churn.model.predict(frame, probabilities=True)
    assert [r["predicted_label"] for r in records] == labels(churn, frame)
    assert [r["probabilities_by_label"]["Yes"] for r in records] == pytest.approx(
        expected["probability_Yes"].tolist()
    )
    with pytest.raises(ConfigError, match="needs SplitType 'None'"):
        spec(tmp_path, tmp_path / "o", ContentType="application/x-parquet")
