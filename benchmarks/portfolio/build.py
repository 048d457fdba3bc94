"""Learn the ENSEMBLING portfolio from a sweep's results (``sweep.py``).

    python benchmarks/portfolio/build.py SWEEP_DIR [--write src/mlpilot/ensemble/portfolio.json]
        [--report benchmarks/results/portfolio.txt]

Per dataset, each configuration's out-of-fold score is normalized: 1 = the best configuration
on that dataset, 0 = the median one or worse (a failure counts as 0). The portfolio is built
greedily: each step adds the configuration that most raises the mean over datasets of the best
normalized score in the portfolio so far (ties, within 0.001, go to the cheaper one), so each
entry is the one that covers the datasets the earlier entries serve worst. Once nothing adds,
the rest follow by mean normalized score, so a job restricted to some algorithms still finds
them in a sensible order.

The report checks the procedure itself by leaving each dataset out: the portfolio learned from
the other datasets against the previous hand-designed order, on the dataset left out, for the
first k entries (what a short budget trains).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from candidates import HAND

#: Normalized-gain difference under which the cheaper configuration is preferred (and the
#: least gain that counts as one).
TIE = 1e-3
#: Portfolio prefixes the leave-one-dataset-out check compares.
PREFIXES = (1, 2, 4, 8, 16)


def load(sweep: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    rows = [json.loads(line) for line in (sweep / "results.jsonl").read_text().splitlines()]
    frame = pd.DataFrame(rows)
    candidates = json.loads((sweep / "candidates.json").read_text())
    labels = [c["label"] for c in candidates]
    datasets = sorted(frame["dataset"].unique())
    score = frame.pivot_table(index="dataset", columns="label", values="score", aggfunc="first")
    score = score.reindex(index=datasets, columns=labels)
    failed = frame[frame["status"] != "Completed"].set_index(["dataset", "label"]).index
    for d, c in failed:
        score.loc[d, c] = np.nan
    seconds = frame.pivot_table(index="dataset", columns="label", values="seconds", aggfunc="first")
    seconds = seconds.reindex(index=datasets, columns=labels)
    lower_better = frame.groupby("dataset")["objective"].first().isin(["LogLoss", "RMSE"])
    # Larger is better everywhere from here on.
    signed = score.mul(np.where(lower_better.reindex(datasets), -1.0, 1.0), axis=0)
    return signed, seconds, candidates


def normalize(signed: pd.DataFrame) -> pd.DataFrame:
    best = signed.max(axis=1)
    median = signed.median(axis=1)
    span = (best - median).replace(0.0, np.nan)
    normalized = signed.sub(median, axis=0).div(span, axis=0).clip(lower=0.0, upper=1.0)
    return normalized.fillna(0.0)


def greedy(normalized: pd.DataFrame, cost: pd.Series) -> list[str]:
    """All configurations in order: first those the greedy coverage picks, then the rest by
    mean normalized score."""
    values = normalized.to_numpy()
    labels = list(normalized.columns)
    chosen: list[int] = []
    covered = np.zeros(values.shape[0])
    remaining = set(range(len(labels)))
    while remaining:
        gains = {
            i: float(np.maximum(covered, values[:, i]).mean() - covered.mean()) for i in remaining
        }
        top = max(gains.values())
        if top < TIE:
            break  # nothing adds coverage that counts
        near = [i for i in remaining if gains[i] >= top - TIE]
        pick = min(near, key=lambda i: (cost.iloc[i], -gains[i], i))
        chosen.append(pick)
        covered = np.maximum(covered, values[:, pick])
        remaining.discard(pick)
    mean = values.mean(axis=0)
    chosen += sorted(remaining, key=lambda i: (-mean[i], cost.iloc[i], i))
    return [labels[i] for i in chosen]


def prefix_value(normalized: pd.DataFrame, order: list[str], k: int) -> pd.Series:
    return normalized[order[:k]].max(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--write", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    signed, seconds, candidates = load(args.sweep)
    normalized = normalize(signed)
    # Cost: mean over datasets of the seconds relative to the dataset's median configuration.
    relative = seconds.div(seconds.median(axis=1), axis=0)
    cost = np.exp(np.log(relative.clip(lower=1e-3)).mean(axis=0)).reindex(normalized.columns)
    cost = cost.fillna(cost.max())
    order = greedy(normalized, cost)
    hand = [h["label"] for h in HAND]

    lines = [
        f"portfolio sweep: {signed.shape[1]} configurations x {signed.shape[0]} datasets "
        f"({int(signed.notna().sum().sum())} scored pairs)",
        "",
        "learned order (mean normalized score alone / cumulative best-of-portfolio / rel. cost):",
    ]
    for k, label in enumerate(order[:24], 1):
        lines.append(
            f"{k:3d}. {label:24s} {normalized[label].mean():6.3f} "
            f"{prefix_value(normalized, order, k).mean():6.3f} {cost[label]:7.2f}x"
        )
    lines += ["", "leave-one-dataset-out: best-of-first-k on the dataset left out (mean)"]
    lines.append("   k  learned  hand")
    held: dict[int, list[tuple[float, float]]] = {k: [] for k in PREFIXES}
    for dataset in normalized.index:
        rest = normalized.drop(index=dataset)
        # Normalization of the held-out dataset uses only its own scores (as a new table would).
        loo = greedy(rest, cost)
        for k in PREFIXES:
            held[k].append(
                (
                    float(normalized.loc[dataset, loo[:k]].max()),
                    float(normalized.loc[dataset, hand[:k]].max()),
                )
            )
    for k in PREFIXES:
        learned, manual = np.mean(held[k], axis=0)
        lines.append(f"{k:4d}  {learned:7.3f}  {manual:5.3f}")
    lines += ["", "best configuration per dataset:"]
    for dataset in normalized.index:
        best = signed.loc[dataset].idxmax()
        lines.append(f"  {dataset:28s} {best}")
    report = "\n".join(lines)
    print(report)
    if args.report:
        args.report.write_text(report + "\n")
    if args.write:
        by_label = {c["label"]: c for c in candidates}
        entries = []
        for label in order:
            entry = dict(by_label[label])
            entry["mean_normalized"] = round(float(normalized[label].mean()), 4)
            entry["relative_cost"] = round(float(cost[label]), 3)
            entries.append(entry)
        document = {
            "about": (
                "ENSEMBLING portfolio learned by benchmarks/portfolio/build.py from "
                f"{signed.shape[0]} shared datasets' training splits (out-of-fold scores of "
                f"{signed.shape[1]} configurations; no test rows); order = greedy coverage, then "
                "mean normalized score"
            ),
            "datasets": list(normalized.index),
            "entries": entries,
        }
        args.write.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
