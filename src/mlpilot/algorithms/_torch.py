"""What the two PyTorch networks (``mlp``, ``nn-torch``) share: their tags and numeric
preprocessing, the feed-forward body, targets and weights as tensors, the training loop with its
weighted loss and early stopping on the validation fold, regression outputs scaled back, and
pickling as weights. torch is imported only when a network trains or loads."""

from __future__ import annotations

import contextlib
import io
from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from mlpilot._types import ProblemType
from mlpilot.algorithms._base import Algorithm, FitContext, FitData, predict_threads
from mlpilot.algorithms._tags import AlgorithmTags, Family
from mlpilot.features import PreprocessingOptions

__all__ = ["BestEpoch", "TorchNetwork", "dense32", "feed_forward", "weighted_loss"]


def dense32(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float32)


def feed_forward(
    size: int, widths: list[int], activation: Callable[[], Any], dropout: float, n_out: int
) -> Any:
    """A ``torch.nn.Sequential`` from ``size`` inputs: per width a linear layer, batch norm,
    ``activation()`` and dropout, then a linear layer to ``n_out`` outputs."""
    import torch.nn as nn

    layers: list[Any] = []
    for width in widths:
        layers += [nn.Linear(size, width), nn.BatchNorm1d(width), activation(), nn.Dropout(dropout)]
        size = width
    layers.append(nn.Linear(size, n_out))
    return nn.Sequential(*layers)


def weighted_loss(out: Any, target: Any, weight: Any, regression: bool) -> Any:
    """Mean squared error (regression) or cross-entropy, weighted per row."""
    import torch.nn.functional as F

    if regression:
        per_row = F.mse_loss(out.squeeze(1), target, reduction="none")
    else:
        per_row = F.cross_entropy(out, target, reduction="none")
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` for the block. A few rows (one explained
    row's few hundred coalitions) are faster on one thread, and far steadier on a busy machine:
    nn-torch's 145 rows took ~150 ms p50 with 2 threads against ~28 ms with 1 on 2 loaded
    cores."""
    import torch

    before = torch.get_num_threads()
    if before == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class BestEpoch:
    """Keeps a network's weights from its best validation loss, and says when ``patience``
    epochs have passed without an improvement larger than ``min_delta``."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.loss = float("inf")
        self.epoch = 0
        self.state: dict[str, Any] | None = None

    def update(self, net: Any, loss: float, epoch: int) -> bool:
        """Record the loss after ``epoch`` epochs; True when training should stop."""
        if loss < self.loss - self.min_delta:
            self.loss, self.epoch = loss, epoch
            self.state = {k: v.clone() for k, v in net.state_dict().items()}
            return False
        return epoch - self.epoch >= self.patience

    def restore(self, net: Any, epochs_run: int) -> int:
        """Put the best weights back; the number of epochs the returned network had."""
        if self.state is None:
            return epochs_run
        net.load_state_dict(self.state)
        return self.epoch


class TorchNetwork(Algorithm):
    """Base of the PyTorch networks: subclasses build the network (:meth:`_network`), say
    which tensors it reads (:meth:`_inputs`) and run it (:meth:`_forward`); this class trains it
    (AdamW, shuffled mini-batches, early stopping) and pickles it as its weights."""

    # A network takes no missing values, and learns best from inputs on one (normal) scale.
    preprocessing = PreprocessingOptions(impute=True, numeric_scaling="quantile")
    # Fitting imports torch's compiler stack too (the optimizer's first step: torch._dynamo,
    # 2-6 s on the project's 2-core machine); loading a fitted network imports torch.
    tags = AlgorithmTags(
        family=Family.NEURAL_NETWORK,
        iteration_param="epochs",
        fit_imports=("torch._dynamo",),
        load_imports=("torch",),
    )
    #: Epochs without a validation improvement larger than ``min_delta`` before stopping.
    patience: ClassVar[int]
    min_delta: ClassVar[float]

    @abstractmethod
    def _network(self) -> Any:
        """The untrained network, for the shapes :meth:`_fit_inputs` recorded."""

    @abstractmethod
    def _inputs(self, X: Any) -> tuple[Any, ...]:
        """The tensors the network's forward takes for the rows of ``X``."""

    @abstractmethod
    def _forward(self, X: Any) -> np.ndarray:
        """:meth:`_outputs` of the trained network for the rows of ``X``."""

    def _fit_inputs(self, X: Any, context: FitContext) -> tuple[Any, ...]:
        """:meth:`_inputs` of the training rows, after recording what the network's shape
        depends on."""
        return self._inputs(X)

    def _epochs(self) -> int:
        return int(self.params["epochs"])

    def _schedule(self, optimizer: Any, epochs: int, n_rows: int) -> Any:
        """A learning-rate schedule stepped after every batch, if any."""
        return None

    def _fit(self, data: FitData) -> None:
        context = data.context
        generator = self._seeded(context)
        inputs = self._fit_inputs(data.X, context)
        targets = self._targets(data.y, data.sample_weight, fitting=True)
        net = self._network()
        epochs = self._epochs()
        optimizer = self._optimizer(net)
        valid = None
        if data.eval_set is not None:
            X_val, y_val, w_val = data.eval_set
            valid = (*self._inputs(X_val), *self._targets(y_val, w_val))
        self._train(
            net,
            optimizer,
            inputs,
            targets,
            valid,
            epochs=epochs,
            generator=generator,
            context=context,
            schedule=self._schedule(optimizer, epochs, len(data.y)),
        )

    def _n_outputs(self) -> int:
        return 1 if self.problem_type is ProblemType.REGRESSION else self.n_classes

    def _seeded(self, context: FitContext) -> Any:
        """Threads and seeds set; returns the generator that shuffles the rows."""
        import torch

        torch.set_num_threads(context.n_jobs)
        torch.manual_seed(self.seed)
        return torch.Generator().manual_seed(self.seed)

    def _targets(
        self, y: np.ndarray, weight: np.ndarray | None, *, fitting: bool = False
    ) -> tuple[Any, Any]:
        """Target and row weights as tensors; a regression target scaled (by the training
        rows' mean and deviation, recorded when ``fitting``)."""
        import torch

        regression = self.problem_type is ProblemType.REGRESSION
        if regression:
            y = self._scale_target(y) if fitting else self._scaled(y)
        target = torch.from_numpy(y.astype(np.float32 if regression else np.int64))
        weights = (weight if weight is not None else np.ones(len(y))).astype(np.float32)
        return target, torch.from_numpy(weights)

    def _optimizer(self, net: Any) -> Any:
        import torch

        p = self.params
        return torch.optim.AdamW(
            net.parameters(), lr=float(p["learning_rate"]), weight_decay=float(p["weight_decay"])
        )

    def _batch_size(self, n_rows: int) -> int:
        return max(16, min(int(self.params["batch_size"]), n_rows))

    def _train(
        self,
        net: Any,
        optimizer: Any,
        inputs: tuple[Any, ...],
        targets: tuple[Any, Any],
        valid: tuple[Any, ...] | None,
        *,
        epochs: int,
        generator: Any,
        context: FitContext,
        schedule: Any = None,
    ) -> None:
        """Train ``net`` on the rows of ``inputs`` (the tensors its forward takes), keep the
        weights of its best validation epoch, and store it as ``net_``. ``valid`` holds the
        validation inputs followed by their target and weights."""
        import torch

        regression = self.problem_type is ProblemType.REGRESSION
        target, weight = targets
        n_rows = len(target)
        batch = self._batch_size(n_rows)
        best, done = BestEpoch(self.patience, self.min_delta), 0
        for epoch in range(epochs):
            net.train()
            order = torch.randperm(n_rows, generator=generator)
            for start in range(0, n_rows, batch):
                idx = order[start : start + batch]
                # Batch norm needs two rows; an all-zero-weight batch has nothing to teach.
                if len(idx) >= 2 and float(weight[idx].sum()) > 0:
                    optimizer.zero_grad()
                    out = net(*(x[idx] for x in inputs))
                    weighted_loss(out, target[idx], weight[idx], regression).backward()
                    optimizer.step()
                if schedule is not None and schedule.last_epoch + 1 < schedule.total_steps:
                    schedule.step()
                if context.time_left() <= 0:  # large epochs: look at the clock between batches
                    break
            done = epoch + 1
            if valid is not None:
                net.eval()
                with torch.no_grad():
                    out = net(*valid[:-2])
                    loss = float(weighted_loss(out, valid[-2], valid[-1], regression))
                if best.update(net, loss, done):
                    break
            if context.out_of_time():
                break
        self.iterations_ = best.restore(net, done)
        net.eval()
        self.net_ = net

    def _predict_raw(self, X: Any) -> np.ndarray:
        with _torch_threads(predict_threads(X.shape[0])):
            result = self._forward(X)
        if self.problem_type is ProblemType.REGRESSION:
            return self._unscaled(result)
        return result

    def _outputs(self, out: Any) -> np.ndarray:
        """The network's output in NumPy: values (regression, still scaled) or probabilities."""
        import torch

        if self.problem_type is ProblemType.REGRESSION:
            return np.asarray(out.squeeze(1).numpy().astype(np.float64))
        return np.asarray(torch.softmax(out, dim=1).numpy().astype(np.float64))

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

            net = self._network()
            net.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
            net.eval()
            self.net_ = net
