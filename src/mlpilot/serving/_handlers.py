"""Which body-in, body-out handler serves a model: the row codec (:class:`Predictor`) for a
tabular package, the series codec (:class:`ForecastHandler`) for a forecasting one. The
choice is made once, when the model is loaded, so no request pays for it."""

from __future__ import annotations

from typing import Any, Protocol

from mlpilot.package import SeriesModel
from mlpilot.serving._codec import InvocationResult, Predictor, ServingSettings
from mlpilot.serving._forecast import ForecastHandler

__all__ = ["Handler", "handler_for"]


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
