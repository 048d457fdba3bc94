"""Running AutoML jobs for the service: one runner process per job, supervised.

Each job runs in its own process (``python -m mlpilot.service._runner``, in its own session),
which writes the job's record and candidates straight into the metadata store and beats a
heartbeat there. The service therefore holds no job state in memory:

- if the service is killed, its jobs run on and are picked up again when it restarts;
- if a job's runner dies (killed, crashed, machine restarted), the service notices (the
  process exited, or its heartbeat went stale) and ends the job honestly with
  :func:`mlpilot.jobs.finalize_interrupted`: ``Stopped`` with the best finished candidate
  packaged, or ``Failed`` when none had finished — the reason says what happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlpilot.service._config import ServiceConfig
from mlpilot.service._errors import ServiceError, validation
from mlpilot.service._kms import encrypt_output
from mlpilot.service._runners import RunnerSupervisor, end_group, ending, pid_is_runner
from mlpilot.service._store import Store

if TYPE_CHECKING:
    from mlpilot.config import JobConfig

__all__ = [
    "JobManager",
    "ended_record",
    "failed_record",
    "public_candidate",
    "public_record",
    "resume_not_run",
    "upload_output",
    "upload_tree",
]

#: Record members the engine owns; the rest (the echoed request, ARN, CreationTime) is the
#: service's.
_ENGINE_KEYS = (
    "AutoMLJobStatus",
    "AutoMLJobSecondaryStatus",
    "EndTime",
    "LastModifiedTime",
    "FailureReason",
    "PartialFailureReasons",
    "BestCandidate",
    "AutoMLJobArtifacts",
    "ResolvedAttributes",
    "ModelDeployResult",
    "Mlpilot",
)
_ENDED = ("Completed", "Failed", "Stopped")
#: Seconds between the heartbeat and deployment sweeps.
_SWEEP_SECONDS = 5.0


def _replace_paths(value: Any, local: str, public: str) -> Any:
    if isinstance(value, str):
        return public + value[len(local) :] if value.startswith(local) else value
    if isinstance(value, dict):
        return {k: _replace_paths(v, local, public) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_paths(v, local, public) for v in value]
    return value


def public_record(engine_record: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The engine's job record as the API shows it: the request as given, the service's ARN
    and creation time, artifact locations under the caller's output path."""
    record = dict(row["record"])
    for key in _ENGINE_KEYS:
        if key in engine_record:
            record[key] = engine_record[key]
        elif key in ("FailureReason", "EndTime", "BestCandidate") and key in record:
            del record[key]
    record["AutoMLJobArn"] = row["arn"]
    record["CreationTime"] = row["created"]
    out: dict[str, Any] = _replace_paths(record, str(row["local_root"]), row["output_root"])
    return out


def public_candidate(candidate: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _replace_paths(candidate, str(row["local_root"]), row["output_root"])
    return out


def upload_tree(local_root: Path, output_root: str) -> None:
    """Copy a job folder to an S3 output location (its scratch space excluded). Each object is
    uploaded whole, so a reader never sees half of one."""
    from mlpilot.data import resolve_uri

    fs, base = resolve_uri(output_root)
    for path in sorted(local_root.rglob("*")):
        relative = path.relative_to(local_root)
        if not path.is_file() or relative.parts[0] == ".work" or path.name.startswith("."):
            continue
        fs.put_file(str(path), f"{base}/{relative.as_posix()}")


def upload_output(
    row: dict[str, Any], engine_record: dict[str, Any], failure: Callable[[Exception], str]
) -> None:
    """With S3 output, copy the job folder there; when that fails, ``engine_record`` says
    Failed with the reason ``failure`` gives (called while the exception is handled)."""
    local_root = Path(row["local_root"])
    if not row["output_root"].startswith("s3://") or not local_root.exists():
        return
    try:
        upload_tree(local_root, row["output_root"])
    except Exception as exc:
        engine_record["AutoMLJobStatus"] = "Failed"
        engine_record["AutoMLJobSecondaryStatus"] = "Failed"
        engine_record["FailureReason"] = failure(exc)[:1024]


def failed_record(reason: str, now: float) -> dict[str, Any]:
    """The engine record of a job that ended Failed at ``now`` without the engine's word."""
    return {
        "AutoMLJobStatus": "Failed",
        "AutoMLJobSecondaryStatus": "Failed",
        "FailureReason": reason,
        "EndTime": now,
        "LastModifiedTime": now,
    }


class JobManager(RunnerSupervisor):
    """Starts, stops and supervises job runner processes."""

    def __init__(self, config: ServiceConfig, store: Store) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self._host = socket.gethostname()
        self._last_sweep = 0.0
        #: Called with a job's row when it completes and asked for a deployment.
        self.on_deploy: Callable[[dict[str, Any]], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        self.config.staging_dir.mkdir(parents=True, exist_ok=True)
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        self._adopt_or_recover()
        self._watch("mlpilot-jobs")

    def close(self, *, stop_jobs: bool = True, wait: float = 20.0) -> None:
        """Stop supervising. With ``stop_jobs``, the runners this service started are asked to
        stop (they keep their best candidate) and given ``wait`` seconds to finish."""
        self._close_runners(self._shut_down if stop_jobs else None, wait)
        # Runners that died (e.g. stopped before they could start) end here, not on restart.
        self._check_children()

    def _shut_down(self, name: str) -> None:
        self.stop(name, reason="the service was shut down")

    # -- requests -------------------------------------------------------------------------
    def roots(self, request: dict[str, Any]) -> tuple[str, Path]:
        """(where the caller sees the job's output, the local folder the engine writes)."""
        name = request["AutoMLJobName"]
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        if output.startswith("s3://"):
            return f"{output}/{name}", self.config.staging_dir / name
        if output.startswith("file://"):
            path = Path(url2pathname(urlparse(output).path))
            return f"{output}/{name}", path / name
        path = Path(output)
        if not path.is_absolute():
            raise validation(
                f"S3OutputPath {output!r}: give an s3:// URI, a file:// URI or an absolute path"
            )
        return str(path / name), path / name

    def start(
        self,
        request: dict[str, Any],
        config: JobConfig,
        *,
        arn: str,
        api_version: str,
        v1_request: dict[str, Any] | None,
        output_root: str,
        local_root: Path,
    ) -> None:
        from mlpilot.jobs import JobRecord, echo_request

        name = config.name
        with self._lock:
            self._check_queue_room()
            if (local_root / "job.json").exists():
                raise validation(
                    f"The output location {output_root} already holds a job named {name}; "
                    "choose another S3OutputPath or job name"
                )
            now = round(time.time(), 3)
            record = JobRecord(
                request=echo_request(request),
                arn=arn,
                config_name=config.problem.config_name,
                created=now,
                modified=now,
            ).shape()
            try:
                # The spec waits on disk beside the queued row, so the queue survives a restart.
                self.spec_file(name).write_text(json.dumps(config.to_dict()))
                self.store.insert_job(
                    {
                        "name": name,
                        "arn": arn,
                        "status": "InProgress",
                        "secondary_status": "Starting",
                        "created": now,
                        "modified": now,
                        "record": record,
                        "api_version": api_version,
                        "v1_request": v1_request,
                        "local_root": str(local_root),
                        "output_root": output_root,
                        "stop_requested": False,
                        "deploy_state": "pending" if request.get("ModelDeployConfig") else None,
                        "heartbeat": now,
                    }
                )
            except Exception:
                # A spec cut short by a full disk, or one no row refers to, is not kept.
                if self.store.get_job(name) is None:
                    self.spec_file(name).unlink(missing_ok=True)
                raise
            self._start_queued()

    def _check_queue_room(self) -> None:
        """ResourceLimitExceeded when the queue is full (SageMaker's quota message)."""
        queued = len(self.store.queued_jobs())
        if queued >= self.config.max_queued_jobs:
            raise ServiceError(
                "ResourceLimitExceeded",
                f"The service limit 'Maximum number of queued AutoML jobs' is "
                f"{self.config.max_queued_jobs} jobs, with current utilization of {queued} "
                "jobs. Wait for a job to end or stop one.",
            )

    def resume(self, name: str, seconds: int, max_candidates: int | None) -> None:
        """Queue an ended job to run again for ``seconds`` more (the engine's
        :meth:`~mlpilot.jobs.AutoMLJob.resume`): it is InProgress again at once, waits for a
        slot like a new job, and its runner continues the job folder it left."""
        with self._lock:
            row = self.store.get_job(name)
            if row is None or row["status"] not in _ENDED:
                raise validation(f"The AutoML job {name} is not ended; it cannot be resumed now")
            self._check_queue_room()
            now = round(time.time(), 3)
            record = dict(row["record"])
            for key in ("EndTime", "FailureReason"):
                record.pop(key, None)
            record["AutoMLJobStatus"] = "InProgress"
            record["AutoMLJobSecondaryStatus"] = "Starting"
            record["LastModifiedTime"] = now
            notes = dict(record.get("Mlpilot", {}))
            for key in ("StopReason", "ResumeNotRun"):
                notes.pop(key, None)
            # Until the runner starts and says more (StartTime, the candidates before...).
            notes["Resuming"] = {"RequestTime": now, "AddedSeconds": seconds}
            if max_candidates is not None:
                notes["Resuming"]["MaxNewCandidates"] = max_candidates
            record["Mlpilot"] = notes
            self.spec_file(name).write_text(
                json.dumps({"Resume": {"Seconds": seconds, "MaxCandidates": max_candidates}})
            )
            # Queued like a new job (no runner yet; ``modified`` places it in the queue). A
            # resumed job is not deployed again: its endpoint, if any, keeps its model.
            self.store.update_job(
                name,
                status="InProgress",
                secondary_status="Starting",
                modified=now,
                ended=None,
                record=record,
                runner_pid=None,
                runner_host=None,
                heartbeat=now,
                stop_requested=False,
                deploy_state=None,
            )
            self._start_queued()

    def spec_file(self, name: str) -> Path:
        return self.config.staging_dir / f".{name}.spec.json"

    def running_count(self) -> int:
        """Jobs holding a slot: the active ones that are not waiting in the queue."""
        return self.store.count_active_jobs() - len(self.store.queued_jobs())

    def queue_position(self, name: str) -> int | None:
        """Where ``name`` waits in the queue (1 = next to start), or None when not queued."""
        place = self.queue_place(name)
        return None if place is None else place[0]

    def queue_place(self, name: str) -> tuple[int, int] | None:
        """(position of ``name``, jobs queued in all), or None when ``name`` is not queued."""
        queued = [row["name"] for row in self.store.queued_jobs()]
        return (queued.index(name) + 1, len(queued)) if name in queued else None

    def _start_queued(self) -> None:
        """Start queued jobs, oldest first, while slots are free."""
        with self._lock:
            if self._closing.is_set():
                return
            free = self.config.max_concurrent_jobs - self.running_count()
            for row in self.store.queued_jobs()[: max(0, free)]:
                name = row["name"]
                if not self.spec_file(name).exists():
                    self._end_unstarted(
                        name, "Failed", "The job's queued specification was lost before it started"
                    )
                    continue
                self._spawn(name)

    def _spawn(self, name: str) -> None:
        cfg = self.config
        command = [
            sys.executable,
            "-m",
            "mlpilot.service._runner",
            "--store",
            cfg.database_url,
            "--job",
            name,
            "--spec",
            str(self.spec_file(name)),
        ]
        proc = self._launch(name, command, cfg.log_dir / f"{name}.log")
        self.store.update_job(
            name, runner_pid=proc.pid, runner_host=self._host, heartbeat=time.time()
        )

    def _end_unstarted(self, name: str, status: str, reason: str) -> None:
        """End a job that never left the queue (``status`` with ``reason``; a resume queued
        for an ended job instead leaves it as it was, with the reason)."""
        row = self.store.get_job(name)
        if row is None:
            return
        now = round(time.time(), 3)
        earlier = ended_record(Path(row["local_root"]))
        if earlier is not None:
            # A resume that never started: the job is again as its earlier runs left it.
            engine_record = resume_not_run(earlier, reason, now)
        else:
            engine_record = failed_record(reason, now)
            engine_record["AutoMLJobStatus"] = engine_record["AutoMLJobSecondaryStatus"] = status
            if status != "Failed":
                del engine_record["FailureReason"]
                engine_record["Mlpilot"] = {"StopReason": reason}
        record = public_record(engine_record, row)
        self.store.update_job(
            name,
            status=record["AutoMLJobStatus"],
            secondary_status=record["AutoMLJobSecondaryStatus"],
            modified=now,
            ended=record.get("EndTime", now),
            record=record,
            deploy_state=None,
        )
        self.spec_file(name).unlink(missing_ok=True)

    def stop(self, name: str, reason: str = "") -> None:
        with self._lock:
            if self.queue_position(name) is not None:
                # Never started: it ends Stopped at once, with nothing to keep.
                self._end_unstarted(name, "Stopped", reason or "stopped while queued")
                return
        row = self.store.get_job(name)
        if row is None or row["status"] in _ENDED:
            return
        record = dict(row["record"])
        record["AutoMLJobStatus"] = "Stopping"
        record["AutoMLJobSecondaryStatus"] = "Stopping"
        now = round(time.time(), 3)
        record["LastModifiedTime"] = now
        if reason:
            record.setdefault("Mlpilot", {})["StopReason"] = reason
        self.store.update_job(
            name,
            stop_requested=True,
            status="Stopping",
            secondary_status="Stopping",
            modified=now,
            record=record,
        )
        # The runner also polls the flag (it may run elsewhere); the signal makes it prompt.
        if row.get("runner_host") == self._host and pid_is_runner(row.get("runner_pid"), name):
            with contextlib.suppress(OSError):
                os.kill(row["runner_pid"], signal.SIGTERM)

    # -- supervision ----------------------------------------------------------------------
    def _adopt_or_recover(self) -> None:
        for row in self.store.active_jobs():
            here = row.get("runner_host") == self._host
            deploying = row["secondary_status"] == "DeployingModel"
            if here and not deploying and not pid_is_runner(row.get("runner_pid"), row["name"]):
                end_group(row.get("runner_pid"))
                self.recover(
                    row["name"],
                    "the job's process was not running when the service started (it was "
                    "killed or the machine restarted)",
                )
            # Runners on other hosts (or alive here) are watched through their heartbeat.

    def _tick(self) -> None:
        with contextlib.suppress(Exception):
            self._check_children()
        with contextlib.suppress(Exception):
            self._start_queued()
        if time.monotonic() - self._last_sweep > _SWEEP_SECONDS:
            self._last_sweep = time.monotonic()
            with contextlib.suppress(Exception):
                self._check_heartbeats()
            with contextlib.suppress(Exception):
                self._check_deployments()

    def _check_children(self) -> None:
        ended = self._reap()
        for name, code in ended.items():
            row = self.store.get_job(name)
            if code < 0 and row is not None:
                end_group(row.get("runner_pid"))
            deploying = row is not None and row["secondary_status"] == "DeployingModel"
            if row is not None and row["status"] not in _ENDED and not deploying:
                self.recover(name, f"the job's process {ending(code)}")
        if ended:
            self._check_deployments()

    def _check_heartbeats(self) -> None:
        now = time.time()
        for row in self.store.active_jobs():
            if row["name"] in self._procs or row["secondary_status"] == "DeployingModel":
                continue
            if row["secondary_status"] == "Starting" and row.get("runner_pid") is None:
                continue  # queued: no runner to hear from yet
            stale = now - (row.get("heartbeat") or 0) > self.config.heartbeat_timeout
            local = row.get("runner_host") == self._host
            alive = local and pid_is_runner(row.get("runner_pid"), row["name"])
            if stale and not alive:
                self.recover(
                    row["name"],
                    f"the job's process stopped reporting (no heartbeat for "
                    f"{now - (row.get('heartbeat') or 0):.0f} s)",
                )

    def _check_deployments(self) -> None:
        if self.on_deploy is None:
            return
        for row in self.store.active_jobs():
            if row.get("deploy_state") == "pending" and row["secondary_status"] == "DeployingModel":
                self.on_deploy(row)

    def recover(self, name: str, why: str) -> None:
        """End a job whose runner is gone, keeping what it finished."""
        from mlpilot.jobs import finalize_interrupted

        row = self.store.get_job(name)
        if row is None or row["status"] in _ENDED:
            return
        local_root = Path(row["local_root"])
        if row.get("stop_requested") and not (local_root / "job.json").exists():
            # Stopped before the engine began (the stop's signal reached the runner while it
            # was starting): the user's stop, not a failure; nothing was made to keep.
            reason = row["record"].get("Mlpilot", {}).get("StopReason") or (
                "stopped before it started"
            )
            self._end_unstarted(name, "Stopped", reason)
            return
        now = round(time.time(), 3)
        if (local_root / "job.json").exists():
            try:
                engine_record = finalize_interrupted(local_root, why)
            except Exception as exc:  # a damaged folder must not keep the job hanging
                engine_record = failed_record(
                    f"The job was interrupted ({why}) and could not be recovered: "
                    f"{type(exc).__name__}: {exc}",
                    now,
                )
        else:
            engine_record = failed_record(f"The job was interrupted before it started ({why})", now)
        encrypt_output(row, engine_record)
        upload_output(
            row,
            engine_record,
            lambda exc: (
                f"{engine_record.get('FailureReason', '')}; uploading the output to "
                f"{row['output_root']} failed: {exc}"
            ),
        )
        for candidate in _read_candidates(local_root):
            self.store.put_candidate(name, public_candidate(candidate, row))
        record = public_record(engine_record, row)
        self.store.update_job(
            name,
            status=record["AutoMLJobStatus"],
            secondary_status=record["AutoMLJobSecondaryStatus"],
            modified=record.get("LastModifiedTime", now),
            ended=record.get("EndTime", now),
            record=record,
            deploy_state=None if record["AutoMLJobStatus"] != "Completed" else row["deploy_state"],
        )


def resume_not_run(earlier: dict[str, Any], reason: str, now: float) -> dict[str, Any]:
    """The engine record of a job whose resume did not run (stopped while queued, or refused
    by the engine, e.g. for changed data): the record its earlier runs left, with the reason
    in ``Mlpilot.ResumeNotRun``."""
    record = {**earlier, "LastModifiedTime": now}
    notes = record["Mlpilot"] = {
        k: v for k, v in earlier.get("Mlpilot", {}).items() if k != "Resuming"
    }
    notes["ResumeNotRun"] = reason[:1024]
    # Where an AWS client sees it (SageMaker keeps five reasons: this one goes first).
    message = {"PartialFailureMessage": f"The resume did not run: {reason}"[:1024]}
    record["PartialFailureReasons"] = [message, *earlier.get("PartialFailureReasons", [])][:5]
    return record


def ended_record(root: Path) -> dict[str, Any] | None:
    """The engine's record in job folder ``root`` if it says the job ended (a job queued to
    be resumed has one), else None."""
    try:
        record: dict[str, Any] = json.loads((root / "job.json").read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("AutoMLJobStatus") in _ENDED else None


def _read_candidates(root: Path) -> list[dict[str, Any]]:
    from mlpilot.jobs import read_candidates

    board = root / "leaderboard.json"
    if board.exists():
        data: list[dict[str, Any]] = json.loads(board.read_text())
        return data
    return read_candidates(root / "candidates.jsonl")
