"""One AutoML job's process: ``python -m mlpilot.service._runner --store URL --job NAME``.

Runs the engine's :class:`~mlpilot.jobs.AutoMLJob` and mirrors its record and candidates into
the metadata store as they change, with a heartbeat so the service can tell it is alive. Stops
when asked (SIGTERM, or the store's stop flag, polled, for runners on other machines). With S3
output, the job folder is uploaded before the job is reported ended: a Completed job's
artifacts are always all there.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

# A stop may arrive while the engine is still importing: remember it rather than die of it.
_STOP_SIGNALLED = threading.Event()


def _early_stop(signum: int, frame: Any) -> None:
    _STOP_SIGNALLED.set()


signal.signal(signal.SIGTERM, _early_stop)

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from mlpilot.errors import MlpilotError, storage_failure  # noqa: E402
from mlpilot.service._jobs import (  # noqa: E402
    ended_record,
    failed_record,
    public_candidate,
    public_record,
    resume_not_run,
    upload_output,
)
from mlpilot.service._kms import encrypt_output  # noqa: E402
from mlpilot.service._store import Store  # noqa: E402

_HEARTBEAT_SECONDS = 2.0
_ENDED = ("Completed", "Failed", "Stopped")


class StoreMirror:
    """Job observer writing the job's changes into the store."""

    def __init__(self, store: Store, row: dict[str, Any]) -> None:
        self.store = store
        self.row = row
        self.name = row["name"]
        self._lock = threading.Lock()
        self.job: Any = None

    def on_status(self, job: Any) -> None:
        record = job.record
        if record["AutoMLJobStatus"] in _ENDED:
            return  # reported by the runner once the output is in place
        self.write(record)

    def on_candidate(self, job: Any, candidate: dict[str, Any]) -> None:
        self.store.put_candidate(self.name, public_candidate(candidate, self.row))

    def write(self, engine_record: dict[str, Any], *, final: bool = False) -> None:
        with self._lock:
            current = self.store.get_job(self.name)
            if current is None:
                return
            self.row = current
            record = public_record(engine_record, current)
            if current["stop_requested"] and record["AutoMLJobStatus"] == "InProgress":
                # Asked to stop: never show InProgress again, even if the engine has not yet
                # seen the request.
                record["AutoMLJobStatus"] = "Stopping"
                record["AutoMLJobSecondaryStatus"] = "Stopping"
                if self.job is not None:
                    self.job.stop()
            values: dict[str, Any] = {
                "status": record["AutoMLJobStatus"],
                "secondary_status": record["AutoMLJobSecondaryStatus"],
                "modified": record.get("LastModifiedTime", time.time()),
                "record": record,
                "heartbeat": time.time(),
            }
            if final:
                if record["AutoMLJobStatus"] == "Completed" and current["deploy_state"]:
                    # ModelDeployConfig: the service deploys, then reports the job Completed.
                    record["AutoMLJobStatus"] = "InProgress"
                    record["AutoMLJobSecondaryStatus"] = "DeployingModel"
                    record.pop("EndTime", None)
                    values.update(
                        status="InProgress", secondary_status="DeployingModel", record=record
                    )
                else:
                    values["ended"] = record.get("EndTime", time.time())
                    values["deploy_state"] = None
            self.store.update_job(self.name, **values)


def _heartbeat(store: Store, mirror: StoreMirror, done: threading.Event) -> None:
    while not done.wait(_HEARTBEAT_SECONDS):
        try:
            store.update_job(mirror.name, heartbeat=time.time())
            row = store.get_job(mirror.name)
            if row is not None and row["stop_requested"] and mirror.job is not None:
                mirror.job.stop()
        except Exception:  # the store may be briefly locked; the next beat retries
            traceback.print_exc()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlpilot-job-runner")
    parser.add_argument("--store", required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--spec", required=True, help="the job's JobConfig.to_dict() as JSON")
    args = parser.parse_args(argv)

    store = Store(args.store)
    row = store.get_job(args.job)
    if row is None:
        print(f"no job {args.job} in the store", flush=True)
        return 2
    spec = json.loads(Path(args.spec).read_text())
    # A resume (JobManager.resume): continue the job folder the earlier runs left.
    resume: dict[str, Any] | None = spec.get("Resume")
    resumes_before = _resumes(Path(row["local_root"]))
    refusal = ""
    mirror = StoreMirror(store, row)
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, mirror, done), daemon=True)
    beat.start()
    engine_record: dict[str, Any]
    finished: list[dict[str, Any]] = []
    try:
        from mlpilot.config import JobConfig
        from mlpilot.jobs import AutoMLJob
        from mlpilot.reports import WhiteBox

        if resume is not None:
            job = AutoMLJob.resume(
                row["local_root"],
                resume["Seconds"],
                max_candidates=resume.get("MaxCandidates"),
                observers=[mirror, WhiteBox()],
            )
        else:
            job = AutoMLJob(JobConfig.from_dict(spec), observers=[mirror, WhiteBox()])
        mirror.job = job

        def on_term(signum: int, frame: Any) -> None:
            job.stop()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        if row["stop_requested"] or _STOP_SIGNALLED.is_set():
            job.stop()
        try:
            job.run()
        except MlpilotError as exc:  # a full disk, unusable data: the reason says it all
            print(f"job failed: {exc}", flush=True)
            refusal = str(exc)
        except Exception:
            traceback.print_exc()  # the record says Failed, with the reason
        engine_record = dict(job.record)
        finished = list(job.candidates.values())
    except Exception as exc:
        traceback.print_exc()
        full = storage_failure(exc)
        refusal = f"{full or exc}"
        engine_record = failed_record(refusal[:1024], time.time())
    if resume is not None and _resumes(engine_record) == resumes_before:
        # The resume never began (the engine refused it, e.g. the data changed, or it could
        # not start): the job is as its earlier runs left it, with the reason.
        earlier = ended_record(Path(row["local_root"]))
        if earlier is not None:
            engine_record = resume_not_run(
                earlier, refusal or "the resume ended at once", time.time()
            )

    encrypt_output(row, engine_record)

    def upload_failed(exc: Exception) -> str:
        traceback.print_exc()
        return f"Uploading the job's output to {row['output_root']} failed: {exc}"

    upload_output(row, engine_record, upload_failed)
    for candidate in finished:  # their final state (the best one now has its model)
        mirror.on_candidate(None, candidate)
    mirror.write(engine_record, final=True)
    done.set()
    Path(args.spec).unlink(missing_ok=True)
    store.close()
    return 0


def _resumes(source: Path | dict[str, Any]) -> int:
    """How many resumes a job record (or the one in a job folder) lists."""
    if isinstance(source, Path):
        try:
            source = json.loads((source / "job.json").read_text())
        except (OSError, ValueError):
            return 0
    assert isinstance(source, dict)
    return len(source.get("Mlpilot", {}).get("Resumes", []))


if __name__ == "__main__":
    raise SystemExit(main())
