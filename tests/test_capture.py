"""Data capture (DataCaptureConfig) at its seams: sampling, the files' layout and records, the
writer's buffering and shutdown, encryption, and the join with ground truth by inference id.
The whole path through ``mlpilot serve`` is in test_service_endpoints.py."""

from __future__ import annotations

import json
import os
import time
from base64 import b64decode
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import S3Server
from mlpilot.cli.main import app
from mlpilot.errors import DataError
from mlpilot.package import MAGIC, Keyring
from mlpilot.serving import CaptureSettings, DataCapture, join_ground_truth, read_captures

# 2026-12-07 09:59:59 UTC, and a second later (the next hour).
BEFORE_TEN = 1796637599.25
AT_TEN = BEFORE_TEN + 1.0


def _settings(destination: Path, **changes: Any) -> CaptureSettings:
    config = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": str(destination),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json"],
        },
        **changes,
    }
    return CaptureSettings.from_config(config)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _lines(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(root.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            found.append((path.relative_to(root), json.loads(line)))
    return found


def _offer(capture: DataCapture, n: int, *, variant: str = "A", prefix: str = "id") -> int:
    kept = 0
    for i in range(n):
        kept += capture.offer(
            variant,
            input_body=f"{i},x\n".encode(),
            input_type="text/csv",
            output_body=b"Yes\n",
            output_type="text/csv; charset=utf-8",
            inference_id=f"{prefix}-{i}",
        )
    return kept


def test_records_in_sagemakers_layout_written_on_close(tmp_path: Path) -> None:
    clock = Clock(BEFORE_TEN)
    capture = DataCapture("churn", _settings(tmp_path), flush_seconds=3600, clock=clock)
    capture.offer(
        "AllTraffic",
        input_body=b"42,No,1\n",
        input_type="text/csv",
        output_body=b'{"predictions": [{"predicted_label": "Yes"}]}',
        output_type="application/json",
        inference_id="order-1",
    )
    clock.now = AT_TEN
    capture.offer(
        "AllTraffic",
        input_body=b"\x00\xff",
        input_type="application/x-parquet",
        output_body=b"No\n",
        output_type="text/csv; charset=utf-8",
    )
    assert not list(tmp_path.rglob("*.jsonl"))  # buffered, not written on the request path
    capture.close()
    (first_path, first), (second_path, second) = _lines(tmp_path)
    # One file per hour: the hour folder follows each invocation's time.
    assert first_path.parent == Path("churn/AllTraffic/2026/12/07/09")
    assert second_path.parent == Path("churn/AllTraffic/2026/12/07/10")
    assert first_path.name.startswith("59-59-250-") and first_path.suffix == ".jsonl"
    assert first["eventVersion"] == "0"
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "42,No,1\n",
        "encoding": "CSV",
    }
    assert first["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert first["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert first["eventMetadata"]["inferenceId"] == "order-1"
    assert first["eventMetadata"]["inferenceTime"] == "2026-12-07T09:59:59Z"
    assert len(first["eventMetadata"]["eventId"]) == 36
    # Types not listed in CaptureContentTypeHeader are BASE64; a charset does not matter.
    given = second["captureData"]["endpointInput"]
    assert given["encoding"] == "BASE64" and b64decode(given["data"]) == b"\x00\xff"
    assert second["captureData"]["endpointOutput"]["encoding"] == "CSV"
    assert "inferenceId" not in second["eventMetadata"]
    assert capture.written == 2


@pytest.mark.parametrize(("percentage", "expected"), [(0, 0), (25, 10), (33, 13), (100, 40)])
def test_sampling_is_deterministic(tmp_path: Path, percentage: int, expected: int) -> None:
    capture = DataCapture(
        "e", _settings(tmp_path, InitialSamplingPercentage=percentage), flush_seconds=3600
    )
    kept = _offer(capture, 40)
    capture.close()
    assert kept == expected == len(_lines(tmp_path))


def test_capture_modes_and_default_base64(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, CaptureOptions=[{"CaptureMode": "Output"}], CaptureContentTypeHeader=None
    )
    capture = DataCapture("e", settings, flush_seconds=3600)
    _offer(capture, 1)
    capture.close()
    ((_, record),) = _lines(tmp_path)
    assert list(record["captureData"]) == ["endpointOutput"]
    # Without CaptureContentTypeHeader everything is BASE64, as on SageMaker.
    assert record["captureData"]["endpointOutput"]["encoding"] == "BASE64"


def test_the_writer_flushes_on_its_own_and_retries_a_failing_destination(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "capture"
    blocked.write_text("a file where the folder should be")
    capture = DataCapture("e", _settings(blocked), flush_seconds=0.05)
    _offer(capture, 3)
    deadline = 200
    while capture.failure is None and deadline:
        deadline -= 1
        time.sleep(0.05)
    assert capture.failure is not None and not capture.started
    blocked.unlink()
    blocked.mkdir()
    deadline = 200
    while capture.written < 3 and deadline:
        deadline -= 1
        time.sleep(0.05)
    assert capture.started
    capture.close()
    assert sorted(r["eventMetadata"]["inferenceId"] for _, r in _lines(blocked)) == [
        "id-0",
        "id-1",
        "id-2",
    ]
    assert not [p for p in blocked.rglob("*") if p.name.endswith(".partial")]


def test_encrypted_capture_is_joined_with_its_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    name = "alias/capture"
    capture = DataCapture(
        "e", _settings(tmp_path / "c", KmsKeyId=name), key=key, flush_seconds=3600
    )
    _offer(capture, 2)
    capture.close()
    (path,) = (tmp_path / "c").rglob("*.jsonl")
    assert path.read_bytes().startswith(MAGIC) and b"id-0" not in path.read_bytes()
    labels = tmp_path / "labels.csv"
    labels.write_text("inference_id,label\nid-0,1\nid-1,0\n")
    with pytest.raises(DataError, match="encrypted under a KmsKeyId"):
        join_ground_truth(tmp_path / "c", labels)
    table = join_ground_truth(tmp_path / "c", labels, keyring=Keyring({name: key}))
    assert sorted(zip(table["inference_id"], table["label"], strict=True)) == [
        ("id-0", "1"),
        ("id-1", "0"),
    ]


def _ground_truth(path: Path, labels: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for event, label in labels.items():
            record = {
                "groundTruthData": {"data": label, "encoding": "CSV"},
                "eventMetadata": {"eventId": event},
                "eventVersion": "0",
            }
            out.write(json.dumps(record) + "\n")


def test_join_matches_labels_by_inference_id(tmp_path: Path) -> None:
    capture = DataCapture("churn", _settings(tmp_path / "capture"), flush_seconds=3600)
    _offer(capture, 4, variant="A")
    _offer(capture, 2, variant="B", prefix="b")
    # Two rows in one invocation, with a header; JSON answers.
    capture.offer(
        "A",
        input_body=b"tenure,plan\n7,basic\n30,gold\n",
        input_type="text/csv",
        output_body=json.dumps(
            {"predictions": [{"predicted_label": "Yes"}, {"predicted_label": "No"}]}
        ).encode(),
        output_type="application/json",
        inference_id="pair",
    )
    capture.close()
    # Model Monitor's layout: labels under yyyy/mm/dd/hh, eventId = the inference id.
    _ground_truth(
        tmp_path / "labels/2026/12/07/09/labels.jsonl",
        {"id-3": "No", "id-0": "Yes", "b-1": "Yes", "pair": "1\n0", "not-captured": "No"},
    )
    table = join_ground_truth(tmp_path / "capture", tmp_path / "labels", columns=["tenure", "plan"])
    by_id = table.set_index("inference_id")
    assert sorted(by_id.index) == ["b-1", "id-0", "id-3", "pair", "pair"]
    assert by_id.loc["id-3", "tenure"] == "3" and by_id.loc["id-3", "plan"] == "x"
    assert by_id.loc["id-0", "label"] == "Yes"
    assert by_id.loc["id-0", "predicted_label"] == "Yes"
    assert by_id.loc["b-1", "variant"] == "B" and by_id.loc["b-1", "endpoint"] == "churn"
    pair = table[table["inference_id"] == "pair"]
    assert list(pair["tenure"]) == ["7", "30"]  # the header line is not a row
    assert list(pair["predicted_label"]) == ["Yes", "No"]
    assert list(pair["label"]) == ["1", "0"]
    assert len(read_captures(tmp_path / "capture")) == 7


def test_join_refuses_labels_that_do_not_fit(tmp_path: Path) -> None:
    capture = DataCapture("e", _settings(tmp_path / "capture"), flush_seconds=3600)
    _offer(capture, 1)
    capture.close()
    _ground_truth(tmp_path / "labels.jsonl", {"id-0": "1\n0"})
    with pytest.raises(DataError, match=r"inference id-0: 1 captured row\(s\) but 2 label"):
        join_ground_truth(tmp_path / "capture", tmp_path / "labels.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"eventMetadata": {}}\n')
    with pytest.raises(DataError, match="not a ground-truth record"):
        join_ground_truth(tmp_path / "capture", tmp_path / "bad.jsonl")


def test_capture_join_command(tmp_path: Path) -> None:
    capture = DataCapture("e", _settings(tmp_path / "capture"), flush_seconds=3600)
    _offer(capture, 3)
    capture.close()
    labels = tmp_path / "labels.csv"
    labels.write_text("inference_id,label\nid-1,No\nid-2,Yes\n")
    out = tmp_path / "joined.csv"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "capture", "join", str(tmp_path / "capture"), str(labels),
            "--columns", "tenure,plan", "--target", "Churn", "--output", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "joined 2 row(s) of 2 labelled invocation(s)" in result.output
    joined = pd.read_csv(out, dtype=str)
    assert list(joined.columns) == [
        "inference_id", "event_id", "inference_time", "endpoint", "variant",
        "tenure", "plan", "predicted_label", "output", "Churn",
    ]  # fmt: skip
    assert list(joined["Churn"]) == ["No", "Yes"] and list(joined["tenure"]) == ["1", "2"]
    missing = runner.invoke(
        app, ["capture", "join", str(tmp_path / "nowhere"), str(labels), "-o", str(out)]
    )
    assert missing.exit_code == 2
    assert "does not exist" in missing.output and "Traceback" not in missing.output


@pytest.mark.slow  # a moto S3 server in a subprocess
def test_capture_to_s3_and_join_from_s3(s3: S3Server) -> None:
    capture = DataCapture(
        "churn", _settings(Path("/unused"), DestinationS3Uri=s3.uri("capture")), flush_seconds=3600
    )
    _offer(capture, 2)
    capture.close()
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket)["Contents"]]
    assert len(keys) == 1
    parts = keys[0].split("/")
    assert parts[:3] == ["capture", "churn", "A"] and len(parts) == 8
    s3.put("labels/2026/12/07/10/gt.csv", "inference_id,label\nid-1,Yes\n")
    table = join_ground_truth(s3.uri("capture/"), s3.uri("labels/"))
    assert list(zip(table["inference_id"], table["label"], strict=True)) == [("id-1", "Yes")]
    assert table.loc[0, "endpoint"] == "churn" and table.loc[0, "variant"] == "A"


def test_the_service_starts_switches_and_stops_an_endpoints_capture(tmp_path: Path) -> None:
    from mlpilot.service import ServiceConfig, Store
    from mlpilot.service._endpoint_host import EndpointHost

    config = ServiceConfig(data_dir=tmp_path / "data")
    config.data_dir.mkdir()
    store = Store(config.database_url)
    host = EndpointHost(config, store)
    capture = {
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": str(tmp_path / "capture"),
        "CaptureOptions": [{"CaptureMode": "Input"}],
    }
    try:
        assert host.capture_summary("e", {"ProductionVariants": []}) is None
        host.set_capture("e", {"DataCaptureConfig": capture})
        assert host.capture_summary("e", {"DataCaptureConfig": capture}) == {
            "EnableCapture": True,
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": 100,
            "DestinationS3Uri": str(tmp_path / "capture"),
        }
        running = host._captures["e"]
        _offer(running, 2)
        # Switched off by the next configuration: what the old capture held is written.
        disabled = {**capture, "EnableCapture": False}
        host.set_capture("e", {"DataCaptureConfig": disabled})
        assert "e" not in host._captures and running.written == 2
        summary = host.capture_summary("e", {"DataCaptureConfig": disabled})
        assert summary is not None
        assert (summary["EnableCapture"], summary["CaptureStatus"]) == (False, "Stopped")
        # A KmsKeyId the service no longer has (restarted without it): serving goes on,
        # capture does not start.
        sealed = {**capture, "KmsKeyId": "alias/gone"}
        host.set_capture("e", {"DataCaptureConfig": sealed})
        summary = host.capture_summary("e", {"DataCaptureConfig": sealed})
        assert summary is not None and summary["CaptureStatus"] == "Stopped"
        assert summary["KmsKeyId"] == "alias/gone"
        host.set_capture("e", {"DataCaptureConfig": capture})
        _offer(host._captures["e"], 3, prefix="late")
    finally:
        host.close()
        store.close()
    # Closing the host (the service's shutdown) writes what was still buffered.
    assert len(_lines(tmp_path / "capture")) == 5
