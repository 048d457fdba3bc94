"""What the gradient-boosting modules share: early-stopping patience, the least improvement
that counts, and the iteration cap."""

from __future__ import annotations

#: Rounds allowed when a validation set decides where to stop.
MAX_ROUNDS = 10_000
#: ...and at most this many per training row (at least MIN_ROUND_CAP): on a few hundred rows the
#: validation loss of a separable table keeps creeping down for all 10,000 rounds of a slow
#: learner (a depth-7 CatBoost at rate 0.026 took 29 s on the 10-row recipe table).
ROUNDS_PER_ROW, MIN_ROUND_CAP = 50, 1_000


def round_cap(requested: int, n_rows: int) -> int:
    """Rounds for a fit with early stopping on ``n_rows`` training rows."""
    return int(min(requested, max(MIN_ROUND_CAP, ROUNDS_PER_ROW * n_rows)))


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
