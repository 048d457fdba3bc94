"""The tabular problem's own rules, below the job: usable rows, AUTO's mode, the search's row
cap, the candidate report of a trial, and the final tail the search leaves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlpilot._types import Mode
from mlpilot.config import JobConfig, TabularConfig
from mlpilot.errors import DataError
from mlpilot.problems import Analysis
from mlpilot.problems.tabular import TabularProblem, trial_report
from mlpilot.problems.tabular._analysis import (
    AUTO_ENSEMBLING_MAX_BYTES,
    choose_mode,
    csv_bytes,
    read_channels,
    search_row_cap,
    usable_rows,
)
from mlpilot.problems.tabular._training import final_tail, refits
from mlpilot.profile import build_profile
from mlpilot.runtime import Budget
from mlpilot.search import TrialResult, TrialTask, ValidationPlan


def config(tmp_path: Path, **values: Any) -> JobConfig:
    defaults: dict[str, Any] = {
        "name": "tab",
        "training_data": str(tmp_path / "train.csv"),
        "target": "y",
        "output_path": str(tmp_path / "out"),
    }
    return JobConfig.tabular(**{**defaults, **values})


def test_read_channels_appends_the_validation_rows_and_counts_them(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "a"]}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"x": [4, 5], "y": ["b", "a"]}).to_csv(tmp_path / "valid.csv", index=False)
    table, n_validation = read_channels(
        config(tmp_path, validation_data=str(tmp_path / "valid.csv"))
    )
    # The reader keeps every value as read (text); the profile types the columns.
    assert n_validation == 2 and list(table["x"]) == ["1", "2", "3", "4", "5"]
    pd.DataFrame({"x": [1], "z": [2]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataError, match="validation channel's columns differ"):
        read_channels(config(tmp_path, validation_data=str(tmp_path / "other.csv")))


def test_rows_without_a_target_or_weight_leave_and_the_validation_count_follows(
    tmp_path: Path,
) -> None:
    table = pd.DataFrame(
        {
            "x": range(8),
            "w": ["1", "2", "?", "1", "1", "1", "1", "1"],
            "y": ["a", "b", "a", None, "b", "a", "NA", "b"],
        }
    )
    cfg = config(tmp_path, sample_weight="w")
    profile = build_profile(table, "y", sample_weight="w")
    # The last three rows are the validation channel's; one of them has no target.
    rows = usable_rows(table, 3, cfg.problem_as(TabularConfig), profile)
    assert list(rows.table["x"]) == [0, 1, 4, 5, 7]  # 2: no weight; 3 and 6: no target
    assert rows.n_validation == 2
    assert len(rows.y) == 5 and set(np.unique(rows.y)) <= {0, 1}


def test_auto_mode_follows_the_data_size_and_candidate_definitions(tmp_path: Path) -> None:
    small = pd.DataFrame({"x": range(100), "y": [0, 1] * 50})
    mode, why = choose_mode(config(tmp_path).problem_as(TabularConfig), small)
    assert mode is Mode.ENSEMBLING and why.startswith("AUTO chose ENSEMBLING")
    mode, why = choose_mode(config(tmp_path, candidates_only=True).problem_as(TabularConfig), small)
    assert mode is Mode.HYPERPARAMETER_TUNING and "candidate definitions" in why
    mode, why = choose_mode(
        config(tmp_path, mode="HYPERPARAMETER_TUNING").problem_as(TabularConfig), small
    )
    assert mode is Mode.HYPERPARAMETER_TUNING and why == "set by the job"
    # The size is the table's as CSV, estimated from a sample.
    exact = len(small.to_csv(index=False, header=False).encode())
    assert csv_bytes(small) == exact and csv_bytes(small.head(0)) == 0
    assert AUTO_ENSEMBLING_MAX_BYTES == 100 * 2**20


def test_the_search_samples_rows_by_budget() -> None:
    assert search_row_cap(None) is None
    assert search_row_cap(60) == 50_000
    assert search_row_cap(600) == 200_000
    assert search_row_cap(3600) is None


def test_a_trials_report_carries_its_details_and_standalone_rule() -> None:
    task = TrialTask(
        number=3,
        candidate_name="job-lightgbm-004-abc",
        algorithm="lightgbm",
        algorithm_path="mlpilot.algorithms.lightgbm:LightGBM",
        params={"num_leaves": 9},
        preprocessing={},
        data_dir="data",
        objective="F1",
        eval_folds=(0, 1, 2),
        seed=0,
        time_limit=10.0,
    )
    done = TrialResult(
        3,
        task.candidate_name,
        "Completed",
        metrics={"F1": 0.6},
        objective_value=0.6,
        train_seconds=1.23456,
        latency_seconds=0.001,
        model_dir="models/x",
    )
    report = trial_report(task, done, {"Layer": 1})
    assert report.name == task.candidate_name and report.status == "Completed"
    assert report.objective_value == 0.6 and report.package_dir == "models/x"
    assert report.standalone
    details = report.details
    assert details["TrialNumber"] == 3 and details["Fits"] == 3
    assert details["TrainSeconds"] == 1.235 and details["Layer"] == 1
    assert details["Hyperparameters"] == {"num_leaves": 9}
    # A stacker stands alone only once its package is assembled (its update says so).
    assert not trial_report(task, done, {"Layer": 2}).standalone
    assert trial_report(task, done, {"Layer": 2, "PredictSecondsPerRow": 0.002}).standalone
    failed = TrialResult(3, task.candidate_name, "Failed", objective_value=0.1, detail="tb")
    report = trial_report(task, failed)
    assert report.objective_value is None and report.details["Traceback"] == "tb"


def _problem(mode: Mode, eval_folds: tuple[int, ...]) -> TabularProblem:
    problem = TabularProblem()
    problem.analysis = Analysis("BinaryClassification", "F1", mode, "", True)
    problem.validation = ValidationPlan("x", np.zeros(10, dtype=np.int16), eval_folds, "", 10)
    return problem


def _best(algorithm: str, seconds: float = 10.0, fits: int = 5) -> SimpleNamespace:
    details = {"Algorithm": algorithm, "TrainSeconds": seconds, "Fits": fits}
    return SimpleNamespace(name="best", objective_value=0.5, details=details)


def test_refit_or_bag_follows_validation_mode_and_early_stopping() -> None:
    cv = _problem(Mode.HYPERPARAMETER_TUNING, (0, 1, 2, 3, 4))
    assert refits(cv, _best("randomforest"))  # no stopping point to guess: refit
    assert not refits(cv, _best("lightgbm"))  # early stopping: its fold bag ships
    assert not refits(cv, None)
    holdout = _problem(Mode.HYPERPARAMETER_TUNING, (1,))
    assert refits(holdout, _best("lightgbm"))
    ensembling = _problem(Mode.ENSEMBLING, (0, 1, 2, 3, 4))
    assert not refits(ensembling, _best("randomforest"))  # the ensemble refits what it needs


def test_the_search_leaves_the_refit_and_packaging_of_the_best_so_far() -> None:
    budget = Budget(100.0)
    session = SimpleNamespace(budget=budget, best=None, best_package_bytes=0)
    problem = _problem(Mode.HYPERPARAMETER_TUNING, (0, 1, 2, 3, 4))
    assert final_tail(problem, session) == pytest.approx(budget.end_reserve())  # type: ignore[arg-type]
    session.best = _best("randomforest", seconds=10.0, fits=5)
    session.best_package_bytes = 300_000_000
    expected = budget.end_reserve() + 1.3 * 2.0 + Budget.shipping_seconds(300e6)
    assert final_tail(problem, session) == pytest.approx(expected)  # type: ignore[arg-type]
    # A refit is capped at a quarter of the budget.
    session.best = _best("randomforest", seconds=500.0, fits=1)
    expected = budget.end_reserve() + 25.0 + Budget.shipping_seconds(300e6)
    assert final_tail(problem, session) == pytest.approx(expected)  # type: ignore[arg-type]
    # A bag ships as trained: nothing to refit, only the copy.
    session.best = _best("lightgbm")
    expected = budget.end_reserve() + Budget.shipping_seconds(300e6)
    assert final_tail(problem, session) == pytest.approx(expected)  # type: ignore[arg-type]
