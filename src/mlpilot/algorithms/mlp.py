"""MLP: a feed-forward network in PyTorch (CPU), trained with AdamW and early stopping."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from scipy import sparse

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import Algorithm, EvalSet, FitContext
from mlpilot.algorithms._torch import BestEpoch, weighted_loss
from mlpilot.features import PreprocessingOptions

#: Epochs without validation improvement before stopping.
_PATIENCE = 10


def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float32)


class MLP(Algorithm):
    name = "mlp"
    description = "Multilayer perceptron (PyTorch)"
    preprocessing = PreprocessingOptions(
        categorical="onehot",
        high_cardinality="target",
        impute=True,
        numeric_scaling="quantile",
        text_svd=64,
    )
    iteration_param = "epochs"

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

    def _network(self, n_inputs: int, n_outputs: int) -> Any:
        import torch.nn as nn

        p = self.params
        width = int(p["hidden_size"])
        layers: list[Any] = []
        size = n_inputs
        for _ in range(int(p["layers"])):
            layers += [
                nn.Linear(size, width),
                nn.BatchNorm1d(width),
                nn.SiLU(),
                nn.Dropout(float(p["dropout"])),
            ]
            size = width
        layers.append(nn.Linear(size, n_outputs))
        return nn.Sequential(*layers)

    def _fit(
        self,
        X: Any,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        eval_set: EvalSet | None,
        context: FitContext,
    ) -> None:
        import torch

        torch.set_num_threads(context.n_jobs)
        torch.manual_seed(self.seed)
        generator = torch.Generator().manual_seed(self.seed)
        p = self.params
        regression = self.problem_type is ProblemType.REGRESSION
        x = torch.from_numpy(_dense(X))
        if regression:
            self.y_mean_, self.y_std_ = float(np.mean(y)), float(np.std(y) or 1.0)
            t = torch.from_numpy(((y - self.y_mean_) / self.y_std_).astype(np.float32))
        else:
            t = torch.from_numpy(y.astype(np.int64))
        w = torch.from_numpy(
            (sample_weight if sample_weight is not None else np.ones(len(y))).astype(np.float32)
        )
        n_out = 1 if regression else self.n_classes
        self.n_inputs_ = x.shape[1]
        net = self._network(self.n_inputs_, n_out)
        opt = torch.optim.AdamW(
            net.parameters(), lr=float(p["learning_rate"]), weight_decay=float(p["weight_decay"])
        )
        val = None
        if eval_set is not None:
            X_val, y_val, w_val = eval_set
            yv = (y_val - self.y_mean_) / self.y_std_ if regression else y_val
            val = (
                torch.from_numpy(_dense(X_val)),
                torch.from_numpy(yv.astype(np.float32 if regression else np.int64)),
                torch.from_numpy(
                    (w_val if w_val is not None else np.ones(len(y_val))).astype(np.float32)
                ),
            )
        batch = max(16, min(int(p["batch_size"]), len(y)))
        best, epochs_run = BestEpoch(_PATIENCE, 1e-6), 0
        for epoch in range(int(p["epochs"])):
            net.train()
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), batch):
                idx = order[start : start + batch]
                if len(idx) < 2:  # batch norm needs two rows
                    continue
                if float(w[idx].sum()) <= 0:  # nothing to learn from an all-zero-weight batch
                    continue
                opt.zero_grad()
                loss = weighted_loss(net(x[idx]), t[idx], w[idx], regression)
                loss.backward()
                opt.step()
                if context.time_left() <= 0:  # large epochs: look at the clock between batches
                    break
            epochs_run = epoch + 1
            if val is not None:
                net.eval()
                with torch.no_grad():
                    vloss = float(weighted_loss(net(val[0]), val[1], val[2], regression))
                if best.update(net, vloss, epochs_run):
                    break
            if context.out_of_time():
                break
        self.iterations_ = best.restore(net, epochs_run)
        net.eval()
        self.net_ = net

    def _predict_raw(self, X: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.net_(torch.from_numpy(_dense(X)))
            if self.problem_type is ProblemType.REGRESSION:
                return out.squeeze(1).numpy().astype(np.float64) * self.y_std_ + self.y_mean_
            return torch.softmax(out, dim=1).numpy().astype(np.float64)

    # The network pickles as its weights: smaller files, no pickled torch internals.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        net = state.pop("net_", None)
        if net is not None:
            import torch

            buffer = io.BytesIO()
            torch.save(net.state_dict(), buffer)
            state["net_weights_"] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("net_weights_", None)
        self.__dict__.update(state)
        if weights is not None:
            import torch

            n_out = 1 if self.problem_type is ProblemType.REGRESSION else self.n_classes
            net = self._network(self.n_inputs_, n_out)
            net.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
            net.eval()
            self.net_ = net
