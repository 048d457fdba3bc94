"""What the gradient-boosting modules share: early-stopping patience and the iteration cap."""

from __future__ import annotations

#: Rounds allowed when a validation set decides where to stop.
MAX_ROUNDS = 10_000


def patience(learning_rate: float) -> int:
    """Rounds without improvement before stopping: slower learning waits longer."""
    return int(min(200, max(20, 5.0 / max(learning_rate, 1e-3))))
