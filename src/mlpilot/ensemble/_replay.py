"""Rebuild an ENSEMBLING job's ensemble from its definitions, in this process (the candidate
notebook of an ENSEMBLING job runs this).

Each model is trained by the job's own trial function on the job's prepared data and folds,
with no time limit: the members the job's clock cut short stop where they stopped in the job
(``time_cuts``: the look at the clock that found the time spent), so nothing is decided by the
clock again. The out-of-fold predictions are
blended with the job's weights, calibrated as the job calibrated them (log-loss objectives) and
scored as the job scored its ensemble.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mlpilot._types import ProblemType
from mlpilot.algorithms import algorithm_path, get_algorithm
from mlpilot.ensemble._caruana import blend, greedy_selection
from mlpilot.ensemble._stack import write_stack_data
from mlpilot.metrics import calibrate_probabilities, default_objective, get_metric, score_all
from mlpilot.search import TrialTask, load_prepared, load_validation_predictions, run_trial

__all__ = ["EnsembleReplay"]


class EnsembleReplay:
    """Trains base models and stackers to out-of-fold predictions, blends and scores them.

    Parameters
    ----------
    data_dir:
        The job's prepared data (``table.parquet``, ``profile.json``, ``folds.npy``).
    objective:
        The job's objective metric.
    seed:
        The job's seed (each bag member ``k`` trains with ``seed + k``, as in the job).
    eval_folds:
        The folds the job scored on (every fold of a bag; the holdout of a validation split).
    threads:
        Threads per model, as the job's workers had (some libraries' results depend on it).
    work_dir:
        Where the models and the stackers' tables go (default: a temporary folder, removed
        with this object).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        objective: str,
        seed: int,
        eval_folds: tuple[int, ...] | list[int],
        threads: int = 1,
        work_dir: str | Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data = load_prepared(str(self.data_dir))
        profile = self.data.profile
        self.problem_type: ProblemType = profile.problem_type
        self.n_classes = self.data.n_classes
        self.positive_index = profile.target.positive_index
        self.objective = get_metric(objective)
        self.selection_metric = (
            get_metric(default_objective(self.problem_type))
            if self.objective.fn is None
            else self.objective
        )
        self.seed = seed
        self.eval_folds = tuple(int(f) for f in eval_folds)
        self.threads = threads
        self.rows = np.flatnonzero(np.isin(self.data.folds, self.eval_folds))
        self.y = self.data.y[self.rows]
        self.weight = None if self.data.weight is None else self.data.weight[self.rows]
        # The default folder goes with this object (or the process).
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="mlpilot-replay-")
            work_dir = self._temporary.name
        self.work_dir = Path(work_dir)

    def train(
        self,
        name: str,
        *,
        algorithm: str,
        params: dict[str, Any],
        preprocessing: dict[str, Any] | None = None,
        out_of_bag: bool = False,
        time_cuts: dict[int, int] | None = None,
        data_dir: str | Path | None = None,
    ) -> np.ndarray:
        """One model's out-of-fold predictions, in the order of :attr:`rows`.

        ``time_cuts`` maps a bag member (fold step) to the look at the clock at which the job
        found its time spent (its ``Mlpilot.TimeCuts``): the member stops there, as it did."""
        os.environ["MLPILOT_WORKER_THREADS"] = str(self.threads)
        if preprocessing is None:
            preprocessing = get_algorithm(algorithm).preprocessing.to_dict()
        task = TrialTask(
            number=0,
            candidate_name=name,
            algorithm=algorithm,
            algorithm_path=algorithm_path(algorithm),
            params=dict(params),
            preprocessing=dict(preprocessing),
            data_dir=str(data_dir or self.data_dir),
            objective=self.objective.name,
            eval_folds=self.eval_folds,
            seed=self.seed,
            time_limit=None,
            model_dir=str(self.work_dir / "models" / name),
            maximize=self.objective.maximize,
            keep_all_folds=True,
            out_of_bag=out_of_bag,
            archive=False,
            stop_at={int(k): int(v) for k, v in (time_cuts or {}).items()} or None,
        )
        result = run_trial(task)
        if result.status != "Completed" or not result.model_dir:
            raise RuntimeError(f"{name} did not train: {result.failure_reason}")
        rows, _, predictions = load_validation_predictions(result.model_dir)
        order = np.argsort(rows)
        if not np.array_equal(rows[order], self.rows):
            raise RuntimeError(f"{name} predicted other rows than the job's evaluation rows")
        return np.asarray(predictions, dtype=np.float64)[order]

    def train_stacker(
        self,
        name: str,
        *,
        inputs: list[np.ndarray],
        keep_features: bool,
        **model: Any,
    ) -> np.ndarray:
        """A stacker's out-of-fold predictions: trained on the same folds, on its inputs'
        out-of-fold predictions (and the original features with ``keep_features``); ``model``
        as :meth:`train` takes it."""
        outputs = []
        for p in inputs:
            full = np.zeros((len(self.data.y), *np.shape(p)[1:]))
            full[self.rows] = p
            outputs.append(full)
        target = self.work_dir / "stack" / name
        write_stack_data(self.data_dir, target, outputs, keep_features=keep_features)
        return self.train(name, data_dir=target, **model)

    def blend(self, predictions: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
        """The weighted average of the models in ``weights`` (in that order)."""
        names = [n for n in weights if weights[n] > 0]
        return blend([predictions[n] for n in names], np.array([weights[n] for n in names]))

    @staticmethod
    def calibrate(prediction: np.ndarray, calibration: dict[str, float] | None) -> np.ndarray:
        """``prediction`` with the job's calibration (``{"Temperature": T, "Floor": eps}``, as
        its package applies it); None leaves it as it is."""
        if not calibration:
            return prediction
        return calibrate_probabilities(
            prediction, float(calibration["Temperature"]), float(calibration["Floor"])
        )

    def score(self, prediction: np.ndarray, threshold: float | None = None) -> float:
        """The objective on the out-of-fold predictions (binary: the positive class from
        ``threshold`` when given), as the job scored its candidates."""
        metrics = score_all(
            self.problem_type,
            self.y,
            prediction,
            sample_weight=self.weight,
            positive_index=self.positive_index,
            n_classes=self.n_classes,
            threshold=threshold,
        )
        return float(metrics[self.objective.name])

    def select(self, predictions: dict[str, np.ndarray]) -> dict[str, float]:
        """Greedy ensemble selection over ``predictions``, as the job ran it (no latency
        limit): the weights of the models it keeps."""
        names = list(predictions)
        selection = greedy_selection(
            [predictions[n] for n in names],
            self.y,
            self.selection_metric,
            sample_weight=self.weight,
            positive_index=self.positive_index,
            n_classes=self.n_classes,
            seed=self.seed,
        )
        return {n: float(w) for n, w in zip(names, selection.weights, strict=True) if w > 0}

    @staticmethod
    def digest(*definitions: Any) -> str:
        """A fingerprint of the notebook's definitions: the notebook asserts the job's value
        only while they are as the job wrote them."""
        text = json.dumps(definitions, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
