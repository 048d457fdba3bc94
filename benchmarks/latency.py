"""Single-row, in-process prediction time of a packaged model.

usage: python benchmarks/latency.py JOB_OR_MODEL DATA.csv [--rows 200] [--candidate NAME]
Prints p50/p90/p99 milliseconds over single-row predictions of the first rows of DATA: the job's
packaged best model, or with --candidate one candidate's own package (e.g. the bagged ensemble
when the refit one was packaged).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mlpilot
from mlpilot.data import read_table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--candidate", default=None)
    args = parser.parse_args()
    model = mlpilot.load_model(args.model, candidate=args.candidate)
    table = read_table(args.data)
    model.predict(table.iloc[[0]])  # first call pays one-off costs
    times = []
    for i in range(min(args.rows, len(table))):
        row = table.iloc[[i]]
        started = time.perf_counter()
        model.predict(row)
        times.append((time.perf_counter() - started) * 1000)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    print(
        f"{model.candidate_name} ({model.info['candidate'].get('Algorithm')}): "
        f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms over {len(times)} rows"
    )


if __name__ == "__main__":
    main()
