"""The seed recipe (../shared/seeds/000_…) with the AWS CLI against ``mlpilot serve``.

Its data, its job configuration file, its commands — with ``--endpoint-url`` — first with S3
(moto's server standing in for S3, reached through ``AWS_ENDPOINT_URL_S3``), then with local
paths (the job stopped once it runs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers_service import ROLE, Aws, ServiceProcess

# Left out of `make test-fast`: the service and the AWS CLI in subprocesses.
pytestmark = pytest.mark.slow

RECIPE_HEADER = (
    "customer_id,age,tenure,monthly_charges,total_charges,contract_type,payment_method,churn\n"
)
RECIPE_DATA = (
    RECIPE_HEADER
    + """1,42,12,65.30,783.60,Month-to-month,Electronic check,Yes
2,35,36,89.15,3209.40,Two year,Mailed check,No
3,28,6,45.20,271.20,Month-to-month,Electronic check,Yes
4,52,24,78.90,1894.80,One year,Credit card,No
5,41,48,95.45,4583.60,Two year,Bank transfer,No
6,29,3,29.85,89.55,Month-to-month,Electronic check,Yes
7,38,60,110.75,6645.00,Two year,Credit card,No
8,33,18,73.25,1318.50,One year,Bank transfer,No
9,45,9,55.40,498.60,Month-to-month,Electronic check,Yes
10,31,72,125.30,9021.60,Two year,Credit card,No
"""
)


def recipe_job_config(name: str, input_uri: str, output_uri: str) -> dict[str, object]:
    """The recipe's autopilot_job_config.json, with its variables filled in."""
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
            "TabularJobConfig": {
                "TargetAttributeName": "churn",
                "ProblemType": "BinaryClassification",
                "CompletionCriteria": {
                    "MaxCandidates": 10,
                    "MaxRuntimePerTrainingJobInSeconds": 3600,
                    "MaxAutoMLJobRuntimeInSeconds": 14400,
                },
            }
        },
        "RoleArn": ROLE,
        "Tags": [
            {"Key": "Purpose", "Value": "AutoML-Demo"},
            {"Key": "Environment", "Value": "Development"},
        ],
    }


@pytest.fixture(scope="module")
def service(
    s3_server: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    server = ServiceProcess(
        tmp_path_factory.mktemp("recipe") / "data",
        s3_endpoint=s3_server.endpoint,  # type: ignore[attr-defined]
    ).start()
    yield server
    server.stop()


def _run_recipe_steps(aws: Aws, name: str, input_uri: str, output_uri: str) -> dict[str, object]:
    config = recipe_job_config(name, input_uri, output_uri)
    # The recipe's file with three candidates where it asks for ten: the steps are the same,
    # and on its ten rows each candidate is seconds of the suite's time for nothing it checks.
    tabular = config["AutoMLProblemTypeConfig"]["TabularJobConfig"]  # type: ignore[index]
    tabular["CompletionCriteria"]["MaxCandidates"] = 3
    (aws.cwd / "autopilot_job_config.json").write_text(json.dumps(config, indent=4))
    created = json.loads(
        aws(
            "sagemaker",
            "create-auto-ml-job-v2",
            "--cli-input-json",
            "file://autopilot_job_config.json",
        )
    )
    assert created["AutoMLJobArn"].endswith(f":automl-job/{name}")
    assert aws(
        "sagemaker",
        "describe-auto-ml-job-v2",
        "--auto-ml-job-name",
        name,
        "--query",
        "AutoMLJobStatus",
    ) in ('"InProgress"', '"Completed"')
    assert aws.monitor(name) == "Completed"
    best_name = aws(
        "sagemaker",
        "describe-auto-ml-job-v2",
        "--auto-ml-job-name",
        name,
        "--query",
        "BestCandidate.CandidateName",
        "--output",
        "text",
    )
    metric = json.loads(
        aws(
            "sagemaker",
            "describe-auto-ml-job-v2",
            "--auto-ml-job-name",
            name,
            "--query",
            "BestCandidate.FinalAutoMLJobObjectiveMetric",
        )
    )
    container = json.loads(
        aws(
            "sagemaker",
            "describe-auto-ml-job-v2",
            "--auto-ml-job-name",
            name,
            "--query",
            "BestCandidate.InferenceContainers[0]",
        )
    )
    insights = aws(
        "sagemaker",
        "describe-auto-ml-job-v2",
        "--auto-ml-job-name",
        name,
        "--query",
        "BestCandidate.CandidateProperties.CandidateArtifactLocations.ModelInsights",
        "--output",
        "text",
    )
    return {"best": best_name, "metric": metric, "container": container, "insights": insights}


RECIPE_TEST_ROWS = (
    "25,6,45.20,271.20,Month-to-month,Electronic check\n55,36,89.15,3209.40,Two year,Mailed check\n"
)


def test_recipe_end_to_end_with_s3(service: ServiceProcess, s3: object, tmp_path: Path) -> None:
    """Steps 1-10 of the recipe, then its clean-up, against mlpilot and an S3 server."""
    bucket = s3.bucket  # type: ignore[attr-defined]
    aws = Aws(tmp_path, service.url, s3.endpoint)  # type: ignore[attr-defined]
    (tmp_path / "churn_dataset.csv").write_text(RECIPE_DATA)
    aws("s3", "cp", "churn_dataset.csv", f"s3://{bucket}/input/churn_dataset.csv", endpoint=False)
    job = "autopilot-churn-s3"
    found = _run_recipe_steps(aws, job, f"s3://{bucket}/input/", f"s3://{bucket}/output/")
    assert str(found["best"]).startswith(f"{job}-")
    metric = found["metric"]
    assert metric["MetricName"] == "F1" and 0 <= metric["Value"] <= 1  # type: ignore[index]
    container = found["container"]
    url = container["ModelDataUrl"]  # type: ignore[index]
    prefix = f"s3://{bucket}/output/{job}/sagemaker-automl-candidates/model/"
    assert url.startswith(prefix) and url.endswith("/model.tar.gz")
    assert container["Image"].startswith("mlpilot/")  # type: ignore[index]
    # Step 6: every artifact the job reports is in S3 once it says Completed.
    listing = aws("s3", "ls", "--recursive", f"s3://{bucket}/output/", endpoint=False)
    keys = {line.split()[-1] for line in listing.splitlines()}
    assert url.split(f"s3://{bucket}/", 1)[1] in keys
    assert f"output/{job}/job.json" in keys
    assert f"output/{job}/leaderboard.csv" in keys
    assert not any("/.work/" in key for key in keys)
    assert str(found["insights"]).startswith(f"s3://{bucket}/output/{job}/")

    # Step 7: the model, from the best candidate's container. The recipe reads
    # BestCandidate.ModelInsights.ModelArtifactUrl, which the real API does not have (it prints
    # None); the artifact is InferenceContainers[0].ModelDataUrl.
    missing = aws(
        "sagemaker",
        "describe-auto-ml-job-v2",
        "--auto-ml-job-name",
        job,
        "--query",
        "BestCandidate.ModelInsights.ModelArtifactUrl",
        "--output",
        "text",
    )
    assert missing == "None"
    image = aws(
        "sagemaker",
        "describe-auto-ml-job-v2",
        "--auto-ml-job-name",
        job,
        "--query",
        "BestCandidate.InferenceContainers[0].Image",
        "--output",
        "text",
    )
    model_url = aws(
        "sagemaker",
        "describe-auto-ml-job-v2",
        "--auto-ml-job-name",
        job,
        "--query",
        "BestCandidate.InferenceContainers[0].ModelDataUrl",
        "--output",
        "text",
    )
    model = json.loads(
        aws(
            "sagemaker",
            "create-model",
            "--model-name",
            "autopilot-model-1",
            "--primary-container",
            f"Image={image},ModelDataUrl={model_url}",
            "--execution-role-arn",
            ROLE,
        )
    )
    assert model["ModelArn"].endswith(":model/autopilot-model-1")

    # Step 8: endpoint configuration and endpoint, then the waiter.
    aws(
        "sagemaker",
        "create-endpoint-config",
        "--endpoint-config-name",
        "autopilot-config-1",
        "--production-variants",
        "VariantName=primary,ModelName=autopilot-model-1,InitialInstanceCount=1,"
        "InstanceType=ml.m5.large",
    )
    created = json.loads(
        aws(
            "sagemaker",
            "create-endpoint",
            "--endpoint-name",
            "autopilot-endpoint-1",
            "--endpoint-config-name",
            "autopilot-config-1",
        )
    )
    assert created["EndpointArn"].endswith(":endpoint/autopilot-endpoint-1")
    # create-endpoint returns once the endpoint serves, so the waiter's first poll finds it in
    # service (no 30 s sleep between polls).
    first_poll = json.loads(
        aws("sagemaker", "describe-endpoint", "--endpoint-name", "autopilot-endpoint-1")
    )
    assert first_poll["EndpointStatus"] == "InService", first_poll
    aws("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "autopilot-endpoint-1")
    status = aws(
        "sagemaker",
        "describe-endpoint",
        "--endpoint-name",
        "autopilot-endpoint-1",
        "--query",
        "EndpointStatus",
        "--output",
        "text",
    )
    assert status == "InService"

    # Step 9: the recipe's two rows (no id, no target), and its one-row check.
    (tmp_path / "test_data.csv").write_text(RECIPE_TEST_ROWS)
    printed = json.loads(
        aws(
            "sagemaker-runtime",
            "invoke-endpoint",
            "--endpoint-name",
            "autopilot-endpoint-1",
            "--content-type",
            "text/csv",
            "--body",
            "fileb://test_data.csv",
            "prediction_output.json",
        )
    )
    assert printed["InvokedProductionVariant"] == "primary"
    labels = (tmp_path / "prediction_output.json").read_text().split()
    assert len(labels) == 2 and set(labels) <= {"Yes", "No"}
    (tmp_path / "one.csv").write_text("42,12,65.30,783.60,Month-to-month,Electronic check\n")
    aws(
        "sagemaker-runtime",
        "invoke-endpoint",
        "--endpoint-name",
        "autopilot-endpoint-1",
        "--content-type",
        "text/csv",
        "--body",
        "fileb://one.csv",
        "endpoint_test.json",
    )
    assert (tmp_path / "endpoint_test.json").read_text().strip() in ("Yes", "No")

    # Step 10: batch transform over a folder of CSV files, one output line per input line.
    rows = RECIPE_DATA.splitlines()[1:]
    features = [",".join(r.split(",")[1:-1]) for r in rows]
    inputs = {"batch-input/a.csv": features[:6], "batch-input/more/b.csv": features[6:]}
    for key, lines in inputs.items():
        s3.put(key, "\n".join(lines) + "\n")  # type: ignore[attr-defined]
    # The recipe nests JSON inside the shorthand (DataSource='{...}',ContentType=...), which the
    # AWS CLI refuses before sending ("Expected: '=', received: '\"'"); the same request in
    # shorthand:
    transform_input = (
        f"DataSource={{S3DataSource={{S3DataType=S3Prefix,S3Uri=s3://{bucket}/batch-input/}}}},"
        "ContentType=text/csv,CompressionType=None,SplitType=Line"
    )
    aws(
        "sagemaker",
        "create-transform-job",
        "--transform-job-name",
        "autopilot-batch-1",
        "--model-name",
        "autopilot-model-1",
        "--transform-input",
        transform_input,
        "--transform-output",
        f"S3OutputPath=s3://{bucket}/batch-output/",
        "--transform-resources",
        "InstanceType=ml.m5.large,InstanceCount=1",
    )
    status = aws.poll("describe-transform-job", "--transform-job-name", "autopilot-batch-1")
    assert status == "Completed", aws(
        "sagemaker", "describe-transform-job", "--transform-job-name", "autopilot-batch-1"
    )
    client = s3.client  # type: ignore[attr-defined]
    for key, lines in inputs.items():
        out_key = "batch-output/" + key.removeprefix("batch-input/") + ".out"
        body = client.get_object(Bucket=bucket, Key=out_key)["Body"].read().decode()
        predicted = body.splitlines()
        assert len(predicted) == len(lines)
        assert set(predicted) <= {"Yes", "No"}

    # Clean-up, as the recipe ends.
    aws("sagemaker", "delete-endpoint", "--endpoint-name", "autopilot-endpoint-1")
    aws("sagemaker", "wait", "endpoint-deleted", "--endpoint-name", "autopilot-endpoint-1")
    aws("sagemaker", "delete-endpoint-config", "--endpoint-config-name", "autopilot-config-1")
    aws("sagemaker", "delete-model", "--model-name", "autopilot-model-1")


def test_recipe_with_local_paths(service: ServiceProcess, tmp_path: Path) -> None:
    """The recipe's job file with local paths in place of S3 (a file:// input prefix, a plain
    output folder): the CLI sends it as it is and the job writes under that folder. Stopped
    once it runs: the S3 run above has shown the whole job."""
    aws = Aws(tmp_path, service.url, None)
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "churn_dataset.csv").write_text(RECIPE_DATA)
    output = tmp_path / "output"
    name = "autopilot-churn-local"
    config = recipe_job_config(name, f"file://{tmp_path / 'input'}/", str(output))
    (tmp_path / "autopilot_job_config.json").write_text(json.dumps(config, indent=4))
    aws(
        "sagemaker",
        "create-auto-ml-job-v2",
        "--cli-input-json",
        "file://autopilot_job_config.json",
    )
    described = json.loads(aws("sagemaker", "describe-auto-ml-job-v2", "--auto-ml-job-name", name))
    source = described["AutoMLJobInputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == f"file://{tmp_path / 'input'}/"
    assert described["OutputDataConfig"]["S3OutputPath"] == str(output)
    # The engine writes its record in the output folder as it begins; then the stop.
    deadline = time.monotonic() + 120
    while not (output / name / "job.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    aws("sagemaker", "stop-auto-ml-job", "--auto-ml-job-name", name)
    assert aws.monitor(name) in ("Stopped", "Completed"), aws(
        "sagemaker", "describe-auto-ml-job-v2", "--auto-ml-job-name", name
    )
