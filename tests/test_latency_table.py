"""benchmarks/latency_table.py at its seams: the jobs of the table, what it reads of a job's
record and leaderboard, and the bar's flags. (Its two phases are run by hand: they train for
half an hour and deploy every model.)"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("latency_table", BENCHMARKS / "latency_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_jobs_are_the_issues_and_their_names_are_valid_job_names(table: ModuleType) -> None:
    jobs = table.jobs(None)
    assert len(jobs) == 16 + 5
    keys = [j.key for j in jobs]
    assert len(set(keys)) == len(keys)
    for key in keys:  # AutoMLJobName: at most 32 letters, digits and hyphens
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", key), key
    telco = [j for j in jobs if j.rows == 3000 and j.dataset == "telco_customer_churn"]
    assert [(j.budget, j.max_candidates) for j in telco] == [(90, 3)]
    assert {j.budget for j in jobs if j.dataset == "titanic"} == {60, 30}

    # One budget for all: titanic's and pima's two jobs become one each, slices stay.
    short = table.jobs(10)
    assert {j.budget for j in short} == {10}
    assert len(short) == len(jobs) - 2
    assert "telco-customer-churn-3000-10s" in [j.key for j in short]


def _write_job(folder: Path, shipped: str, weights: dict[str, float] | None) -> dict[str, Any]:
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "candidate": ["ens", "lgb", "cat", "broken"],
            "algorithm": ["weighted-ensemble", "lightgbm", "catboost", "xgboost"],
            "status": ["Completed", "Completed", "Completed", "Failed"],
            "objective": [10.5, 10.0, 11.0, None],
            "predict_ms_per_row": [3.25, 0.5, 1.5, None],
        }
    ).to_csv(folder / "leaderboard.csv", index=False)
    mlpilot: dict[str, Any] = {"Algorithm": "weighted-ensemble" if weights else "lightgbm"}
    if weights:
        mlpilot["Weights"] = weights
    return {
        "BestCandidate": {
            "CandidateName": shipped,
            "FinalAutoMLJobObjectiveMetric": {
                "MetricName": "RMSE",
                "Type": "Minimize",
                "Value": 10.5 if weights else 10.0,
            },
            "Mlpilot": mlpilot,
        }
    }


def test_the_shipped_candidate_against_the_best_of_the_leaderboard(
    table: ModuleType, tmp_path: Path
) -> None:
    record = _write_job(tmp_path / "ens", "ens", {"lgb": 0.7, "cat": 0.3})
    found = table.shipped(record, tmp_path / "ens")
    assert found["algorithm"] == "weighted-ensemble(catboost+lightgbm)"
    assert not found["single_lightgbm"]
    assert found["job_predict_ms_per_row"] == 3.25
    # Minimized: the best is the lowest completed value, not the shipped one.
    assert (found["shipped_value"], found["best_value"]) == (10.5, 10.0)
    assert found["candidates"] == 3

    single = table.shipped(_write_job(tmp_path / "lgb", "lgb", None), tmp_path / "lgb")
    assert single["algorithm"] == "lightgbm" and single["single_lightgbm"]
    assert single["shipped_value"] == single["best_value"] == 10.0


def _row(algorithm: str, p50: float, p99: float) -> dict[str, Any]:
    return {
        "job": f"{algorithm}-60s",
        "status": "Completed",
        "shipped": {
            "algorithm": algorithm,
            "single_lightgbm": algorithm == "lightgbm",
            "job_predict_ms_per_row": None,
            "shipped_value": 0.9,
            "best_value": 0.91,
        },
        "in_process": {"p50_ms": 1.0, "p99_ms": 1.2},
        "invoke_endpoint": {
            "p50_ms": p50,
            "p99_ms": p99,
            "cold_start_ms": 300.0,
            "rss_per_instance_mib": 250.0,
        },
    }


def test_rows_over_the_bar_are_flagged(table: ModuleType) -> None:
    assert table.over_bar(_row("weighted-ensemble(lightgbm)", 3.0, 9.0)) == []
    assert table.over_bar(_row("lightgbm", 3.0, 9.0)) == ["lightgbm p50>2"]
    assert table.over_bar(_row("catboost", 6.0, 12.0)) == ["p50>5", "p99>10"]
    assert table.over_bar({"job": "x", "status": "Failed"}) == ["not measured"]

    rows = [_row("catboost", 3.0, 9.0), _row("lightgbm", 3.0, 9.0)]
    rows.append({"job": "titanic-60s", "status": "Failed: no candidate"})
    for row in rows:
        row["over_bar"] = table.over_bar(row)
    text = table.table(
        {
            "machine": "test",
            "requests": 300,
            "rows": rows,
            "load_average_start": [0.1, 0.1, 0.1],
            "load_average_end": [0.2, 0.1, 0.1],
        }
    )
    lines = text.splitlines()
    assert next(line for line in lines if line.startswith("catboost-60s")).endswith("ok")
    assert next(line for line in lines if line.startswith("lightgbm-60s")).endswith(
        "OVER: lightgbm p50>2"
    )
    assert "titanic-60s" in text and "Failed: no candidate" in text
    assert "2 of 3 rows miss the bar or were not measured" in text
