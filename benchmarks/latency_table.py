"""The latency table (issue 13): for the shared harness's tabular datasets at 60 s and a few
small-data jobs, the shipped model's single-row latency in process and through ``mlpilot
serve``'s InvokeEndpoint (boto3), its cold start and memory per instance, its algorithm, and its
score against the best candidate of the job.

usage: python benchmarks/latency_table.py train   [--work DIR] [--cache DIR] [--datasets ...]
                                                  [--budget S]
       python benchmarks/latency_table.py measure [--work DIR] [--cache DIR] [--datasets ...]
                                                  [--budget S] [--requests 300] [--rows 200]
                                                  [--output benchmarks/results/latency-table]

``train`` runs one ``mlpilot run`` at a time into WORK/<job>/job, as the harness calls it
(problem type and AMLB objective from the dataset's meta.json), skipping jobs already completed,
so a rerun resumes. ``measure`` starts one ``mlpilot serve`` and, job by job, deploys the
shipped model (the job's BestCandidate.InferenceContainers[0]) to an endpoint of one instance,
times the first InvokeEndpoint after InService and then ``--requests`` single-row ``text/csv``
InvokeEndpoint calls (sagemaker-runtime, boto3), reads the instance's RSS and deletes the
endpoint. It writes OUTPUT.json (every figure) and OUTPUT.txt (one row per job, rows over the
bar flagged). The data are the harness's prepared splits (``../shared/bench/prepare.py``, the
cache ``benchmarks/run_bench.sh`` uses), prepared here when the cache is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import ROLE, Service, create_endpoint, csv_rows, rss_kib, serve_model_processes

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
DATASETS = ROOT.parent / "shared" / "datasets"

#: The harness's 16 tabular datasets (benchmarks/README.md, results/60s-table-16.txt).
HARNESS_DATASETS = (
    "abalone",
    "adult_census_income",
    "ames_house_prices",
    "bank_marketing",
    "bike_sharing_hourly",
    "california_housing",
    "car_evaluation",
    "diamonds",
    "kddcup99_10pct",
    "letter_recognition",
    "medical_insurance_charges",
    "palmer_penguins",
    "pima_indians_diabetes",
    "telco_customer_churn",
    "titanic",
    "wine_quality_white",
)
#: The issue's bar: InvokeEndpoint p50 and p99 (ms) for every row, p50 for a single LightGBM.
BAR_P50_MS, BAR_P99_MS, BAR_LIGHTGBM_P50_MS = 5.0, 10.0, 2.0
PROBLEM_TYPES = {
    "binary": ("BinaryClassification", "AUC"),
    "multiclass": ("MulticlassClassification", "LogLoss"),
    "regression": ("Regression", "RMSE"),
}


@dataclass(frozen=True)
class Job:
    """One row of the table: a dataset (or the first ``rows`` rows of its training split)
    trained within ``budget`` seconds (and ``max_candidates``, when set)."""

    dataset: str
    budget: int
    rows: int | None = None
    max_candidates: int | None = None

    @property
    def key(self) -> str:
        """The job's folder and name: letters, digits and hyphens, at most 32 characters."""
        tail = (f"-{self.rows}" if self.rows else "") + f"-{self.budget}s"
        return self.dataset.replace("_", "-")[: 32 - len(tail)] + tail


def jobs(budget: int | None) -> list[Job]:
    """The 16 datasets at 60 s, then the small-data jobs; ``budget`` overrides every one."""
    table = [Job(name, 60) for name in HARNESS_DATASETS]
    table += [
        Job("telco_customer_churn", 90, rows=3000, max_candidates=3),  # the example
        Job("titanic", 30),
        Job("pima_indians_diabetes", 30),
        Job("adult_census_income", 30, rows=2000),
        Job("california_housing", 30, rows=3000),
    ]
    if budget is not None:  # titanic and pima at 60 s and 30 s become one job
        table = [Job(j.dataset, budget, j.rows, j.max_candidates) for j in table]
        table = list(dict.fromkeys(table))
    return table


def selected(args: argparse.Namespace) -> list[Job]:
    chosen = jobs(args.budget)
    if args.datasets:
        unknown = set(args.datasets) - set(HARNESS_DATASETS)
        if unknown:
            sys.exit(f"not a dataset of the table: {', '.join(sorted(unknown))}")
        chosen = [j for j in chosen if j.dataset in args.datasets]
    return chosen


def prepare_cache(cache: Path, wanted: set[str]) -> None:
    """The harness's seeded splits in ``cache``, prepared as ``run_bench.sh`` does when the
    folder is missing (the split of a dataset does not depend on the others)."""
    if not cache.is_dir():
        print(f"preparing the harness's splits in {cache}", flush=True)
        command = [sys.executable, str(BENCH / "prepare.py"), str(DATASETS), str(cache)]
        subprocess.run([*command, "--max-train", "100000"], check=True)
    missing = sorted(d for d in wanted if not (cache / d / "meta.json").exists())
    if missing:
        sys.exit(f"{cache} lacks {', '.join(missing)}: remove it to prepare it again")


def meta(cache: Path, dataset: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((cache / dataset / "meta.json").read_text())
    return found


def record(folder: Path) -> dict[str, Any] | None:
    """The job record in ``folder`` (None when there is none yet)."""
    path = folder / "job.json"
    if not path.exists():
        return None
    found: dict[str, Any] = json.loads(path.read_text())
    return found


def train_one(job: Job, cache: Path, work: Path) -> str:
    """Run ``job`` unless it already completed; returns its status."""
    folder = work / job.key
    done = record(folder / "job")
    if done and done.get("AutoMLJobStatus") == "Completed":
        return "Completed (kept)"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    info = meta(cache, job.dataset)
    data = cache / job.dataset / "train.csv"
    if job.rows:
        import pandas as pd

        # The split is already shuffled (seeded): its first rows are a random sample.
        pd.read_csv(data, low_memory=False).head(job.rows).to_csv(folder / "train.csv", index=False)
        data = folder / "train.csv"
    problem_type, objective = PROBLEM_TYPES[info["task"]]
    command = [sys.executable, "-m", "mlpilot.cli.main", "run", str(data)]
    command += ["--target", info["target"], "--problem-type", problem_type]
    command += ["--objective", objective, "--max-runtime", str(job.budget)]
    command += ["--output", str(folder / "job"), "--name", job.key, "--quiet"]
    if job.max_candidates:
        command += ["--max-candidates", str(job.max_candidates)]
    started = time.monotonic()
    with (folder / "run.log").open("wb") as log:
        try:
            # The harness's limit: a run past twice its budget and two minutes has failed.
            subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, timeout=2 * job.budget + 120
            )
        except subprocess.TimeoutExpired:
            return f"killed after {2 * job.budget + 120} s"
    found = record(folder / "job") or {}
    status = str(found.get("AutoMLJobStatus", "no job record"))
    reason = found.get("FailureReason")
    return f"{status} in {time.monotonic() - started:.0f} s" + (f": {reason}" if reason else "")


def train(args: argparse.Namespace) -> None:
    chosen = selected(args)
    prepare_cache(args.cache, {j.dataset for j in chosen})
    for number, job in enumerate(chosen, 1):
        print(f"[{number}/{len(chosen)}] {job.key} ...", end=" ", flush=True)
        print(train_one(job, args.cache, args.work), flush=True)


# -- measure ----------------------------------------------------------------------------------


def percentiles(times_ms: list[float]) -> dict[str, float]:
    p50, p99 = np.percentile(times_ms, [50, 99]).tolist()
    return {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "samples": len(times_ms)}


def in_process(model: Any, test: Path, target: str, rows: int) -> dict[str, float]:
    """Single-row ``predict`` of the packaged model on the first test rows (as latency.py)."""
    from mlpilot.data import read_table

    table = read_table(str(test)).head(rows).drop(columns=[target], errors="ignore")
    model.predict(table.iloc[[0]])  # the first call pays one-off costs
    times = []
    for i in range(len(table)):
        row = table.iloc[[i]]
        started = time.perf_counter()
        model.predict(row)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def shipped(job_record: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    """The shipped candidate: name, algorithm(s), its job-timed ms per row, its objective value
    and the best objective value on the leaderboard."""
    import pandas as pd

    best = job_record["BestCandidate"]
    name = best["CandidateName"]
    metric = best["FinalAutoMLJobObjectiveMetric"]
    board = pd.read_csv(job_dir / "leaderboard.csv")
    done = board[board["status"] == "Completed"]
    values = done["objective"].dropna()
    top = values.max() if metric["Type"] == "Maximize" else values.min()
    algorithm = best["Mlpilot"].get("Algorithm", "")
    weights = best["Mlpilot"].get("Weights") or {}
    members = sorted(
        {str(a) for a in board[board["candidate"].isin(list(weights))]["algorithm"].dropna()}
    )
    row = board[board["candidate"] == name]
    ms = float(row["predict_ms_per_row"].iloc[0]) if len(row) else None
    return {
        "candidate": name,
        "algorithm": algorithm + (f"({'+'.join(members)})" if members else ""),
        "single_lightgbm": algorithm == "lightgbm",
        "job_predict_ms_per_row": None if ms is None or np.isnan(ms) else round(ms, 3),
        "objective": metric.get("MetricName") or metric["StandardMetricName"],
        "direction": metric["Type"],
        "shipped_value": round(float(metric["Value"]), 6),
        "best_value": round(float(top), 6),
        "candidates": len(done),
    }


@dataclass
class Clients:
    """The service and its boto3 clients, made once for every job."""

    service: Service
    sm: Any
    runtime: Any

    @classmethod
    def of(cls, service: Service) -> Clients:
        from botocore.exceptions import ClientError

        clients = cls(service, service.client(), service.client("sagemaker-runtime"))
        # botocore's one-off costs of a first call are not the endpoint's cold start
        with contextlib.suppress(ClientError):
            clients.runtime.invoke_endpoint(EndpointName="none", Body=b"0", ContentType="text/csv")
        return clients


def endpoint(
    clients: Clients, job: Job, container: dict[str, Any], bodies: list[bytes], requests: int
) -> dict[str, Any]:
    """Deploy ``container`` on one instance, time the cold and the warm invocations, read the
    instance's memory, delete it all."""
    sm, runtime, name = clients.sm, clients.runtime, job.key
    sm.create_model(
        ModelName=name,
        PrimaryContainer={k: container[k] for k in ("Image", "ModelDataUrl", "Environment")},
        ExecutionRoleArn=ROLE,
    )
    started = time.perf_counter()
    create_endpoint(sm, name, name, 1)
    while True:  # polled tightly: the cold start is timed from the first InService seen
        status = sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
        if status == "InService":
            break
        if status == "Failed" or time.perf_counter() - started > 300:
            reason = sm.describe_endpoint(EndpointName=name).get("FailureReason")
            raise RuntimeError(f"endpoint {name} {status}: {reason}")
        time.sleep(0.05)
    in_service_s = time.perf_counter() - started

    def invoke(body: bytes) -> float:
        t0 = time.perf_counter()
        reply = runtime.invoke_endpoint(
            EndpointName=name, Body=body, ContentType="text/csv", Accept="text/csv"
        )
        reply["Body"].read()
        return (time.perf_counter() - t0) * 1000

    try:
        cold_ms = invoke(bodies[0])
        times = [invoke(bodies[i % len(bodies)]) for i in range(1, requests + 1)]
        rss = [rss_kib(p.pid) for p in serve_model_processes(clients.service.pid)]
    finally:
        sm.delete_endpoint(EndpointName=name)
        sm.delete_endpoint_config(EndpointConfigName=name)
        sm.delete_model(ModelName=name)
        deadline = time.monotonic() + 60
        while serve_model_processes(clients.service.pid) and time.monotonic() < deadline:
            time.sleep(0.2)  # the next job's instance is then the only one
    return {
        "create_to_in_service_s": round(in_service_s, 2),
        "cold_start_ms": round(cold_ms, 2),
        **percentiles(times),
        "instances": len(rss),
        "rss_per_instance_mib": round(max(rss) / 1024, 1) if rss else None,
    }


def over_bar(row: dict[str, Any]) -> list[str]:
    """What of the issue's bar ``row`` misses."""
    out = []
    invoke = row.get("invoke_endpoint")
    if not invoke:
        return ["not measured"]
    if invoke["p50_ms"] > BAR_P50_MS:
        out.append(f"p50>{BAR_P50_MS:g}")
    if invoke["p99_ms"] > BAR_P99_MS:
        out.append(f"p99>{BAR_P99_MS:g}")
    if row["shipped"]["single_lightgbm"] and invoke["p50_ms"] > BAR_LIGHTGBM_P50_MS:
        out.append(f"lightgbm p50>{BAR_LIGHTGBM_P50_MS:g}")
    return out


def measure_one(clients: Clients, job: Job, args: argparse.Namespace) -> dict[str, Any]:
    job_dir = args.work / job.key / "job"
    row: dict[str, Any] = {"job": job.key, "dataset": job.dataset, "budget_s": job.budget}
    row.update(train_rows=job.rows, max_candidates=job.max_candidates)
    found = record(job_dir)
    if not found or found.get("AutoMLJobStatus") != "Completed":
        status = found.get("AutoMLJobStatus") if found else "not trained"
        row["status"] = f"{status}: {found.get('FailureReason', '')}" if found else status
        row["over_bar"] = over_bar(row)
        return row
    row["status"] = "Completed"
    info = meta(args.cache, job.dataset)
    test = args.cache / job.dataset / "test.csv"
    row["load_average_1_5_15_min"] = {"start": [round(x, 2) for x in os.getloadavg()]}
    row["shipped"] = shipped(found, job_dir)
    from mlpilot import InferenceModel, load_model

    model = load_model(str(job_dir))
    assert isinstance(model, InferenceModel), "the table's jobs are tabular"
    row["in_process"] = in_process(model, test, info["target"], args.rows)
    bodies = csv_rows(test, list(model.input_columns), args.rows)
    container = found["BestCandidate"]["InferenceContainers"][0]
    row["invoke_endpoint"] = endpoint(clients, job, container, bodies, args.requests)
    row["load_average_1_5_15_min"]["end"] = [round(x, 2) for x in os.getloadavg()]
    row["over_bar"] = over_bar(row)
    return row


def table(result: dict[str, Any]) -> str:
    """The readable table: one line per job, a flag where the bar is missed."""
    header = (
        f"{'job':<30} {'algorithm':<34} {'inproc':>7} {'p50':>7} {'p99':>7} {'cold':>8} "
        f"{'MiB':>6} {'job ms':>7} {'shipped':>10} {'best':>10}  flag"
    )
    lines = [
        f"latency table — {result['machine']}; {result['requests']} InvokeEndpoint requests "
        f"per job (boto3, one text/csv row each), one instance per endpoint",
        f"bar: InvokeEndpoint p50 <= {BAR_P50_MS:g} ms and p99 <= {BAR_P99_MS:g} ms; a single "
        f"LightGBM p50 <= {BAR_LIGHTGBM_P50_MS:g} ms. Times in ms; MiB: RSS per instance",
        "",
        header,
    ]
    for row in result["rows"]:
        if "invoke_endpoint" not in row:
            lines.append(f"{row['job']:<30} {row['status']}")
            continue
        s, e, p = row["shipped"], row["invoke_endpoint"], row["in_process"]
        job_ms = (
            "-" if s["job_predict_ms_per_row"] is None else f"{s['job_predict_ms_per_row']:.2f}"
        )
        flag = "OVER: " + ", ".join(row["over_bar"]) if row["over_bar"] else "ok"
        lines.append(
            f"{row['job']:<30} {s['algorithm'][:34]:<34} {p['p50_ms']:>7.2f} {e['p50_ms']:>7.2f} "
            f"{e['p99_ms']:>7.2f} {e['cold_start_ms']:>8.1f} "
            f"{e['rss_per_instance_mib'] or 0:>6.0f} {job_ms:>7} "
            f"{s['shipped_value']:>10.4g} {s['best_value']:>10.4g}  {flag}"
        )
    over = sum(1 for row in result["rows"] if row["over_bar"])
    lines += [
        "",
        f"{over} of {len(result['rows'])} rows miss the bar or were not measured; load average "
        f"(1, 5, 15 min) at start {result['load_average_start']}, "
        f"at end {result['load_average_end']}",
    ]
    return "\n".join(lines) + "\n"


def measure(args: argparse.Namespace) -> None:
    chosen = selected(args)
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        "requests": args.requests,
        "in_process_rows": args.rows,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "rows": [],
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        Service(Path(tmp) / "service", log=Path(tmp) / "serve.log") as service,
    ):
        clients = Clients.of(service)
        for number, job in enumerate(chosen, 1):
            print(f"[{number}/{len(chosen)}] {job.key} ...", end=" ", flush=True)
            row = measure_one(clients, job, args)
            result["rows"].append(row)
            if "invoke_endpoint" in row:
                e = row["invoke_endpoint"]
                print(
                    f"{row['shipped']['algorithm']}: in-process p50 {row['in_process']['p50_ms']}"
                    f" ms, InvokeEndpoint p50 {e['p50_ms']} ms p99 {e['p99_ms']} ms, cold "
                    f"{e['cold_start_ms']} ms, {e['rss_per_instance_mib']} MiB",
                    flush=True,
                )
            else:
                print(row["status"], flush=True)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    text = table(result)
    output.with_suffix(".txt").write_text(text)
    print(text, end="")
    print(f"written to {output.with_suffix('.json')} and {output.with_suffix('.txt')}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("phase", choices=["train", "measure"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/latency-table"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-cache"))
    parser.add_argument(
        "--datasets", nargs="+", help="only the jobs of these datasets (default: all)"
    )
    parser.add_argument("--budget", type=int, help="every job's budget in seconds, instead")
    parser.add_argument("--requests", type=int, default=300, help="InvokeEndpoint calls per job")
    parser.add_argument("--rows", type=int, default=200, help="test rows sent (in turn)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/latency-table"))
    args = parser.parse_args(argv)
    if args.budget is not None and args.budget < 1:
        sys.exit("--budget must be a positive number of seconds")
    if args.requests < 1 or args.rows < 1:
        sys.exit("--requests and --rows must be positive")
    if args.phase == "train":
        train(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
