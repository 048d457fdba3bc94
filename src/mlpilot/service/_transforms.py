"""Batch transform jobs: CreateTransformJob, DescribeTransformJob, StopTransformJob,
ListTransformJobs.

Each transform runs in its own process (``python -m mlpilot.service._transform_runner``), like
AutoML jobs: it survives a restart of the service, and one that dies is reported ``Failed``
with the reason, its staging folder and half-written objects removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from mlpilot.service._config import ServiceConfig
from mlpilot.service._deploy import MODEL, _now
from mlpilot.service._errors import in_use, not_found, validation
from mlpilot.service._kms import check_kms_key
from mlpilot.service._listing import list_answer, listing
from mlpilot.service._registry import RegistryOperations
from mlpilot.service._runners import RunnerSupervisor, ending, pid_is_runner
from mlpilot.service._store import AlreadyExists, Store

__all__ = ["TRANSFORM_JOB", "TransformManager", "TransformOperations"]

TRANSFORM_JOB = "transform-job"
_ENDED = ("Completed", "Failed", "Stopped")
#: The members of ListTransformJobs' summaries.
_SUMMARY = (
    "TransformJobName",
    "TransformJobArn",
    "CreationTime",
    "TransformEndTime",
    "LastModifiedTime",
    "TransformJobStatus",
    "FailureReason",
)
_ECHO = (
    "TransformJobName",
    "ModelName",
    "MaxConcurrentTransforms",
    "ModelClientConfig",
    "MaxPayloadInMB",
    "BatchStrategy",
    "Environment",
    "TransformInput",
    "TransformOutput",
    "DataCaptureConfig",
    "TransformResources",
    "DataProcessing",
    "ExperimentConfig",
)


def _alive(pid: int | None, name: str) -> bool:
    return pid_is_runner(pid, name, "mlpilot.service._transform_runner")


class TransformManager(RunnerSupervisor):
    def __init__(self, config: ServiceConfig, store: Store) -> None:
        super().__init__()
        self.config = config
        self.store = store

    def open(self) -> None:
        for record in self.store.list_resources(TRANSFORM_JOB, limit=10_000).rows:
            if record["TransformJobStatus"] in ("InProgress", "Stopping"):
                pid = record.get("Mlpilot", {}).get("RunnerPid")
                if not _alive(pid, record["TransformJobName"]):
                    self.fail(
                        record["TransformJobName"],
                        "the transform's process was not running when the service started",
                    )
        self._watch("mlpilot-transforms")

    def close(self) -> None:
        self._close_runners(self.stop, wait=15.0)
        self._check()

    def work_dir(self, name: str) -> Path:
        """The runner's staging folder (objects bound for S3 wait there for their upload)."""
        return self.config.data_dir / "transforms" / name

    def start(self, name: str) -> None:
        cfg = self.config
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "mlpilot.service._transform_runner",
            "--store",
            cfg.database_url,
            "--job",
            name,
            "--cache",
            str(cfg.data_dir / "models"),
            "--work",
            str(self.work_dir(name)),
        ]
        proc = self._launch(name, command, cfg.log_dir / f"transform-{name}.log")
        record = self.store.get_resource(TRANSFORM_JOB, name)
        if record is not None:
            record.setdefault("Mlpilot", {})["RunnerPid"] = proc.pid
            self.store.put_resource(TRANSFORM_JOB, name, record)

    def stop(self, name: str) -> None:
        record = self.store.get_resource(TRANSFORM_JOB, name)
        if record is None or record["TransformJobStatus"] in _ENDED:
            return
        record["TransformJobStatus"] = "Stopping"
        record.setdefault("Mlpilot", {})["StopRequested"] = True
        self.store.put_resource(TRANSFORM_JOB, name, record)
        pid = record["Mlpilot"].get("RunnerPid")
        if _alive(pid, name):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)

    def fail(self, name: str, why: str) -> None:
        record = self.store.get_resource(TRANSFORM_JOB, name)
        if record is None or record["TransformJobStatus"] in _ENDED:
            return
        stopping = record["TransformJobStatus"] == "Stopping"
        record["TransformJobStatus"] = "Stopped" if stopping else "Failed"
        if not stopping:
            record["FailureReason"] = f"The transform was interrupted: {why}"[:1024]
        record["TransformEndTime"] = _now()
        # Cleaned first: once the job reads ended, nothing of its run is left.
        self._clean_up(record)
        self.store.put_resource(TRANSFORM_JOB, name, record)

    def _clean_up(self, record: dict[str, Any]) -> None:
        """Remove what a runner that died mid-run left: its staging folder, and the objects it
        was writing under a local output path (those it finished stay, as after a failure).
        Not while another live transform writes under the same path: those could be its."""
        from mlpilot.serving import remove_partial_outputs

        name = record["TransformJobName"]
        shutil.rmtree(self.work_dir(name), ignore_errors=True)
        output = record.get("TransformOutput", {}).get("S3OutputPath", "")
        for other in self.store.list_resources(TRANSFORM_JOB, limit=10_000).rows:
            if (
                other["TransformJobName"] != name
                and other["TransformJobStatus"] not in _ENDED
                and other.get("TransformOutput", {}).get("S3OutputPath") == output
            ):
                return
        with contextlib.suppress(Exception):
            remove_partial_outputs(output)

    def _tick(self) -> None:
        with contextlib.suppress(Exception):
            self._check()

    def _check(self) -> None:
        for name, code in self._reap().items():
            self.fail(name, f"its process {ending(code)}")


class TransformOperations:
    def __init__(
        self,
        config: ServiceConfig,
        store: Store,
        manager: TransformManager,
        packages: RegistryOperations,
    ) -> None:
        self.config = config
        self.store = store
        self.manager = manager
        self.packages = packages

    def CreateTransformJob(self, params: dict[str, Any]) -> dict[str, Any]:
        from mlpilot.errors import MlpilotError
        from mlpilot.serving import TransformSpec

        name = params["TransformJobName"]
        arn = self.config.arn(TRANSFORM_JOB, name)
        if self.store.get_resource(MODEL, params["ModelName"]) is None:
            raise not_found(
                f'Could not find model "{self.config.arn(MODEL, params["ModelName"])}".'
            )
        self.packages.check_deployable([params["ModelName"]])
        try:
            TransformSpec.from_request(params)
        except MlpilotError as exc:
            raise validation(str(exc)) from None
        check_kms_key(
            self.config, params["TransformOutput"].get("KmsKeyId"), "TransformOutput.KmsKeyId"
        )
        source = params["TransformInput"]["DataSource"]["S3DataSource"]
        if source.get("S3DataType") == "AugmentedManifestFile":
            raise validation("S3DataType AugmentedManifestFile is not valid for transform jobs")
        from mlpilot.data import list_objects

        try:
            if not list_objects(source["S3Uri"], data_type=source.get("S3DataType", "S3Prefix")):
                raise validation(f"No input data found at {source['S3Uri']}")
        except MlpilotError as exc:
            raise validation(str(exc)) from None
        now = _now()
        record: dict[str, Any] = {k: params[k] for k in _ECHO if params.get(k) is not None}
        record.update(
            {
                "TransformJobArn": arn,
                "TransformJobStatus": "InProgress",
                "CreationTime": now,
                "LastModifiedTime": now,
                "TransformStartTime": now,
            }
        )
        try:
            self.store.insert_resource(TRANSFORM_JOB, name, arn, record)
        except AlreadyExists:
            raise in_use(f"Transform job name {name} is already in use") from None
        try:
            self.manager.start(name)
        except Exception:
            # Refused (e.g. no space for its log): no job is left InProgress without a runner.
            with contextlib.suppress(Exception):
                self.store.delete_resource(TRANSFORM_JOB, name)
            raise
        return {"TransformJobArn": arn}

    def DescribeTransformJob(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TransformJobName"]
        record = self.store.get_resource(TRANSFORM_JOB, name)
        if record is None:
            raise not_found(f"Could not find requested job with name {name}")
        return record

    def StopTransformJob(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.DescribeTransformJob(params)
        if record["TransformJobStatus"] in _ENDED:
            raise validation(
                f"The transform job {params['TransformJobName']} has already ended "
                f"({record['TransformJobStatus']})"
            )
        self.manager.stop(params["TransformJobName"])
        return {}

    def ListTransformJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        page = self.store.list_resources(TRANSFORM_JOB, **listing(params))
        return list_answer("TransformJobSummaries", page.rows, page.next_token, _SUMMARY)
