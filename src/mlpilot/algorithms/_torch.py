"""What the two PyTorch networks (``mlp``, ``nn-torch``) share: the weighted loss and early
stopping on the validation fold."""

from __future__ import annotations

from typing import Any

__all__ = ["BestEpoch", "weighted_loss"]


def weighted_loss(out: Any, target: Any, weight: Any, regression: bool) -> Any:
    """Mean squared error (regression) or cross-entropy, weighted per row."""
    import torch.nn.functional as F

    if regression:
        per_row = F.mse_loss(out.squeeze(1), target, reduction="none")
    else:
        per_row = F.cross_entropy(out, target, reduction="none")
    return (per_row * weight).sum() / weight.sum().clamp_min(1e-12)


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
