"""nn-torch: a PyTorch network over category embeddings and scaled numbers (CPU).

Categories arrive as ordinal codes (the feature pipeline's ``-2`` missing, ``-1`` unseen,
``0..n-1`` levels) and each gets a learned embedding; numbers arrive imputed and quantile-scaled.
Training uses AdamW with a one-cycle learning-rate schedule and early stopping on the
validation fold; the epoch count it stopped at becomes the refit's.

``fastai`` is the same network with fastai's tabular-learner defaults (layers 200-100, its
embedding-size rule, a higher peak learning rate): Autopilot's ENSEMBLING mode names it as a
separate algorithm, mlpilot maps it here rather than depending on fastai.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import FitContext
from mlpilot.algorithms._torch import TorchNetwork, dense32, feed_forward

#: Rows scored at once when predicting (bounds memory on large batches).
_PREDICT_CHUNK = 65_536
#: Up to this many rows, prediction runs in NumPy (see NNTorch._forward_numpy).
_FEW_ROWS = 64


#: Share of the one-cycle schedule spent warming up.
WARMUP_SHARE = 0.25


def warmup_share(total_steps: int) -> float:
    """The one-cycle warm-up share for ``total_steps``. PyTorch's OneCycleLR divides by the
    warm-up's length in steps less one, so a warm-up of exactly one step (a quarter of 4 steps:
    a refit of one epoch in 4 batches, say) raised ZeroDivisionError; such a fit warms up for 2."""
    return WARMUP_SHARE if WARMUP_SHARE * total_steps != 1 else 2 / total_steps


def _embedding_size(levels: int, rule: str) -> int:
    if rule == "fastai":  # fastai's emb_sz_rule
        return int(min(600, round(1.6 * levels**0.56)))
    return int(min(32, max(2, round(1.8 * levels**0.5))))


class NNTorch(TorchNetwork):
    name = "nn-torch"
    description = "PyTorch neural network with categorical embeddings"
    preprocessing = TorchNetwork.preprocessing.with_(
        categorical="ordinal", high_cardinality="ordinal", text_svd=32
    )
    tags = replace(TorchNetwork.tags, native_categorical=True, slow_on_many_rows=True)
    patience, min_delta = 8, 1e-7
    embedding_rule = "sqrt"

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "layers": "256-128",
            "dropout": 0.1,
            "learning_rate": 3e-3,
            "weight_decay": 1e-4,
            "batch_size": 256,
            "epochs": 60,
        }

    @classmethod
    def search_space(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        return {
            "layers": CategoricalDistribution(
                ["128-64", "200-100", "256-128", "512-256", "256-256-128"]
            ),
            "dropout": FloatDistribution(0.0, 0.4),
            "learning_rate": FloatDistribution(3e-4, 2e-2, log=True),
            "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
            "batch_size": CategoricalDistribution([128, 256, 512]),
            "epochs": IntDistribution(10, 200, log=True),
        }

    # -- network --------------------------------------------------------------------------
    def _network(self) -> Any:
        import torch
        import torch.nn as nn

        p = self.params
        widths = [int(w) for w in str(p["layers"]).split("-") if w]
        rule = self.embedding_rule

        class Net(nn.Module):
            def __init__(self, cards: list[int], n_numeric: int, n_out: int) -> None:
                super().__init__()
                # Two extra rows per table: code -2 (missing) and -1 (unseen at training).
                self.embeddings = nn.ModuleList(
                    nn.Embedding(c + 2, _embedding_size(c + 2, rule)) for c in cards
                )
                dims = [_embedding_size(c + 2, rule) for c in cards]
                size = sum(dims) + n_numeric
                self.body = feed_forward(size, widths, nn.ReLU, float(p["dropout"]), n_out)

            def forward(self, codes: Any, numbers: Any) -> Any:
                parts = [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
                parts.append(numbers)
                return self.body(torch.cat(parts, dim=1))

        return Net(self.cards_, self.n_numeric_, self._n_outputs())

    def _inputs(self, X: Any) -> tuple[Any, ...]:
        import torch

        index, numbers = self._input_arrays(X)
        return torch.from_numpy(index), torch.from_numpy(numbers)

    def _input_arrays(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The embedding rows (int64) and the numeric inputs (float32) of ``X``."""
        dense = dense32(X)
        codes = dense[:, self.cat_positions_] if self.cat_positions_ else np.zeros((len(dense), 0))
        # -2 missing → 0, -1 unseen → 1, level i → i + 2; codes beyond the table are unseen.
        index = np.where(np.isnan(codes), -2, codes).astype(np.int64) + 2
        index = np.where((index < 0) | (index >= np.asarray(self.cards_) + 2), 1, index)
        numbers = np.nan_to_num(dense[:, self.num_positions_], nan=0.0, posinf=0.0, neginf=0.0)
        return np.ascontiguousarray(index), np.ascontiguousarray(numbers, dtype=np.float32)

    # -- training -------------------------------------------------------------------------
    def _fit_inputs(self, X: Any, context: FitContext) -> tuple[Any, ...]:
        n_features = X.shape[1]
        self.cat_positions_ = list(context.categorical_features)
        cards = list(context.category_cardinalities) or [0] * len(self.cat_positions_)
        self.cards_ = [int(c) for c in cards]
        self.num_positions_ = [i for i in range(n_features) if i not in set(self.cat_positions_)]
        self.n_numeric_ = len(self.num_positions_)
        return self._inputs(X)

    def _epochs(self) -> int:
        return max(1, int(self.params["epochs"]))  # the one-cycle schedule needs a step

    def _schedule(self, optimizer: Any, epochs: int, n_rows: int) -> Any:
        import torch

        steps_per_epoch = max(1, math.ceil(n_rows / self._batch_size(n_rows)))
        total = epochs * steps_per_epoch
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=float(self.params["learning_rate"]),
            total_steps=total,
            pct_start=warmup_share(total),
        )

    def _forward(self, X: Any) -> np.ndarray:
        few = X.shape[0] <= _FEW_ROWS
        return self._forward_numpy(X) if few else self._forward_torch(X)

    def _forward_torch(self, X: Any) -> np.ndarray:
        import torch

        outputs = []
        with torch.no_grad():
            for start in range(0, max(1, X.shape[0]), _PREDICT_CHUNK):
                codes, numbers = self._inputs(X[start : start + _PREDICT_CHUNK])
                outputs.append(self._outputs(self.net_(codes, numbers)))
        return np.concatenate(outputs)

    def _forward_numpy(self, X: Any) -> np.ndarray:
        """The network in NumPy, for a few rows: torch's per-module dispatch costs ~1 ms a
        call, the arithmetic of one row a few microseconds. Batch norm (eval mode) is folded
        into the linear layer before it; dropout is the identity at inference."""
        layers = self.__dict__.get("_numpy_layers")
        if layers is None:
            layers = self._numpy_layers = self._fold_layers()
        tables, blocks = layers
        index, numbers = self._input_arrays(X)  # no torch tensors on this path
        parts = [table[index[:, i]] for i, table in enumerate(tables)]
        parts.append(numbers)
        h = np.concatenate(parts, axis=1).astype(np.float64)
        for weight, bias, relu in blocks:
            h = h @ weight + bias
            if relu:
                np.maximum(h, 0.0, out=h)
        if self.problem_type is ProblemType.REGRESSION:
            return np.asarray(h[:, 0])
        h -= h.max(axis=1, keepdims=True)
        np.exp(h, out=h)
        return np.asarray(h / h.sum(axis=1, keepdims=True))

    def _fold_layers(
        self,
    ) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray, bool]]]:
        import torch.nn as nn

        tables = [e.weight.detach().numpy().astype(np.float64) for e in self.net_.embeddings]
        blocks: list[tuple[np.ndarray, np.ndarray, bool]] = []
        modules = list(self.net_.body)
        for i, module in enumerate(modules):
            if not isinstance(module, nn.Linear):
                continue
            weight = module.weight.detach().numpy().astype(np.float64).T
            bias = module.bias.detach().numpy().astype(np.float64)
            following = modules[i + 1] if i + 1 < len(modules) else None
            if isinstance(following, nn.BatchNorm1d):
                assert following.running_mean is not None and following.running_var is not None
                scale = following.weight.detach().numpy().astype(np.float64) / np.sqrt(
                    following.running_var.numpy().astype(np.float64) + following.eps
                )
                shift = following.bias.detach().numpy().astype(np.float64)
                mean = following.running_mean.numpy().astype(np.float64)
                weight = weight * scale
                bias = (bias - mean) * scale + shift
            blocks.append((weight, bias, following is not None))
        return tables, blocks

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_numpy_layers", None)  # rebuilt from the weights on first use
        return state


class FastAI(NNTorch):
    """fastai's tabular-learner configuration of the same network."""

    name = "fastai"
    description = "Tabular network with fastai's defaults (PyTorch; fastai itself not required)"
    embedding_rule = "fastai"

    @classmethod
    def default_params(cls, problem_type: ProblemType, n_rows: int) -> dict[str, Any]:
        # nn-torch's, fastai's where they differ (the keys keep nn-torch's order).
        return {
            **super().default_params(problem_type, n_rows),
            "layers": "200-100",
            "dropout": 0.0,
            "learning_rate": 1e-2,
            "weight_decay": 1e-2,
            "batch_size": 256 if n_rows < 20_000 else 512,
        }
