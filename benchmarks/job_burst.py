"""Many AutoML jobs submitted at once to ``mlpilot serve``: they queue behind the concurrency
limit and all finish, without exhausting memory.

usage: python benchmarks/job_burst.py [--jobs 20] [--max-concurrent-jobs N]
           [--output benchmarks/results/job-burst.txt]

Each job is tiny (linear learner, one candidate, the first 200 rows of
``tests/data/titanic.csv``). Every second the script reads the service's store (jobs running,
queued, ended), each queued job's place in the queue (the ``x-mlpilot-queue-position`` header
of DescribeAutoMLJobV2: the largest seen, and whether every job's place only went down until
it started), and the resident memory of the service and every process under it (job runners
and their workers included), and the machine's MemAvailable. Without
``--max-concurrent-jobs`` the service's default applies (half the cores, one per 4 GiB).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import ROLE, Service, memory

TITANIC = Path(__file__).resolve().parent.parent / "tests" / "data" / "titanic.csv"

_ENDED = ("Completed", "Failed", "Stopped")


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--max-concurrent-jobs", type=int)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--output", default="benchmarks/results/job-burst.txt")
    args = parser.parse_args(argv)

    import pandas as pd

    from mlpilot.service import ServiceConfig, Store
    from mlpilot.service._config import default_max_concurrent_jobs

    limit = args.max_concurrent_jobs or default_max_concurrent_jobs()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        pd.read_csv(TITANIC).head(200).to_csv(root / "in" / "train.csv", index=False)
        service = Service(root / "data", "--max-concurrent-jobs", str(limit)).start()
        sm = service.client()
        store = Store(ServiceConfig(data_dir=root / "data").database_url)
        names = [f"burst-{i:02d}" for i in range(args.jobs)]
        started = time.monotonic()
        memory_before = mem_available_kib()
        try:
            for name in names:  # all at once, back to back
                sm.create_auto_ml_job_v2(
                    AutoMLJobName=name,
                    AutoMLJobInputDataConfig=[
                        {
                            "DataSource": {
                                "S3DataSource": {
                                    "S3DataType": "S3Prefix",
                                    "S3Uri": str(root / "in"),
                                }
                            }
                        }
                    ],
                    OutputDataConfig={"S3OutputPath": str(root / "out")},
                    AutoMLProblemTypeConfig={
                        "TabularJobConfig": {
                            "TargetAttributeName": "Survived",
                            "Mode": "HYPERPARAMETER_TUNING",
                            "CompletionCriteria": {
                                "MaxCandidates": 1,
                                "MaxAutoMLJobRuntimeInSeconds": 120,
                            },
                            "CandidateGenerationConfig": {
                                "AlgorithmsConfig": [{"AutoMLAlgorithms": ["linear-learner"]}]
                            },
                        }
                    },
                    RoleArn=ROLE,
                )
            queued_at_start = sum(
                1
                for n in names
                if sm.describe_auto_ml_job_v2(AutoMLJobName=n)["AutoMLJobSecondaryStatus"]
                == "Starting"
            )
            places: dict[str, list[int]] = {n: [] for n in names}
            longest_queue = 0
            most_running = peak_rss = 0
            least_available = memory_before
            rows: list[dict[str, Any]] = []
            while time.monotonic() - started < args.timeout:
                rows = [store.get_job(n) or {} for n in names]
                running = sum(
                    1 for r in rows if r.get("status") == "InProgress" and r.get("runner_pid")
                )
                most_running = max(most_running, running)
                for n, r in zip(names, rows, strict=True):
                    if r.get("status") == "InProgress" and not r.get("runner_pid"):
                        headers = sm.describe_auto_ml_job_v2(AutoMLJobName=n)["ResponseMetadata"][
                            "HTTPHeaders"
                        ]
                        if "x-mlpilot-queue-position" in headers:
                            places[n].append(int(headers["x-mlpilot-queue-position"]))
                            longest_queue = max(
                                longest_queue, int(headers["x-mlpilot-queue-length"])
                            )
                rss = sum(memory(service.pid).values())
                peak_rss = max(peak_rss, rss)
                least_available = min(least_available, mem_available_kib())
                if all(r.get("status") in _ENDED for r in rows):
                    break
                time.sleep(1.0)
            wall = time.monotonic() - started
            seen = [p for p in places.values() if p]
            highest_place = max((max(p) for p in seen), default=0)
            only_down = all(a >= b for p in seen for a, b in itertools.pairwise(p))
            moved = sum(1 for p in seen if p[-1] < p[0])
            statuses: dict[str, int] = {}
            for r in rows:
                statuses[str(r.get("status"))] = statuses.get(str(r.get("status")), 0) + 1
        finally:
            store.close()
            service.stop(timeout=120)
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {memory_before // 1024} MiB available at start",
        "jobs": args.jobs,
        "limit": limit,
        "queued_right_after_submission": queued_at_start,
        "most_running_at_once": most_running,
        "highest_queue_position": highest_place,
        "longest_queue": longest_queue,
        "positions_only_decreased": only_down,
        "jobs_seen_moving_up": moved,
        "statuses": statuses,
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak_rss / 1024, 1),
        "least_available_mib": least_available // 1024,
    }
    text = (
        f"{args.jobs} AutoML jobs submitted at once to mlpilot serve — {result['machine']}\n"
        f"concurrency limit {limit}; right after submission {queued_at_start} showed "
        f"InProgress/Starting (queued or not yet begun); at most {most_running} ran at once\n"
        f"queue positions (x-mlpilot-queue-position): highest {highest_place} of a queue of at "
        f"most {longest_queue}; {len(seen)} jobs seen queued, {moved} seen moving up; "
        f"positions {'only decreased' if only_down else 'did NOT only decrease'} as jobs "
        "started\n"
        f"end states {statuses} after {result['wall_s']} s\n"
        f"peak RSS of the service and all under it {result['peak_rss_mib']} MiB; "
        f"least MemAvailable {result['least_available_mib']} MiB\n"
    )
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    print(text, end="")
    return result


if __name__ == "__main__":
    main()
