"""What the gradient-boosting modules share: early-stopping patience, the least improvement
that counts, and the iteration cap."""

from __future__ import annotations

#: Rounds allowed when a validation set decides where to stop.
MAX_ROUNDS = 10_000


def patience(learning_rate: float) -> int:
    """Rounds without improvement before stopping: slower learning waits longer."""
    return int(min(200, max(20, 5.0 / max(learning_rate, 1e-3))))


#: Least drop in validation log loss that counts as an improvement. On separable data the loss
#: creeps towards 0 by ~1e-7 a round for thousands of rounds: the model grows (slow to predict)
#: and its probabilities harden towards 0/1 (one wrong row on unseen data then costs a lot).
MIN_LOGLOSS_DELTA = 1e-4


def min_delta(classification: bool) -> float:
    """Early stopping's least improvement: log loss has a natural scale, RMSE does not."""
    return MIN_LOGLOSS_DELTA if classification else 0.0
