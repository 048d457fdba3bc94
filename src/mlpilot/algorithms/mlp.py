"""MLP: a feed-forward network in PyTorch (CPU), trained with AdamW and early stopping."""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import FitContext
from mlpilot.algorithms._torch import TorchNetwork, dense32
from mlpilot.features import PreprocessingOptions


class MLP(TorchNetwork):
    name = "mlp"
    description = "Multilayer perceptron (PyTorch)"
    preprocessing = PreprocessingOptions(
        categorical="onehot",
        high_cardinality="target",
        impute=True,
        numeric_scaling="quantile",
        text_svd=64,
    )
    patience, min_delta = 10, 1e-6

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "hidden_size": 256,
            "layers": 2,
            "dropout": 0.1,
            "learning_rate": 1e-3,
            "weight_decay": 1e-5,
            "batch_size": 256,
            "epochs": 200,
        }

    @classmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "hidden_size": CategoricalDistribution([64, 128, 256, 512]),
            "layers": IntDistribution(1, 4),
            "dropout": FloatDistribution(0.0, 0.5),
            "learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
            "weight_decay": FloatDistribution(1e-7, 1e-2, log=True),
            "batch_size": CategoricalDistribution([64, 128, 256, 512]),
        }

    def _network(self) -> Any:
        import torch.nn as nn

        p = self.params
        width = int(p["hidden_size"])
        layers: list[Any] = []
        size = self.n_inputs_
        for _ in range(int(p["layers"])):
            layers += [
                nn.Linear(size, width),
                nn.BatchNorm1d(width),
                nn.SiLU(),
                nn.Dropout(float(p["dropout"])),
            ]
            size = width
        layers.append(nn.Linear(size, self._n_outputs()))
        return nn.Sequential(*layers)

    def _inputs(self, X: Any) -> tuple[Any, ...]:
        import torch

        return (torch.from_numpy(dense32(X)),)

    def _fit_inputs(self, X: Any, context: FitContext) -> tuple[Any, ...]:
        self.n_inputs_ = X.shape[1]
        return self._inputs(X)

    def _predict_raw(self, X: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            result = self._outputs(self.net_(*self._inputs(X)))
        if self.problem_type is ProblemType.REGRESSION:
            return self._unscaled(result)
        return result
