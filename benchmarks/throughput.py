"""Requests per second of an endpoint under ``wrk`` (a C load generator that leaves the CPU to
the server), on the runtime route of ``mlpilot serve`` and on ``serve-model`` directly, so the
service hop can be told apart from the container's own cost.

usage: python benchmarks/throughput.py MODEL [--seconds 60] [--connections 8] [--threads 2]
           [--data examples/churn.csv] [--label NAME] [--capture PERCENT]
           [--output benchmarks/results/throughput.txt]

MODEL is a job or package folder. For each target, a short warm-up precedes the measured run;
wrk posts one headerless CSV row (``text/csv``) per request over keep-alive connections. The
report gives requests/s, latency percentiles, non-2xx responses and socket errors, the RSS of
the service and instance processes before and after the load, the cold start (InService to the
first answered request) and the load average (other work may share the cores). Needs ``wrk``
on PATH (Debian: ``apt-get install wrk``).

``--capture PERCENT`` gives the service's endpoint a DataCaptureConfig (input and output, CSV,
that sampling percentage, to a local folder) and reports how many invocations were captured
once the service has stopped (warm-up included): at 100, every answered request.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import (
    ROLE,
    Service,
    create_endpoint,
    csv_rows,
    descendants,
    free_port,
    rss_kib,
    wait_in_service,
    wait_ping,
)

ROOT = Path(__file__).resolve().parent.parent

#: Posts the body in ``BODY`` and prints, at the end, one JSON line of the counts wrk keeps.
LUA = r"""
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Accept"] = "text/csv"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "seconds": %.3f, "non2xx": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def first_row(data: Path, columns: list[str]) -> str:
    """The first row of ``data`` as a headerless CSV line in the model's column order."""
    return csv_rows(data, columns, 1)[0].decode()


def run_wrk(url: str, body: str, seconds: float, threads: int, connections: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    try:
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s"]
        completed = subprocess.run(
            [*command, "-s", script.name, "--latency", url],
            capture_output=True,
            text=True,
            env={**os.environ, "BODY": body},
            check=True,
        )
    finally:
        os.unlink(script.name)
    match = re.search(r"^JSON (.*)$", completed.stdout, re.MULTILINE)
    if match is None:
        sys.exit(f"wrk gave no summary:\n{completed.stdout}\n{completed.stderr}")
    found: dict[str, Any] = json.loads(match.group(1))
    found["requests_per_s"] = round(found["requests"] / found["seconds"], 1)
    return found


def memory(pid: int) -> dict[str, int]:
    return {"main_kib": rss_kib(pid), "children_kib": sum(rss_kib(p) for p in descendants(pid))}


def measure(url: str, pid: int, body: str, args: argparse.Namespace) -> dict[str, Any]:
    run_wrk(url, body, args.warmup, args.threads, args.connections)
    before = memory(pid)
    load = run_wrk(url, body, args.seconds, args.threads, args.connections)
    after = memory(pid)
    return {"load": load, "rss_before": before, "rss_after": after, "loadavg": os.getloadavg()}


def service_target(model_dir: Path, data_dir: Path, body: str, args: argparse.Namespace) -> Any:
    import httpx

    from mlpilot.jobs._records import INFERENCE_IMAGE

    service = Service(data_dir).start()
    try:
        sm = service.client()
        sm.create_model(
            ModelName="tp",
            PrimaryContainer={"Image": INFERENCE_IMAGE, "ModelDataUrl": str(model_dir)},
            ExecutionRoleArn=ROLE,
        )
        capture: dict[str, Any] = {}
        if args.capture is not None:
            capture["DataCaptureConfig"] = {
                "InitialSamplingPercentage": args.capture,
                "DestinationS3Uri": str(data_dir.parent / "capture"),
                "CaptureOptions": [{"CaptureMode": "InputAndOutput"}],
                "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
            }
        started = time.perf_counter()
        create_endpoint(sm, "tp", "tp", 1, **capture)
        wait_in_service(sm, "tp", 300)
        in_service_s = time.perf_counter() - started
        url = f"{service.url}/endpoints/tp/invocations"
        t0 = time.perf_counter()
        first = httpx.post(url, content=body, headers={"Content-Type": "text/csv"})
        cold_ms = (time.perf_counter() - t0) * 1000
        if first.status_code != 200:
            sys.exit(f"the endpoint answered {first.status_code}: {first.text}")
        result = measure(url, service.pid, body, args)
        result.update(create_to_in_service_s=round(in_service_s, 2), cold_ms=round(cold_ms, 1))
        time.sleep(1.0)  # requests wrk left in flight are answered
        figures = httpx.get(f"{service.url}/endpoints/tp/metrics").json()
        result["invocations"] = sum(v["Invocations"] for v in figures["Variants"].values())
    finally:
        service.stop()
    if args.capture is not None:
        files = list((data_dir.parent / "capture").rglob("*.jsonl"))
        result["captured"] = sum(len(f.read_bytes().splitlines()) for f in files)
        result["capture_files"] = len(files)
    return result


def direct_target(model_dir: Path, body: str, args: argparse.Namespace) -> Any:
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "mlpilot.cli.main", "serve-model", str(model_dir)]
    process = subprocess.Popen([*command, "--port", str(port), "--log-level", "warning"])
    try:
        wait_ping(f"http://127.0.0.1:{port}/ping", process)
        url = f"http://127.0.0.1:{port}/invocations"
        t0 = time.perf_counter()
        first = httpx.post(url, content=body, headers={"Content-Type": "text/csv"})
        cold_ms = (time.perf_counter() - t0) * 1000
        if first.status_code != 200:
            sys.exit(f"serve-model answered {first.status_code}: {first.text}")
        result = measure(url, process.pid, body, args)
        result["cold_ms"] = round(cold_ms, 1)
        return result
    finally:
        process.terminate()
        process.wait(timeout=60)


def lines(name: str, result: dict[str, Any]) -> list[str]:
    load = result["load"]
    errors = {k: load[k] for k in ("non2xx", "connect", "read", "write", "timeout")}
    before, after = result["rss_before"], result["rss_after"]
    out = [
        f"  {name}: {load['requests_per_s']} requests/s ({load['requests']} in "
        f"{load['seconds']:.1f} s), errors {errors}",
        f"    latency ms: p50 {load['p50_ms']:.2f}, p90 {load['p90_ms']:.2f}, "
        f"p99 {load['p99_ms']:.2f}, max {load['max_ms']:.2f}",
        f"    RSS KiB before/after: main {before['main_kib']}/{after['main_kib']}, "
        f"children {before['children_kib']}/{after['children_kib']}",
        f"    cold first request {result['cold_ms']} ms; load average after "
        + ", ".join(f"{v:.2f}" for v in result["loadavg"]),
    ]
    if "create_to_in_service_s" in result:
        out.append(f"    CreateEndpoint to InService {result['create_to_in_service_s']} s")
    if "captured" in result:
        out.append(
            f"    data capture: {result['captured']} of the endpoint's {result['invocations']} "
            f"invocations (warm-up included) captured, in {result['capture_files']} files"
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("model", help="a job or package folder")
    parser.add_argument("--data", default=str(ROOT / "examples" / "churn.csv"))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--label", default="", help="what this run measures (in the report)")
    parser.add_argument("--skip-direct", action="store_true", help="only the service route")
    parser.add_argument(
        "--capture", type=int, help="a DataCaptureConfig with this sampling percentage"
    )
    parser.add_argument("--output", default="benchmarks/results/throughput.txt")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not on PATH (Debian: apt-get install wrk)")

    from mlpilot.serving import load_served_model, resolve_model

    model_dir = resolve_model(args.model)
    model = load_served_model(str(model_dir))
    body = first_row(Path(args.data), list(model.input_columns))
    name = model.info.get("candidate", {}).get("CandidateName") or Path(args.model).name
    report = [
        f"throughput {args.label} — {name}; {platform.machine()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; load average before "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        f"wrk -t{args.threads} -c{args.connections} -d{int(args.seconds)}s, one CSV row "
        f"({len(body)} bytes) per request, {args.warmup:.0f} s warm-up first",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        service = service_target(model_dir, Path(tmp) / "service", body, args)
        report += lines("mlpilot serve, POST /endpoints/tp/invocations", service)
    if not args.skip_direct:
        direct = direct_target(model_dir, body, args)
        report += lines("serve-model, POST /invocations", direct)
    text = "\n".join(report) + "\n"
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("a") as handle:
            handle.write(text + "\n")
    print(text, end="")


if __name__ == "__main__":
    main()
