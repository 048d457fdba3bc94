"""Single-row invocation latency over HTTP: ``mlpilot serve-model``, and InvokeEndpoint
through ``mlpilot serve``.

usage: python benchmarks/invoke_latency.py MODEL DATA.csv [--requests 400] [--clients 1 4]
           [--accept text/csv] [--instances 2] [--explain]
           [--output benchmarks/results/invoke-latency.json]

``--explain`` measures explained invocations next to plain ones, request by request in turn so
that both see the same machine load: a second container is given a ClarifyExplainerConfig (the
package's typical row as baseline) and a second endpoint an ExplainerConfig, every request to
them says ``EnableExplanations: `true``` and is answered by Clarify's JSON document. Each
figure then has a ``plain`` and an ``explained`` part, and the load average is recorded.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import ROLE, Service, create_endpoint, csv_rows, wait_in_service

from mlpilot.explain import RowExplainer
from mlpilot.serving import (
    EXPLAINER_VARIABLE,
    EXPLANATIONS_HEADER,
    Predictor,
    ServingSettings,
    explainer_for,
    load_served_model,
    resolve_model,
)

#: The ClarifyExplainerConfig of ``--explain`` (None: plain invocations only).
EXPLAINER: dict[str, Any] | None = None
#: A target of requests: (URL of the container or endpoint, explained).
Target = tuple[str, bool]


def _rows(data: str, model: Any, limit: int) -> list[bytes]:
    """The first ``limit`` rows of DATA as headerless CSV bodies in the model's column order."""
    bodies = csv_rows(Path(data), list(model.input_columns), limit)
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


def _in_process(
    model: Any, bodies: list[bytes], accept: str, count: int
) -> dict[str, dict[str, float]]:
    """``handle`` of the plain predictor (and of the explainer, taking turns), by name."""
    handlers: dict[str, Any] = {"plain": Predictor(model, ServingSettings.from_environment({}))}
    if EXPLAINER:
        environment = {EXPLAINER_VARIABLE: json.dumps(EXPLAINER)}
        explainer = explainer_for(Predictor(model, ServingSettings.from_environment(environment)))
        assert explainer is not None
        handlers["explained"] = explainer
    for body in bodies[:20]:
        for handler in handlers.values():
            handler.handle(body, "text/csv", accept)
    times: dict[str, list[float]] = {name: [] for name in handlers}
    started = time.perf_counter()
    for i in range(count):
        for name, handler in handlers.items():
            t0 = time.perf_counter()
            result = handler.handle(bodies[i % len(bodies)], "text/csv", accept)
            times[name].append((time.perf_counter() - t0) * 1000)
            assert result.ok, result.message
    if len(handlers) == 1:
        return {"plain": _summary(times["plain"], time.perf_counter() - started)}
    return {name: _summary(values, sum(values) / 1000) for name, values in times.items()}


def _http(
    targets: list[Target], bodies: list[bytes], accept: str, count: int, clients: int
) -> list[dict[str, Any]]:
    """Each client sends its rows to every target in turn; one summary per target."""
    times: list[list[float]] = [[] for _ in targets]
    lock = threading.Lock()
    per_client = count // clients

    def headers(explained: bool) -> dict[str, str]:
        out = {"Content-Type": "text/csv", "Accept": accept}
        if explained:
            out[EXPLANATIONS_HEADER] = "`true`"
        return out

    def work(offset: int) -> None:
        mine: list[list[float]] = [[] for _ in targets]
        with httpx.Client(timeout=30) as client:
            for body in bodies[:5]:  # open the connections, warm the paths
                for url, explained in targets:
                    client.post(f"{url}/invocations", content=body, headers=headers(explained))
            barrier.wait()
            for i in range(per_client):
                body = bodies[(offset + i) % len(bodies)]
                for k, (url, explained) in enumerate(targets):
                    t0 = time.perf_counter()
                    response = client.post(
                        f"{url}/invocations", content=body, headers=headers(explained)
                    )
                    mine[k].append((time.perf_counter() - t0) * 1000)
                    if response.status_code != 200:
                        raise SystemExit(f"status {response.status_code}: {response.text}")
                    if explained and "kernel_shap" not in response.text:
                        raise SystemExit(f"not explained: {response.text[:200]}")
        with lock:
            for k, values in enumerate(mine):
                times[k].extend(values)

    barrier = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=work, args=(k * per_client,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if len(targets) == 1:
        return [{"clients": clients, **_summary(times[0], time.perf_counter() - started)}]
    # Taking turns, each target's rate is what its own latencies allow the clients.
    return [
        {"clients": clients, **_summary(values, sum(values) / 1000 / clients)} for values in times
    ]


def _load() -> list[float]:
    return [round(x, 2) for x in __import__("os").getloadavg()]


def _start(model: str, port_file: Path, explained: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mlpilot.cli.main", "serve-model", model]
    command += ["--port", "0", "--port-file", str(port_file), "--log-level", "warning"]
    environment = dict(__import__("os").environ)
    if explained:
        environment[EXPLAINER_VARIABLE] = json.dumps(EXPLAINER)
    process = subprocess.Popen(command, env=environment)
    deadline = time.monotonic() + 120
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit("serve-model did not start")
        time.sleep(0.05)
    return process


def _service(model_dir: Path, tmp: Path, instances: int) -> tuple[Service, list[Target]]:
    """``mlpilot serve`` with an endpoint ``bench`` serving MODEL (and ``bench-explained``,
    with the ExplainerConfig, under ``--explain``); returns the service and the endpoints."""
    from mlpilot.jobs._records import INFERENCE_IMAGE

    service = Service(tmp / "service").start()
    sm = service.client()
    sm.create_model(
        ModelName="bench",
        PrimaryContainer={"Image": INFERENCE_IMAGE, "ModelDataUrl": str(model_dir)},
        ExecutionRoleArn=ROLE,
    )
    targets: list[Target] = []
    for name, explained in [("bench", False), ("bench-explained", True)]:
        if explained and not EXPLAINER:
            continue
        explainer = {"ExplainerConfig": {"ClarifyExplainerConfig": EXPLAINER}} if explained else {}
        create_endpoint(sm, name, "bench", instances, **explainer)
        targets.append((f"{service.url}/endpoints/{name}", explained))
    for name in ("bench", "bench-explained")[: len(targets)]:
        wait_in_service(sm, name, 120)
    return service, targets


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
        "load_average_1_5_15_min": {"start": _load()},
    }
    if EXPLAINER:
        results["explanation_methods"] = RowExplainer(model).describe()
    results["in_process"] = _in_process(model, bodies, args.accept, args.requests)
    kinds = ["plain", "explained"] if EXPLAINER else ["plain"]
    with tempfile.TemporaryDirectory() as tmp:
        processes, containers = [], []
        try:
            for explained in (False, True)[: len(kinds)]:
                port_file = Path(tmp) / f"port-{explained}"
                processes.append(_start(args.model, port_file, explained))
                url = f"http://127.0.0.1:{port_file.read_text().strip()}"
                while httpx.get(f"{url}/ping").status_code != 200:
                    time.sleep(0.05)
                containers.append((url, explained))
            results["http"] = _runs(containers, kinds, bodies, args)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
        service, endpoints = _service(resolve_model(args.model), Path(tmp), args.instances)
        try:
            results["invoke_endpoint"] = _runs(endpoints, kinds, bodies, args)
            results["endpoint_instances"] = args.instances
        finally:
            service.stop()
    results["load_average_1_5_15_min"]["end"] = _load()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if not EXPLAINER:  # the plain layout, as before
        for key in ("in_process", "http", "invoke_endpoint"):
            results[key] = results[key]["plain"]
        del results["load_average_1_5_15_min"]
    _overheads(results, kinds)
    output.write_text(json.dumps(results, indent=1) + "\n")
    _report(results, kinds, args.instances, output)


def _runs(
    targets: list[Target], kinds: list[str], bodies: list[bytes], args: argparse.Namespace
) -> dict[str, list[dict[str, Any]]]:
    """1 client, then each ``--clients`` count: a list of summaries per kind."""
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for clients in [1, *[c for c in args.clients if c > 1]]:
        for kind, summary in zip(
            kinds, _http(targets, bodies, args.accept, args.requests, clients), strict=True
        ):
            runs[kind].append(summary)
    return runs


def _overheads(results: dict[str, Any], kinds: list[str]) -> None:
    if kinds == ["plain"]:
        floor = results["in_process"]["p50_ms"]
        results["overhead_p50_ms"] = round(results["http"][0]["p50_ms"] - floor, 3)
        results["invoke_endpoint_overhead_p50_ms"] = round(
            results["invoke_endpoint"][0]["p50_ms"] - floor, 3
        )
        return
    for kind in kinds:
        floor = results["in_process"][kind]["p50_ms"]
        results[f"{kind}_overhead_p50_ms"] = {
            "serve_model": round(results["http"][kind][0]["p50_ms"] - floor, 3),
            "invoke_endpoint": round(results["invoke_endpoint"][kind][0]["p50_ms"] - floor, 3),
        }


def _report(results: dict[str, Any], kinds: list[str], instances: int, output: Path) -> None:
    def pick(key: str, kind: str) -> Any:
        return results[key] if kinds == ["plain"] else results[key][kind]

    print(results["model"])
    for method in results.get("explanation_methods", []):
        print(f"  {method}")
    for kind in kinds:
        floor = pick("in_process", kind)
        print(f"{kind}: in-process p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms")
        for label, key in [
            ("HTTP (serve-model)", "http"),
            (f"InvokeEndpoint via mlpilot serve ({instances} instances)", "invoke_endpoint"),
        ]:
            for row in pick(key, kind):
                print(
                    f"{kind}: {label}, {row['clients']} client(s): p50 {row['p50_ms']} ms, "
                    f"p90 {row['p90_ms']} ms, p99 {row['p99_ms']} ms, "
                    f"{row['requests_per_s']} requests/s"
                )
    if "load_average_1_5_15_min" in results:
        print(f"load average (1, 5, 15 min): {results['load_average_1_5_15_min']}")
    print(f"written to {output}")


if __name__ == "__main__":
    main()
