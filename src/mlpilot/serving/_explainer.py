"""Clarify's online explanations in the model container: an endpoint configuration's
``ExplainerConfig.ClarifyExplainerConfig`` reaches the container as the environment variable
:data:`EXPLAINER_VARIABLE` (its JSON), and every invocation is then answered in Clarify's
layout::

    {"version": "1.0",
     "predictions": {"content_type": "text/csv", "data": "<what the container predicts>"},
     "label_headers": ["Yes"],
     "explanations": {"kernel_shap": [
         [{"feature_header": "tenure", "attributions": [{"attribution": [0.031]}]}, ...],
         null]}}

one entry per record in ``kernel_shap``: the record's attributions, one per input column with
one value per explained output (``label_headers``), or null where ``EnableExplanations`` (the
request's ``X-Amzn-SageMaker-Enable-Explanations`` header, else the configuration's, else
every record) is not true for the record's prediction. ``mlpilot.expected_value`` (the base
value of each output, when a record was explained) and ``mlpilot.units`` are mlpilot's own: a
record's attributions add up to its explained prediction minus the base value. The values are
computed in this process by :class:`mlpilot.explain.RowExplainer`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

import jmespath
import jmespath.exceptions
import numpy as np
import pandas as pd

from mlpilot.errors import ConfigError
from mlpilot.explain import RowExplainer
from mlpilot.serving._codec import (
    CSV,
    ERROR_CONTENT_TYPE,
    JSON,
    JSONLINES,
    InvocationResult,
    Predictor,
    decode_rows,
)
from mlpilot.serving._errors import InvocationError

__all__ = [
    "BASELINE_TYPES",
    "EXPLAINER_VARIABLE",
    "EXPLANATIONS_HEADER",
    "ClarifyExplainer",
    "compile_enable_explanations",
]

EXPLAINER_VARIABLE = "MLPILOT_CLARIFY_EXPLAINER"
EXPLANATIONS_HEADER = "X-Amzn-SageMaker-Enable-Explanations"
#: ShapBaselineConfig.MimeType values Clarify reads.
BASELINE_TYPES = (CSV, JSONLINES)


def compile_enable_explanations(expression: str) -> Any:
    """``EnableExplanations`` as a compiled JMESPath expression; ValueError saying why not."""
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ValueError(
            f"EnableExplanations {expression!r} is not a valid JMESPath expression ({reason})"
        ) from None


def _csv_number(value: str) -> Any:
    try:
        return float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:
        return value


def _records(payload: bytes, content_type: str) -> list[Any]:
    """The container's output, one JMESPath document per record: a CSV line as a list of
    values (numbers read as numbers), a JSON line or prediction as it is."""
    text = payload.decode("utf-8")
    if content_type == CSV:
        return [[_csv_number(v) for v in row] for row in csv.reader(io.StringIO(text)) if row]
    if content_type == JSONLINES:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(json.loads(text)["predictions"])


class ClarifyExplainer:
    """A :class:`Predictor` whose answers carry Clarify's explanations.

    ``config`` is a ``ClarifyExplainerConfig`` (the request shape); :class:`ConfigError` for one
    this model cannot follow (a baseline that is not rows of its columns, headers of the wrong
    count, text explanations)."""

    def __init__(self, predictor: Predictor, config: Mapping[str, Any]) -> None:
        self.predictor = predictor
        model = predictor.model
        shap = dict(config.get("ShapConfig") or {})
        if shap.get("TextConfig"):
            raise ConfigError(
                "ShapConfig.TextConfig is not supported: mlpilot explains each text column as a "
                "whole, not its tokens"
            )
        expression = config.get("EnableExplanations")
        try:
            self.default = None if expression is None else compile_enable_explanations(expression)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        inference = dict(config.get("InferenceConfig") or {})
        self.columns = list(predictor.columns)
        self.features = list(inference.get("FeatureHeaders") or self.columns)
        if len(self.features) != len(self.columns):
            raise ConfigError(
                f"InferenceConfig.FeatureHeaders has {len(self.features)} names; the model "
                f"reads {len(self.columns)} columns ({', '.join(self.columns[:8])}"
                f"{', ...' if len(self.columns) > 8 else ''})"
            )
        self.explainer = RowExplainer(
            model,
            baseline=self._baseline(dict(shap.get("ShapBaselineConfig") or {})),
            samples=shap.get("NumberOfSamples"),
            use_logit=bool(shap.get("UseLogit", False)),
            seed=int(shap.get("Seed", 0)),
        )
        names = [str(label) for label in self.explainer.outputs]
        labels = inference.get("LabelHeaders")
        if labels is not None and len(labels) != len(names):
            raise ConfigError(
                f"InferenceConfig.LabelHeaders has {len(labels)} names; the model's explained "
                f"outputs are {len(names)} ({', '.join(names)})"
            )
        self.labels: list[str] | None = list(labels) if labels is not None else None
        if not model.problem_type.is_classification:
            self.units = "target units"
        else:
            self.units = "log-odds" if self.explainer.use_logit else "probability"
        if self.labels is None and model.problem_type.is_classification:
            self.labels = names

    @property
    def settings(self) -> Any:
        return self.predictor.settings

    def _baseline(self, config: dict[str, Any]) -> pd.DataFrame | None:
        inline, uri = config.get("ShapBaseline"), config.get("ShapBaselineUri")
        kind = config.get("MimeType") or CSV
        if kind not in BASELINE_TYPES:
            raise ConfigError(
                f"ShapBaselineConfig.MimeType {kind!r} is not supported: use "
                f"{' or '.join(BASELINE_TYPES)}"
            )
        if inline is None and uri is None:
            return None  # the package's typical row
        if inline is not None:
            body = str(inline).encode("utf-8")
        else:
            from mlpilot.data import resolve_uri

            try:
                fs, path = resolve_uri(str(uri))
                body = bytes(fs.cat_file(path))
            except Exception as exc:
                raise ConfigError(f"cannot read ShapBaselineUri {uri}: {exc}") from None
        try:
            return decode_rows(
                body,
                kind,
                self.columns,
                target=self.predictor.target,
                used_columns=self.predictor.used_columns,
            )
        except InvocationError as exc:
            raise ConfigError(f"the SHAP baseline cannot be read: {exc.message}") from None

    def handle(
        self,
        body: bytes,
        content_type: str | None = None,
        accept: str | None = None,
        enable: str | None = None,
    ) -> InvocationResult:
        """Predict and explain; errors as a result (status ≥ 400, message as text)."""
        try:
            payload = self.invoke(body, content_type, accept, enable)
        except InvocationError as exc:
            return InvocationResult(exc.status, exc.message.encode("utf-8"), ERROR_CONTENT_TYPE)
        except Exception as exc:  # a bug or a broken model: the caller sees a 500, not a crash
            message = f"internal error while explaining: {type(exc).__name__}: {exc}"
            return InvocationResult(500, message.encode("utf-8"), ERROR_CONTENT_TYPE)
        return InvocationResult(200, payload, JSON)

    def invoke(
        self,
        body: bytes,
        content_type: str | None = None,
        accept: str | None = None,
        enable: str | None = None,
    ) -> bytes:
        """Clarify's response document; raises :class:`InvocationError`."""
        expression = self.default
        if enable is not None:
            try:
                expression = compile_enable_explanations(enable)
            except ValueError as exc:
                raise InvocationError(400, str(exc)) from None
        model = self.predictor.model
        cleaned: list[Any] = []
        matrices: dict[int, Any] = {}

        def predict(frame: pd.DataFrame) -> np.ndarray:
            # The rows are read and transformed once, for the prediction and the explanation.
            clean = model.clean(frame)
            cleaned.append(clean)
            return np.asarray(model.predict_clean(clean, matrices))

        frame, _, payload, response_type = self.predictor.predict_body(
            body, content_type, accept, predict if hasattr(model, "predict_clean") else None
        )
        if expression is None:
            chosen = list(range(len(frame)))
        else:
            records = _records(payload, response_type)
            chosen = [i for i, record in enumerate(records) if expression.search(record) is True]
        explanations: list[Any] = [None] * len(frame)
        extension: dict[str, Any] = {"units": self.units}
        if chosen:
            if len(chosen) == len(frame) and cleaned:
                result = self.explainer.explain(frame, cleaned[-1], matrices)
            else:
                result = self.explainer.explain(frame.iloc[chosen])
            extension["expected_value"] = result.base.tolist()
            values = (np.round(result.values, 12) + 0.0).tolist()  # no "-0.0"
            for position, row in zip(chosen, values, strict=True):
                explanations[position] = [
                    {"feature_header": name, "attributions": [{"attribution": attribution}]}
                    for name, attribution in zip(self.features, row, strict=True)
                ]
        document: dict[str, Any] = {
            "version": "1.0",
            "predictions": {"content_type": response_type, "data": payload.decode("utf-8")},
        }
        if self.labels is not None:
            document["label_headers"] = self.labels
        document["explanations"] = {"kernel_shap": explanations}
        document["mlpilot"] = extension
        return json.dumps(document).encode("utf-8")
