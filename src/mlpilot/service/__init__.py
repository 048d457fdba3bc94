"""The SageMaker-compatible service: AutoML jobs (and, beside them, models, endpoints, transform
jobs and the model registry) over the AWS JSON 1.1 protocol, so boto3 and the AWS CLI drive
mlpilot with ``--endpoint-url``. Thin over the engine: jobs run in their own processes, state
lives in the metadata store."""

from mlpilot.service._app import (
    POLICIES,
    QUEUE_LENGTH,
    QUEUE_POSITION,
    RESUME_MAX_CANDIDATES,
    RESUME_SECONDS,
    RESUME_TIME,
    RESUMES,
    Service,
    create_app,
)
from mlpilot.service._automl import RESUME_CANDIDATES_TAG, RESUME_SECONDS_TAG
from mlpilot.service._config import ServiceConfig
from mlpilot.service._errors import ServiceError
from mlpilot.service._limits import header_deadline_protocol
from mlpilot.service._retrain import (
    APPROVAL_HEADER,
    CAPTURED_SINCE,
    CanarySettings,
    Champion,
    Control,
    InProcessControl,
    RetrainError,
    RetrainOutcome,
    captured_rows,
    check_holdout_columns,
    check_schema,
    decide,
    find_champion,
    promote_version,
    retrain_endpoint,
    score_package,
    write_manifest,
)
from mlpilot.service._retrain_series import SeriesHoldout, score_series_package
from mlpilot.service._store import Store

__all__ = [
    "APPROVAL_HEADER",
    "CAPTURED_SINCE",
    "POLICIES",
    "QUEUE_LENGTH",
    "QUEUE_POSITION",
    "RESUMES",
    "RESUME_CANDIDATES_TAG",
    "RESUME_MAX_CANDIDATES",
    "RESUME_SECONDS",
    "RESUME_SECONDS_TAG",
    "RESUME_TIME",
    "CanarySettings",
    "Champion",
    "Control",
    "InProcessControl",
    "RetrainError",
    "RetrainOutcome",
    "SeriesHoldout",
    "Service",
    "ServiceConfig",
    "ServiceError",
    "Store",
    "captured_rows",
    "check_holdout_columns",
    "check_schema",
    "create_app",
    "decide",
    "find_champion",
    "header_deadline_protocol",
    "promote_version",
    "retrain_endpoint",
    "score_package",
    "score_series_package",
    "write_manifest",
]
