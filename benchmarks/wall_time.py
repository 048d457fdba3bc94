"""Wall time against the budget per dataset, from the harness's info.json files.

usage: wall_time.py CACHE RESULTS BUDGET_S
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    cache, results, budget = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    print(f"\nmlpilot wall time vs the {budget:.0f} s budget (fit_s = whole `mlpilot run`)")
    print(f"{'dataset':28s} {'fit_s':>8s} {'over':>7s} {'predict_s':>10s}")
    worst = 0.0
    for case in sorted(p for p in cache.iterdir() if (p / "meta.json").exists()):
        info_path = results / "mlpilot" / case.name / "info.json"
        if not info_path.exists():
            print(f"{case.name:28s} {'failed':>8s}")
            continue
        info = json.loads(info_path.read_text())
        over = info["fit_s"] / budget - 1
        worst = max(worst, over)
        print(f"{case.name:28s} {info['fit_s']:8.1f} {over:+7.1%} {info['predict_s']:10.2f}")
    print(f"largest overrun: {worst:+.1%} (limit +5%)")


if __name__ == "__main__":
    main()
