"""One batch transform's process: ``python -m mlpilot.service._transform_runner --store URL
--job NAME [--work DIR]``. Loads the model in-process (the same codec as the container; a
forecasting model gets payloads of whole series), streams the inputs through it, and reports
progress and the end into the store."""

from __future__ import annotations

import signal
import threading
from typing import Any

_STOP = threading.Event()


def _on_term(signum: int, frame: Any) -> None:
    _STOP.set()


signal.signal(signal.SIGTERM, _on_term)

import argparse  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from mlpilot.service._store import Store  # noqa: E402
from mlpilot.service._transforms import TRANSFORM_JOB  # noqa: E402

_BEAT_SECONDS = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlpilot-transform-runner")
    parser.add_argument("--store", required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--cache", default=None)
    # The run's staging folder: the service removes it if this process dies.
    parser.add_argument("--work", default=None)
    args = parser.parse_args(argv)
    store = Store(args.store)
    name = args.job
    record = store.get_resource(TRANSFORM_JOB, name)
    if record is None:
        return 2
    lock = threading.Lock()
    last = {"beat": 0.0}

    def update(**changes: Any) -> dict[str, Any]:
        with lock:
            current = store.get_resource(TRANSFORM_JOB, name) or {}
            if current.get("Mlpilot", {}).get("StopRequested"):
                _STOP.set()
            current.update(changes)
            current["LastModifiedTime"] = round(time.time(), 3)
            store.put_resource(TRANSFORM_JOB, name, current)
            return current

    def progress(report: Any) -> None:
        now = time.monotonic()
        if now - last["beat"] < _BEAT_SECONDS:
            return
        last["beat"] = now
        current = store.get_resource(TRANSFORM_JOB, name) or {}
        update(
            Mlpilot={
                **current.get("Mlpilot", {}),
                "Progress": {
                    "Objects": report.files_total,
                    "ObjectsDone": report.files_done,
                    "Records": report.records_done,
                    "Current": report.current,
                },
            }
        )

    status, reason = "Completed", ""
    try:
        from mlpilot.package import load_model
        from mlpilot.service._deploy import MODEL
        from mlpilot.serving import ModelInvoker, TransformSpec, resolve_model, run_transform

        model_record = store.get_resource(MODEL, record["ModelName"])
        if model_record is None:
            raise ValueError(f"model {record['ModelName']} no longer exists")
        container = model_record.get("PrimaryContainer") or model_record["Containers"][0]
        spec = TransformSpec.from_request(record)
        folder = resolve_model(container["ModelDataUrl"], cache_dir=args.cache)
        environment = {**(container.get("Environment") or {}), **spec.container_environment()}
        invoker = ModelInvoker(load_model(folder), environment)
        result = run_transform(
            spec, invoker, stop_event=_STOP, progress=progress, staging_dir=args.work
        )
        status = result.status
        final_progress = {
            "Objects": result.files,
            "ObjectsDone": result.files,
            "Records": result.records,
        }
    except Exception as exc:
        traceback.print_exc()
        status, reason = "Failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        final_progress = {}
    current = store.get_resource(TRANSFORM_JOB, name) or {}
    changes: dict[str, Any] = {
        "TransformJobStatus": status,
        "TransformEndTime": round(time.time(), 3),
        "Mlpilot": {
            **current.get("Mlpilot", {}),
            "Progress": final_progress or current.get("Mlpilot", {}).get("Progress"),
        },
    }
    if reason:
        changes["FailureReason"] = reason[:1024]
    if args.work:
        shutil.rmtree(args.work, ignore_errors=True)
    update(**changes)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
