"""Quantile coverage of forecasts: the share of test actuals below each forecast quantile.

usage: forecast_coverage.py CACHE SYSTEM_RESULTS   (SYSTEM_RESULTS/<dataset>/pred.csv)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def main() -> None:
    cache, results = Path(sys.argv[1]), Path(sys.argv[2])
    print("\nquantile coverage (share of test actuals below the forecast quantile):")
    for case in sorted(p for p in cache.iterdir() if (p / "meta.json").exists()):
        pred_path = results / case.name / "pred.csv"
        if not pred_path.exists():
            print(f"{case.name:30s} no forecast")
            continue
        test = pd.read_csv(case / "test.csv", parse_dates=["timestamp"])
        pred = pd.read_csv(pred_path, parse_dates=["timestamp"])
        for frame in (test, pred):
            frame["item_id"] = frame["item_id"].astype(str)
        joined = test.merge(pred, on=["item_id", "timestamp"])
        below = {q: float((joined["target"] < joined[q]).mean()) for q in ("p10", "p50", "p90")}
        print(
            f"{case.name:30s} rows {len(joined)}/{len(test)}  "
            + "  ".join(f"below {q} {v:.3f}" for q, v in below.items())
        )


if __name__ == "__main__":
    main()
