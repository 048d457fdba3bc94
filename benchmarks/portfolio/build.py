"""Learn the ENSEMBLING portfolio from a sweep's results (``sweep.py``).

    python benchmarks/portfolio/build.py SWEEP_DIR [--write src/mlpilot/ensemble/portfolio.json]
        [--report benchmarks/results/portfolio.txt] [--leave-out DATASET ...]
    python benchmarks/portfolio/build.py SWEEP_DIR --lodo-dir benchmarks/portfolio/lodo

Per dataset, each configuration's out-of-fold score is normalized: 1 = the best configuration
on that dataset, 0 = the median one or worse (a failure counts as 0). The portfolio is built
greedily: each step adds the configuration that most raises the mean over datasets of the best
normalized score in the portfolio so far (ties, within 0.001, go to the cheaper one), so each
entry is the one that covers the datasets the earlier entries serve worst. Once nothing adds,
the rest follow by mean normalized score, so a job restricted to some algorithms still finds
them in a sensible order.

``--leave-out`` learns from the other datasets' rows only (scores and costs), so a benchmark of
a left-out dataset runs a portfolio that never saw it; ``--lodo-dir`` writes one such portfolio
per dataset of the sweep, ``DIR/<dataset>.json`` (``mlpilot run --portfolio``).

The report checks the procedure itself by leaving each dataset out: the portfolio learned from
the other datasets (as ``--lodo-dir`` writes it) against the previous hand-designed order, on
the dataset left out, for the first k entries (what a short budget trains).
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


def learn(signed: pd.DataFrame, seconds: pd.DataFrame) -> tuple[list[str], pd.DataFrame, pd.Series]:
    """The portfolio's order learned from these datasets' rows, their normalized scores and
    each configuration's relative cost."""
    normalized = normalize(signed)
    # Cost: mean over datasets of the seconds relative to the dataset's median configuration.
    relative = seconds.div(seconds.median(axis=1), axis=0)
    cost = np.exp(np.log(relative.clip(lower=1e-3)).mean(axis=0)).reindex(normalized.columns)
    cost = cost.fillna(cost.max())
    return greedy(normalized, cost), normalized, cost


def leave_out(
    signed: pd.DataFrame, seconds: pd.DataFrame, datasets: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep without ``datasets``' rows."""
    unknown = sorted(set(datasets) - set(signed.index))
    if unknown:
        raise SystemExit(
            f"--leave-out: {', '.join(unknown)} not in the sweep (its datasets: "
            f"{', '.join(signed.index)})"
        )
    return signed.drop(index=datasets), seconds.drop(index=datasets)


def document(
    order: list[str],
    normalized: pd.DataFrame,
    cost: pd.Series,
    candidates: list[dict[str, Any]],
    left_out: list[str],
) -> dict[str, Any]:
    """The portfolio file (``portfolio.json``'s format)."""
    by_label = {c["label"]: c for c in candidates}
    entries = []
    for label in order:
        entry = dict(by_label[label])
        entry["mean_normalized"] = round(float(normalized[label].mean()), 4)
        entry["relative_cost"] = round(float(cost[label]), 3)
        entries.append(entry)
    about = (
        "ENSEMBLING portfolio learned by benchmarks/portfolio/build.py from "
        f"{normalized.shape[0]} shared datasets' training splits (out-of-fold scores of "
        f"{normalized.shape[1]} configurations; no test rows); order = greedy coverage, then "
        "mean normalized score"
    )
    out: dict[str, Any] = {"about": about, "datasets": list(normalized.index)}
    if left_out:
        out["about"] += f"; learned without {', '.join(left_out)}"
        out["left_out"] = list(left_out)
    out["entries"] = entries
    return out


def write(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=1) + "\n")


def report_lines(
    signed: pd.DataFrame,
    seconds: pd.DataFrame,
    order: list[str],
    normalized: pd.DataFrame,
    cost: pd.Series,
) -> list[str]:
    # The hand-designed entries the sweep scored (all of them in the shipped sweep).
    hand = [h["label"] for h in HAND if h["label"] in normalized.columns]
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
        # Normalization of the held-out dataset uses only its own scores (as a new table would).
        loo, _, _ = learn(*leave_out(signed, seconds, [dataset]))
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
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--write", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="DATASET",
        help="learn without this dataset's rows (repeatable); --write writes that portfolio",
    )
    parser.add_argument(
        "--lodo-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write DIR/<dataset>.json for each dataset, learned from all the others",
    )
    args = parser.parse_args()
    if args.lodo_dir and (args.leave_out or args.write):
        parser.error("--lodo-dir writes one portfolio per dataset: drop --leave-out and --write")
    signed, seconds, candidates = load(args.sweep)
    if args.lodo_dir:
        args.lodo_dir.mkdir(parents=True, exist_ok=True)
        for dataset in signed.index:
            order, normalized, cost = learn(*leave_out(signed, seconds, [dataset]))
            path = args.lodo_dir / f"{dataset}.json"
            write(path, document(order, normalized, cost, candidates, [dataset]))
            print(f"{path}: {order[0]}, {order[1]}, {order[2]} ...")
        return
    signed, seconds = leave_out(signed, seconds, args.leave_out)
    order, normalized, cost = learn(signed, seconds)
    report = "\n".join(report_lines(signed, seconds, order, normalized, cost))
    print(report)
    if args.report:
        args.report.write_text(report + "\n")
    if args.write:
        write(args.write, document(order, normalized, cost, candidates, args.leave_out))


if __name__ == "__main__":
    main()
