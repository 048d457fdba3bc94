"""kill -9 at random times: a small AutoML job submitted to ``mlpilot serve``, then its job
runner, the service, or both killed with SIGKILL after a random delay (seeded), a killed
service restarted, and the job waited for. Records how each job ended and why, what it was
doing when killed, whether its model loads, and what was left behind: processes of the
runner's process group still alive, ``.staging-*`` folders in the output.

usage: python benchmarks/faults.py [--kills 6] [--seed 0] [--max-delay 25]
           [--output benchmarks/results/faults.txt]

The named crash points (``MLPILOT_CRASH_AT``, tests/test_service_faults.py) make each stage's
kill deterministic for CI; this script is for the places between them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # automl_request: the tests' small job
sys.path.insert(0, str(ROOT / "benchmarks"))

from _service import Service  # noqa: E402

from helpers_service import automl_request  # noqa: E402

TITANIC = ROOT / "tests" / "data" / "titanic.csv"
_ENDED = ("Completed", "Failed", "Stopped")
TARGETS = ("runner", "service", "both")


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _row(service: Service, name: str) -> dict[str, Any]:
    from mlpilot.service import ServiceConfig, Store

    store = Store(ServiceConfig(data_dir=service.data_dir).database_url)
    try:
        return store.get_job(name) or {}
    finally:
        store.close()


def _wait_for(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    return None


def one_round(
    number: int, rng: random.Random, root: Path, max_delay: float, timeout: float
) -> dict[str, Any]:
    from mlpilot.package import load_model

    name = f"fault-{number:02d}"
    target = rng.choice(TARGETS)
    delay = round(rng.uniform(0.5, max_delay), 1)
    # As the tests' service runs: one worker per job, up to 4 jobs at once; its log to a file.
    service = Service(
        root / "data",
        "--job-parallelism",
        "1",
        "--max-concurrent-jobs",
        "4",
        log=root / "serve.log",
    ).start()
    result: dict[str, Any] = {"job": name, "target": target, "delay_s": delay}
    try:
        sm = service.client()
        sm.create_auto_ml_job_v2(
            **automl_request(
                name,
                str(root / "in"),
                str(root / "out"),
                target="Survived",
                max_candidates=3,
                runtime=90,
            )
        )
        runner = _wait_for(lambda: _row(service, name).get("runner_pid"), 60)
        result["runner_pid"] = runner
        time.sleep(delay)
        row = _row(service, name)
        result["at_kill"] = (
            row.get("secondary_status") if row.get("status") not in _ENDED else "(ended)"
        )
        if target in ("runner", "both") and runner:
            with contextlib.suppress(ProcessLookupError):  # it may have ended already
                os.kill(int(runner), signal.SIGKILL)
        if target in ("service", "both"):
            service.kill()
            service.start()  # a runner killed alone is the running service's to notice
        ended = _wait_for(lambda: (r := _row(service, name)).get("status") in _ENDED and r, timeout)
        row = ended or _row(service, name)
        record = row.get("record") or {}
        result["status"] = row.get("status")
        result["reason"] = record.get("FailureReason", "")
        best = record.get("BestCandidate")
        if best:
            try:
                load_model(row["local_root"])
                result["model"] = "loads"
            except Exception as exc:
                result["model"] = f"refused: {exc}"
        else:
            result["model"] = "-"
        time.sleep(2.0)  # the service ends a dead runner's group on its next tick
        result["leftover_processes"] = len(group_members(int(runner))) if runner else 0
        result["staging_folders"] = len(list((root / "out").rglob(".staging-*")))
    finally:
        service.stop()
    return result


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=25.0)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--output", default="benchmarks/results/faults.txt")
    args = parser.parse_args(argv)

    import pandas as pd

    rng = random.Random(args.seed)
    results = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        pd.read_csv(TITANIC).head(300).to_csv(root / "in" / "train.csv", index=False)
        for number in range(args.kills):
            outcome = one_round(number, rng, root, args.max_delay, args.timeout)
            print(outcome, flush=True)
            results.append(outcome)
    header = (
        f"{args.kills} random kill -9s (seed {args.seed}, delay 0.5-{args.max_delay} s after the "
        f"runner started) — {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.monotonic() - started:.0f} s in all\n"
        "job: 3 candidates (linear-learner, lightgbm), 300 rows of titanic.csv\n\n"
    )
    columns = ("job", "target", "delay_s", "at_kill", "status", "model", "leftover", "staging")
    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    for r in results:
        cells = (
            r["job"],
            r["target"],
            str(r["delay_s"]),
            str(r.get("at_kill")),
            str(r.get("status")),
            str(r.get("model")),
            str(r.get("leftover_processes")),
            str(r.get("staging_folders")),
        )
        lines.append(" | ".join(cells))
    reasons = [f"{r['job']}: {r['reason']}" for r in results if r.get("reason")]
    text = header + "\n".join(lines) + "\n\nreasons:\n" + "\n".join(reasons) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    print(text, end="")
    return results


if __name__ == "__main__":
    main()
