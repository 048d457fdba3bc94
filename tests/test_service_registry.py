"""The model registry (model package groups and versioned packages), CreateModel from a package
and approval gating: the operations in process over a real SQLite store, and one run through a
real ``mlpilot serve`` with boto3 and the AWS CLI. A restart is a new service over the same
SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import helpers_models
from helpers_service import Aws, ServiceProcess
from mlpilot.service import Service, ServiceConfig, ServiceError

ARN = "arn:aws:sagemaker:us-east-1:000000000000"
IMAGE = "mlpilot/tabular-inference:0.1.0"


def _service(data: Path, **settings: Any) -> Service:
    """The operations over the store in ``data`` (not opened: nothing is started)."""
    return Service(ServiceConfig(data_dir=data, **settings))


@pytest.fixture
def model_data(tmp_path: Path) -> str:
    # CreateModelPackage and CreateModel check that the model data exists, not what it holds.
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"model")
    return str(path)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    made = _service(tmp_path / "data")
    yield made
    made.store.close()


def _spec(model_data: str, **environment: str) -> dict[str, Any]:
    container: dict[str, Any] = {"Image": IMAGE, "ModelDataUrl": model_data}
    if environment:
        container["Environment"] = environment
    return {
        "Containers": [container],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }


def _register(service: Service, group: str, model_data: str, **extra: Any) -> str:
    answer = service.call(
        "CreateModelPackage",
        {"ModelPackageGroupName": group, "InferenceSpecification": _spec(model_data), **extra},
    )
    arn: str = answer["ModelPackageArn"]
    return arn


def _error(service: Service, operation: str, params: dict[str, Any]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        service.call(operation, params)
    return caught.value


def test_versions_count_per_group(service: Service, model_data: str) -> None:
    created = service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "Churn"})
    assert created["ModelPackageGroupArn"] == f"{ARN}:model-package-group/churn"
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "other"})
    metrics = {
        "ModelQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/q/statistics.json"}
        },
        "Explainability": {
            "Report": {"ContentType": "application/json", "S3Uri": "s3://b/e/analysis.json"}
        },
    }
    first = _register(
        service,
        "Churn",
        model_data,
        ModelMetrics=metrics,
        CustomerMetadataProperties={"job": "churn-1"},
    )
    second = _register(service, "churn", model_data)  # the group's name in any case
    elsewhere = _register(service, f"{ARN}:model-package-group/other", model_data)
    assert first == f"{ARN}:model-package/churn/1"
    assert second == f"{ARN}:model-package/churn/2"
    assert elsewhere == f"{ARN}:model-package/other/1"

    described = service.call("DescribeModelPackage", {"ModelPackageName": first})
    assert described["ModelPackageName"] == described["ModelPackageGroupName"] == "Churn"
    assert described["ModelPackageVersion"] == 1
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ModelPackageStatus"] == "Completed"
    assert described["ModelMetrics"] == metrics
    assert described["CustomerMetadataProperties"] == {"job": "churn-1"}
    assert described["InferenceSpecification"] == _spec(model_data)
    # ``group/version`` names the same package.
    assert service.call("DescribeModelPackage", {"ModelPackageName": "Churn/2"})[
        "ModelPackageArn"
    ] == (second)

    # A deleted version's number is not given again.
    service.call("DeleteModelPackage", {"ModelPackageName": second})
    assert _register(service, "Churn", model_data) == f"{ARN}:model-package/churn/3"
    group = service.call("DescribeModelPackageGroup", {"ModelPackageGroupName": "churn"})
    assert group["ModelPackageGroupName"] == "Churn"
    assert group["ModelPackageGroupStatus"] == "Completed"


def test_unversioned_packages(service: Service, model_data: str) -> None:
    arn = service.call(
        "CreateModelPackage",
        {"ModelPackageName": "standalone", "InferenceSpecification": _spec(model_data)},
    )["ModelPackageArn"]
    assert arn == f"{ARN}:model-package/standalone"
    described = service.call("DescribeModelPackage", {"ModelPackageName": "standalone"})
    assert "ModelApprovalStatus" not in described
    assert "ModelPackageVersion" not in described
    error = _error(
        service, "UpdateModelPackage", {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}
    )
    assert error.code == "ValidationException"
    assert "unversioned" in error.message


def test_lists_filter_sort_and_page(service: Service, model_data: str) -> None:
    for name in ("churn", "churn-b", "fraud"):
        service.call("CreateModelPackageGroup", {"ModelPackageGroupName": name})
    arns = [_register(service, "churn", model_data) for _ in range(4)]
    _register(service, "fraud", model_data, ModelApprovalStatus="Approved")
    service.call(
        "CreateModelPackage",
        {"ModelPackageName": "loose", "InferenceSpecification": _spec(model_data)},
    )
    service.call(
        "UpdateModelPackage", {"ModelPackageArn": arns[1], "ModelApprovalStatus": "Approved"}
    )
    service.call(
        "UpdateModelPackage", {"ModelPackageArn": arns[2], "ModelApprovalStatus": "Rejected"}
    )

    def listed(**params: Any) -> list[str]:
        answer = service.call("ListModelPackages", params)
        return [s["ModelPackageArn"] for s in answer["ModelPackageSummaryList"]]

    # A group's versions, oldest first, two a page.
    page = service.call("ListModelPackages", {"ModelPackageGroupName": "churn", "MaxResults": 2})
    assert [s["ModelPackageVersion"] for s in page["ModelPackageSummaryList"]] == [1, 2]
    rest = service.call(
        "ListModelPackages",
        {"ModelPackageGroupName": "churn", "MaxResults": 2, "NextToken": page["NextToken"]},
    )
    assert [s["ModelPackageVersion"] for s in rest["ModelPackageSummaryList"]] == [3, 4]
    assert "NextToken" not in rest
    assert listed(ModelPackageGroupName="churn", SortOrder="Descending") == arns[::-1]
    assert listed(ModelPackageGroupName="churn", ModelApprovalStatus="Approved") == [arns[1]]
    assert listed(ModelPackageGroupName="churn", ModelApprovalStatus="PendingManualApproval") == [
        arns[0],
        arns[3],
    ]
    assert listed(ModelApprovalStatus="Approved", ModelPackageType="Versioned") == [
        arns[1],
        f"{ARN}:model-package/fraud/1",
    ]
    # Without a group or a type, SageMaker lists unversioned packages only.
    assert listed() == [f"{ARN}:model-package/loose"]
    assert len(listed(ModelPackageType="Both", MaxResults=100)) == 6
    assert listed(ModelPackageType="Both", SortBy="Name", SortOrder="Descending")[:2] == [
        f"{ARN}:model-package/loose",
        f"{ARN}:model-package/fraud/1",
    ]
    assert listed(ModelPackageGroupName="missing") == []
    # A version's name is its group's: NameContains (any case) matches the group.
    assert listed(ModelPackageType="Both", NameContains="FRA") == [f"{ARN}:model-package/fraud/1"]
    summary = service.call("ListModelPackages", {"ModelPackageGroupName": "fraud"})
    assert set(summary["ModelPackageSummaryList"][0]) == {
        "ModelPackageName",
        "ModelPackageGroupName",
        "ModelPackageVersion",
        "ModelPackageArn",
        "CreationTime",
        "ModelPackageStatus",
        "ModelApprovalStatus",
    }

    groups = service.call(
        "ListModelPackageGroups", {"NameContains": "CHURN", "SortBy": "Name", "MaxResults": 1}
    )
    assert [g["ModelPackageGroupName"] for g in groups["ModelPackageGroupSummaryList"]] == ["churn"]
    more = service.call(
        "ListModelPackageGroups",
        {
            "NameContains": "CHURN",
            "SortBy": "Name",
            "MaxResults": 1,
            "NextToken": groups["NextToken"],
        },
    )
    assert [g["ModelPackageGroupName"] for g in more["ModelPackageGroupSummaryList"]] == ["churn-b"]


def test_approval_transitions_and_metadata(service: Service, model_data: str) -> None:
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "churn"})
    arn = _register(service, "churn", model_data, CustomerMetadataProperties={"a": "1", "b": "2"})
    for status in ("Approved", "Rejected", "Approved"):
        answer = service.call(
            "UpdateModelPackage",
            {
                "ModelPackageArn": arn,
                "ModelApprovalStatus": status,
                "ApprovalDescription": f"{status} by the review",
            },
        )
        assert answer == {"ModelPackageArn": arn}
        described = service.call("DescribeModelPackage", {"ModelPackageName": arn})
        assert described["ModelApprovalStatus"] == status
        assert described["ApprovalDescription"] == f"{status} by the review"
    error = _error(
        service,
        "UpdateModelPackage",
        {"ModelPackageArn": arn, "ModelApprovalStatus": "PendingManualApproval"},
    )
    assert error.code == "ValidationException"
    assert "is Approved" in error.message and "not back to PendingManualApproval" in error.message
    service.call(
        "UpdateModelPackage",
        {
            "ModelPackageArn": arn,
            "CustomerMetadataProperties": {"c": "3"},
            "CustomerMetadataPropertiesToRemove": ["a"],
        },
    )
    described = service.call("DescribeModelPackage", {"ModelPackageName": arn})
    assert described["CustomerMetadataProperties"] == {"b": "2", "c": "3"}
    assert described["ModelApprovalStatus"] == "Approved"


def test_a_retried_create_gives_the_same_version(service: Service, model_data: str) -> None:
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "churn"})
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "fraud"})
    first = _register(service, "churn", model_data, ClientToken="retry-1")
    assert _register(service, "churn", model_data, ClientToken="retry-1") == first
    assert _register(service, "churn", model_data, ClientToken="retry-2").endswith("/churn/2")
    error = _error(
        service,
        "CreateModelPackage",
        {
            "ModelPackageGroupName": "fraud",
            "InferenceSpecification": _spec(model_data),
            "ClientToken": "retry-1",
        },
    )
    assert error.code == "ConflictException"


def test_registry_survives_a_restart(tmp_path: Path, model_data: str) -> None:
    before = _service(tmp_path / "data")
    before.call("CreateModelPackageGroup", {"ModelPackageGroupName": "churn"})
    arn = _register(before, "churn", model_data)
    before.call("UpdateModelPackage", {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"})
    _register(before, "churn", model_data)
    before.call("DeleteModelPackage", {"ModelPackageName": f"{ARN}:model-package/churn/2"})
    before.store.close()

    after = _service(tmp_path / "data")
    try:
        described = after.call("DescribeModelPackage", {"ModelPackageName": arn})
        assert described["ModelApprovalStatus"] == "Approved"
        listed = after.call("ListModelPackages", {"ModelPackageGroupName": "churn"})
        assert [s["ModelPackageArn"] for s in listed["ModelPackageSummaryList"]] == [arn]
        # Version 2 was deleted before the restart: the next one is still 3.
        assert _register(after, "churn", model_data).endswith("/churn/3")
    finally:
        after.store.close()


@pytest.mark.parametrize(
    ("operation", "params", "code", "words"),
    [
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "missing"},
            "ValidationException",
            "model-package-group/missing does not exist",
        ),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "churn", "ModelPackageName": "x"},
            "ValidationException",
            "Both ModelPackageName and ModelPackageGroupName",
        ),
        ("CreateModelPackage", {}, "ValidationException", "Give ModelPackageGroupName"),
        (
            "CreateModelPackage",
            {"ModelPackageName": "x", "ModelApprovalStatus": "Approved"},
            "ValidationException",
            "applies to versioned packages",
        ),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "churn", "InferenceSpecification": None},
            "ValidationException",
            "need an InferenceSpecification",
        ),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "churn", "containers": 2},
            "ValidationException",
            "one container",
        ),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "churn", "image": "123.dkr.ecr/xgboost:1"},
            "ValidationException",
            "not an mlpilot inference image",
        ),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "churn", "data": "/nowhere/model.tar.gz"},
            "ValidationException",
            "Could not find model data at /nowhere/model.tar.gz",
        ),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "churn", "InferenceSpecification": {"Containers": []}},
            "ValidationException",
            "inferenceSpecification.containers",
        ),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "churn", "InferenceSpecification": {"Containers": "x"}},
            "SerializationException",
            "inferenceSpecification.containers",
        ),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "churn", "ModelApprovalStatus": "Maybe"},
            "ValidationException",
            "modelApprovalStatus",
        ),
        (
            "DescribeModelPackage",
            {"ModelPackageName": "churn/7"},
            "ValidationException",
            "model-package/churn/7 does not exist",
        ),
        (
            "DeleteModelPackage",
            {"ModelPackageName": f"{ARN}:model-package/churn/7"},
            "ValidationException",
            "does not exist",
        ),
        (
            "UpdateModelPackage",
            {"ModelPackageArn": f"{ARN}:model-package/churn/7", "ModelApprovalStatus": "Approved"},
            "ValidationException",
            "does not exist",
        ),
        (
            "UpdateModelPackage",
            {"ModelPackageArn": "churn/1"},
            "ValidationException",
            "modelPackageArn",
        ),
        (
            "DescribeModelPackageGroup",
            {"ModelPackageGroupName": "missing"},
            "ValidationException",
            "does not exist",
        ),
        (
            "DeleteModelPackageGroup",
            {"ModelPackageGroupName": "churn"},
            "ConflictException",
            "still holds model packages (versions 1)",
        ),
        (
            "CreateModelPackageGroup",
            {"ModelPackageGroupName": "CHURN"},
            "ValidationException",
            "Model Package Group already exists",
        ),
        (
            "CreateModelPackageGroup",
            {
                "ModelPackageGroupName": "g",
                "Tags": [{"Key": "mlpilot:RequireApproval", "Value": "yes"}],
            },
            "ValidationException",
            "takes true or false",
        ),
        (
            "CreateModelPackageGroup",
            {"ModelPackageGroupName": "g", "Tags": [{"Key": "mlpilot:Approval", "Value": "1"}]},
            "ValidationException",
            "Unknown tag mlpilot:Approval",
        ),
        (
            "CreateModel",
            {"ModelName": "m", "PrimaryContainer": {"ModelPackageName": "churn/7"}},
            "ValidationException",
            "model-package/churn/7 does not exist",
        ),
        (
            "CreateModel",
            {"ModelName": "m", "Containers": [{"ModelPackageName": "churn/1", "Image": IMAGE}]},
            "ValidationException",
            "give ModelPackageName or Image, not both",
        ),
    ],
)
def test_bad_input(
    service: Service,
    model_data: str,
    operation: str,
    params: dict[str, Any],
    code: str,
    words: str,
) -> None:
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "churn"})
    _register(service, "churn", model_data)
    request = dict(params)
    if operation == "CreateModelPackage" and "InferenceSpecification" not in request:
        container = {
            "Image": request.pop("image", IMAGE),
            "ModelDataUrl": request.pop("data", model_data),
        }
        request["InferenceSpecification"] = {
            "Containers": [container] * request.pop("containers", 1)
        }
    error = _error(service, operation, request)
    assert error.code == code
    assert words in error.message, error.message


def _deployable(service: Service, model_data: str, group: str, tags: list[Any]) -> str:
    """A model made from version 1 of a new group, and an endpoint configuration serving it."""
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": group, "Tags": tags})
    arn = _register(service, group, model_data)
    service.call(
        "CreateModel",
        {"ModelName": f"{group}-model", "PrimaryContainer": {"ModelPackageName": arn}},
    )
    service.call(
        "CreateEndpointConfig",
        {
            "EndpointConfigName": f"{group}-config",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{group}-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
    )
    return arn


def test_create_model_from_a_package(service: Service, model_data: str) -> None:
    service.call("CreateModelPackageGroup", {"ModelPackageGroupName": "churn"})
    arn = service.call(
        "CreateModelPackage",
        {
            "ModelPackageGroupName": "churn",
            "InferenceSpecification": _spec(
                model_data, SAGEMAKER_INFERENCE_OUTPUT="predicted_label"
            ),
        },
    )["ModelPackageArn"]
    service.call(
        "CreateModel",
        {"ModelName": "m", "Containers": [{"ModelPackageName": arn, "Environment": {"X": "1"}}]},
    )
    container = service.call("DescribeModel", {"ModelName": "m"})["Containers"][0]
    assert container == {
        "ModelPackageName": arn,
        "Image": IMAGE,
        "ModelDataUrl": model_data,
        "Environment": {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label", "X": "1"},
    }
    # Nothing requires approval: the pending package deploys, as on SageMaker.
    service.registry.check_deployable(["m"])


@pytest.mark.parametrize("rule", ["group tag", "service"])
def test_approval_gates_deployment(tmp_path: Path, model_data: str, rule: str) -> None:
    service = _service(tmp_path / "data", require_approved_packages=rule == "service")
    try:
        tags = [{"Key": "mlpilot:RequireApproval", "Value": "true"}] if rule == "group tag" else []
        arn = _deployable(service, model_data, "churn", tags)
        for operation, params in (
            ("CreateEndpoint", {"EndpointName": "e", "EndpointConfigName": "churn-config"}),
            (
                "CreateTransformJob",
                {
                    "TransformJobName": "t",
                    "ModelName": "churn-model",
                    "TransformInput": {
                        "DataSource": {
                            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(tmp_path)}
                        }
                    },
                    "TransformOutput": {"S3OutputPath": str(tmp_path / "out")},
                    "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
                },
            ),
        ):
            error = _error(service, operation, params)
            assert error.code == "ValidationException"
            assert f"made from model package {arn}" in error.message
            assert "ModelApprovalStatus is PendingManualApproval" in error.message
            why = "--require-approved-packages" if rule == "service" else "RequireApproval=true"
            assert why in error.message
        assert service.store.get_resource("endpoint", "e") is None
        service.call(
            "UpdateModelPackage", {"ModelPackageArn": arn, "ModelApprovalStatus": "Rejected"}
        )
        assert (
            "is Rejected"
            in _error(
                service,
                "CreateEndpoint",
                {"EndpointName": "e", "EndpointConfigName": "churn-config"},
            ).message
        )
        service.call(
            "UpdateModelPackage", {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}
        )
        service.registry.check_deployable(["churn-model"])
        # Another group without the tag: only the service's rule gates it.
        _deployable(service, model_data, "free", [])
        if rule == "service":
            with pytest.raises(ServiceError, match="PendingManualApproval"):
                service.registry.check_deployable(["free-model"])
        else:
            service.registry.check_deployable(["free-model"])
        # A deleted package cannot be approved any more.
        service.call("DeleteModelPackage", {"ModelPackageName": arn})
        with pytest.raises(ServiceError, match="no longer exists"):
            service.registry.check_deployable(["churn-model"])
    finally:
        service.store.close()


# -- through a real mlpilot serve ----------------------------------------------------------------
@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory) -> helpers_models.TrainedModel:
    return helpers_models.churn_model(tmp_path_factory)


@pytest.mark.slow
def test_register_approve_and_serve_a_jobs_best_candidate(
    tmp_path: Path, churn: helpers_models.TrainedModel
) -> None:
    """The documented recipe with boto3: a job's best candidate registered as version 1 of a
    group that requires approval; its model's endpoint refused until the version is Approved,
    then serving its predictions; an update to version 2, not approved, refused with the
    endpoint untouched; the AWS CLI lists the group's versions."""
    job = json.loads((churn.job / "job.json").read_text())
    best = job["BestCandidate"]
    server = ServiceProcess(tmp_path / "data").start()
    try:
        sm = server.boto()
        sm.create_model_package_group(
            ModelPackageGroupName="churn",
            ModelPackageGroupDescription="churn models",
            Tags=[{"Key": "mlpilot:RequireApproval", "Value": "true"}],
        )
        arn = sm.create_model_package(
            ModelPackageGroupName="churn",
            InferenceSpecification={
                "Containers": best["InferenceContainers"],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties={"AutoMLJobName": job["AutoMLJobName"]},
        )["ModelPackageArn"]
        assert arn == f"{ARN}:model-package/churn/1"
        for version in (1, 2):
            if version == 2:
                # The challenger: version 2, awaiting review.
                arn2 = sm.create_model_package(
                    ModelPackageGroupName="churn",
                    InferenceSpecification={"Containers": best["InferenceContainers"]},
                )["ModelPackageArn"]
                assert arn2 == f"{ARN}:model-package/churn/2"
            sm.create_model(
                ModelName=f"churn-v{version}",
                PrimaryContainer={"ModelPackageName": f"{ARN}:model-package/churn/{version}"},
            )
            sm.create_endpoint_config(
                EndpointConfigName=f"churn-v{version}",
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": f"churn-v{version}",
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.m5.large",
                    }
                ],
            )
        with pytest.raises(ClientError) as refused:
            sm.create_endpoint(EndpointName="churn", EndpointConfigName="churn-v1")
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "PendingManualApproval" in refused.value.response["Error"]["Message"]
        assert sm.list_endpoints()["Endpoints"] == []

        sm.update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="reviewed"
        )
        sm.create_endpoint(EndpointName="churn", EndpointConfigName="churn-v1")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="churn", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        # Version 2 is not approved: the endpoint keeps serving version 1.
        with pytest.raises(ClientError, match=r"model-package/churn/2, whose"):
            sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-v2")
        endpoint = sm.describe_endpoint(EndpointName="churn")
        assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
            "InService",
            "churn-v1",
        )
        answer = server.boto("sagemaker-runtime").invoke_endpoint(
            EndpointName="churn", ContentType="text/csv", Body=churn.csv_body(0, 5)
        )
        served = answer["Body"].read().decode().split()
        expected = churn.model.predict(churn.rows.iloc[:5])["predicted_label"]
        assert served == [str(v) for v in expected]
        sm.delete_endpoint(EndpointName="churn")

        # The AWS CLI reads the registry too.
        aws = Aws(tmp_path, server.url, None)
        listed = json.loads(
            aws("sagemaker", "list-model-packages", "--model-package-group-name", "churn")
        )
        summaries = listed["ModelPackageSummaryList"]
        assert [(s["ModelPackageVersion"], s["ModelApprovalStatus"]) for s in summaries] == [
            (1, "Approved"),
            (2, "PendingManualApproval"),
        ]
        described = sm.describe_model_package(ModelPackageName=arn)
        assert described["ApprovalDescription"] == "reviewed"
        assert described["CustomerMetadataProperties"] == {"AutoMLJobName": job["AutoMLJobName"]}
    finally:
        server.stop()
    assert "Traceback" not in server.log()
