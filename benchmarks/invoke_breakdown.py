"""Where a single-row InvokeEndpoint's time goes, component by component.

usage: python benchmarks/invoke_breakdown.py MODEL DATA.csv [--requests 300]
           [--base-src DIR] [--output benchmarks/results/invoke-breakdown.json]

One ``mlpilot serve`` with an endpoint of one instance serving MODEL; each request's row is
sent, in turn, to every target below (so all see the same machine load):

- ``in_process``: ``Predictor.handle`` (codec + model), the floor;
- ``serve_model_http``: the endpoint's own ``serve-model`` instance, over HTTP (httpx,
  keep-alive);
- ``service_http``: ``POST /endpoints/NAME/invocations`` on the service (httpx, keep-alive);
- ``service_boto3``: InvokeEndpoint with boto3's sagemaker-runtime client;
- ``trivial_http`` / ``trivial_boto3``: httpx and boto3 against a canned-answer HTTP server on
  127.0.0.1 (what each client costs by itself).

The service's ``ModelLatency`` (its forward to the instance and back, per its metrics) is read
at the end. ``--base-src DIR`` starts a second service from another ``src`` folder (the code
before a change) and adds ``base_http`` and ``base_boto3`` to the turns: a before/after under
the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import ROLE, Service, create_endpoint, csv_rows, wait_in_service

from mlpilot.serving import Predictor, ServingSettings, load_served_model, resolve_model

_CANNED = b"HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: 2\r\n\r\n0\n"


class _Canned(asyncio.Protocol):
    """Answers every request with the same bytes (one request per packet: small bodies)."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(_CANNED)


def _trivial_server() -> int:
    """A canned-answer server on a free port of 127.0.0.1, in a daemon thread."""
    ready: list[int] = []
    event = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(loop.create_server(_Canned, "127.0.0.1", 0))
        ready.append(server.sockets[0].getsockname()[1])
        event.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    event.wait()
    return ready[0]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _endpoint(service: Service, model_dir: Path) -> tuple[Any, str]:
    from mlpilot.jobs._records import INFERENCE_IMAGE

    sm = service.client()
    sm.create_model(
        ModelName="bench",
        PrimaryContainer={"Image": INFERENCE_IMAGE, "ModelDataUrl": str(model_dir)},
        ExecutionRoleArn=ROLE,
    )
    create_endpoint(sm, "bench", "bench", 1)
    wait_in_service(sm, "bench", 180)
    port_file = next((service.data_dir / "endpoints" / "bench").glob("*.port"))
    return service.client("sagemaker-runtime"), f"http://127.0.0.1:{port_file.read_text().strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--base-src", type=Path)
    parser.add_argument("--output", default="benchmarks/results/invoke-breakdown.json")
    args = parser.parse_args()

    model = load_served_model(args.model)
    bodies = csv_rows(Path(args.data), list(model.input_columns), 200)
    predictor = Predictor(model, ServingSettings.from_environment({}))
    model_dir = resolve_model(args.model)
    trivial = f"http://127.0.0.1:{_trivial_server()}"
    load = {"start": _load()}
    with tempfile.TemporaryDirectory() as tmp:
        services = [Service(Path(tmp) / "service")]
        if args.base_src:
            services.append(Service(Path(tmp) / "base"))
        runtimes, instance_url = [], ""
        try:
            for k, service in enumerate(services):
                saved = os.environ.get("PYTHONPATH")
                if k == 1:
                    os.environ["PYTHONPATH"] = str(args.base_src.resolve())
                try:
                    service.start()
                    runtime, url = _endpoint(service, model_dir)
                finally:
                    if saved is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = saved
                runtimes.append(runtime)
                instance_url = instance_url or url
            result = _measure(args, bodies, predictor, services, runtimes, instance_url, trivial)
            result["model_latency_us"] = [
                httpx.get(f"{s.url}/endpoints/bench/metrics").json()["Variants"]["AllTraffic"][
                    "ModelLatency"
                ]
                for s in services
            ]
        finally:
            for service in services:
                service.stop()
    load["end"] = _load()
    result = {
        "model": model.info.get("candidate", {}).get("CandidateName"),
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} CPUs",
        "load_average_1_5_15_min": load,
        **result,
    }
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    for name, row in result["targets"].items():
        print(f"{name:18} p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms")
    for k, latency in enumerate(result["model_latency_us"]):
        print(f"service {k} ModelLatency p50 {latency.get('p50')} us, p99 {latency.get('p99')} us")
    print(f"load average (1, 5, 15 min): {load}; written to {args.output}")


def _measure(
    args: argparse.Namespace,
    bodies: list[bytes],
    predictor: Predictor,
    services: list[Service],
    runtimes: list[Any],
    instance_url: str,
    trivial: str,
) -> dict[str, Any]:
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    client = httpx.Client(timeout=30)

    def post(url: str) -> Any:
        def send(body: bytes) -> None:
            response = client.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code} {response.text[:200]}")

        return send

    def boto(runtime: Any) -> Any:
        def send(body: bytes) -> None:
            reply = runtime.invoke_endpoint(
                EndpointName="bench", Body=body, ContentType="text/csv", Accept="text/csv"
            )
            reply["Body"].read()

        return send

    trivial_runtime = __import__("boto3").client(
        "sagemaker-runtime",
        endpoint_url=trivial,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    targets: dict[str, Any] = {
        "in_process": lambda body: predictor.handle(body, "text/csv", "text/csv"),
        "serve_model_http": post(f"{instance_url}/invocations"),
        "service_http": post(f"{services[0].url}/endpoints/bench/invocations"),
        "service_boto3": boto(runtimes[0]),
        "trivial_http": post(f"{trivial}/invocations"),
        "trivial_boto3": boto(trivial_runtime),
    }
    if len(services) > 1:
        targets["base_http"] = post(f"{services[1].url}/endpoints/bench/invocations")
        targets["base_boto3"] = boto(runtimes[1])
    for body in bodies[:20]:  # connections open, first-call costs paid
        for send in targets.values():
            send(body)
    times: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(args.requests):
        body = bodies[i % len(bodies)]
        for name, send in targets.items():
            started = time.perf_counter()
            send(body)
            times[name].append((time.perf_counter() - started) * 1000)
    out = {}
    for name, values in times.items():
        p50, p90, p99 = np.percentile(values, [50, 90, 99]).tolist()
        out[name] = {"p50_ms": round(p50, 3), "p90_ms": round(p90, 3), "p99_ms": round(p99, 3)}
    return {"requests": args.requests, "targets": out}


if __name__ == "__main__":
    main()
