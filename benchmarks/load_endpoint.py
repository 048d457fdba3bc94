"""An endpoint of ``mlpilot serve`` under concurrent loopback clients for minutes: requests,
errors, latency percentiles, and the resident memory of the serving processes after warm-up
and at the end.

usage: python benchmarks/load_endpoint.py [--model MODEL] [--seconds 180] [--warmup 20]
           [--clients 8] [--instances 1] [--output benchmarks/results/load-endpoint.txt]

Without ``--model``, a small model is trained first (linear learner on the first 600 rows of
``tests/data/titanic.csv``). The endpoint serves it through ``POST /endpoints/load/invocations``
(the service forwards to its serve-model instances); each client is a thread keeping one
HTTP/1.1 connection (``http.client``) and sending one CSV row per request, back to back.
Memory is the RSS (psutil: VmRSS) of the service and of every process under it.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import ROLE, Service, create_endpoint, csv_rows, memory, wait_in_service

TITANIC = Path(__file__).resolve().parent.parent / "tests" / "data" / "titanic.csv"


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def load(
    port: int, path: str, bodies: list[bytes], seconds: float, clients: int
) -> tuple[Tally, float]:
    """``clients`` threads posting ``bodies`` in turn to ``path`` for ``seconds``; returns the
    tally and the wall time."""
    tallies = [Tally() for _ in range(clients)]
    stop = threading.Event()

    def client(k: int) -> None:
        tally = tallies[k]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
        i = k
        while not stop.is_set():
            body = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                tally.error(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            tally.latencies_ms.append((time.perf_counter() - t0) * 1000)
            if response.status != 200:
                tally.error(f"HTTP {response.status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    total = Tally()
    for tally in tallies:
        total.latencies_ms.extend(tally.latencies_ms)
        for what, n in tally.errors.items():
            total.errors[what] = total.errors.get(what, 0) + n
    return total, time.perf_counter() - started


def summary(tally: Tally, wall_s: float) -> dict[str, Any]:
    times = tally.latencies_ms or [float("nan")]
    p50, p90, p99, top = np.percentile(times, [50, 90, 99, 100]).tolist()
    return {
        "requests": len(tally.latencies_ms),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "requests_per_s": round(len(tally.latencies_ms) / wall_s, 1),
        "p50_ms": round(p50, 2),
        "p90_ms": round(p90, 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(top, 2),
    }


def train(folder: Path) -> Path:
    """A small titanic model; returns its job folder."""
    import pandas as pd

    import mlpilot

    train_csv = folder / "train.csv"
    pd.read_csv(TITANIC).head(600).to_csv(train_csv, index=False)
    job = mlpilot.run_job(
        str(train_csv),
        target="Survived",
        output=folder / "job",
        name="load-model",
        mode="HYPERPARAMETER_TUNING",
        algorithms=("linear-learner",),
        max_candidates=1,
        parallelism=1,
        seed=0,
        generate_reports=False,
    )
    if job.status != "Completed":
        sys.exit(f"training the model failed: {job.record.get('FailureReason')}")
    return folder / "job"


def start_service(data_dir: Path, model_dir: Path, instances: int) -> Service:
    """``mlpilot serve`` with an endpoint ``load`` serving the model."""
    from mlpilot.jobs._records import INFERENCE_IMAGE

    service = Service(data_dir).start()
    sm = service.client()
    sm.create_model(
        ModelName="load",
        PrimaryContainer={"Image": INFERENCE_IMAGE, "ModelDataUrl": str(model_dir)},
        ExecutionRoleArn=ROLE,
    )
    create_endpoint(sm, "load", "load", instances)
    wait_in_service(sm, "load", 120)
    return service


def report(result: dict[str, Any]) -> str:
    warm, end = result["memory_after_warmup"], result["memory_at_end"]
    run = result["load"]
    lines = [
        f"mlpilot serve endpoint under load — {result['machine']}",
        f"{result['clients']} loopback clients (http.client keep-alive threads), "
        f"{result['instances']} serve-model instance(s), one CSV row per request",
        f"warm-up {result['warmup_s']} s: {result['warmup']['requests']} requests, "
        f"{result['warmup']['errors']} errors",
        f"measured {result['seconds']} s: {run['requests']} requests, {run['errors']} errors "
        f"{run['error_kinds'] or ''}, {run['requests_per_s']} requests/s",
        f"latency ms: p50 {run['p50_ms']}, p90 {run['p90_ms']}, p99 {run['p99_ms']}, "
        f"max {run['max_ms']}",
        "RSS KiB            after warm-up      at end   change",
    ]
    for key, label in (("service_kib", "service"), ("instances_kib", "instances")):
        change = 100.0 * (end[key] - warm[key]) / max(1, warm[key])
        lines.append(f"{label:<12} {warm[key]:>17} {end[key]:>11} {change:>+7.1f} %")
    lines.append("RSS samples (KiB, service + instances, every ~10 s of the measured run): ")
    lines.append("  " + ", ".join(str(s) for s in result["samples"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", help="a job or package folder (default: train one)")
    parser.add_argument("--seconds", type=float, default=180.0, help="measured load")
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--output", default="benchmarks/results/load-endpoint.txt")
    args = parser.parse_args(argv)

    from mlpilot.serving import load_served_model, resolve_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(args.model) if args.model else train(Path(tmp))
        model = load_served_model(str(model_dir))
        bodies = csv_rows(TITANIC, list(model.input_columns))
        service = start_service(
            Path(tmp) / "service", resolve_model(str(model_dir)), args.instances
        )
        port, path = service.port, "/endpoints/load/invocations"
        try:
            warm_tally, warm_s = load(port, path, bodies, args.warmup, args.clients)
            after_warmup = memory(service.pid)
            samples: list[int] = []
            tally = Tally()
            wall = 0.0
            remaining = args.seconds
            while remaining > 0:  # in slices, to sample memory as it goes
                part, part_s = load(port, path, bodies, min(10.0, remaining), args.clients)
                tally.latencies_ms.extend(part.latencies_ms)
                for what, n in part.errors.items():
                    tally.errors[what] = tally.errors.get(what, 0) + n
                wall += part_s
                remaining -= 10.0
                snapshot = memory(service.pid)
                samples.append(snapshot["service_kib"] + snapshot["instances_kib"])
            at_end = memory(service.pid)
        finally:
            service.stop()
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        "clients": args.clients,
        "instances": args.instances,
        "warmup_s": args.warmup,
        "seconds": args.seconds,
        "warmup": summary(warm_tally, warm_s),
        "load": summary(tally, wall),
        "memory_after_warmup": after_warmup,
        "memory_at_end": at_end,
        "samples": samples,
    }
    text = report(result)
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    print(text, end="")
    return result


if __name__ == "__main__":
    main()
