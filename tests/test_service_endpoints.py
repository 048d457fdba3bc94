"""Models, endpoint configurations, endpoints (production variants, InvokeEndpoint), batch
transform and ModelDeployConfig through ``mlpilot serve``, with boto3."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from helpers_data import TELCO
from helpers_service import ROLE, ServiceProcess, automl_request, wait_for
from mlpilot.cli.main import app

# Left out of `make test-fast`: the service in a subprocess, serving endpoints.
pytestmark = pytest.mark.slow

CHURN = TELCO


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(CHURN, dtype=str, keep_default_na=False).sample(400, random_state=3)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    server = ServiceProcess(tmp_path_factory.mktemp("endpoints") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sm(service: ServiceProcess) -> Any:
    return service.boto()


@pytest.fixture(scope="module")
def runtime(service: ServiceProcess) -> Any:
    return service.boto("sagemaker-runtime")


@pytest.fixture(scope="module")
def container(
    sm: Any, table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The best candidate's inference container of a small job, deployed by ModelDeployConfig."""
    folder = tmp_path_factory.mktemp("in")
    table.to_csv(folder / "train.csv", index=False)
    request = automl_request(
        "deployed",
        str(folder),
        str(tmp_path_factory.mktemp("out")),
        max_candidates=2,
        algorithms=("linear-learner",),
    )
    request["ModelDeployConfig"] = {"AutoGenerateEndpointName": True}
    sm.create_auto_ml_job_v2(**request)
    record = wait_for(sm, "deployed", ("Completed", "Failed", "Stopped"), timeout=240)
    assert record["AutoMLJobStatus"] == "Completed", record
    assert record["AutoMLJobSecondaryStatus"] == "Completed"
    assert record["ModelDeployResult"]["EndpointName"] == "deployed-endpoint"
    found: dict[str, Any] = record["BestCandidate"]["InferenceContainers"][0]
    return found


def _rows(table: pd.DataFrame, n: int) -> bytes:
    features = table.drop(columns=["Churn"]).head(n)
    return features.to_csv(index=False, header=False).encode()


def test_model_deploy_config_endpoint_serves(
    container: dict[str, Any], runtime: Any, table: pd.DataFrame
) -> None:
    answer = runtime.invoke_endpoint(
        EndpointName="deployed-endpoint", ContentType="text/csv", Body=_rows(table, 3)
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    labels = answer["Body"].read().decode().splitlines()
    assert len(labels) == 3 and set(labels) <= {"Yes", "No"}


@pytest.fixture(scope="module")
def ab_endpoint(sm: Any, container: dict[str, Any]) -> str:
    sm.create_model(
        ModelName="churn-model",
        PrimaryContainer={"Image": container["Image"], "ModelDataUrl": container["ModelDataUrl"]},
        ExecutionRoleArn=ROLE,
    )
    sm.create_endpoint_config(
        EndpointConfigName="churn-ab",
        ProductionVariants=[
            {
                "VariantName": "A",
                "ModelName": "churn-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 0.8,
            },
            {
                "VariantName": "B",
                "ModelName": "churn-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 0.2,
            },
        ],
    )
    sm.create_endpoint(EndpointName="churn-ab", EndpointConfigName="churn-ab")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="churn-ab", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    return "churn-ab"


def _metrics(service: ServiceProcess, name: str) -> dict[str, Any]:
    response = httpx.get(f"{service.url}/endpoints/{name}/metrics", timeout=10)
    assert response.status_code == 200
    variants: dict[str, Any] = response.json()["Variants"]
    return variants


def test_traffic_split_by_weight_and_per_variant_figures(
    service: ServiceProcess, runtime: Any, ab_endpoint: str, table: pd.DataFrame
) -> None:
    before = _metrics(service, ab_endpoint)
    body = _rows(table, 1)
    served = Counter(
        runtime.invoke_endpoint(EndpointName=ab_endpoint, ContentType="text/csv", Body=body)[
            "InvokedProductionVariant"
        ]
        for _ in range(300)
    )
    assert set(served) == {"A", "B"}
    assert 0.72 <= served["A"] / 300 <= 0.88, served
    after = _metrics(service, ab_endpoint)
    for variant in ("A", "B"):
        sent = after[variant]["Invocations"] - before[variant]["Invocations"]
        assert sent == served[variant]
        assert after[variant]["Invocation4XXErrors"] == before[variant]["Invocation4XXErrors"]
        latency = after[variant]["ModelLatency"]
        assert latency["Count"] >= served[variant] and 0 < latency["p50"] <= latency["Maximum"]
    assert after["A"]["CurrentWeight"] == 0.8


def test_target_variant_and_weight_update(
    service: ServiceProcess, sm: Any, runtime: Any, ab_endpoint: str, table: pd.DataFrame
) -> None:
    body = _rows(table, 1)
    for _ in range(5):
        answer = runtime.invoke_endpoint(
            EndpointName=ab_endpoint, ContentType="text/csv", Body=body, TargetVariant="B"
        )
        assert answer["InvokedProductionVariant"] == "B"
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName=ab_endpoint, ContentType="text/csv", Body=body, TargetVariant="C"
        )
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ab_endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": "A", "DesiredWeight": 0.0},
            {"VariantName": "B", "DesiredWeight": 1.0, "DesiredInstanceCount": 2},
        ],
    )
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=ab_endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    described = {
        v["VariantName"]: v
        for v in sm.describe_endpoint(EndpointName=ab_endpoint)["ProductionVariants"]
    }
    assert described["A"]["CurrentWeight"] == 0.0
    assert described["B"]["CurrentWeight"] == 1.0
    assert described["B"]["CurrentInstanceCount"] == 2
    served = Counter(
        runtime.invoke_endpoint(EndpointName=ab_endpoint, ContentType="text/csv", Body=body)[
            "InvokedProductionVariant"
        ]
        for _ in range(40)
    )
    assert served == {"B": 40}
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ab_endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": "A", "DesiredWeight": 0.8},
            {"VariantName": "B", "DesiredWeight": 0.2, "DesiredInstanceCount": 1},
        ],
    )
    with pytest.raises(ClientError) as caught:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=ab_endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": "Z", "DesiredWeight": 1.0}],
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_invocation_errors_are_clear_and_the_endpoint_keeps_serving(
    runtime: Any, ab_endpoint: str, table: pd.DataFrame
) -> None:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=ab_endpoint, ContentType="text/csv", Body=b"1,2,3")
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert "expected" in error["OriginalMessage"] and "got 3" in error["OriginalMessage"]
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName=ab_endpoint, ContentType="text/csv", Body=b"x" * (6 * 1024 * 1024 + 1)
        )
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "6291456" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="nowhere", ContentType="text/csv", Body=b"1")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nowhere of account 000000000000 not found" in str(caught.value)
    answer = runtime.invoke_endpoint(
        EndpointName=ab_endpoint,
        ContentType="text/csv",
        Accept="application/json",
        Body=_rows(table, 2),
    )
    assert answer["ContentType"].startswith("application/json")
    assert len(__import__("json").loads(answer["Body"].read())["predictions"]) == 2


BAD = [
    (
        "CreateModel",
        {
            "ModelName": "m-bad",
            "PrimaryContainer": {"Image": "nginx:latest", "ModelDataUrl": "/tmp"},
        },
        "ValidationException",
        "not an mlpilot inference image",
    ),
    (
        "CreateModel",
        {
            "ModelName": "m-bad",
            "PrimaryContainer": {
                "Image": "mlpilot/tabular-inference:0.1.0",
                "ModelDataUrl": "/tmp/nothing/model.tar.gz",
            },
        },
        "ValidationException",
        "Could not find model data",
    ),
    (
        "CreateModel",
        {"ModelName": "m-bad"},
        "ValidationException",
        "PrimaryContainer or Containers",
    ),
    (
        "CreateModel",
        {"ModelName": "bad_name!", "PrimaryContainer": {"Image": "x"}},
        "ValidationException",
        "regular expression pattern",
    ),
    (
        "DescribeModel",
        {"ModelName": "nope"},
        "ValidationException",
        'Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/nope"',
    ),
    ("DeleteModel", {"ModelName": "nope"}, "ValidationException", "Could not find model"),
    (
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "c-bad",
            "ProductionVariants": [
                {
                    "VariantName": "A",
                    "ModelName": "nope",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
        "ValidationException",
        "Could not find model",
    ),
    (
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "c-bad",
            "ProductionVariants": [
                {
                    "VariantName": "A",
                    "ModelName": "nope",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m99.huge",
                }
            ],
        },
        "ValidationException",
        "enum value set",
    ),
    (
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "c-bad",
            "ProductionVariants": [
                {
                    "VariantName": "A",
                    "ModelName": "nope",
                    "InitialInstanceCount": 0,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
        "ValidationException",
        "greater than or equal to 1",
    ),
    (
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "c-bad",
            "ProductionVariants": [
                {
                    "VariantName": "A",
                    "ModelName": "nope",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1},
                }
            ],
        },
        "ValidationException",
        "serverless",
    ),
    (
        "DescribeEndpointConfig",
        {"EndpointConfigName": "nope"},
        "ValidationException",
        "Could not find endpoint configuration",
    ),
    (
        "CreateEndpoint",
        {"EndpointName": "e-bad", "EndpointConfigName": "nope"},
        "ValidationException",
        "Could not find endpoint configuration",
    ),
    (
        "DescribeEndpoint",
        {"EndpointName": "nope"},
        "ValidationException",
        'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/nope"',
    ),
    ("DeleteEndpoint", {"EndpointName": "nope"}, "ValidationException", "Could not find endpoint"),
    (
        "UpdateEndpoint",
        {"EndpointName": "nope", "EndpointConfigName": "x"},
        "ValidationException",
        "Could not find endpoint",
    ),
    ("DescribeTransformJob", {"TransformJobName": "nope"}, "ResourceNotFound", "nope"),
    ("StopTransformJob", {"TransformJobName": "nope"}, "ResourceNotFound", "nope"),
    (
        "CreateTransformJob",
        {
            "TransformJobName": "t-bad",
            "ModelName": "nope",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/tmp"}}
            },
            "TransformOutput": {"S3OutputPath": "/tmp/o"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        },
        "ResourceNotFound",
        "Could not find model",
    ),
    (
        "CreateTransformJob",
        {
            "TransformJobName": "t-bad",
            "ModelName": "x",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/tmp"}},
                "SplitType": "Paragraph",
            },
            "TransformOutput": {"S3OutputPath": "/tmp/o"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        },
        "ValidationException",
        "enum value set",
    ),
    ("ListEndpoints", {"StatusEquals": "Sleeping"}, "ValidationException", "enum value set"),
]


def _capture_config(**changes: Any) -> dict[str, Any]:
    """A CreateEndpointConfig request with a DataCaptureConfig changed by ``changes``."""
    capture = {
        "InitialSamplingPercentage": 50,
        "DestinationS3Uri": "/tmp/capture",
        "CaptureOptions": [{"CaptureMode": "InputAndOutput"}],
        **changes,
    }
    return {
        "EndpointConfigName": "c-bad",
        "ProductionVariants": [
            {
                "VariantName": "A",
                "ModelName": "nope",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        "DataCaptureConfig": {k: v for k, v in capture.items() if v is not None},
    }


BAD_CAPTURE = [
    ({"InitialSamplingPercentage": 150}, "percentage' failed to satisfy constraint: member must "
     "have value less than or equal to 100"),
    ({"InitialSamplingPercentage": -1}, "have value greater than or equal to 0"),
    ({"InitialSamplingPercentage": None}, "initialSamplingPercentage' failed to satisfy "
     "constraint: member must not be null"),
    ({"DestinationS3Uri": "captures/here"}, "destinationS3Uri' failed to satisfy constraint: "
     "member must satisfy regular expression pattern"),
    ({"DestinationS3Uri": "https://bucket/capture"}, "give an s3:// URI or a local path"),
    ({"DestinationS3Uri": "/tmp/../etc"}, "'..' path segments are not accepted"),
    ({"CaptureOptions": []}, "have length greater than or equal to 1"),
    ({"CaptureOptions": [{"CaptureMode": "Everything"}]},
     "enum value set: [Input, Output, InputAndOutput]"),
    ({"CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"],
                                   "JsonContentTypes": ["Text/CSV"]}},
     "text/csv as both CSV and JSON"),
    ({"KmsKeyId": "alias/nowhere"}, "DataCaptureConfig.KmsKeyId 'alias/nowhere' names no key"),
]  # fmt: skip
BAD += [
    ("CreateEndpointConfig", _capture_config(**changes), "ValidationException", fragment)
    for changes, fragment in BAD_CAPTURE
]


@pytest.mark.parametrize(
    ("operation", "body", "code", "fragment"), BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)]
)
def test_bad_deployment_request(
    service: ServiceProcess, operation: str, body: dict[str, Any], code: str, fragment: str
) -> None:
    response = service.raw(operation, body)
    assert response.status_code == 400
    error = response.json()
    assert error["__type"] == code, error
    assert fragment.lower() in error["message"].lower(), error["message"]


def test_duplicate_names_and_listing(sm: Any, ab_endpoint: str, container: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as caught:
        sm.create_model(
            ModelName="churn-model",
            PrimaryContainer={
                "Image": container["Image"],
                "ModelDataUrl": container["ModelDataUrl"],
            },
            ExecutionRoleArn=ROLE,
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot create already existing model" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        sm.create_endpoint(EndpointName="churn-ab", EndpointConfigName="churn-ab")
    assert "already existing endpoint" in caught.value.response["Error"]["Message"]
    names = [e["EndpointName"] for e in sm.list_endpoints(StatusEquals="InService")["Endpoints"]]
    assert {"churn-ab", "deployed-endpoint"} <= set(names)
    models = [m["ModelName"] for m in sm.list_models(NameContains="churn")["Models"]]
    assert models == ["churn-model"]
    configs = sm.list_endpoint_configs(SortBy="Name", SortOrder="Ascending")["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in configs] == sorted(
        c["EndpointConfigName"] for c in configs
    )
    described = sm.describe_model(ModelName="churn-model")
    assert described["PrimaryContainer"]["ModelDataUrl"] == container["ModelDataUrl"]


def test_update_endpoint_to_new_config(
    sm: Any, runtime: Any, ab_endpoint: str, table: pd.DataFrame, service: ServiceProcess
) -> None:
    sm.create_endpoint_config(
        EndpointConfigName="churn-single",
        ProductionVariants=[
            {
                "VariantName": "Only",
                "ModelName": "churn-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="churn-up", EndpointConfigName="churn-ab")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="churn-up", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    sm.update_endpoint(EndpointName="churn-up", EndpointConfigName="churn-single")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="churn-up", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    described = sm.describe_endpoint(EndpointName="churn-up")
    assert described["EndpointConfigName"] == "churn-single"
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["Only"]
    answer = runtime.invoke_endpoint(
        EndpointName="churn-up", ContentType="text/csv", Body=_rows(table, 1)
    )
    assert answer["InvokedProductionVariant"] == "Only"
    # The service's audit trail: ``mlpilot card`` lists both deployments of the package.
    package = Path(sm.describe_model(ModelName="churn-model")["PrimaryContainer"]["ModelDataUrl"])
    printed = CliRunner().invoke(
        app, ["card", str(package.parent), "--data-dir", str(service.data_dir), "-f", "json"]
    )
    assert printed.exit_code == 0, printed.output
    trail = [
        (d["action"], d["variant"])
        for d in json.loads(printed.output)["deployments"]
        if d["endpoint"] == "churn-up"
    ]
    assert trail == [("CreateEndpoint", "A"), ("CreateEndpoint", "B"), ("UpdateEndpoint", "Only")]
    sm.delete_endpoint(EndpointName="churn-up")
    sm.get_waiter("endpoint_deleted").wait(
        EndpointName="churn-up", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def test_transform_job_local_folders(
    sm: Any, ab_endpoint: str, table: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "batch"
    (source / "sub").mkdir(parents=True)
    features = table.drop(columns=["Churn"])
    # An id column kept beside the features, excluded by InputFilter, joined back.
    ided = features.head(30).copy()
    ided.insert(0, "row_id", [f"id{i}" for i in range(30)])
    ided.to_csv(source / "a.csv", index=False, header=False)
    second = features.iloc[30:50].copy()
    second.insert(0, "row_id", [f"id{i}" for i in range(30, 50)])
    second.to_csv(source / "sub" / "b.csv", index=False, header=False)
    sm.create_transform_job(
        TransformJobName="batch-1",
        ModelName="churn-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={
            "S3OutputPath": str(tmp_path / "out"),
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        BatchStrategy="MultiRecord",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
    )
    deadline = time.monotonic() + 120
    while True:
        record = sm.describe_transform_job(TransformJobName="batch-1")
        if record["TransformJobStatus"] not in ("InProgress", "Stopping"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert record["TransformJobStatus"] == "Completed", record.get("FailureReason")
    assert record["TransformEndTime"] >= record["TransformStartTime"]
    first = (tmp_path / "out" / "a.csv.out").read_text().splitlines()
    assert len(first) == 30
    assert [line.split(",")[0] for line in first] == [f"id{i}" for i in range(30)]
    assert {line.split(",")[1] for line in first} <= {"Yes", "No"}
    assert len((tmp_path / "out" / "sub" / "b.csv.out").read_text().splitlines()) == 20
    summaries = sm.list_transform_jobs(StatusEquals="Completed")["TransformJobSummaries"]
    assert "batch-1" in [s["TransformJobName"] for s in summaries]
    with pytest.raises(ClientError) as caught:
        sm.stop_transform_job(TransformJobName="batch-1")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_explainer_endpoint_answers_in_clarifys_layout(
    sm: Any, runtime: Any, container: dict[str, Any], table: pd.DataFrame, ab_endpoint: str
) -> None:
    """CreateEndpointConfig's ExplainerConfig and InvokeEndpoint's EnableExplanations through
    boto3: predictions plus per-record, per-column attributions that add up to the explained
    probability, records filtered by the expression, SageMaker's validation errors."""
    sm.create_model(
        ModelName="churn-explained",
        PrimaryContainer={
            "Image": container["Image"],
            "ModelDataUrl": container["ModelDataUrl"],
            "Environment": {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"},
        },
        ExecutionRoleArn=ROLE,
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "churn-explained",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    with pytest.raises(ClientError, match="not a valid JMESPath expression"):
        sm.create_endpoint_config(
            EndpointConfigName="bad-explainer",
            ProductionVariants=[variant],
            ExplainerConfig={
                "ClarifyExplainerConfig": {
                    "EnableExplanations": "[1]>",
                    "ShapConfig": {"ShapBaselineConfig": {}},
                }
            },
        )
    explainer = {
        "ClarifyExplainerConfig": {
            "EnableExplanations": "`true`",
            "ShapConfig": {"ShapBaselineConfig": {}, "NumberOfSamples": 60, "Seed": 7},
        }
    }
    sm.create_endpoint_config(
        EndpointConfigName="churn-explainer",
        ProductionVariants=[variant],
        ExplainerConfig=explainer,
    )
    assert (
        sm.describe_endpoint_config(EndpointConfigName="churn-explainer")["ExplainerConfig"]
        == explainer
    )
    sm.create_endpoint(EndpointName="churn-explainer", EndpointConfigName="churn-explainer")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="churn-explainer", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    body = _rows(table, 4)
    answer = runtime.invoke_endpoint(
        EndpointName="churn-explainer",
        EnableExplanations="[1]>`0.5`",
        ContentType="text/csv",
        Accept="text/csv",
        Body=body,
    )
    assert answer["ContentType"] == "application/json"
    document = json.loads(answer["Body"].read())
    assert document["version"] == "1.0"
    assert document["predictions"]["content_type"] == "text/csv"
    predictions = [line.split(",") for line in document["predictions"]["data"].splitlines()]
    assert len(predictions) == 4
    assert document["label_headers"] == ["Yes"]
    records = document["explanations"]["kernel_shap"]
    assert len(records) == 4
    columns = [c for c in table.columns if c != "Churn"]
    base = document["mlpilot"]["expected_value"][0]
    assert document["mlpilot"]["units"] == "probability"
    for (label, probability), record in zip(predictions, records, strict=True):
        if float(probability) <= 0.5:
            assert record is None  # the expression is false for this record
            continue
        assert [item["feature_header"] for item in record] == columns
        values = [item["attributions"][0]["attribution"] for item in record]
        assert all(len(v) == 1 for v in values)
        positive = float(probability) if label == "Yes" else 1 - float(probability)
        assert base + sum(v[0] for v in values) == pytest.approx(positive, abs=1e-6)
    assert any(r is not None for r in records)
    # The configuration's expression when the request gives none: every record explained.
    everything = runtime.invoke_endpoint(
        EndpointName="churn-explainer", ContentType="text/csv", Accept="text/csv", Body=body
    )
    assert all(json.loads(everything["Body"].read())["explanations"]["kernel_shap"])
    nothing = runtime.invoke_endpoint(
        EndpointName="churn-explainer",
        EnableExplanations="`false`",
        ContentType="text/csv",
        Accept="text/csv",
        Body=body,
    )
    assert json.loads(nothing["Body"].read())["explanations"]["kernel_shap"] == [None] * 4
    with pytest.raises(ClientError, match="not a valid JMESPath expression"):
        runtime.invoke_endpoint(
            EndpointName="churn-explainer", EnableExplanations="[1", ContentType="text/csv",
            Body=body,
        )  # fmt: skip
    with pytest.raises(ClientError, match="has no ExplainerConfig") as caught:
        runtime.invoke_endpoint(
            EndpointName=ab_endpoint, EnableExplanations="`true`", ContentType="text/csv",
            Body=body,
        )  # fmt: skip
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    sm.delete_endpoint(EndpointName="churn-explainer")


def test_data_capture_of_sampled_invocations_joined_with_labels(
    sm: Any, runtime: Any, ab_endpoint: str, table: pd.DataFrame, tmp_path: Path
) -> None:
    destination = tmp_path / "capture"
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 50,
        "DestinationS3Uri": str(destination),
        "CaptureOptions": [{"CaptureMode": "InputAndOutput"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
    }
    sm.create_endpoint_config(
        EndpointConfigName="churn-capture",
        ProductionVariants=[
            {
                "VariantName": "Only",
                "ModelName": "churn-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        DataCaptureConfig=capture,
    )
    assert (
        sm.describe_endpoint_config(EndpointConfigName="churn-capture")["DataCaptureConfig"]
        == capture
    )
    sm.create_endpoint(EndpointName="churn-capture", EndpointConfigName="churn-capture")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="churn-capture", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    assert sm.describe_endpoint(EndpointName="churn-capture")["DataCaptureConfig"] == {
        "EnableCapture": True,
        "CaptureStatus": "Started",
        "CurrentSamplingPercentage": 50,
        "DestinationS3Uri": str(destination),
    }
    # Off by default: an endpoint configured without DataCaptureConfig reports none.
    assert "DataCaptureConfig" not in sm.describe_endpoint(EndpointName=ab_endpoint)
    rows = table.drop(columns=["Churn"]).head(10)
    answers = {}
    for i in range(10):
        body = rows.iloc[[i]].to_csv(index=False, header=False).encode()
        answer = runtime.invoke_endpoint(
            EndpointName="churn-capture", ContentType="text/csv", Body=body, InferenceId=f"req-{i}"
        )
        answers[f"req-{i}"] = (body.decode(), answer["Body"].read().decode())
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName="churn-capture", ContentType="text/csv", Body=body, InferenceId="x" * 65
        )
    assert "InferenceId" in caught.value.response["Error"]["Message"]

    def captured() -> list[tuple[Path, dict[str, Any]]]:
        return [
            (path.relative_to(destination), json.loads(line))
            for path in sorted(destination.rglob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]

    deadline = time.monotonic() + 30
    while len(captured()) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    records = captured()
    # 50 %: every second invocation, so exactly these five.
    ids = sorted(r["eventMetadata"]["inferenceId"] for _, r in records)
    assert ids == ["req-1", "req-3", "req-5", "req-7", "req-9"]
    for path, record in records:
        # {destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/{file}.jsonl
        endpoint, variant, year, month, day, hour, _ = path.parts
        assert (endpoint, variant) == ("churn-capture", "Only")
        stamp = record["eventMetadata"]["inferenceTime"]
        assert stamp.startswith(f"{year}-{month}-{day}T{hour}:") and stamp.endswith("Z")
        sent, answered = answers[record["eventMetadata"]["inferenceId"]]
        given, output = (
            record["captureData"]["endpointInput"],
            record["captureData"]["endpointOutput"],
        )
        assert given == {
            "observedContentType": "text/csv",
            "mode": "INPUT",
            "data": sent,
            "encoding": "CSV",
        }
        assert (output["mode"], output["data"], output["encoding"]) == ("OUTPUT", answered, "CSV")
    assert record["eventVersion"] == "0"
    # Ground truth for three of them, in Model Monitor's layout, joined by inference id.
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps(
                {
                    "groundTruthData": {"data": label, "encoding": "CSV"},
                    "eventMetadata": {"eventId": event},
                    "eventVersion": "0",
                }
            )
            + "\n"
            for event, label in [("req-1", "Yes"), ("req-5", "No"), ("req-2", "No")]
        )
    )
    from mlpilot.serving import join_ground_truth

    joined = join_ground_truth(destination, labels, columns=list(rows.columns), target="Churn")
    assert sorted(joined["inference_id"]) == ["req-1", "req-5"]
    first = joined.set_index("inference_id").loc["req-1"]
    assert first["Churn"] == "Yes" and first["customerID"] == rows.iloc[1]["customerID"]
    assert first["predicted_label"] == answers["req-1"][1].strip()
    sm.delete_endpoint(EndpointName="churn-capture")
    sm.get_waiter("endpoint_deleted").wait(
        EndpointName="churn-capture", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    assert [p.name for p in destination.iterdir()] == ["churn-capture"]


# Last in the file: the restarted service listens on another port, which the module's clients
# (sm, runtime) do not follow.
def test_endpoints_come_back_after_restart(
    service: ServiceProcess, ab_endpoint: str, table: pd.DataFrame
) -> None:
    service.stop()
    service.start()
    sm = service.boto()
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=ab_endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 90}
    )
    answer = service.boto("sagemaker-runtime").invoke_endpoint(
        EndpointName=ab_endpoint, ContentType="text/csv", Body=_rows(table, 1)
    )
    assert answer["InvokedProductionVariant"] in ("A", "B")
