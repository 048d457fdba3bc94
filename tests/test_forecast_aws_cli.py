"""A forecasting job's whole path with the AWS CLI against ``mlpilot serve`` (S3 on moto's
server): create-auto-ml-job-v2 with TimeSeriesForecastingJobConfig, the best candidate's
container as a model, an endpoint answering a history with its forecast (CSV and JSON, new
items, a 400 naming a short series), and a batch transform keeping each series whole."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from conftest import S3Server
from helpers_data import TOURISM
from helpers_forecast import table
from helpers_service import ROLE, Aws, ServiceProcess

pytestmark = pytest.mark.slow

HORIZON = 4
QUANTILES = ["p10", "p50", "p90"]
OUTPUT = ["item_id", "timestamp", "mean", *QUANTILES]
#: The four quarters after the tourism set's last one (2017-10-01).
NEXT_YEAR = ["2018-01-01", "2018-04-01", "2018-07-01", "2018-10-01"]


@pytest.fixture(scope="module")
def service(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ServiceProcess(
        tmp_path_factory.mktemp("forecast-cli") / "data", s3_endpoint=s3_server.endpoint
    ).start()
    yield server.url
    server.stop()


def job_request(name: str, input_uri: str, output_uri: str) -> dict[str, object]:
    return {
        "AutoMLJobName": name,
        "AutoMLJobInputDataConfig": [
            {
                "ChannelType": "training",
                "ContentType": "text/csv;header=present",
                "CompressionType": "None",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "AutoMLProblemTypeConfig": {
            "TimeSeriesForecastingJobConfig": {
                "ForecastFrequency": "3M",
                "ForecastHorizon": HORIZON,
                "ForecastQuantiles": QUANTILES,
                "TimeSeriesConfig": {
                    "TargetAttributeName": "Trips",
                    "TimestampAttributeName": "timestamp",
                    "ItemIdentifierAttributeName": "item_id",
                },
                "CandidateGenerationConfig": {
                    "AlgorithmsConfig": [{"AutoMLAlgorithms": ["ets", "npts"]}]
                },
                "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": 30},
            }
        },
        "RoleArn": ROLE,
    }


def forecast_of(text: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text), dtype={"item_id": str, "timestamp": str})
    assert list(frame.columns) == OUTPUT
    assert (frame["p10"] <= frame["p50"]).all() and (frame["p50"] <= frame["p90"]).all()
    return frame


def assert_whole_forecasts(frame: pd.DataFrame, items: list[str]) -> None:
    """``HORIZON`` rows for each item, on the next year's quarters, and nothing else."""
    assert sorted(frame["item_id"].unique()) == sorted(items)
    for _, rows in frame.groupby("item_id"):
        assert rows["timestamp"].tolist() == NEXT_YEAR


def test_forecasting_job_endpoint_and_transform(service: str, s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.bucket
    aws = Aws(tmp_path, service, s3.endpoint)
    data = table(TOURISM)
    items = list(data["item_id"].unique())
    (tmp_path / "train.csv").write_text(data.to_csv(index=False))
    aws("s3", "cp", "train.csv", f"s3://{bucket}/fc-input/train.csv", endpoint=False)

    # The job, to the end.
    job = "tourism-cli"
    (tmp_path / "job.json").write_text(
        json.dumps(job_request(job, f"s3://{bucket}/fc-input/", f"s3://{bucket}/fc-output/"))
    )
    created = json.loads(
        aws("sagemaker", "create-auto-ml-job-v2", "--cli-input-json", "file://job.json")
    )
    assert created["AutoMLJobArn"].endswith(f":automl-job/{job}")
    assert aws.monitor(job) == "Completed"
    best = json.loads(
        aws("sagemaker", "describe-auto-ml-job-v2", "--auto-ml-job-name", job,
            "--query", "BestCandidate")
    )  # fmt: skip
    assert best["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "AverageWeightedQuantileLoss"
    container = best["InferenceContainers"][0]
    assert container["ModelDataUrl"].startswith(f"s3://{bucket}/fc-output/{job}/")
    assert container["ModelDataUrl"].endswith("/model.tar.gz")

    # The model, its endpoint configuration and endpoint.
    primary = f"Image={container['Image']},ModelDataUrl={container['ModelDataUrl']}"
    aws("sagemaker", "create-model", "--model-name", "fc-model",
        "--primary-container", primary, "--execution-role-arn", ROLE)  # fmt: skip
    variant = (
        "VariantName=primary,ModelName=fc-model,InitialInstanceCount=1,InstanceType=ml.m5.large"
    )
    aws("sagemaker", "create-endpoint-config", "--endpoint-config-name", "fc-config",
        "--production-variants", variant)  # fmt: skip
    aws("sagemaker", "create-endpoint", "--endpoint-name", "fc-endpoint",
        "--endpoint-config-name", "fc-config")  # fmt: skip
    aws("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "fc-endpoint")

    # A history of two known items and a new one: CSV in, CSV out (with its header).
    history = data[data["item_id"].isin(items[:2])]
    new = data[data["item_id"] == items[2]].assign(item_id="a new item")
    (tmp_path / "history.csv").write_text(pd.concat([history, new]).to_csv(index=False))
    printed = json.loads(
        aws("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "fc-endpoint",
            "--content-type", "text/csv", "--body", "fileb://history.csv", "forecast.csv")
    )  # fmt: skip
    assert printed["ContentType"].startswith("text/csv")
    answer = forecast_of((tmp_path / "forecast.csv").read_text())
    assert_whole_forecasts(answer, [*items[:2], "a new item"])
    # JSON out: {"predictions": [record, ...]}, the same forecast.
    aws("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "fc-endpoint",
        "--content-type", "text/csv", "--accept", "application/json",
        "--body", "fileb://history.csv", "forecast.json")  # fmt: skip
    predictions = json.loads((tmp_path / "forecast.json").read_text())["predictions"]
    assert list(predictions[0]) == OUTPUT
    assert [p["mean"] for p in predictions] == pytest.approx(answer["mean"].tolist())
    # A series with too little history: the container's 400, naming it.
    short = pd.concat([history, data[data["item_id"] == items[3]].tail(2)])
    (tmp_path / "short.csv").write_text(short.to_csv(index=False))
    said = aws.fails("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "fc-endpoint",
                     "--content-type", "text/csv", "--body", "fileb://short.csv",
                     "out.csv")  # fmt: skip
    assert "ModelError" in said and "400" in said
    assert f"item_id={items[3]!r}" in said and "Too little history" in said

    # Batch transform over two objects whose rows are in time order (every series spread
    # through its file), one series a payload: each output has every series' whole forecast.
    parts = {"fc-batch/a.csv": items[:4], "fc-batch/more/b.csv": items[4:]}
    for key, chosen in parts.items():
        rows = data[data["item_id"].isin(chosen)].sort_values(["timestamp", "item_id"])
        s3.put(key, rows.to_csv(index=False))
    aws("sagemaker", "create-transform-job", "--transform-job-name", "fc-batch",
        "--model-name", "fc-model", "--batch-strategy", "SingleRecord",
        "--max-payload-in-mb", "1",
        "--transform-input",
        f"DataSource={{S3DataSource={{S3DataType=S3Prefix,S3Uri=s3://{bucket}/fc-batch/}}}},"
        "ContentType=text/csv,SplitType=Line",
        "--transform-output",
        f"S3OutputPath=s3://{bucket}/fc-batch-out/,Accept=text/csv,AssembleWith=Line",
        "--transform-resources", "InstanceType=ml.m5.large,InstanceCount=1")  # fmt: skip
    status = aws.poll("describe-transform-job", "--transform-job-name", "fc-batch")
    assert status == "Completed", aws(
        "sagemaker", "describe-transform-job", "--transform-job-name", "fc-batch"
    )
    for key, chosen in parts.items():
        out_key = "fc-batch-out/" + key.removeprefix("fc-batch/") + ".out"
        body = s3.client.get_object(Bucket=bucket, Key=out_key)["Body"].read().decode()
        assert body.count("item_id,timestamp,mean") == 1
        assert_whole_forecasts(forecast_of(body), chosen)

    aws("sagemaker", "delete-endpoint", "--endpoint-name", "fc-endpoint")
    aws("sagemaker", "delete-endpoint-config", "--endpoint-config-name", "fc-config")
    aws("sagemaker", "delete-model", "--model-name", "fc-model")
