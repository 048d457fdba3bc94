"""MLP: a feed-forward network in PyTorch (CPU), trained with AdamW and early stopping."""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import FitContext
from mlpilot.algorithms._torch import TorchNetwork, dense32, feed_forward


class MLP(TorchNetwork):
    name = "mlp"
    description = "Multilayer perceptron (PyTorch)"
    preprocessing = TorchNetwork.preprocessing.with_(
        categorical="onehot", high_cardinality="target", text_svd=64
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
        widths = [int(p["hidden_size"])] * int(p["layers"])
        return feed_forward(self.n_inputs_, widths, nn.SiLU, float(p["dropout"]), self._n_outputs())

    def _inputs(self, X: Any) -> tuple[Any, ...]:
        import torch

        return (torch.from_numpy(dense32(X)),)

    def _fit_inputs(self, X: Any, context: FitContext) -> tuple[Any, ...]:
        self.n_inputs_ = X.shape[1]
        return self._inputs(X)

    def _forward(self, X: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self._outputs(self.net_(*self._inputs(X)))
