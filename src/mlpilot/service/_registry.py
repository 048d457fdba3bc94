"""The model registry: model package groups and model packages (CreateModelPackageGroup …
DeleteModelPackage) in the metadata store, and what models and deployments ask of it.

A package in a group is *versioned*: versions count 1, 2, 3… per group (a deleted version's
number is not given again), its ARN is ``model-package/<group>/<version>`` and its
``ModelApprovalStatus`` starts ``PendingManualApproval`` unless the create says otherwise. A
package made with ``ModelPackageName`` instead is *unversioned* (``model-package/<name>``) and
has no approval status, as on SageMaker.

``CreateModel`` with a container naming a package (``ModelPackageName``: its ARN, or its name
for an unversioned one) gets the package's image and model data. Deploying such a model
(``CreateEndpoint``, ``UpdateEndpoint``, ``CreateTransformJob``) is refused unless the package
is ``Approved`` when approval is required: by the service (``mlpilot serve
--require-approved-packages``) or by the package's group (its tag
``mlpilot:RequireApproval=true``). SageMaker itself deploys any package, so neither is on by
default.
"""

from __future__ import annotations

import threading
from typing import Any

from mlpilot.service._config import ServiceConfig
from mlpilot.service._deploy import MODEL, _now, check_container
from mlpilot.service._errors import ServiceError, validation
from mlpilot.service._listing import list_answer, listing
from mlpilot.service._store import AlreadyExists, Store

__all__ = [
    "MODEL_PACKAGE",
    "MODEL_PACKAGE_GROUP",
    "REQUIRE_APPROVAL_TAG",
    "RegistryOperations",
]

MODEL_PACKAGE = "model-package"
MODEL_PACKAGE_GROUP = "model-package-group"
#: A group tag: ``true`` makes deploying its packages need ``ModelApprovalStatus=Approved``.
REQUIRE_APPROVAL_TAG = "mlpilot:RequireApproval"
_APPROVED = "Approved"
_PENDING = "PendingManualApproval"
#: The members of ListModelPackages' and ListModelPackageGroups' summaries.
_SUMMARY = (
    "ModelPackageName",
    "ModelPackageGroupName",
    "ModelPackageVersion",
    "ModelPackageArn",
    "ModelPackageDescription",
    "CreationTime",
    "ModelPackageStatus",
    "ModelApprovalStatus",
    "ModelLifeCycle",
    "ModelPackageRegistrationType",
)
_GROUP_SUMMARY = (
    "ModelPackageGroupName",
    "ModelPackageGroupArn",
    "ModelPackageGroupDescription",
    "CreationTime",
    "ModelPackageGroupStatus",
    "ManagedConfiguration",
)
#: CreateModelPackage members kept as given and described back.
_ECHO = (
    "ModelPackageDescription",
    "ModelPackageRegistrationType",
    "InferenceSpecification",
    "CertifyForMarketplace",
    "MetadataProperties",
    "ModelMetrics",
    "Domain",
    "Task",
    "SamplePayloadUrl",
    "CustomerMetadataProperties",
    "DriftCheckBaselines",
    "AdditionalInferenceSpecifications",
    "SkipModelValidation",
    "SourceUri",
    "SecurityConfig",
    "ModelCard",
    "ModelLifeCycle",
)
#: UpdateModelPackage members that replace the package's own.
_REPLACED = (
    "ApprovalDescription",
    "ModelPackageRegistrationType",
    "InferenceSpecification",
    "SourceUri",
    "ModelCard",
    "ModelLifeCycle",
)
#: The shapes' limits on a package's metadata map and its extra inference specifications.
_MAX_METADATA = 50
_MAX_ADDITIONAL = 15


def _conflict(message: str) -> ServiceError:
    return ServiceError("ConflictException", message)


def _requires_approval_tag(tags: list[dict[str, Any]]) -> bool:
    """The group's :data:`REQUIRE_APPROVAL_TAG` (absent: False); any other ``mlpilot:`` key or
    a value other than true/false is a ValidationException."""
    required = False
    for tag in tags:
        key, value = tag["Key"], str(tag.get("Value", ""))
        if not key.startswith("mlpilot:"):
            continue
        if key != REQUIRE_APPROVAL_TAG:
            raise validation(
                f"Unknown tag {key} on a model package group: the one mlpilot reads there is "
                f"{REQUIRE_APPROVAL_TAG}"
            )
        if value.lower() not in ("true", "false"):
            raise validation(f"Tag {REQUIRE_APPROVAL_TAG} takes true or false, not {value!r}")
        required = value.lower() == "true"
    return required


class RegistryOperations:
    """CreateModelPackageGroup … DeleteModelPackage, and the package lookups of CreateModel
    and of deployments."""

    def __init__(self, config: ServiceConfig, store: Store) -> None:
        self.config = config
        self.store = store
        # Numbering a group's next version and writing it are one step.
        self._lock = threading.Lock()

    def _arn(self, kind: str, name_or_arn: str) -> str:
        # ARNs hold names lower-cased: one given by hand in another case still matches.
        if name_or_arn.startswith("arn:"):
            return name_or_arn.lower()
        return self.config.arn(kind, name_or_arn)

    # -- groups ---------------------------------------------------------------------------
    def CreateModelPackageGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ModelPackageGroupName"]
        arn = self.config.arn(MODEL_PACKAGE_GROUP, name)
        tags = params.get("Tags") or []
        _requires_approval_tag(tags)
        record: dict[str, Any] = {
            "ModelPackageGroupName": name,
            "ModelPackageGroupArn": arn,
            "CreationTime": _now(),
            "CreatedBy": {},
            "ModelPackageGroupStatus": "Completed",
            "Tags": tags,
        }
        for key in ("ModelPackageGroupDescription", "ManagedConfiguration"):
            if params.get(key) is not None:
                record[key] = params[key]
        taken = validation(f"Model Package Group already exists: {arn}")
        with self._lock:
            # Names differing only in case share an ARN: one group.
            if self.store.resource_by_arn(MODEL_PACKAGE_GROUP, arn) is not None:
                raise taken
            try:
                self.store.insert_resource(MODEL_PACKAGE_GROUP, name, arn, record)
            except AlreadyExists:
                raise taken from None
        return {"ModelPackageGroupArn": arn}

    def _group(self, name_or_arn: str) -> dict[str, Any]:
        arn = self._arn(MODEL_PACKAGE_GROUP, name_or_arn)
        record = self.store.resource_by_arn(MODEL_PACKAGE_GROUP, arn)
        if record is None:
            raise validation(f"ModelPackageGroup {arn} does not exist.")
        return record

    def DescribeModelPackageGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._group(params["ModelPackageGroupName"])

    def ListModelPackageGroups(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("CrossAccountFilterOption") == "CrossAccount":
            # Groups shared from other accounts: one account here, none.
            return list_answer("ModelPackageGroupSummaryList", [], None)
        query = listing(params)
        query["descending"] = params.get("SortOrder", "Ascending") == "Descending"
        page = self.store.list_resources(MODEL_PACKAGE_GROUP, **query)
        return list_answer(
            "ModelPackageGroupSummaryList", page.rows, page.next_token, _GROUP_SUMMARY
        )

    def DeleteModelPackageGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            group = self._group(params["ModelPackageGroupName"])
            name = group["ModelPackageGroupName"]
            held = self.store.list_model_packages(
                group=name, versioned=True, approval=None, listing={"limit": 100}
            ).rows
            if held:
                versions = ", ".join(str(r["ModelPackageVersion"]) for r in held)
                raise _conflict(
                    f"Model package group {group['ModelPackageGroupArn']} still holds model "
                    f"packages (versions {versions}); delete them with DeleteModelPackage first"
                )
            self.store.delete_resource(MODEL_PACKAGE_GROUP, name)
        return {}

    # -- packages -------------------------------------------------------------------------
    def CreateModelPackage(self, params: dict[str, Any]) -> dict[str, Any]:
        group_given, name = params.get("ModelPackageGroupName"), params.get("ModelPackageName")
        if group_given is not None and name is not None:
            raise validation(
                "Both ModelPackageName and ModelPackageGroupName are provided in the input. "
                "Cannot determine which one to use."
            )
        if group_given is None and name is None:
            raise validation(
                "Give ModelPackageGroupName (a versioned package: the group's next version) "
                "or ModelPackageName (an unversioned package)"
            )
        if group_given is None and params.get("ModelApprovalStatus") is not None:
            raise validation(
                "ModelApprovalStatus applies to versioned packages (made in a model package "
                "group with ModelPackageGroupName), not to unversioned ones"
            )
        self._check_specification(params)
        token = params.get("ClientToken")
        with self._lock:
            if token is not None:
                earlier = self.store.model_package(client_token=token)
                if earlier is not None:
                    return {"ModelPackageArn": self._retried(earlier, group_given, name)}
            now = _now()
            record: dict[str, Any] = {k: params[k] for k in _ECHO if params.get(k) is not None}
            record.update(
                CreationTime=now,
                LastModifiedTime=now,
                ModelPackageStatus="Completed",
                ModelPackageStatusDetails={"ValidationStatuses": [], "ImageScanStatuses": []},
                CreatedBy={},
            )
            if group_given is not None:
                group = self._group(group_given)
                group_name = group["ModelPackageGroupName"]
                notes = group.get("Mlpilot", {})
                version = 1 + max(
                    int(notes.get("LastVersion", 0)), self.store.last_package_version(group_name)
                )
                key = f"{group_name}/{version}"
                record.update(
                    ModelPackageName=group_name,
                    ModelPackageGroupName=group_name,
                    ModelPackageVersion=version,
                    ModelApprovalStatus=params.get("ModelApprovalStatus", _PENDING),
                )
            else:
                group, group_name, version, key = None, None, None, str(name)
                record["ModelPackageName"] = key
            arn = self.config.arn(MODEL_PACKAGE, key)
            record["ModelPackageArn"] = arn
            row = {
                "name": key,
                "arn": arn,
                "group_name": group_name,
                "version": version,
                "approval": record.get("ModelApprovalStatus"),
                "client_token": token,
                "record": record,
            }
            try:
                self.store.insert_model_package(row)
            except AlreadyExists:
                raise validation(f"Model Package already exists: {arn}") from None
            if group is not None:
                group["Mlpilot"] = {**group.get("Mlpilot", {}), "LastVersion": version}
                self.store.put_resource(MODEL_PACKAGE_GROUP, str(group_name), group)
        return {"ModelPackageArn": arn}

    def _retried(self, earlier: dict[str, Any], group: str | None, name: str | None) -> str:
        """The ARN a create that repeats ``earlier``'s ClientToken answers: that package's,
        when the retry asks for the same group (or name); ConflictException otherwise."""
        if group is not None:
            same = self._arn(MODEL_PACKAGE_GROUP, group) == self.config.arn(
                MODEL_PACKAGE_GROUP, str(earlier.get("ModelPackageGroupName", ""))
            )
        else:
            same = "ModelPackageVersion" not in earlier and (
                str(name).lower() == earlier["ModelPackageName"].lower()
            )
        if not same:
            raise _conflict(
                f"ClientToken already made model package {earlier['ModelPackageArn']}; a "
                "different package needs a new token"
            )
        return str(earlier["ModelPackageArn"])

    @staticmethod
    def _check_specification(params: dict[str, Any]) -> None:
        """What mlpilot needs of a package to run it: one mlpilot container with model data."""
        if params.get("ValidationSpecification") is not None:
            raise validation(
                "ValidationSpecification is not supported: mlpilot runs no validation "
                "transform jobs on a model package"
            )
        specification = params.get("InferenceSpecification")
        if specification is None:
            raise validation(
                "mlpilot model packages need an InferenceSpecification with the model's "
                "container (packages made from a SourceAlgorithmSpecification are not supported)"
            )
        containers = specification["Containers"]
        if len(containers) != 1:
            raise validation(
                "mlpilot model packages have one container: the model package holds the whole "
                f"inference pipeline (got {len(containers)} containers)"
            )
        check_container(containers[0], "InferenceSpecification's container")

    def _package(self, name_or_arn: str) -> dict[str, Any]:
        arn = self._arn(MODEL_PACKAGE, name_or_arn)
        record = self.store.model_package(arn=arn)
        if record is None:
            raise validation(f"ModelPackage {arn} does not exist.")
        return record

    def DescribeModelPackage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._package(params["ModelPackageName"])

    def ListModelPackages(self, params: dict[str, Any]) -> dict[str, Any]:
        kind = params.get("ModelPackageType")
        group_given = params.get("ModelPackageGroupName")
        group: str | None = None
        versioned: bool | None
        if group_given is not None:
            # A group's packages are its versions; a group that is not there holds none.
            found = self.store.resource_by_arn(
                MODEL_PACKAGE_GROUP, self._arn(MODEL_PACKAGE_GROUP, group_given)
            )
            if found is None or kind == "Unversioned":
                return list_answer("ModelPackageSummaryList", [], None)
            group, versioned = found["ModelPackageGroupName"], True
        else:
            # SageMaker lists unversioned packages unless told otherwise.
            versioned = {"Versioned": True, "Unversioned": False, "Both": None}[
                kind or "Unversioned"
            ]
        query = listing(params)
        query["descending"] = params.get("SortOrder", "Ascending") == "Descending"
        page = self.store.list_model_packages(
            group=group,
            versioned=versioned,
            approval=params.get("ModelApprovalStatus"),
            listing=query,
        )
        return list_answer("ModelPackageSummaryList", page.rows, page.next_token, _SUMMARY)

    def UpdateModelPackage(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record = self._package(params["ModelPackageArn"])
            arn = record["ModelPackageArn"]
            wanted = params.get("ModelApprovalStatus")
            if wanted is not None:
                current = record.get("ModelApprovalStatus")
                if current is None:
                    raise validation(
                        f"Model package {arn} is unversioned: it has no approval status "
                        "(ModelApprovalStatus applies to the versions in a model package group)"
                    )
                if wanted == _PENDING and current != _PENDING:
                    raise validation(
                        f"Model package {arn} is {current}: its ModelApprovalStatus can change "
                        f"to Approved or Rejected, not back to {_PENDING}"
                    )
                record["ModelApprovalStatus"] = wanted
            specification = params.get("InferenceSpecification")
            if specification is not None:
                self._check_specification({"InferenceSpecification": specification})
            for key in _REPLACED:
                if params.get(key) is not None:
                    record[key] = params[key]
            metadata = {
                **record.get("CustomerMetadataProperties", {}),
                **params.get("CustomerMetadataProperties", {}),
            }
            for key in params.get("CustomerMetadataPropertiesToRemove", []):
                metadata.pop(key, None)
            if len(metadata) > _MAX_METADATA:
                raise validation(
                    f"Model package {arn} would have {len(metadata)} CustomerMetadataProperties; "
                    f"at most {_MAX_METADATA} are allowed"
                )
            record.pop("CustomerMetadataProperties", None)
            if metadata:
                record["CustomerMetadataProperties"] = metadata
            added = params.get("AdditionalInferenceSpecificationsToAdd") or []
            if added:
                additional = [*record.get("AdditionalInferenceSpecifications", []), *added]
                if len(additional) > _MAX_ADDITIONAL:
                    raise validation(
                        f"Model package {arn} would have {len(additional)} "
                        f"AdditionalInferenceSpecifications; at most {_MAX_ADDITIONAL} are allowed"
                    )
                record["AdditionalInferenceSpecifications"] = additional
            record["LastModifiedTime"] = _now()
            record["LastModifiedBy"] = {}
            self.store.put_model_package(arn, record)
        return {"ModelPackageArn": arn}

    def DeleteModelPackage(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            arn = self._package(params["ModelPackageName"])["ModelPackageArn"]
            self.store.delete_model_package(arn)
        return {}

    # -- models and deployments -----------------------------------------------------------
    def container(self, given: dict[str, Any]) -> dict[str, Any]:
        """The container a model made from a package runs: the package's image and model
        data, its environment under ``given``'s, ``ModelPackageName`` as the package's ARN."""
        for key in ("Image", "ModelDataUrl", "ModelDataSource"):
            if given.get(key) is not None:
                raise validation(
                    f"A container with a ModelPackageName takes its image and model data from "
                    f"the package: give ModelPackageName or {key}, not both"
                )
        record = self._package(given["ModelPackageName"])
        arn = record["ModelPackageArn"]
        source = record["InferenceSpecification"]["Containers"][0]
        resolved = {
            **given,
            "ModelPackageName": arn,
            "Image": source["Image"],
            "ModelDataUrl": source["ModelDataUrl"],
        }
        environment = {**source.get("Environment", {}), **given.get("Environment", {})}
        if environment:
            resolved["Environment"] = environment
        # The package's model data may have gone since it was registered.
        check_container(resolved, f"Model package {arn}'s container")
        return resolved

    def check_deployable(self, models: list[str]) -> None:
        """Refuse (ValidationException) to deploy any of ``models`` made from a package that
        is not Approved where approval is required; models not made from a package pass."""
        for model_name in models:
            model = self.store.get_resource(MODEL, model_name) or {}
            containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
            for container in containers:
                arn = container.get("ModelPackageName")
                if arn is not None:
                    self._check_approved(model_name, str(arn))

    def _check_approved(self, model_name: str, arn: str) -> None:
        record = self.store.model_package(arn=arn)
        group_name = None if record is None else record.get("ModelPackageGroupName")
        if record is None and arn.count("/") == 2:
            # Deleted: its ARN still names its group (model-package/<group>/<version>).
            group_name = arn.split("/")[1]
        why = self.approval_rule(group_name)
        if why is None:
            return
        if record is None:
            raise validation(
                f"Model {model_name} is made from model package {arn}, which no longer exists; "
                f"only Approved packages may be deployed ({why})"
            )
        status = record.get("ModelApprovalStatus")
        if status == _APPROVED:
            return
        if status is None:
            raise validation(
                f"Model {model_name} is made from model package {arn}, an unversioned package, "
                f"which has no approval status; only Approved packages may be deployed ({why})"
            )
        raise validation(
            f"Model {model_name} is made from model package {arn}, whose ModelApprovalStatus is "
            f"{status}; only Approved packages may be deployed ({why}). Approve it with "
            "UpdateModelPackage (ModelApprovalStatus=Approved) first"
        )

    def approval_rule(self, group_name: str | None) -> str | None:
        """What requires approval for a package of ``group_name`` (None: nothing does)."""
        if self.config.require_approved_packages:
            return "mlpilot serve --require-approved-packages"
        if group_name is not None:
            group = self.store.resource_by_arn(
                MODEL_PACKAGE_GROUP, self.config.arn(MODEL_PACKAGE_GROUP, group_name)
            )
            if group is not None and _requires_approval_tag(group.get("Tags") or []):
                return f"model package group {group_name} has tag {REQUIRE_APPROVAL_TAG}=true"
        return None
