"""Single-row invocation latency over HTTP: ``mlpilot serve-model``, and InvokeEndpoint
through ``mlpilot serve``.

usage: python benchmarks/invoke_latency.py MODEL DATA.csv [--requests 400] [--clients 1 4]
           [--accept text/csv] [--instances 2] [--explain]
           [--output benchmarks/results/invoke-latency.json]

``--explain`` measures explained invocations instead: the container is given a
ClarifyExplainerConfig (the package's typical row as baseline), the endpoint an ExplainerConfig,
and every request ``EnableExplanations: `true```; answers are Clarify's JSON documents.

MODEL is anything ``serve-model`` takes (job folder, package folder, model.tar.gz). Rows of
DATA (with a header; the target column is dropped) are sent one per request as ``text/csv``.
Measures, for the same rows: the in-process codec + model (``Predictor.handle``, the floor),
then HTTP with 1 client and with each ``--clients`` count (p50/p90/p99 ms and requests/s).
The HTTP figures minus the floor are the serving overhead. Then the same through the
service: an endpoint of one variant with ``--instances`` serve-model processes, invoked at
``POST /endpoints/bench/invocations`` (the sagemaker-runtime API; the service forwards to an
instance), with 1 client and each ``--clients`` count.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from mlpilot.serving import (
    EXPLAINER_VARIABLE,
    EXPLANATIONS_HEADER,
    Predictor,
    ServingSettings,
    explainer_for,
    load_served_model,
    resolve_model,
)

#: The ClarifyExplainerConfig of ``--explain`` (None: plain invocations).
EXPLAINER: dict[str, Any] | None = None


def _rows(data: str, model: Any, limit: int) -> list[bytes]:
    """The first ``limit`` rows of DATA as headerless CSV bodies in the model's column order."""
    with open(data, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        bodies = []
        for record in reader:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(
                [record.get(c, "") for c in model.input_columns]
            )
            bodies.append(buffer.getvalue().encode())
            if len(bodies) >= limit:
                break
    if not bodies:
        sys.exit(f"{data} has no rows")
    return bodies


def _summary(times_ms: list[float], wall_s: float) -> dict[str, float]:
    p50, p90, p99 = np.percentile(times_ms, [50, 90, 99]).tolist()
    return {
        "requests": len(times_ms),
        "p50_ms": round(p50, 3),
        "p90_ms": round(p90, 3),
        "p99_ms": round(p99, 3),
        "mean_ms": round(float(np.mean(times_ms)), 3),
        "requests_per_s": round(len(times_ms) / wall_s, 1),
    }


def _in_process(model: Any, bodies: list[bytes], accept: str, count: int) -> dict[str, float]:
    environment = {EXPLAINER_VARIABLE: json.dumps(EXPLAINER)} if EXPLAINER else {}
    plain = Predictor(model, ServingSettings.from_environment(environment))
    predictor: Any = explainer_for(plain) or plain
    for body in bodies[:20]:
        predictor.handle(body, "text/csv", accept)
    times = []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        result = predictor.handle(bodies[i % len(bodies)], "text/csv", accept)
        times.append((time.perf_counter() - t0) * 1000)
        assert result.ok, result.message
    return _summary(times, time.perf_counter() - started)


def _http(url: str, bodies: list[bytes], accept: str, count: int, clients: int) -> dict[str, float]:
    headers = {"Content-Type": "text/csv", "Accept": accept}
    if EXPLAINER:
        headers[EXPLANATIONS_HEADER] = "`true`"
    times: list[float] = []
    lock = threading.Lock()
    per_client = count // clients

    def work(offset: int) -> None:
        mine = []
        with httpx.Client(timeout=30) as client:
            for body in bodies[:5]:  # open the connection, warm the path
                client.post(f"{url}/invocations", content=body, headers=headers)
            barrier.wait()
            for i in range(per_client):
                body = bodies[(offset + i) % len(bodies)]
                t0 = time.perf_counter()
                response = client.post(f"{url}/invocations", content=body, headers=headers)
                mine.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"status {response.status_code}: {response.text}")
        with lock:
            times.extend(mine)

    barrier = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=work, args=(k * per_client,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return {"clients": clients, **_summary(times, time.perf_counter() - started)}


def _start(model: str, port_file: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mlpilot.cli.main", "serve-model", model]
    command += ["--port", "0", "--port-file", str(port_file), "--log-level", "warning"]
    environment = dict(__import__("os").environ)
    if EXPLAINER:
        environment[EXPLAINER_VARIABLE] = json.dumps(EXPLAINER)
    process = subprocess.Popen(command, env=environment)
    deadline = time.monotonic() + 120
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit("serve-model did not start")
        time.sleep(0.05)
    return process


def _service(model_dir: Path, tmp: Path, instances: int) -> tuple[subprocess.Popen[bytes], str]:
    """``mlpilot serve`` with an endpoint ``bench`` serving MODEL; returns (process, URL)."""
    import socket

    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "mlpilot.cli.main", "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--data-dir", str(tmp / "service")])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/ping").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit("mlpilot serve did not start")
        time.sleep(0.1)
    sm = boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    from mlpilot.jobs._records import INFERENCE_IMAGE

    sm.create_model(
        ModelName="bench",
        PrimaryContainer={"Image": INFERENCE_IMAGE, "ModelDataUrl": str(model_dir)},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/bench",
    )
    sm.create_endpoint_config(
        EndpointConfigName="bench",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "bench",
                "InitialInstanceCount": instances,
                "InstanceType": "ml.m5.large",
            }
        ],
        **({"ExplainerConfig": {"ClarifyExplainerConfig": EXPLAINER}} if EXPLAINER else {}),
    )
    sm.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="bench", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    return process, f"{url}/endpoints/bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, nargs="+", default=[4])
    parser.add_argument("--accept", default="text/csv")
    parser.add_argument("--instances", type=int, default=2, help="instances of the endpoint")
    parser.add_argument("--explain", action="store_true", help="explained invocations")
    parser.add_argument("--output", default="benchmarks/results/invoke-latency.json")
    args = parser.parse_args()
    global EXPLAINER
    if args.explain:
        EXPLAINER = {"EnableExplanations": "`true`", "ShapConfig": {"ShapBaselineConfig": {}}}

    model = load_served_model(args.model)
    bodies = _rows(args.data, model, 200)
    results: dict[str, Any] = {
        "model": model.info.get("candidate", {}).get("CandidateName"),
        "algorithm": model.info.get("candidate", {}).get("Algorithm"),
        "accept": args.accept,
        "explained": bool(args.explain),
        "machine": f"{platform.machine()}, {platform.python_version()}, "
        f"{__import__('os').cpu_count()} CPUs",
        "in_process": _in_process(model, bodies, args.accept, args.requests),
    }
    with tempfile.TemporaryDirectory() as tmp:
        process = _start(args.model, Path(tmp) / "port")
        try:
            url = f"http://127.0.0.1:{(Path(tmp) / 'port').read_text().strip()}"
            while httpx.get(f"{url}/ping").status_code != 200:
                time.sleep(0.05)
            results["http"] = [_http(url, bodies, args.accept, args.requests, 1)]
            for clients in args.clients:
                if clients > 1:
                    results["http"].append(_http(url, bodies, args.accept, args.requests, clients))
        finally:
            process.terminate()
            process.wait(timeout=30)
        process, endpoint = _service(resolve_model(args.model), Path(tmp), args.instances)
        try:
            results["invoke_endpoint"] = [_http(endpoint, bodies, args.accept, args.requests, 1)]
            for clients in args.clients:
                if clients > 1:
                    results["invoke_endpoint"].append(
                        _http(endpoint, bodies, args.accept, args.requests, clients)
                    )
            results["endpoint_instances"] = args.instances
        finally:
            process.terminate()
            process.wait(timeout=60)
    results["overhead_p50_ms"] = round(
        results["http"][0]["p50_ms"] - results["in_process"]["p50_ms"], 3
    )
    results["invoke_endpoint_overhead_p50_ms"] = round(
        results["invoke_endpoint"][0]["p50_ms"] - results["in_process"]["p50_ms"], 3
    )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + "\n")
    floor = results["in_process"]
    print(f"{results['model']}: in-process p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms")
    for row in results["http"]:
        print(
            f"HTTP, {row['clients']} client(s): p50 {row['p50_ms']} ms, p90 {row['p90_ms']} ms, "
            f"p99 {row['p99_ms']} ms, {row['requests_per_s']} requests/s"
        )
    for row in results["invoke_endpoint"]:
        print(
            f"InvokeEndpoint via mlpilot serve ({args.instances} instances), {row['clients']} "
            f"client(s): p50 {row['p50_ms']} ms, p90 {row['p90_ms']} ms, p99 {row['p99_ms']} ms, "
            f"{row['requests_per_s']} requests/s"
        )
    print(
        f"Overhead at p50: serve-model {results['overhead_p50_ms']} ms, InvokeEndpoint "
        f"{results['invoke_endpoint_overhead_p50_ms']} ms; written to {output}"
    )


if __name__ == "__main__":
    main()
