"""Small trained model packages for the serving tests (and the service's), trained once per
test session.

Use from a test module::

    import helpers_models

    @pytest.fixture(scope="session")
    def churn(tmp_path_factory):
        return helpers_models.churn_model(tmp_path_factory)

Each call returns a :class:`TrainedModel`: the package folder, its ``model.tar.gz``, the loaded
:class:`~mlpilot.package.InferenceModel`, and rows it did not train on (target dropped).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlpilot
from helpers_data import INSURANCE, PENGUINS, TELCO
from mlpilot._types import ProblemType
from mlpilot.algorithms import algorithm_path, get_algorithm
from mlpilot.package import InferenceModel
from mlpilot.search import TrialTask


@dataclass(frozen=True)
class TrainedModel:
    package: Path  # the package folder (mlpilot-model.json, pipeline.joblib, model.tar.gz)
    model: InferenceModel
    rows: pd.DataFrame  # held-out rows, target dropped, values as read from the CSV (strings)
    target: str
    job: Path  # the job's output folder (job.json; its best model is ``package``)

    @property
    def archive(self) -> Path:
        return self.package / "model.tar.gz"

    def csv_body(self, start: int = 0, stop: int = 1) -> bytes:
        """Rows ``start:stop`` as a headerless ``text/csv`` invocation body."""
        return csv_lines(self.rows.iloc[start:stop])


def with_recorded_version(source: Path, destination: Path, library: str, version: str) -> Path:
    """A copy of the package ``source`` (without its archive) whose manifest says it was
    written with ``library`` at ``version``."""
    shutil.copytree(source, destination)
    (destination / "model.tar.gz").unlink(missing_ok=True)
    manifest = destination / "mlpilot-model.json"
    info = json.loads(manifest.read_text())
    info["versions"][library] = version
    manifest.write_text(json.dumps(info))
    return destination


def csv_lines(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(frame.astype(object).values.tolist())
    return buffer.getvalue().encode("utf-8")


_cache: dict[str, TrainedModel] = {}
_lock = threading.Lock()


def _train(
    name: str,
    data: Path,
    target: str,
    train_rows: int,
    held_out: int,
    factory: pytest.TempPathFactory,
) -> TrainedModel:
    with _lock:
        if name in _cache:
            return _cache[name]
        table = pd.read_csv(data, dtype=str, keep_default_na=False)
        root = factory.mktemp(f"model-{name}")
        train = root / "train.csv"
        table.iloc[:train_rows].to_csv(train, index=False)
        job = mlpilot.run_job(
            str(train),
            target=target,
            output=root / "job",
            name=name,
            mode="HYPERPARAMETER_TUNING",
            algorithms=("linear-learner",),
            max_candidates=1,
            parallelism=1,
            seed=0,
            generate_reports=False,  # notebooks and reports take far longer than the model
        )
        assert job.status == "Completed", job.record.get("FailureReason")
        best = job.record["BestCandidate"]
        package = Path(best["Mlpilot"]["FinalModel"])
        rows = table.iloc[train_rows : train_rows + held_out].drop(columns=[target])
        trained = TrainedModel(
            package, InferenceModel.load(package), rows.reset_index(drop=True), target, root / "job"
        )
        _cache[name] = trained
        return trained


def churn_model(factory: pytest.TempPathFactory) -> TrainedModel:
    """Binary (Churn: No/Yes) on Telco's first 500 rows; 200 held-out rows."""
    return _train("churn", TELCO, "Churn", 500, 200, factory)


def insurance_model(factory: pytest.TempPathFactory) -> TrainedModel:
    """Regression (charges) on the first 600 insurance rows; 100 held-out rows."""
    return _train("insurance", INSURANCE, "charges", 600, 100, factory)


def penguins_model(factory: pytest.TempPathFactory) -> TrainedModel:
    """Multiclass (species) on every other penguin; the rest held out."""
    with _lock:
        if "penguins" in _cache:
            return _cache["penguins"]
    table = pd.read_csv(PENGUINS, dtype=str, keep_default_na=False)
    shuffled = pd.concat([table.iloc[::2], table.iloc[1::2]])
    root = factory.mktemp("penguins-data")
    data = root / "penguins.csv"
    shuffled.to_csv(data, index=False)
    return _train("penguins", data, "species", len(table.iloc[::2]), 100, factory)


def numbered_model(factory: pytest.TempPathFactory) -> TrainedModel:
    """Regression (y) on columns named 1, 2 and 3 plus an identifier the profile drops, so a
    data row of small whole numbers reads like a header; 80 rows, 20 held out."""
    with _lock:
        if "numbered" in _cache:
            return _cache["numbered"]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "id": [f"r{i:03d}" for i in range(100)],
            "1": rng.integers(1, 4, 100),
            "2": rng.integers(1, 4, 100),
            "3": rng.normal(size=100).round(3),
        }
    )
    table["y"] = (table["1"] * 2 - table["2"] + table["3"]).round(3)
    data = factory.mktemp("numbered-data") / "numbered.csv"
    table.to_csv(data, index=False)
    return _train("numbered", data, "y", 80, 20, factory)


def linear_trial(
    data_dir: Path, n_rows: int, objective: str, eval_folds: tuple[int, ...]
) -> TrialTask:
    """A binary linear-learner trial (its defaults) on the prepared data in ``data_dir``."""
    path = algorithm_path("linear-learner")
    return TrialTask(
        number=0,
        candidate_name="linear",
        algorithm="linear-learner",
        algorithm_path=path,
        params=get_algorithm(path).default_params(ProblemType.BINARY, n_rows),
        preprocessing=get_algorithm(path).preprocessing.to_dict(),
        data_dir=str(data_dir),
        objective=objective,
        eval_folds=eval_folds,
        seed=0,
        time_limit=None,
    )
