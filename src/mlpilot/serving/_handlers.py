"""Which body-in, body-out handler serves a model: the row codec (:class:`Predictor`) for a
tabular package, the series codec (:class:`ForecastHandler`) for a forecasting one. The
choice is made once, when the model is loaded, so no request pays for it."""

from __future__ import annotations

import json
from typing import Any, Protocol

from mlpilot.errors import ConfigError
from mlpilot.package import SeriesModel
from mlpilot.serving._codec import InvocationResult, Predictor, ServingSettings
from mlpilot.serving._explainer import EXPLAINER_VARIABLE, ClarifyExplainer
from mlpilot.serving._forecast import ForecastHandler

__all__ = ["Handler", "explainer_for", "handler_for"]


class Handler(Protocol):
    """What the container app and the in-process invoker call."""

    settings: ServingSettings

    def handle(
        self, body: bytes, content_type: str | None = None, accept: str | None = None
    ) -> InvocationResult: ...


def handler_for(model: Any, settings: ServingSettings | None = None) -> Handler:
    """The handler of ``model``: :class:`ForecastHandler` for a
    :class:`~mlpilot.package.SeriesModel`, else :class:`Predictor`."""
    if isinstance(model, SeriesModel):
        return ForecastHandler(model, settings)
    return Predictor(model, settings)


def explainer_for(handler: Handler) -> ClarifyExplainer | None:
    """The Clarify explainer the handler's settings ask for (``MLPILOT_CLARIFY_EXPLAINER``),
    or None. Raises :class:`ConfigError` for a configuration the model cannot follow."""
    text = handler.settings.explainer
    if not text:
        return None
    if not isinstance(handler, Predictor):
        raise ConfigError(
            f"{EXPLAINER_VARIABLE} is set, but explanations are for tabular models: this "
            "container forecasts series"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{EXPLAINER_VARIABLE} is not JSON ({exc.msg})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{EXPLAINER_VARIABLE} must be a ClarifyExplainerConfig object")
    return ClarifyExplainer(handler, config)
