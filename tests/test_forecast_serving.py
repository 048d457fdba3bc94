"""Serving a forecasting package: the series codec (CSV and JSON in and out, 400 naming the
series), the container app, payloads of whole series in batch transform, and ``mlpilot
serve-model`` on a forecasting package."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import mlpilot
from helpers_data import TOURISM
from helpers_forecast import TOURISM_SETTINGS, fit_predictor, save_package, table
from mlpilot._types import ProblemType
from mlpilot.package import SeriesModel
from mlpilot.serving import (
    CSV,
    JSON,
    JSONLINES,
    ForecastHandler,
    InvocationResult,
    ModelInvoker,
    Predictor,
    ServingSettings,
    TransformError,
    TransformSpec,
    create_app,
    handler_for,
    run_transform,
)
from mlpilot.serving._transform_series import series_batches

QUANTILES = ["p10", "p50", "p90"]
HORIZON = TOURISM_SETTINGS["horizon"]
OUTPUT = ["item_id", "timestamp", "mean", *QUANTILES]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    predictor = fit_predictor(
        table(TOURISM), {"ets": 0.5, "seasonal-naive": 0.5}, **TOURISM_SETTINGS
    )
    return save_package(predictor, tmp_path_factory.mktemp("forecast") / "tourism")


@pytest.fixture(scope="module")
def model(package: Path) -> SeriesModel:
    loaded = mlpilot.load_model(package)
    assert isinstance(loaded, SeriesModel)
    return loaded


@pytest.fixture(scope="module")
def handler(model: SeriesModel) -> ForecastHandler:
    chosen = handler_for(model, ServingSettings())
    assert isinstance(chosen, ForecastHandler)
    return chosen


def history(items: int = 2, last: int | None = None) -> pd.DataFrame:
    """The first ``items`` series of the tourism set (the last ``last`` quarters of each)."""
    frame = table(TOURISM)
    chosen = frame[frame["item_id"].isin(frame["item_id"].unique()[:items])]
    return chosen if last is None else chosen.groupby("item_id").tail(last)


def csv_body(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def ok(result: InvocationResult) -> InvocationResult:
    assert result.status == 200, result.message
    return result


# -- the codec -----------------------------------------------------------------------------------
def test_csv_in_csv_out_equals_the_package(handler: ForecastHandler, model: SeriesModel) -> None:
    frame = history(3)
    result = ok(handler.handle(csv_body(frame), "text/csv", "text/csv"))
    assert result.content_type == CSV
    got = pd.read_csv(io.StringIO(result.message), dtype={"item_id": str})
    assert list(got.columns) == OUTPUT
    assert got.groupby("item_id").size().to_dict() == {
        item: HORIZON for item in frame["item_id"].unique()
    }
    expected = model.forecast(frame)
    np.testing.assert_allclose(got[["mean", *QUANTILES]], expected[["mean", *QUANTILES]])
    assert (got["p10"] <= got["p50"]).all() and (got["p50"] <= got["p90"]).all()
    # Quarter starts, written as dates, continuing after the history's last quarter.
    assert got["timestamp"].iloc[0] == "2018-01-01"
    assert got["timestamp"].iloc[HORIZON - 1] == "2019-10-01"


def test_json_records_in_and_out(handler: ForecastHandler) -> None:
    frame = history(2)
    records = json.loads(frame.to_json(orient="records"))
    as_csv = pd.read_csv(io.StringIO(ok(handler.handle(csv_body(frame), CSV, CSV)).message))
    for body in (
        json.dumps({"instances": records}),
        json.dumps(records),
        "\n".join(json.dumps(r) for r in records),  # several documents: JSON lines
    ):
        result = ok(handler.handle(body.encode(), "application/json", "application/json"))
        assert result.content_type == JSON
        predictions = json.loads(result.body)["predictions"]
        assert len(predictions) == 2 * HORIZON
        assert list(predictions[0]) == OUTPUT
        assert [p["mean"] for p in predictions] == pytest.approx(as_csv["mean"].tolist())
        assert predictions[0]["timestamp"] == "2018-01-01"
    lines = ok(handler.handle(csv_body(frame), CSV, "application/jsonlines"))
    assert lines.content_type == JSONLINES
    assert [json.loads(line)["p90"] for line in lines.message.splitlines()] == pytest.approx(
        as_csv["p90"].tolist()
    )


def test_json_numbers_and_nulls_read_like_csv(handler: ForecastHandler) -> None:
    """Numbers are read as the CSV reader would read their text; a null or missing target is a
    future row (known covariates, no target)."""
    frame = history(1)
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    for record in records:
        record["Trips"] = float(record["Trips"])
    future = dict(records[-1], timestamp="2018-01-01", Trips=None)
    del future["Region"]
    body = "\n".join(json.dumps(r) for r in [*records, future]).encode()
    got = json.loads(ok(handler.handle(body, JSONLINES, JSON)).body)["predictions"]
    expected = json.loads(ok(handler.handle(csv_body(frame), CSV, JSON)).body)["predictions"]
    assert [p["mean"] for p in got] == pytest.approx([p["mean"] for p in expected])


def test_new_items_are_forecast(handler: ForecastHandler) -> None:
    frame = history(1).assign(item_id="never seen in training")
    got = pd.read_csv(io.StringIO(ok(handler.handle(csv_body(frame), CSV, CSV)).message))
    assert set(got["item_id"]) == {"never seen in training"} and len(got) == HORIZON


def test_too_little_history_is_a_400_naming_the_item(handler: ForecastHandler) -> None:
    frame = pd.concat([history(1), history(2, last=3).iloc[3:]])
    short = frame["item_id"].iloc[-1]
    result = handler.handle(csv_body(frame), CSV, CSV)
    assert result.status == 400
    assert f"item_id={short!r}" in result.message
    assert "at least 4" in result.message and "\n" not in result.message.strip()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "said"),
    [
        (b"item_id,Trips\nA,1\n", CSV, 400, "lack(s) column(s) timestamp"),
        (b"A,1998-01-01,1\nA,1998-04-01,2\n", CSV, 400, "with a header line first"),
        (b'[{"item_id": "A", "Trips": 1}]', JSON, 400, "lack(s) column(s) timestamp"),
        (b"[1, 2, 3]", JSON, 400, "record 1 is a int"),
        (b'{"instances": [{"item_id": [1]}]}', JSON, 400, "holds a list"),
        (b"{not json", JSON, 400, "invalid JSON"),
        (b"   \n", CSV, 400, "empty request body"),
        (b"item_id,timestamp\n", "application/x-parquet", 415, "unsupported Content-Type"),
        (b"item_id,timestamp,Trips\nA,1998-01-01,1,2,3\n", CSV, 400, "malformed CSV"),
        (b"item_id,timestamp,Trips\n", CSV, 400, "no rows"),
        (b"item_id,timestamp,Trips\nA,someday,1\nA,1998-01-01,2\n", CSV, 400, "someday"),
    ],
)
def test_bad_requests_are_one_line_refusals(
    handler: ForecastHandler, body: bytes, content_type: str, status: int, said: str
) -> None:
    result = handler.handle(body, content_type, CSV)
    assert result.status == status, result.message
    assert said in result.message
    assert len(result.message.strip().splitlines()) == 1


def test_accept_and_payload_limits(model: SeriesModel) -> None:
    small = ForecastHandler(model, ServingSettings(max_payload_bytes=100))
    assert small.handle(csv_body(history(1)), CSV, CSV).status == 413
    assert small.handle(b"x", CSV, "image/png").status == 406
    json_default = ForecastHandler(model, ServingSettings(default_accept=JSON))
    assert json_default.handle(csv_body(history(1)), CSV, None).content_type == JSON


def test_the_handler_follows_the_package(model: SeriesModel) -> None:
    class Tabular:  # what Predictor reads of an InferenceModel
        def __init__(self) -> None:
            self.input_columns = ["x"]
            self.labels: list[str] = []
            self.info = {"target": "y"}
            self.problem_type = ProblemType.REGRESSION

    assert isinstance(handler_for(model), ForecastHandler)
    assert ModelInvoker(model).series_keys == ("item_id",)
    assert isinstance(handler_for(Tabular()), Predictor)
    assert ModelInvoker(Tabular()).series_keys is None


def test_the_container_app_serves_forecasts(model: SeriesModel) -> None:
    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(model, ServingSettings()))
        async with httpx.AsyncClient(transport=transport, base_url="http://container") as client:
            return [
                await client.get("/ping"),
                await client.post(
                    "/invocations", content=csv_body(history(2)), headers={"Content-Type": CSV}
                ),
                await client.post("/invocations", content=csv_body(history(1, last=2))),
            ]

    ping, answer, refused = asyncio.run(calls())
    assert ping.status_code == 200
    assert answer.status_code == 200 and answer.headers["content-type"] == CSV
    assert answer.text.splitlines()[0] == ",".join(OUTPUT)
    assert len(answer.text.splitlines()) == 1 + 2 * HORIZON
    assert refused.status_code == 400 and "item_id=" in refused.text


# -- payloads of whole series --------------------------------------------------------------------
def interleaved(items: int, last: int) -> pd.DataFrame:
    """Rows ordered by time, so every series is spread over the whole file."""
    return history(items, last).sort_values(["timestamp", "item_id"], kind="stable")


def batches_of(data: bytes, max_bytes: int, *, multi: bool = True, kind: str = CSV) -> list[Any]:
    return list(
        series_batches(
            io.BytesIO(data), "in.csv", keys=("item_id",), kind=kind, max_bytes=max_bytes,
            multi=multi,
        )
    )  # fmt: skip


def payload_series(payload: bytes) -> dict[str, int]:
    frame = pd.read_csv(io.BytesIO(payload), dtype=str)
    return frame.groupby("item_id").size().to_dict()


def test_series_are_grouped_and_never_cut() -> None:
    frame = interleaved(5, 10)
    data = csv_body(frame)
    # Room for about two series a payload: cuts fall between series only.
    one = len(csv_body(frame[frame["item_id"] == frame["item_id"].iloc[0]]))
    batches = batches_of(data, max_bytes=2 * one + 10)
    assert len(batches) == 3
    seen: list[str] = []
    for batch in batches:
        counts = payload_series(batch.payload)
        assert set(counts.values()) == {10}  # each series whole, its rows together
        assert batch.payload.startswith(data.split(b"\n", 1)[0] + b"\n")  # the header repeated
        seen.extend(counts)
        assert len(batch.records) == 10 * len(counts)
    assert seen == list(dict.fromkeys(frame["item_id"]))  # order of first appearance
    assert batches[0].lines().startswith(f"series item_id={seen[0]!r} and 1 more")
    # SingleRecord: one series a payload.
    assert [len(payload_series(b.payload)) for b in batches_of(data, 10**6, multi=False)] == [1] * 5
    # Everything fits: one payload.
    assert len(batches_of(data, 10**6)) == 1


def test_a_series_over_the_limit_fails_with_its_name() -> None:
    frame = interleaved(2, 40)
    with pytest.raises(TransformError, match=r"series item_id='Adelaide.*over MaxPayloadInMB"):
        batches_of(csv_body(frame), max_bytes=1000)


def test_json_lines_are_grouped_by_their_key_fields() -> None:
    frame = interleaved(3, 6)
    data = "\n".join(frame.to_json(orient="records", lines=True).splitlines()).encode()
    batches = batches_of(data, 10**6, multi=False, kind=JSONLINES)
    assert len(batches) == 3
    for batch in batches:
        items = {json.loads(line)["item_id"] for line in batch.payload.splitlines()}
        assert len(items) == 1 and len(batch.records) == 6
    with pytest.raises(TransformError, match="line 2: the record lacks series column"):
        batches_of(b'{"item_id": "a"}\n{"Trips": 1}\n', 10**6, kind=JSONLINES)


def test_a_header_without_the_key_columns_is_refused() -> None:
    with pytest.raises(TransformError, match=r"in.csv line 1: the header lacks .*'item_id'"):
        batches_of(b"Adelaide,1998-01-01,1\nAdelaide,1998-04-01,2\n", 10**6)


def spec(source: Path, output: Path, **fields: Any) -> TransformSpec:
    transform_output = {"S3OutputPath": str(output), "AssembleWith": "Line"}
    if "Accept" in fields:
        transform_output["Accept"] = fields.pop("Accept")
    return TransformSpec.from_request(
        {
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}},
                "ContentType": "text/csv",
                "SplitType": fields.pop("SplitType", "Line"),
            },
            "TransformOutput": transform_output,
            **fields,
        }
    )


class Recording:
    """An invoker that keeps every payload it passes on."""

    def __init__(self, inner: ModelInvoker) -> None:
        self.inner = inner
        self.series_keys = inner.series_keys
        self.payloads: list[bytes] = []

    def __call__(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> InvocationResult:
        self.payloads.append(body)
        return self.inner(body, content_type, accept)


def test_batch_transform_forecasts_every_series(model: SeriesModel, tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "more").mkdir(parents=True)
    first, second = interleaved(4, 12), history(9, 12).iloc[4 * 12 :]
    (source / "a.csv").write_bytes(csv_body(first))
    (source / "more" / "b.csv").write_bytes(csv_body(second))
    invoker = Recording(ModelInvoker(model))
    result = run_transform(spec(source, tmp_path / "out", BatchStrategy="SingleRecord"), invoker)
    assert result.status == "Completed" and result.files == 2
    assert result.records == len(first) + len(second)
    assert len(invoker.payloads) == 9  # one series a payload
    for name, frame in (("a.csv.out", first), ("more/b.csv.out", second)):
        text = (tmp_path / "out" / name).read_text()
        assert text.count("item_id,timestamp") == 1  # the header once per output object
        got = pd.read_csv(io.StringIO(text))
        assert list(got.columns) == OUTPUT
        assert got.groupby("item_id").size().to_dict() == {
            item: HORIZON for item in frame["item_id"].unique()
        }
        expected = model.forecast(frame).sort_values(["item_id", "timestamp"])
        ordered = got.sort_values(["item_id", "timestamp"])
        np.testing.assert_allclose(ordered["mean"], expected["mean"])
    # SplitType None sends each object whole; Accept JSON writes one document per payload.
    whole = run_transform(
        spec(source, tmp_path / "whole", SplitType="None", Accept="application/json"),
        ModelInvoker(model),
    )
    assert whole.status == "Completed"
    document = json.loads((tmp_path / "whole" / "a.csv.out").read_text())
    assert len(document["predictions"]) == 4 * HORIZON


def test_batch_transform_failures_name_the_series(model: SeriesModel, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    frame = pd.concat([history(1), history(2, last=2).iloc[2:]])
    (source / "a.csv").write_bytes(csv_body(frame))
    with pytest.raises(TransformError, match=r"a.csv series item_id=.*Too little history"):
        run_transform(spec(source, tmp_path / "out"), ModelInvoker(model))
    assert not (tmp_path / "out" / "a.csv.out").exists()
    with pytest.raises(TransformError, match=r"DataProcessing .* does not apply to a forecasting"):
        run_transform(
            spec(source, tmp_path / "out", DataProcessing={"JoinSource": "Input"}),
            ModelInvoker(model),
        )


# -- mlpilot serve-model ---------------------------------------------------------------------------
@pytest.fixture
def served(package: Path, tmp_path: Path) -> Iterator[str]:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlpilot.cli.main", "serve-model", str(package / "model.tar.gz"),
         "--port", "0", "--port-file", str(port_file), "--cache-dir", str(tmp_path / "cache")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "serve-model did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_serve_model_serves_a_forecasting_package(served: str) -> None:
    assert httpx.get(f"{served}/ping").status_code == 200
    answer = httpx.post(
        f"{served}/invocations",
        content=csv_body(history(2)),
        headers={"Content-Type": "text/csv", "Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2 * HORIZON
    refused = httpx.post(
        f"{served}/invocations", content=csv_body(history(1, last=3)), headers={"Accept": CSV}
    )
    assert refused.status_code == 400 and "Too little history" in refused.text
