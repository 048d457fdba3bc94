"""Text classification on the shared text sets: mlpilot against a TF-IDF + logistic regression
floor, on the same seeded split.

usage: python benchmarks/text_bench.py [--budget 300] [--datasets NAME ...] [--work DIR]
       [--output benchmarks/results/text-table]

For each set (``../shared/datasets/<name>``, task text-classification): a stratified 80/20 split
(seed 0); the floor (scikit-learn's TfidfVectorizer with its defaults, then LogisticRegression)
fitted on the training rows; ``mlpilot run --problem-type TextClassification`` on the same rows
under ``--budget`` seconds; both scored by accuracy on the held-out rows. Also: the job's wall
time by the clock of this script, what the job says of its text features, the shipped model,
and single-item latency (in-process ``predict`` of one held-out document at a time: p50 over
``--items``, after a first call that loads the encoder). Writes ``OUTPUT.json`` and ``OUTPUT.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
#: name -> (content column, label column)
SETS = {
    "sentiment_labelled_sentences": ("sentence", "label"),
    "sms_spam_collection": ("message", "label"),
    "bbc_news": ("text", "category"),
    "movie_review_polarity": ("text", "label"),
}


def read(name: str) -> pd.DataFrame:
    folder = SHARED / name
    path = folder / "data.csv" if (folder / "data.csv").exists() else folder / "data.csv.gz"
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--datasets", nargs="*", default=list(SETS))
    parser.add_argument("--work", default="/tmp/text-bench")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--output", default="benchmarks/results/text-table")
    args = parser.parse_args()
    import mlpilot

    work = Path(args.work)
    rows = []
    for name in args.datasets:
        content, label = SETS[name]
        table = read(name)[[content, label]]
        train, test = train_test_split(table, test_size=0.2, random_state=0, stratify=table[label])
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        train.to_csv(folder / "train.csv", index=False)
        started = time.perf_counter()
        floor = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
        floor.fit(train[content], train[label])
        floor_accuracy = accuracy_score(test[label], floor.predict(test[content]))
        floor_seconds = time.perf_counter() - started
        output = folder / f"job-{args.budget}s"
        if not (output / "bench-wall.txt").exists():
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable, "-m", "mlpilot.cli.main", "run", str(folder / "train.csv"),
                    "--problem-type", "TextClassification", "--content-column", content,
                    "--target", label, "--max-runtime", str(args.budget),
                    "--output", str(output), "--quiet",
                ],
                check=False,
            )  # fmt: skip
            wall = time.perf_counter() - started
            (output / "bench-wall.txt").write_text(f"{wall:.1f} {done.returncode}")
        wall_text, returncode = (output / "bench-wall.txt").read_text().split()
        wall = float(wall_text)
        record = json.loads((output / "job.json").read_text())
        profile = json.loads(Path(record["Mlpilot"]["Profile"]["Location"]).read_text())
        notes = [n for n in profile.get("notes", []) if n.startswith("text")]
        if returncode != "0":
            rows.append(
                {
                    "dataset": name,
                    "train_rows": len(train),
                    "classes": int(table[label].nunique()),
                    "majority": float(test[label].value_counts(normalize=True).iloc[0]),
                    "floor_accuracy": float(floor_accuracy),
                    "mlpilot_accuracy": None,
                    "wall_seconds": wall,
                    "failure": record.get("FailureReason", f"exit status {returncode}"),
                    "text_notes": notes,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            continue
        model = mlpilot.load_model(output)
        predicted = model.predict(test[[content]])["predicted_label"].astype(str)
        accuracy = accuracy_score(test[label].astype(str), predicted)
        model.predict(test[[content]].iloc[[0]])
        times = []
        for i in range(min(args.items, len(test))):
            one = test[[content]].iloc[[i]]
            t0 = time.perf_counter()
            model.predict(one)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append(
            {
                "dataset": name,
                "train_rows": len(train),
                "test_rows": len(test),
                "classes": int(table[label].nunique()),
                "majority": float(test[label].value_counts(normalize=True).iloc[0]),
                "floor_accuracy": float(floor_accuracy),
                "floor_seconds": round(floor_seconds, 2),
                "mlpilot_accuracy": float(accuracy),
                "wall_seconds": wall,
                "job_elapsed": record.get("Mlpilot", {}).get("ElapsedSeconds"),
                "shipped": record["BestCandidate"]["CandidateName"],
                "algorithm": record["BestCandidate"].get("Mlpilot", {}).get("Algorithm"),
                "validation_accuracy": record["BestCandidate"]["FinalAutoMLJobObjectiveMetric"][
                    "Value"
                ],
                "latency_p50_ms": float(np.percentile(times, 50)),
                "latency_p99_ms": float(np.percentile(times, 99)),
                "text_notes": notes,
                "ensemble_notes": record["Mlpilot"].get("EnsembleNotes", []),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    write(rows, args, Path(args.output))


def write(rows: list[dict], args: argparse.Namespace, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    doc = {"machine": machine, "budget_s": args.budget, "split": "stratified 80/20, seed 0"}
    output.with_suffix(".json").write_text(json.dumps({**doc, "rows": rows}, indent=1))
    lines = [
        f"text classification — {machine}; {args.budget} s per job; accuracy on a stratified "
        "20 % held out (seed 0); floor: TfidfVectorizer() + LogisticRegression()",
        "",
        f"{'dataset':30} {'rows':>6} {'cls':>4} {'major':>6} {'floor':>7} {'mlpilot':>8} "
        f"{'wall s':>7} {'p50 ms':>7} {'p99 ms':>7}  shipped",
    ]
    for r in rows:
        if r["mlpilot_accuracy"] is None:
            lines.append(
                f"{r['dataset']:30} {r['train_rows']:>6} {r['classes']:>4} {r['majority']:>6.3f} "
                f"{r['floor_accuracy']:>7.4f} {'failed':>8} {r['wall_seconds']:>7.1f}  "
                f"{r['failure']}"
            )
            continue
        lines.append(
            f"{r['dataset']:30} {r['train_rows']:>6} {r['classes']:>4} {r['majority']:>6.3f} "
            f"{r['floor_accuracy']:>7.4f} {r['mlpilot_accuracy']:>8.4f} {r['wall_seconds']:>7.1f} "
            f"{r['latency_p50_ms']:>7.1f} {r['latency_p99_ms']:>7.1f}  {r['algorithm']}"
        )
    for r in rows:
        lines.append(f"{r['dataset']}: " + "; ".join(r["text_notes"]))
    output.with_suffix(".txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
