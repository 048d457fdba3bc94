"""Fuzz a real ``mlpilot serve`` with requests generated from botocore's sagemaker model.

usage: python benchmarks/fuzz_api.py [--requests 3000] [--seed 14] [--timeout 30] [--stateless]
           [--output benchmarks/results/fuzz-api.txt]

Starts ``mlpilot serve`` on 127.0.0.1 with a fresh data folder (S3 pointed at a closed local
port, so nothing leaves the machine), sends ``--requests`` cases from
``tests/helpers_fuzz.Fuzzer`` (valid and invalid requests for every implemented operation, plus
raw-HTTP cases), then checks the service still answers.

By default the run is stateful: a small churn model is trained first (seconds), and the run
seeds a real model, endpoint configuration, endpoint, transform and AutoML job, mixes requests
aimed at them into the fuzzed ones, and ends by checking they are consistent (each describes,
the endpoint is InService and answers InvokeEndpoint). ``--stateless`` fuzzes an empty service.

Reports the counts per HTTP status, per error code and per kind of case, every 5xx and every
wrong code with the request that drew it. Exits 1 when any answer was a 5xx, missing, or carried
the wrong code, or the seeded resources were not consistent at the end.
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers_fuzz import SEED_ENDPOINT, Fuzzer, Outcome, implemented_operations, send, settle
from helpers_service import ServiceProcess, free_port


class _Folders:
    """``mktemp`` for helpers_models, under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True)
        return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=30.0, help="client timeout, seconds")
    parser.add_argument("--output", default="benchmarks/results/fuzz-api.txt")
    parser.add_argument(
        "--stateless", action="store_true", help="fuzz an empty service (no seeded resources)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlpilot-fuzz-") as tmp:
        root = Path(tmp)
        service = ServiceProcess(
            root / "data", s3_endpoint=f"http://127.0.0.1:{free_port()}"
        ).start()
        trained = None
        if not args.stateless:
            import helpers_models

            trained = helpers_models.churn_model(_Folders(root))  # type: ignore[arg-type]
        fuzzer = Fuzzer(args.seed, root, package=trained.archive if trained else None)
        outcomes: list[Outcome] = []
        consistent = "not checked (--stateless)"
        started = time.monotonic()
        try:
            with httpx.Client(timeout=args.timeout) as client:
                for case in fuzzer.setup():
                    ready = send(client, f"{service.url}/", case)
                    if ready.status != 200:
                        raise RuntimeError(f"fuzz setup failed: {ready.code} {ready.message}")
                for case in fuzzer.cases(args.requests):
                    outcomes.append(send(client, f"{service.url}/", case))
                if trained is not None:
                    outcomes += [send(client, f"{service.url}/", c) for c in fuzzer.final()]
                    settle(client, f"{service.url}/")
                    consistent = _consistent(service, trained)
                alive = client.post(
                    f"{service.url}/",
                    content=b"{}",
                    headers={
                        "X-Amz-Target": "SageMaker.ListAutoMLJobs",
                        "Content-Type": "application/x-amz-json-1.1",
                    },
                ).status_code
        finally:
            elapsed = time.monotonic() - started
            up = service.process is not None and service.process.poll() is None
            service.stop()
    report = _report(args, outcomes, elapsed, alive if up else 0, consistent)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print(report)
    bad = [o for o in outcomes if o.problems]
    return 1 if bad or alive != 200 or not consistent.startswith(("yes", "not")) else 0


def _consistent(service: ServiceProcess, trained: object) -> str:
    """Whether the seeded endpoint is InService and answers InvokeEndpoint."""
    endpoint = service.boto().describe_endpoint(EndpointName=SEED_ENDPOINT)
    if endpoint["EndpointStatus"] != "InService":
        return f"no: endpoint {endpoint['EndpointStatus']} ({endpoint.get('FailureReason')})"
    answer = service.boto("sagemaker-runtime").invoke_endpoint(
        EndpointName=SEED_ENDPOINT,
        ContentType="text/csv",
        Body=trained.csv_body(0, 3),  # type: ignore[attr-defined]
    )
    labels = answer["Body"].read().decode().split()
    return f"yes (endpoint InService, InvokeEndpoint: {len(labels)} labels for 3 rows)"


def _report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    elapsed: float,
    alive: int,
    consistent: str,
) -> str:
    statuses = collections.Counter(o.status for o in outcomes)
    codes = collections.Counter(o.code for o in outcomes)
    kinds = collections.Counter(o.case.kind for o in outcomes)
    per_op = collections.Counter(o.case.operation for o in outcomes)
    per_op_ok = collections.Counter(o.case.operation for o in outcomes if 200 <= o.status < 300)
    server_errors = [o for o in outcomes if o.status >= 500 or o.status == 0]
    wrong = [o for o in outcomes if o.problems and 0 < o.status < 500]
    lines = [
        f"mlpilot API fuzz ({'stateless' if args.stateless else 'stateful'}): "
        f"{len(outcomes)} requests, seed {args.seed}, "
        f"{len(implemented_operations())} operations, {elapsed:.0f} s "
        f"({platform.python_version()}, {platform.machine()})",
        f"service up at the end (ListAutoMLJobs): {'yes' if alive == 200 else f'no ({alive})'}",
        f"seeded resources consistent at the end: {consistent}",
        f"5xx or no answer: {len(server_errors)}; 4xx with a wrong code: {len(wrong)}",
        "",
        "per HTTP status: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
        "per code: " + ", ".join(f"{k}: {v}" for k, v in codes.most_common()),
        "per kind of case: " + ", ".join(f"{k}: {v}" for k, v in kinds.most_common()),
        "per operation (of which 2xx): "
        + ", ".join(f"{k}: {v} ({per_op_ok[k]})" for k, v in sorted(per_op.items())),
    ]
    for title, found in (("5xx / no answer", server_errors), ("wrong codes", wrong)):
        if found:
            lines += ["", f"{title}:"]
            for outcome in found[:50]:
                lines.append(f"- {outcome.status} {'; '.join(outcome.problems)}")
                lines.append(f"    {outcome.case.describe()}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
