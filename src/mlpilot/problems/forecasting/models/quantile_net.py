"""A global quantile network in PyTorch, in the manner of CNN-QR (MQ-CNN): one network over
every series reads a window of each series' latest values and gives every step of the horizon
at every quantile in one pass, trained on the quantile (pinball) loss. Autopilot's ``cnn-qr``
and ``deepar`` both map to it.

The window (``context`` steps) is divided by its mean absolute value, so series of any scale
share the network; a series shorter than the window is padded in front, with a mask saying
which values are real. The network also reads the logarithm of that scale (large and small
series may behave differently) and the season position of the first step it forecasts. Its
forecast is the seasonal naive one (the window's last season repeated) plus what a two-layer
perceptron and a linear map of the window add to it, both starting from zero: training begins
at a sound forecast and learns corrections, which matters with few series. Forecasting all
steps at once (direct) does not feed forecasts back as inputs, so errors do not build up over
the horizon; beyond the horizon it learned, it forecasts again from its median.

Training draws windows from every series (each series as often as the others), and keeps the
weights that forecast best the last ``horizon`` of each series, which training does not see.
It stops after ``patience`` epochs without improvement, after ``max_epochs``, or when the
deadline nears. The mean is the median forecast.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlpilot.problems.forecasting.models._base import Forecast, Forecaster, ForecastTimeout
from mlpilot.problems.forecasting.models._features import SeriesFeatures

__all__ = ["QuantileNet"]

#: Quantile levels learned when the job names none (its own levels are always learned).
DEFAULT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Longest window of past values the network reads.
MAX_CONTEXT = 512
#: Series scored on the held-out window at most (a deterministic sample beyond).
MAX_VALIDATION = 4096
#: The fewest epochs a fit is worth (the time estimate's unit).
MIN_EPOCHS = 3
#: Seconds a training step takes per weight and window (forward and backward, one core), per
#: batch besides, and to import torch: measured on a shared two-core machine.
SECONDS_PER_WEIGHT = 1.5e-10
SECONDS_PER_BATCH = 0.001
IMPORT_SECONDS = 2.0


class QuantileNet(Forecaster):
    name = "quantile-net"
    description = "Global quantile network (PyTorch MLP over scaled windows, direct multi-horizon)"
    anytime = True
    # The optimizer's first step imports torch's compiler stack (seconds).
    fit_imports = ("torch._dynamo",)

    def __init__(
        self, season_length: int, params: dict[str, Any] | None = None, seed: int = 0
    ) -> None:
        super().__init__(season_length, params, seed)
        p = self.params
        self.horizon_fit = max(1, int(p.get("horizon", self.season_length)))
        h, m = self.horizon_fit, self.season_length
        self.context = int(p.get("context", min(MAX_CONTEXT, max(4 * h, 2 * m, 16))))
        self.levels = tuple(sorted({*map(float, p.get("quantiles", DEFAULT_LEVELS)), 0.5}))
        self.hidden = int(p.get("hidden", 256))
        self.batch_size = int(p.get("batch_size", 256))
        self.batches_per_epoch = int(p.get("batches_per_epoch", 50))
        self.max_epochs = int(p.get("max_epochs", 40))
        self.patience = int(p.get("patience", 6))
        self.learning_rate = float(p.get("learning_rate", 1e-3))
        self.weight_decay = float(p.get("weight_decay", 0.0))
        #: The trained network's weights (NumPy, so the model pickles without torch state).
        self.weights: dict[str, np.ndarray] | None = None
        #: Mean log scale of the training windows (centres the scale input).
        self.log_scale_centre = 0.0
        #: Epochs the last fit ran, and the one whose weights it kept.
        self.epochs_run = 0
        self.epochs_trained = 0
        self._net: Any = None

    # -- time estimate ----------------------------------------------------------------------
    def minimum_seconds(self, n_series: int, windows: int) -> float:
        """A backtest needs at least ``MIN_EPOCHS`` epochs per window, and passes over every
        series to score each epoch and forecast: its cost grows with the number of weights."""
        L, h, n_levels = self.context, self.horizon_fit, len(self.levels)
        weights = (2 * L + 9) * self.hidden + self.hidden**2 + (self.hidden + L) * h * n_levels
        batch = SECONDS_PER_WEIGHT * weights * self.batch_size + SECONDS_PER_BATCH
        passes = SECONDS_PER_WEIGHT * weights * n_series / 3  # forward only
        per_window = MIN_EPOCHS * (self.batches_per_epoch * batch + passes) + passes
        return windows * per_window + IMPORT_SECONDS

    # -- windows ----------------------------------------------------------------------------
    def _windows(
        self, series: _Padded, cutoffs: np.ndarray, which: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each (series ``which[i]``, ``cutoffs[i]``): the scaled window of the ``context``
        values before the cutoff and its mask, the log scale, and the season position of the
        cutoff."""
        index = (series.starts[which] + cutoffs)[:, None] + np.arange(self.context)
        values, mask = series.values[index], series.mask[index]
        scale = _window_scale(values, mask)
        return values / scale[:, None], mask, np.log(scale), cutoffs % self.season_length

    def _targets(
        self, series: _Padded, cutoffs: np.ndarray, which: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``horizon`` values from each cutoff, and a mask for those past the end."""
        first = series.starts[which] + self.context + cutoffs
        index = first[:, None] + np.arange(self.horizon_fit)
        return series.values[index], series.mask[index]

    # -- network ----------------------------------------------------------------------------
    def _network(self) -> Any:
        import torch
        from torch import nn

        L, h, n_levels = self.context, self.horizon_fit, len(self.levels)
        embed = 8 if self.season_length > 1 else 0

        # The seasonal naive forecast (the last season repeated) is where the network starts:
        # its layers learn corrections to it, from zero.
        m = min(self.season_length, L)
        naive = torch.tensor(L - m + np.arange(h) % m, dtype=torch.int64)

        class Net(nn.Module):
            def __init__(self, hidden: int, seasons: int) -> None:
                super().__init__()
                self.season = nn.Embedding(seasons, embed) if embed else None
                last = nn.Linear(hidden, h * n_levels)
                self.body = nn.Sequential(
                    nn.Linear(2 * L + 1 + embed, hidden),
                    nn.ReLU(),
                    nn.Linear(hidden, hidden),
                    nn.ReLU(),
                    last,
                )
                self.linear = nn.Linear(L, h * n_levels)
                for layer in (last, self.linear):
                    nn.init.zeros_(layer.weight)
                    nn.init.zeros_(layer.bias)

            def forward(self, values: Any, mask: Any, log_scale: Any, position: Any) -> Any:
                parts = [values, mask, log_scale[:, None]]
                if self.season is not None:
                    parts.append(self.season(position))
                out = self.body(torch.cat(parts, dim=1)) + self.linear(values)
                # A series shorter than a season repeats its last value instead.
                base = torch.where(mask[:, naive] > 0, values[:, naive], values[:, -1:])
                return out.view(-1, h, n_levels) + base[:, :, None]

        return Net(self.hidden, self.season_length)

    def _tensors(
        self, values: np.ndarray, mask: np.ndarray, log_scale: np.ndarray, position: np.ndarray
    ) -> tuple[Any, ...]:
        import torch

        return (
            torch.from_numpy(values.astype(np.float32)),
            torch.from_numpy(mask.astype(np.float32)),
            torch.from_numpy((log_scale - self.log_scale_centre).astype(np.float32)),
            torch.from_numpy(position.astype(np.int64)),
        )

    def _pinball(self, out: Any, target: Any, seen: Any) -> Any:
        import torch

        levels = torch.tensor(self.levels, dtype=out.dtype)
        diff = target[:, :, None] - out
        loss = torch.maximum(levels * diff, (levels - 1) * diff) * seen[:, :, None]
        return loss.sum() / seen.sum().clamp_min(1.0) / len(self.levels)

    # -- fit --------------------------------------------------------------------------------
    def fit(
        self,
        history: Sequence[np.ndarray],
        deadline: float | None = None,
        features: SeriesFeatures | None = None,
    ) -> None:
        import torch

        if deadline is not None and time.monotonic() > deadline:
            raise ForecastTimeout(f"{self.name} had no time left to train")
        h = self.horizon_fit
        series = [np.asarray(y, dtype="float64") for y in history]
        # The last horizon of each series long enough is held out to pick the best epoch.
        held = np.array([i for i, y in enumerate(series) if len(y) > h], dtype="int64")
        train = _Padded([y[:-h] if len(y) > h else y for y in series], self.context, h)
        # Training windows end anywhere after a series' first value.
        usable = np.flatnonzero(train.lengths >= 2)
        if not len(usable):
            raise ValueError(f"{self.name} needs series of at least two values")
        rng = np.random.default_rng(self.seed)
        if len(held) > MAX_VALIDATION:
            held = np.sort(rng.choice(held, MAX_VALIDATION, replace=False))
        threads = torch.get_num_threads()
        torch.set_num_threads(int(self.params.get("threads", 1)))
        try:
            valid = _Padded(series, self.context, 0) if len(held) else None
            self._train(train, usable, valid, held, rng, deadline)
        finally:
            torch.set_num_threads(threads)

    def _batch(
        self, series: _Padded, cutoffs: np.ndarray, which: np.ndarray
    ) -> tuple[tuple[Any, ...], Any, Any]:
        """The network's inputs at the cutoffs, and the scaled targets with their mask."""
        import torch

        inputs = self._windows(series, cutoffs, which)
        target, seen = self._targets(series, cutoffs, which)
        target = target / np.exp(inputs[2])[:, None]
        return (
            self._tensors(*inputs),
            torch.from_numpy(target.astype(np.float32)),
            torch.from_numpy(seen.astype(np.float32)),
        )

    def _train(
        self,
        train: _Padded,
        usable: np.ndarray,
        valid: _Padded | None,
        held: np.ndarray,
        rng: np.random.Generator,
        deadline: float | None,
    ) -> None:
        import torch

        torch.manual_seed(self.seed)
        # The scale input is centred on the training series' latest windows.
        latest = self._windows(train, train.lengths[usable], usable)
        self.log_scale_centre = float(np.mean(latest[2]))
        net = self._network()
        optimizer = torch.optim.Adam(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        checked = None
        if valid is not None:
            checked = self._batch(valid, valid.lengths[held] - self.horizon_fit, held)
        best_loss, best_state, best_epoch = np.inf, None, 0
        started = time.monotonic()
        for epoch in range(1, self.max_epochs + 1):
            net.train()
            for _ in range(self.batches_per_epoch):
                which = rng.choice(usable, self.batch_size)
                # A cutoff from 1 to the series' length - 1, uniformly.
                cutoffs = 1 + (rng.random(len(which)) * (train.lengths[which] - 1)).astype("int64")
                inputs, target, seen = self._batch(train, cutoffs, which)
                optimizer.zero_grad()
                self._pinball(net(*inputs), target, seen).backward()
                optimizer.step()
            if checked is None:
                best_epoch = epoch
            else:
                net.eval()
                with torch.no_grad():
                    score = float(self._pinball(net(*checked[0]), checked[1], checked[2]))
                if score < best_loss:
                    best_loss, best_epoch = score, epoch
                    best_state = {k: v.clone() for k, v in net.state_dict().items()}
                elif epoch - best_epoch >= self.patience:
                    break
            # Stop when another epoch would run past the deadline.
            per_epoch = (time.monotonic() - started) / epoch
            if deadline is not None and time.monotonic() + per_epoch > deadline:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self._net = net
        self.epochs_run, self.epochs_trained = epoch, best_epoch
        self.weights = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}

    # -- forecast ---------------------------------------------------------------------------
    def _forecast(
        self, history: list[np.ndarray], horizon: int, q: Sequence[float], deadline: float | None
    ) -> Forecast:
        if self.weights is None:
            raise RuntimeError(f"{self.name} forecasts after fit")
        series = [np.asarray(y, dtype="float64") for y in history]
        chunks: list[np.ndarray] = []
        # Beyond the horizon it learned, the network forecasts again from its median.
        while sum(c.shape[1] for c in chunks) < horizon:
            if deadline is not None and time.monotonic() > deadline:
                raise ForecastTimeout(f"{self.name} ran out of time forecasting")
            chunk = self._direct(series)
            chunks.append(chunk)
            median = chunk[:, :, self.levels.index(0.5)]
            series = [np.concatenate([y, m]) for y, m in zip(series, median, strict=True)]
        paths = np.concatenate(chunks, axis=1)[:, :horizon]  # (series, horizon, levels)
        mean = paths[:, :, self.levels.index(0.5)]
        return Forecast(mean, {level: self._at_level(paths, level) for level in q})

    def _direct(self, series: list[np.ndarray]) -> np.ndarray:
        """One pass: (series, horizon_fit, levels) forecasts from each series' end."""
        import torch

        net = self._module()
        padded = _Padded(series, self.context, 0)
        out = np.empty((len(series), self.horizon_fit, len(self.levels)))
        for start in range(0, len(series), 1024):
            part = np.arange(start, min(start + 1024, len(series)))
            inputs = self._windows(padded, padded.lengths[part], part)
            with torch.no_grad():
                scaled = net(*self._tensors(*inputs)).numpy().astype("float64")
            out[part] = scaled * np.exp(inputs[2])[:, None, None]
        return out

    def _at_level(self, paths: np.ndarray, level: float) -> np.ndarray:
        """The forecast at ``level``: learned, or interpolated between the nearest learned
        levels (the outermost learned level beyond them)."""
        if level in self.levels:
            return paths[:, :, self.levels.index(level)]
        below = max((lv for lv in self.levels if lv < level), default=self.levels[0])
        above = min((lv for lv in self.levels if lv > level), default=self.levels[-1])
        lo, hi = paths[:, :, self.levels.index(below)], paths[:, :, self.levels.index(above)]
        if above == below:
            return lo
        return lo + (hi - lo) * (level - below) / (above - below)

    def _module(self) -> Any:
        if self._net is None:
            import torch

            net = self._network()
            net.load_state_dict({k: torch.from_numpy(v) for k, v in (self.weights or {}).items()})
            net.eval()
            self._net = net
        return self._net

    # The network pickles as its NumPy weights; the module is rebuilt when first needed.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_net"] = None
        return state


class _Padded:
    """Series end to end in one array, each with ``before`` zeros in front and ``after``
    behind (and a mask of its real values), so windows are gathered with one index."""

    def __init__(self, series: Sequence[np.ndarray], before: int, after: int) -> None:
        lengths = np.array([len(y) for y in series], dtype="int64")
        self.lengths = lengths
        self.starts = np.concatenate([[0], np.cumsum(lengths + before + after)[:-1]])
        self.values = np.zeros(int((lengths + before + after).sum()))
        self.mask = np.zeros_like(self.values)
        for start, y in zip(self.starts, series, strict=True):
            self.values[start + before : start + before + len(y)] = y
            self.mask[start + before : start + before + len(y)] = 1.0


def _window_scale(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean absolute value of each window's real values; 1 for a window of zeros."""
    count = mask.sum(axis=1)
    scale = np.abs(values).sum(axis=1) / np.maximum(count, 1.0)
    return np.where(scale > 0, scale, 1.0)
