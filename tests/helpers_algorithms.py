"""Misbehaving algorithms for the failure tests of the job engine.

Jobs name them by import path (``algorithms=("lightgbm", "helpers_algorithms:Crashing")``); the
worker processes are spawned with the test process's ``sys.path``, which holds ``tests/``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from optuna.distributions import FloatDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms import Algorithm, FitContext, FitData

#: What :class:`Crashing` raises, so tests can look for it in the failure reason.
CRASH_MESSAGE = "helper algorithm crashed on purpose"


class _Helper(Algorithm):
    """A constant predictor (the class shares or the mean) with one dummy hyperparameter, so
    that repeated trials differ; subclasses misbehave in ``_fit``."""

    description = "test helper"

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {"alpha": 1.0}

    @classmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {"alpha": FloatDistribution(0.1, 10.0, log=True)}

    def _fit(self, data: FitData) -> None:
        self.misbehave(data.context)
        if self.problem_type.is_classification:
            counts = np.bincount(data.y.astype(int), minlength=self.n_classes).astype(float)
            self.constant_ = counts / counts.sum()
        else:
            self.constant_ = np.asarray(float(np.mean(data.y)))

    def misbehave(self, context: FitContext) -> None:
        """Nothing: a well-behaved constant model."""

    def _predict_raw(self, X: Any) -> np.ndarray:
        n = X.shape[0]
        if self.problem_type.is_classification:
            return np.tile(self.constant_, (n, 1))
        return np.full(n, float(self.constant_))


class Constant(_Helper):
    """Well behaved: predicts the training class shares (or the mean)."""

    name = "test-constant"


class Crashing(_Helper):
    """``fit`` raises a RuntimeError."""

    name = "test-crashing"

    def misbehave(self, context: FitContext) -> None:
        raise RuntimeError(CRASH_MESSAGE)


class Dying(_Helper):
    """``fit`` kills its worker process outright, as a segfaulting library would."""

    name = "test-dying"

    def misbehave(self, context: FitContext) -> None:
        os._exit(1)


class Sleeping(_Helper):
    """``fit`` never returns and ignores the time limit it is given."""

    name = "test-sleeping"

    def misbehave(self, context: FitContext) -> None:
        while True:
            time.sleep(0.5)
