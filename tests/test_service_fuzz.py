"""Request validation of the control plane: the findings of fuzzing it (each a regression test,
in process), and a bounded, seeded fuzz run against a real ``mlpilot serve``."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

import helpers_models
from helpers_fuzz import (
    SEED_ENDPOINT,
    SEED_MODEL,
    STATEFUL_KINDS,
    Fuzzer,
    implemented_operations,
    send,
    settle,
)
from helpers_service import ROLE, ServiceProcess, automl_request, free_port
from mlpilot.service import Service, ServiceConfig, ServiceError
from mlpilot.service._app import create_app
from mlpilot.service._shapes import MAX_REQUEST_BYTES


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The service's operations in process, not opened: no job can start."""
    made = Service(ServiceConfig(data_dir=tmp_path / "data"))
    yield made
    made.store.close()


@pytest.fixture
def http(tmp_path: Path) -> Starlette:
    """The HTTP front in process (its lifespan not run: nothing is started)."""
    return create_app(ServiceConfig(data_dir=tmp_path / "data"))


def _error(service: Service, operation: str, params: dict[str, Any]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        service.call(operation, params)
    return caught.value


def _post(app: Starlette, operation: str, body: bytes, target: str | None = None) -> Any:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mlpilot") as client:
            return await client.post(
                "/",
                content=body,
                headers={
                    "X-Amz-Target": target or f"SageMaker.{operation}",
                    "Content-Type": "application/x-amz-json-1.1",
                },
            )

    return asyncio.run(post())


# -- finding 1: an input channel without DataSource ---------------------------------------------
@pytest.mark.parametrize("version", ["V1", "V2"])
def test_channel_without_data_source_is_a_validation_error(
    service: Service, tmp_path: Path, version: str
) -> None:
    request = automl_request("no-source", str(tmp_path / "in"), str(tmp_path / "out"))
    if version == "V2":
        request["AutoMLJobInputDataConfig"] = [{"ChannelType": "training"}]
        operation, where = "CreateAutoMLJobV2", "autoMLJobInputDataConfig.1.member.dataSource"
    else:
        request = {
            "AutoMLJobName": "no-source",
            "InputDataConfig": [{"TargetAttributeName": "Churn"}],
            "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
            "RoleArn": ROLE,
        }
        operation, where = "CreateAutoMLJob", "inputDataConfig.1.member.dataSource"
    error = _error(service, operation, request)
    assert error.code == "ValidationException"
    assert f"Value null at '{where}'" in error.message
    assert "must not be null" in error.message


def test_endpoint_variant_without_model_name_is_a_validation_error(service: Service) -> None:
    error = _error(
        service,
        "CreateEndpointConfig",
        {"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v"}]},
    )
    assert error.code == "ValidationException"
    assert "productionVariants.1.member.modelName" in error.message


# -- finding 2: MaxResults of every List operation ---------------------------------------------
# ListTags lists one resource's tags (its MaxResults has no maximum): not a resource listing.
LISTS = [op for op in implemented_operations() if op.startswith("List") and op != "ListTags"]


@pytest.mark.parametrize("operation", LISTS)
@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, "ValidationException"),
        (-5, "ValidationException"),
        (100_000, "ValidationException"),
        ("10", "SerializationException"),
        (2.5, "SerializationException"),
        (2**40, "SerializationException"),
        (True, "SerializationException"),
    ],
)
def test_list_max_results_out_of_range_or_mistyped(
    service: Service, operation: str, value: Any, code: str
) -> None:
    params = {"MaxResults": value}
    if operation == "ListCandidatesForAutoMLJob":
        params["AutoMLJobName"] = "some-job"
    error = _error(service, operation, params)
    assert error.code == code
    assert "maxResults" in error.message


@pytest.mark.parametrize("operation", [op for op in LISTS if op != "ListCandidatesForAutoMLJob"])
def test_list_max_results_null_means_the_default(service: Service, operation: str) -> None:
    answer = service.call(operation, {"MaxResults": None, "NextToken": None, "SortBy": None})
    assert list(answer.values()) == [[]]


# -- finding 3: output inside the input ---------------------------------------------------------
def _overlap(service: Service, train: str, output: str, *, v1: bool = False) -> ServiceError:
    request = automl_request("overlap", train, output)
    if v1:
        request = {
            "AutoMLJobName": "overlap",
            "InputDataConfig": [
                {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train}},
                    "TargetAttributeName": "Churn",
                }
            ],
            "OutputDataConfig": {"S3OutputPath": output},
            "RoleArn": ROLE,
        }
    return _error(service, "CreateAutoMLJob" if v1 else "CreateAutoMLJobV2", request)


@pytest.mark.parametrize(
    ("train", "output"),
    [
        ("s3://bucket/data", "s3://bucket/data/out"),
        ("s3://bucket/data/", "s3://bucket/data"),
        ("s3://bucket/data", "s3://bucket/data/"),
    ],
)
def test_s3_output_under_the_input_prefix_is_refused(
    service: Service, train: str, output: str
) -> None:
    for v1 in (False, True):
        error = _overlap(service, train, output, v1=v1)
        assert error.code == "ValidationException"
        assert f"S3OutputPath {output} lies inside the input S3Uri {train}" in error.message
        assert "read its own output" in error.message


def test_local_output_under_the_input_folder_is_refused(service: Service, tmp_path: Path) -> None:
    data = tmp_path / "input"
    data.mkdir()
    (data / "train.csv").write_text("a,Churn\n1,0\n2,1\n")
    for train, output in (
        (str(data), str(data / "out")),
        (data.as_uri(), f"{data.as_uri()}/out"),
        (str(data), str(tmp_path / "link" / "out")),
    ):
        if "link" in output:
            (tmp_path / "link").symlink_to(data)
        error = _overlap(service, train, output)
        assert error.code == "ValidationException"
        assert "read its own output" in error.message, error.message


def test_input_inside_the_jobs_output_folder_is_refused(service: Service, tmp_path: Path) -> None:
    error = _overlap(service, str(tmp_path / "out" / "overlap" / "data"), str(tmp_path / "out"))
    assert error.code == "ValidationException"
    assert "output folder" in error.message


def test_sibling_prefixes_do_not_overlap(service: Service, tmp_path: Path) -> None:
    # s3://b/data and s3://b/data-out are different folders: the check must not refuse them.
    error = _overlap(service, str(tmp_path / "in"), str(tmp_path / "in-out"))
    assert "read its own output" not in error.message
    assert error.code == "ValidationException"  # the input folder does not exist


# -- what else fuzzing found --------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000],
    ids=["arrays", "objects"],
)
def test_json_nested_past_the_parsers_limit_is_a_serialization_error(
    http: Starlette, body: bytes
) -> None:
    response = _post(http, "DescribeAutoMLJobV2", body)
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"


def test_body_over_the_limit_is_413(http: Starlette) -> None:
    body = b'{"AutoMLJobName": "' + b"a" * MAX_REQUEST_BYTES + b'"}'
    response = _post(http, "DescribeAutoMLJobV2", body)
    assert response.status_code == 413
    assert response.json()["__type"] == "RequestEntityTooLargeException"


def test_long_values_are_quoted_short_in_errors(service: Service) -> None:
    error = _error(service, "DescribeAutoMLJobV2", {"AutoMLJobName": "é" * 200_000})
    assert error.code == "ValidationException"
    assert "(200000 characters)" in error.message
    assert len(error.message) < 1000


@pytest.mark.parametrize("value", [10**30, -(2**63) - 1])
def test_integers_past_64_bits_are_serialization_errors(service: Service, value: int) -> None:
    # Python reads any integer; SQLite and the JSON protocol stop at 64 bits.
    request = automl_request("big", "/nonexistent/in", "/nonexistent/out")
    request["AutoMLProblemTypeConfig"]["TabularJobConfig"]["CompletionCriteria"] = {
        "MaxCandidates": value
    }
    error = _error(service, "CreateAutoMLJobV2", request)
    assert error.code == "SerializationException"
    assert "maxCandidates" in error.message


def test_undeclared_members_and_nulls_do_not_reach_the_handler(service: Service) -> None:
    seen: list[dict[str, Any]] = []

    def handler(params: dict[str, Any]) -> dict[str, Any]:
        seen.append(params)
        return {"Models": []}

    service.operations["ListModels"] = handler
    service.call(
        "ListModels",
        {"MaxResults": None, "NameContains": "m", "Extra": {"deep": [1]}, "SortOrder": None},
    )
    assert seen == [{"NameContains": "m"}]


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("", "UnknownOperationException"),
        ("SageMaker.", "UnknownOperationException"),
        ("SageMaker.NoSuchOperation", "UnknownOperationException"),
        ("SageMaker.add_operations", "UnknownOperationException"),
        ("Other.ListModels", "UnknownOperationException"),
    ],
)
def test_unknown_targets(http: Starlette, target: str, code: str) -> None:
    response = _post(http, "", b"{}", target=target)
    assert response.status_code == 400
    assert response.json()["__type"] == code


# -- a bounded fuzz run against the real service -----------------------------------------------
@pytest.mark.slow
def test_fuzzed_requests_get_4xx_with_the_expected_code(tmp_path: Path) -> None:
    """400 seeded requests over every operation: no 5xx, none unanswered, each invalid one
    the code an AWS client expects; the service answers afterwards."""
    server = ServiceProcess(tmp_path / "data", s3_endpoint=f"http://127.0.0.1:{free_port()}")
    server.start()
    fuzzer = Fuzzer(seed=1414, root=tmp_path)
    try:
        with httpx.Client(timeout=60) as client:
            for case in fuzzer.setup():
                assert send(client, f"{server.url}/", case).status == 200
            outcomes = [send(client, f"{server.url}/", case) for case in fuzzer.cases(400)]
        sm = server.boto()
        assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == []
        with pytest.raises(sm.exceptions.ResourceNotFound):
            sm.describe_auto_ml_job_v2(AutoMLJobName="fuzz-a")
    finally:
        server.stop()
    problems = [
        f"{o.status} {'; '.join(o.problems)} <- {o.case.describe(200)}"
        for o in outcomes
        if o.problems
    ]
    assert problems == [], "\n".join(problems)
    operations = {o.case.operation for o in outcomes}
    assert operations == set(implemented_operations())
    statuses = collections.Counter(o.status for o in outcomes)
    assert statuses[200] > 0 and statuses[400] > 0 and statuses[413] > 0
    kinds = {o.case.kind for o in outcomes}
    assert {"valid", "missing", "wrong-type", "pattern", "deep", "not-json", "target"} <= kinds
    # Nothing was started: no job, and the log holds no traceback.
    assert "Traceback" not in server.log()


@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory) -> helpers_models.TrainedModel:
    return helpers_models.churn_model(tmp_path_factory)


@pytest.mark.slow
def test_fuzzed_requests_against_real_resources(
    tmp_path: Path, churn: helpers_models.TrainedModel
) -> None:
    """A stateful run: a real model, endpoint, transform, AutoML job and model package group
    (with a version and a model made from it) are made first, then 200 requests mix fuzzed
    ones with ones aimed at those resources (taken names, deletes twice, odd names, broken
    updates, bad variants, deploying the unapproved version). No 5xx, none unanswered, each the code
    expected; at the end every seeded resource describes and the endpoint still answers."""
    server = ServiceProcess(tmp_path / "data", s3_endpoint=f"http://127.0.0.1:{free_port()}")
    server.start()
    # Seed 10 draws no fuzzed CreateEndpoint that starts a second endpoint: the test stays short.
    fuzzer = Fuzzer(seed=10, root=tmp_path, package=churn.archive)
    try:
        with httpx.Client(timeout=60) as client:
            outcomes = [send(client, f"{server.url}/", case) for case in fuzzer.setup()]
            outcomes += [send(client, f"{server.url}/", case) for case in fuzzer.cases(200)]
            outcomes += [send(client, f"{server.url}/", case) for case in fuzzer.final()]
            settle(client, f"{server.url}/")  # the seeded transform and job ended
        sm = server.boto()
        endpoint = sm.describe_endpoint(EndpointName=SEED_ENDPOINT)
        # Its configuration deleted (final()), it still took new weights.
        assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")
        assert "FailureReason" not in endpoint
        assert endpoint["ProductionVariants"][0]["CurrentWeight"] == 1.0
        answer = server.boto("sagemaker-runtime").invoke_endpoint(
            EndpointName=SEED_ENDPOINT, ContentType="text/csv", Body=churn.csv_body(0, 3)
        )
        assert len(answer["Body"].read().decode().split()) == 3
        assert sm.describe_model(ModelName=SEED_MODEL)["ModelName"] == SEED_MODEL
        log = server.log()
    finally:
        server.stop()
    problems = [
        f"{o.status} {'; '.join(o.problems)} <- {o.case.describe(200)}"
        for o in outcomes
        if o.problems
    ]
    assert problems == [], "\n".join(problems)
    kinds = collections.Counter(o.case.kind for o in outcomes)
    assert {f"seed-{kind}" for kind in STATEFUL_KINDS} <= set(kinds)
    codes = collections.Counter(o.code for o in outcomes)
    assert codes["ResourceInUse"] > 0 and codes["ResourceLimitExceeded"] > 0
    assert codes["ConflictException"] > 0  # the seeded group still holds its version
    assert "Traceback" not in log
