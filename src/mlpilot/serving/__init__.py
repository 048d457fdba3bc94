"""The data plane: a model behind the SageMaker container contract, endpoints of production
variants made of such containers, and batch transform.

- :class:`Predictor` / :func:`create_app` / :func:`serve`: one model answering ``/ping`` and
  ``/invocations`` (what ``mlpilot serve-model`` runs); :class:`ForecastHandler` is the
  forecasting sibling of :class:`Predictor`, :func:`handler_for` picks one for a package.
- :class:`EndpointRuntime`: variants of ``serve-model`` processes with SageMaker's routing,
  scaling, updates without downtime and per-variant metrics.
- :func:`run_transform`: CreateTransformJob's semantics over local or S3 objects, streaming.
- :class:`DataCapture`: an endpoint's ``DataCaptureConfig`` (sampled invocations to JSON lines
  in SageMaker's capture layout); :func:`join_ground_truth`: captures joined with their labels.
"""

from mlpilot.serving._app import create_app
from mlpilot.serving._capture import (
    FLUSH_SECONDS,
    CaptureSettings,
    DataCapture,
    capture_record,
)
from mlpilot.serving._capture_join import (
    CAPTURE_COLUMNS,
    join_ground_truth,
    read_captures,
    read_ground_truth,
)
from mlpilot.serving._codec import (
    CONTENT_KEYS,
    CSV,
    JSON,
    JSONLINES,
    MAX_PAYLOAD_BYTES,
    PARQUET,
    InvocationResult,
    Predictor,
    ServingSettings,
    choose_accept,
    decode_rows,
    encode_predictions,
    parse_output_keys,
)
from mlpilot.serving._errors import (
    ContainerFailure,
    EndpointRuntimeError,
    EndpointStartError,
    EndpointUnavailableError,
    InvocationError,
    TransformError,
    UnknownVariantError,
)
from mlpilot.serving._explainer import (
    BASELINE_TYPES,
    EXPLAINER_VARIABLE,
    EXPLANATIONS_HEADER,
    ClarifyExplainer,
    compile_enable_explanations,
)
from mlpilot.serving._forecast import ForecastHandler, decode_history, encode_forecast
from mlpilot.serving._handlers import Handler, explainer_for, handler_for
from mlpilot.serving._invokers import EndpointInvoker, HttpInvoker, Invoker, ModelInvoker
from mlpilot.serving._jsonpath import JsonPath, JsonPathError, JsonPathMismatch, compile_path
from mlpilot.serving._runtime import EndpointRuntime
from mlpilot.serving._server import load_served_model, parse_env_options, serve
from mlpilot.serving._source import default_cache_dir, resolve_model
from mlpilot.serving._transform import remove_partial_outputs, run_transform
from mlpilot.serving._transform_spec import TransformProgress, TransformResult, TransformSpec
from mlpilot.serving._variants import VariantSpec

__all__ = [
    "BASELINE_TYPES",
    "CAPTURE_COLUMNS",
    "CONTENT_KEYS",
    "CSV",
    "EXPLAINER_VARIABLE",
    "EXPLANATIONS_HEADER",
    "FLUSH_SECONDS",
    "JSON",
    "JSONLINES",
    "MAX_PAYLOAD_BYTES",
    "PARQUET",
    "CaptureSettings",
    "ClarifyExplainer",
    "ContainerFailure",
    "DataCapture",
    "EndpointInvoker",
    "EndpointRuntime",
    "EndpointRuntimeError",
    "EndpointStartError",
    "EndpointUnavailableError",
    "ForecastHandler",
    "Handler",
    "HttpInvoker",
    "InvocationError",
    "InvocationResult",
    "Invoker",
    "JsonPath",
    "JsonPathError",
    "JsonPathMismatch",
    "ModelInvoker",
    "Predictor",
    "ServingSettings",
    "TransformError",
    "TransformProgress",
    "TransformResult",
    "TransformSpec",
    "UnknownVariantError",
    "VariantSpec",
    "capture_record",
    "choose_accept",
    "compile_enable_explanations",
    "compile_path",
    "create_app",
    "decode_history",
    "decode_rows",
    "default_cache_dir",
    "encode_forecast",
    "encode_predictions",
    "explainer_for",
    "handler_for",
    "join_ground_truth",
    "load_served_model",
    "parse_env_options",
    "parse_output_keys",
    "read_captures",
    "read_ground_truth",
    "remove_partial_outputs",
    "resolve_model",
    "run_transform",
    "serve",
]
