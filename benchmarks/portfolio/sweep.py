"""Score every candidate configuration on every shared dataset's training split.

    python benchmarks/portfolio/sweep.py CACHE OUT [--rows 6000] [--folds 3] [--workers N]
        [--time-limit 90] [--only ALGORITHM,...] [--skip ALGORITHM,...]

CACHE is the bench harness's prepared folder (``prepare.py``): only each dataset's
``train.csv`` is read, never ``test.csv``, so the bench's holdout plays no part in what is
learned. Each dataset is sampled to ``--rows`` rows (stratified for classification), split into
``--folds`` seeded folds, and every configuration is trained and scored out of fold exactly as
an ENSEMBLING job trains a bagged base model (mlpilot's own trial runner: the same features,
early stopping and metric), one worker thread each. One JSON line per (dataset, configuration)
goes to ``OUT/results.jsonl``; a rerun skips the pairs already there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from candidates import candidate_pool, params_for

from mlpilot._types import ProblemType
from mlpilot.algorithms import algorithm_path, get_algorithm
from mlpilot.profile import build_profile
from mlpilot.search import TrialTask
from mlpilot.search._prepared import write_prepared
from mlpilot.search._trial import run_trial

PROBLEM = {
    "binary": ProblemType.BINARY,
    "multiclass": ProblemType.MULTICLASS,
    "regression": ProblemType.REGRESSION,
}
#: The bench's metrics (AMLB's): what each dataset's configurations are compared on.
OBJECTIVE = {"binary": "AUC", "multiclass": "LogLoss", "regression": "RMSE"}


def prepare(case: Path, out: Path, rows: int, folds: int, seed: int) -> dict[str, Any]:
    meta = json.loads((case / "meta.json").read_text())
    source = case / "train.csv"
    if not source.exists():
        source = case / "train.csv.gz"
    table = pd.read_csv(source, low_memory=False)
    problem = PROBLEM[meta["task"]]
    target = meta["target"]
    table = table[table[target].notna()].reset_index(drop=True)
    strat = table[target] if problem.is_classification else None
    if strat is not None and strat.value_counts().min() < 2:
        strat = None
    if len(table) > rows:
        keep, _ = train_test_split(
            np.arange(len(table)), train_size=rows, random_state=seed, stratify=strat
        )
        table = table.iloc[np.sort(keep)].reset_index(drop=True)
        strat = table[target] if strat is not None else None
    if strat is not None and strat.value_counts().min() < folds:
        strat = None
    profile = build_profile(table, target, problem_type=problem)
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if strat is not None
        else KFold(folds, shuffle=True, random_state=seed)
    )
    fold_of = np.zeros(len(table), dtype=np.int16)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(table)), strat)):
        fold_of[test] = fold
    write_prepared(out, table, profile, fold_of)
    return {
        "dataset": case.name,
        "task": meta["task"],
        "problem_type": problem.value,
        "objective": OBJECTIVE[meta["task"]],
        "rows": len(table),
        "classes": len(profile.target.labels) if problem.is_classification else 0,
        "data_dir": str(out),
    }


def evaluate(
    data: dict[str, Any], entry: dict[str, Any], folds: int, seed: int, limit: float
) -> dict[str, Any]:
    problem = ProblemType(data["problem_type"])
    cls = get_algorithm(entry["algorithm"])
    params = {**cls.default_params(problem, data["rows"]), **params_for(entry, problem)}
    maximize = data["objective"] == "AUC"
    task = TrialTask(
        number=0,
        candidate_name=entry["label"],
        algorithm=entry["algorithm"],
        algorithm_path=algorithm_path(entry["algorithm"]),
        params=params,
        preprocessing=cls.preprocessing.to_dict(),
        data_dir=data["data_dir"],
        objective=data["objective"],
        eval_folds=tuple(range(folds)),
        seed=seed,
        time_limit=limit,
        maximize=maximize,
        out_of_bag=cls.tags.out_of_bag,
        archive=False,
    )
    started = time.monotonic()
    result = run_trial(task)
    return {
        "dataset": data["dataset"],
        "task": data["task"],
        "rows": data["rows"],
        "classes": data["classes"],
        "label": entry["label"],
        "algorithm": entry["algorithm"],
        "status": result.status,
        "reason": result.failure_reason[:300],
        "objective": data["objective"],
        "score": result.objective_value,
        "seconds": time.monotonic() - started,
        "latency_ms": None if result.latency_seconds is None else result.latency_seconds * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cache", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--time-limit", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated algorithms to sweep")
    parser.add_argument("--skip", default="", help="comma-separated algorithms to leave out")
    parser.add_argument("--stop-after", type=float, default=None, help="seconds; then stop")
    args = parser.parse_args()
    os.environ["MLPILOT_WORKER_THREADS"] = "1"
    args.out.mkdir(parents=True, exist_ok=True)
    pool = candidate_pool()
    only = {a for a in args.only.split(",") if a}
    skip = {a for a in args.skip.split(",") if a}
    pool = [e for e in pool if (not only or e["algorithm"] in only) and e["algorithm"] not in skip]
    (args.out / "candidates.json").write_text(json.dumps(candidate_pool(), indent=1))
    results_path = args.out / "results.jsonl"
    done = set()
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            row = json.loads(line)
            done.add((row["dataset"], row["label"]))
    datasets = []
    for case in sorted(p for p in args.cache.iterdir() if (p / "meta.json").exists()):
        datasets.append(prepare(case, args.out / "data" / case.name, args.rows, args.folds, 0))
    # The slowest pairs (many classes, many rows) first, so the pool's tail is short.
    jobs = [
        (d, e)
        for d in sorted(datasets, key=lambda d: -(d["rows"] * max(1, d["classes"])))
        for e in pool
        if (d["dataset"], e["label"]) not in done
    ]
    print(f"{len(jobs)} pairs on {args.workers} workers", flush=True)
    started = time.monotonic()
    with (
        ProcessPoolExecutor(args.workers) as executor,
        results_path.open("a") as sink,
    ):
        futures = [
            executor.submit(evaluate, d, e, args.folds, args.seed, args.time_limit) for d, e in jobs
        ]
        for number, future in enumerate(as_completed(futures), 1):
            row = future.result()
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            if number % 25 == 0:
                print(f"{number}/{len(jobs)} in {time.monotonic() - started:.0f} s", flush=True)
            if args.stop_after and time.monotonic() - started > args.stop_after:
                for f in futures:
                    f.cancel()
                print(f"stopped after {number} pairs", flush=True)
                break


if __name__ == "__main__":
    main()
