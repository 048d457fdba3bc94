"""Rows per second and peak memory of a batch transform (``CreateTransformJob`` through
``mlpilot serve``) on large CSV inputs, to show the rate and that memory stays flat in the
input size.

usage: python benchmarks/transform_throughput.py MODEL [--rows 100000 1000000]
           [--data examples/churn.csv] [--output benchmarks/results/transform-throughput.txt]

MODEL is a job or package folder. Each input is a headerless CSV of ``--rows`` rows drawn with
replacement (seed 0) from ``--data``, in the model's input column order, written to a temporary
folder. The job uses the container's defaults (MultiRecord, 6 MiB payloads). Rows/s is rows
over the job's TransformStartTime..TransformEndTime; peak RSS is the largest resident memory
of any process under the service, sampled every 0.1 s while the job runs; CPU is the user +
system time those processes used (their last sample), which other work on the machine
changes far less than the rate.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import ROLE, Service, descendants, rss_kib

ROOT = Path(__file__).resolve().parent.parent


def write_input(data: Path, columns: list[str], rows: int, path: Path) -> None:
    import numpy as np
    import pandas as pd

    table = pd.read_csv(data, dtype=str, keep_default_na=False)
    picks = np.random.default_rng(0).integers(0, len(table), rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.reindex(columns=columns).iloc[picks].to_csv(path, header=False, index=False)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_job(sm: Any, name: str, model: str, source: Path, output: Path, pid: int) -> dict[str, Any]:
    peak = {"kib": 0}
    cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for child in descendants(pid):
                peak["kib"] = max(peak["kib"], rss_kib(child))
                cpu[child] = max(cpu.get(child, 0.0), cpu_seconds(child))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sm.create_transform_job(
        TransformJobName=name,
        ModelName=model,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": str(output), "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    while True:
        described = sm.describe_transform_job(TransformJobName=name)
        if described["TransformJobStatus"] not in ("InProgress", "Stopping"):
            break
        time.sleep(0.5)
    stop.set()
    sampler.join()
    if described["TransformJobStatus"] != "Completed":
        sys.exit(f"{name}: {described['TransformJobStatus']} {described.get('FailureReason')}")
    seconds = (described["TransformEndTime"] - described["TransformStartTime"]).total_seconds()
    return {"seconds": seconds, "peak_kib": peak["kib"], "cpu": sum(cpu.values())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("model", help="a job or package folder")
    parser.add_argument("--data", default=str(ROOT / "examples" / "churn.csv"))
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--label", default="")
    parser.add_argument("--output", default="benchmarks/results/transform-throughput.txt")
    args = parser.parse_args(argv)

    from mlpilot.jobs._records import INFERENCE_IMAGE
    from mlpilot.serving import load_served_model, resolve_model

    model_dir = resolve_model(args.model)
    columns = list(load_served_model(str(model_dir)).input_columns)
    report = [
        f"batch transform throughput {args.label} — {platform.machine()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; load average before "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg()),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(Path(tmp) / "service").start()
        try:
            sm = service.client()
            sm.create_model(
                ModelName="tp",
                PrimaryContainer={"Image": INFERENCE_IMAGE, "ModelDataUrl": str(model_dir)},
                ExecutionRoleArn=ROLE,
            )
            for rows in args.rows:
                source = Path(tmp) / f"in-{rows}" / "data.csv"
                write_input(Path(args.data), columns, rows, source)
                size = source.stat().st_size
                found = run_job(
                    sm, f"tp-{rows}", "tp", source.parent, Path(tmp) / f"out-{rows}", service.pid
                )
                out = Path(tmp) / f"out-{rows}" / "data.csv.out"
                written = sum(1 for _ in out.open("rb"))
                if written != rows:
                    sys.exit(f"{rows} rows in, {written} out")
                report.append(
                    f"  {rows:>9,} rows ({size / 2**20:.0f} MiB): {found['seconds']:.1f} s, "
                    f"{rows / found['seconds']:,.0f} rows/s, peak RSS of a process under the "
                    f"service {found['peak_kib'] / 1024:.0f} MiB, their CPU {found['cpu']:.1f} s"
                )
                print(report[-1], flush=True)
        finally:
            service.stop()
    report.append(f"  load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    text = "\n".join(report) + "\n"
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("a") as handle:
            handle.write(text + "\n")
    print(text, end="")


if __name__ == "__main__":
    main()
