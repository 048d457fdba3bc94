"""Champion/challenger retraining of an endpoint's model (tabular or forecasting), over
SageMaker's own operations.

Everything goes through a :class:`Control`: SageMaker operations by name (boto3 against a
service from the CLI, or the service's own dispatch in process) plus the endpoint's
per-variant counters. So the same steps run from ``mlpilot retrain`` and from the service.

The steps: find the champion's job (endpoint → endpoint config → model → its model package's
``AutoMLJobName`` metadata, else the job whose best candidate's ``ModelDataUrl`` the model
runs) → re-run that job's request on the new data under a new name → score champion and
challenger on the same holdout (both packages loaded here, scored with the job's objective) →
register the challenger in the champion's model package group, when there is one → on a win
by the margin, a canary variant, watched, then all traffic; else the endpoint is untouched.
Forecasting models are scored on a holdout of series (:mod:`._retrain_series`); the rest of
the round does not depend on the problem type.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.errors import MlpilotError

__all__ = [
    "CanarySettings",
    "Champion",
    "Control",
    "InProcessControl",
    "RetrainError",
    "RetrainOutcome",
    "captured_rows",
    "challenger_model_name",
    "check_holdout_columns",
    "check_schema",
    "decide",
    "find_champion",
    "promote_version",
    "restore_champion_config",
    "retrain_endpoint",
    "score_package",
    "write_manifest",
]

#: The model package metadata naming the AutoML job that made the package (docs/registry.md).
JOB_METADATA = "AutoMLJobName"
#: DescribeModelPackage's response header saying what requires approval to deploy the package
#: (absent when nothing does): the service's ``--require-approved-packages`` or the group's tag.
APPROVAL_HEADER = "x-mlpilot-approval-required"
#: Members of DescribeAutoMLJobV2 that are the request a challenger repeats.
_REQUEST_KEYS = (
    "AutoMLJobInputDataConfig",
    "OutputDataConfig",
    "AutoMLProblemTypeConfig",
    "RoleArn",
    "AutoMLJobObjective",
    "DataSplitConfig",
    "SecurityConfig",
    "AutoMLComputeConfig",
)
_ENDED = ("Completed", "Failed", "Stopped")
#: The problem types a round can score (AutoMLProblemTypeConfigName).
TABULAR, FORECASTING = "Tabular", "TimeSeriesForecasting"
#: What a forecasting round says instead of scoring captured traffic.
SERIES_CAPTURE_REASON = (
    "captured traffic is scored for tabular models only: a forecast's truth is not one label "
    "per invocation"
)
#: The request and response types each problem type's container takes (serving/).
_CONTENT_TYPES = {
    TABULAR: ["text/csv", "application/json"],
    FORECASTING: ["text/csv", "application/json", "application/jsonlines"],
}
#: How far back captured, labelled invocations join the holdout by default: one week.
CAPTURED_SINCE = 7 * 86400.0
#: The suffix naming a challenger job: ``<first job>-r-<MMDDhhmmss>``.
_ROUND_SUFFIX = re.compile(r"-r-\d{10}$")


class RetrainError(MlpilotError):
    """Bad input or a missing resource: nothing was changed."""


class InProcessControl:
    """:class:`Control` over a :class:`~mlpilot.service.Service` in this process."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        from mlpilot.service._errors import ServiceError

        try:
            result: dict[str, Any] = self.service.call(operation, params)
        except ServiceError as exc:
            raise RetrainError(f"{operation}: {exc.code}: {exc.message}") from None
        return result

    def variant_metrics(self, endpoint: str) -> dict[str, dict[str, Any]]:
        found = self.service.endpoints.metrics(endpoint)
        return dict(found["Variants"]) if found else {}

    def approval_rule(self, package: str) -> str | None:
        headers = self.service.answer("DescribeModelPackage", {"ModelPackageName": package})[1]
        return headers.get(APPROVAL_HEADER)


class Control(Protocol):
    """What retraining needs from a service."""

    def call(self, operation: str, **params: Any) -> dict[str, Any]: ...

    def variant_metrics(self, endpoint: str) -> dict[str, dict[str, Any]]:
        """Per variant: ``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors``,
        ``ModelLatency`` (µs; ``p99`` among them)."""
        ...

    def approval_rule(self, package: str) -> str | None:
        """What requires approval before ``package`` (a model package ARN) may be deployed,
        or None when nothing does."""
        ...


@dataclass(frozen=True)
class Champion:
    endpoint: str
    endpoint_config: str
    variant: str
    model: str
    job: str
    model_data_url: str
    #: The model package the model was made from (its ARN), and that package's group.
    package: str | None = None
    group: str | None = None
    #: What requires approval to deploy the group's versions (None: nothing; docs/registry.md).
    approval: str | None = None


@dataclass(frozen=True)
class CanarySettings:
    weight: float = 0.1
    seconds: float = 10.0
    #: Roll back when the canary's p99 model latency passes this (ms); None: errors only.
    max_latency_ms: float | None = None


@dataclass
class RetrainOutcome:
    decision: str
    metric: str | None = None
    champion: str | None = None
    challenger: str | None = None
    champion_score: float | None = None
    challenger_score: float | None = None
    reason: str = ""
    #: How many holdout rows and captured-and-labelled rows both models were scored on.
    holdout_rows: int | None = None
    captured_rows: int | None = None
    #: What the line leaves out: the steps taken, for the audit log.
    steps: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        """The one JSON line ``mlpilot retrain`` prints."""
        out = {k: v for k, v in asdict(self).items() if k != "steps"}
        for key in ("champion_score", "challenger_score"):
            value = out[key]
            out[key] = None if value is None or not math.isfinite(value) else value
        return json.dumps(out)


# -- the champion -------------------------------------------------------------------------
def find_champion(
    control: Control, endpoint: str, job: str | None = None, *, need_job: bool = True
) -> Champion:
    """The endpoint's champion (its variant of most weight) and the AutoML job that made it
    (``""`` when it cannot be told and ``need_job`` is false)."""
    described = control.call("DescribeEndpoint", EndpointName=endpoint)
    if described.get("EndpointStatus") != "InService":
        raise RetrainError(
            f"Endpoint {endpoint} is {described.get('EndpointStatus')}, not InService"
        )
    config_name = described["EndpointConfigName"]
    config = control.call("DescribeEndpointConfig", EndpointConfigName=config_name)
    weights = {
        v["VariantName"]: float(v.get("CurrentWeight", 1.0))
        for v in described.get("ProductionVariants") or ()
    }
    variants = config["ProductionVariants"]
    chosen = max(variants, key=lambda v: weights.get(v["VariantName"], 0.0))
    model = control.call("DescribeModel", ModelName=chosen["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    url = str(container.get("ModelDataUrl", ""))
    package = container.get("ModelPackageName")
    group = named = approval = None
    if package:
        found = control.call("DescribeModelPackage", ModelPackageName=package)
        group = found.get("ModelPackageGroupName") if found.get("ModelPackageVersion") else None
        named = (found.get("CustomerMetadataProperties") or {}).get(JOB_METADATA)
        approval = control.approval_rule(package) if group else None
    if need_job:
        named = job or named or _job_of_model_data(control, url)
    if need_job and not named:
        raise RetrainError(
            f"Cannot tell which AutoML job made model {chosen['ModelName']} of endpoint "
            f"{endpoint} (no model package with {JOB_METADATA} metadata, and no job's best "
            f"candidate runs {url}); give --job"
        )
    return Champion(
        endpoint=endpoint,
        endpoint_config=config_name,
        variant=chosen["VariantName"],
        model=chosen["ModelName"],
        job=named or "",
        model_data_url=url,
        package=package,
        group=group,
        approval=approval,
    )


def _job_of_model_data(control: Control, url: str) -> str | None:
    if not url:
        return None
    token: str | None = None
    while True:
        page = control.call(
            "ListAutoMLJobs", StatusEquals="Completed", MaxResults=100, **_token(token)
        )
        for summary in page["AutoMLJobSummaries"]:
            name = summary["AutoMLJobName"]
            record = control.call("DescribeAutoMLJobV2", AutoMLJobName=name)
            containers = (record.get("BestCandidate") or {}).get("InferenceContainers") or ()
            if any(c.get("ModelDataUrl") == url for c in containers):
                return str(name)
        token = page.get("NextToken")
        if not token:
            return None


def _token(token: str | None) -> dict[str, str]:
    return {"NextToken": token} if token else {}


# -- data checks and scoring -----------------------------------------------------------------
def check_schema(columns: list[str], expected: list[str], target: str, what: str) -> None:
    """``what``'s columns must be the champion's training columns and its target."""
    wanted = [*expected, target]
    missing = [c for c in wanted if c not in columns]
    extra = [c for c in columns if c not in wanted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks column(s) {', '.join(missing)}")
        if extra:
            parts.append(f"has column(s) the champion was not trained on: {', '.join(extra)}")
        raise RetrainError(
            f"{what} has a different schema from the champion's data: " + "; ".join(parts)
        )


def check_holdout_columns(model: Any, columns: list[str], where: str) -> None:
    """The holdout ``where`` must hold what scoring ``model`` reads: a tabular model's target
    (its input columns are checked when scored), a forecasting model's key, timestamp and
    target columns."""
    if model.problem_type == FORECASTING:
        facts = model.facts
        wanted = [*facts.key_columns, facts.timestamp, facts.target]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise RetrainError(
                f"The holdout {where} lacks the forecasting column(s) {', '.join(missing)}: it "
                "must be a long table of item, timestamp and target"
            )
        return
    target = model.info.get("target")
    if target not in columns:
        raise RetrainError(
            f"The holdout {where} has no target column {target!r}: it must hold the true outcomes"
        )


def score_package(model: Any, holdout: pd.DataFrame, metric: str) -> float:
    """``metric`` of a package's predictions on the labelled ``holdout``: a tabular package's
    rows against their target; a forecasting package's series as
    :func:`~mlpilot.service.score_series_package` scores them."""
    from mlpilot.metrics import score_all

    if model.problem_type == FORECASTING:
        from mlpilot.service._retrain_series import score_series_package

        return score_series_package(model, holdout, metric)
    target = model.info.get("target")
    if not target or target not in holdout.columns:
        raise RetrainError(
            f"The holdout has no target column {target!r}: it must hold the true outcomes"
        )
    missing = [c for c in model.input_columns if c not in holdout.columns]
    if missing:
        raise RetrainError(f"The holdout lacks the model's input column(s) {', '.join(missing)}")
    rows = holdout[holdout[target].notna() & (holdout[target].astype(str) != "")]
    if rows.empty:
        raise RetrainError(f"The holdout has no row with a value of its target {target!r}")
    raw = model.predict_raw(rows[model.input_columns])
    problem = model.problem_type
    kwargs: dict[str, Any] = {}
    if problem.is_classification:
        index = {str(label): i for i, label in enumerate(model.labels)}
        truth = rows[target].astype(str)
        unknown = sorted(set(truth) - set(index))
        if unknown:
            raise RetrainError(
                f"The holdout's {target} has value(s) {', '.join(unknown[:5])} the model "
                f"{model.candidate_name} never saw in training"
            )
        y = truth.map(index).to_numpy()
        kwargs = {
            "positive_index": model.positive_index,
            "n_classes": len(model.labels),
            "threshold": model.decision_threshold,
        }
    else:
        y = pd.to_numeric(rows[target], errors="coerce").to_numpy(dtype=float)
        if np.isnan(y).any():
            raise RetrainError(f"The holdout's target {target} has values that are not numbers")
    scores = score_all(ProblemType(problem), y, raw, **kwargs)
    if metric not in scores:
        raise RetrainError(
            f"The job's objective {metric} cannot be scored on a holdout by mlpilot retrain "
            f"(it scores {', '.join(scores)})"
        )
    return float(scores[metric])


def _labelled(rows: pd.DataFrame, target: str) -> pd.DataFrame:
    return rows[rows[target].notna() & (rows[target].astype(str) != "")]


def captured_rows(
    control: Control,
    champion: Champion,
    model: Any,
    ground_truth: str | None,
    since_seconds: float = CAPTURED_SINCE,
    *,
    holdout: pd.DataFrame | None = None,
    keyring: Any = None,
    now: float | None = None,
) -> tuple[pd.DataFrame, str]:
    """The endpoint's captured invocations of the last ``since_seconds`` that have a label
    in ``ground_truth`` (Model Monitor's ground-truth JSON lines), as rows of the model's input
    columns and its target, typed like ``holdout``'s; and what they are, or why there are
    none (no labels given, no data capture, nothing captured and labelled in the window)."""
    import fsspec

    from mlpilot.errors import DataError
    from mlpilot.serving import join_ground_truth

    target = str(model.info.get("target"))
    columns = [*model.input_columns, target]
    none = pd.DataFrame(columns=columns)
    if not ground_truth:
        return none, "no ground truth given for captured traffic"
    config = control.call("DescribeEndpointConfig", EndpointConfigName=champion.endpoint_config)
    capture = config.get("DataCaptureConfig") or {}
    if not capture or capture.get("EnableCapture") is False:
        return none, f"endpoint config {champion.endpoint_config} captures no data"
    where = f"{str(capture['DestinationS3Uri']).rstrip('/')}/{champion.endpoint}"
    fs, path = fsspec.core.url_to_fs(where)
    if not fs.exists(path):
        return none, f"nothing captured under {where}"
    since = (time.time() if now is None else now) - since_seconds
    try:
        joined = join_ground_truth(
            where,
            ground_truth,
            columns=model.input_columns,
            target=target,
            keyring=keyring,
            since=since,
        )
    except (DataError, OSError) as exc:
        raise RetrainError(
            f"The captured traffic cannot be joined with {ground_truth}: {exc}"
        ) from None
    rows = _labelled(joined[columns], target)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    if rows.empty:
        return none, f"no invocation captured since {stamp} has a label in {ground_truth}"
    if holdout is not None:  # numbers as numbers where the holdout has them
        rows = rows.copy()
        for column in columns:
            if column in holdout.columns and pd.api.types.is_numeric_dtype(holdout[column]):
                rows[column] = pd.to_numeric(rows[column], errors="coerce")
    return rows.reset_index(drop=True), f"captured since {stamp}, labelled in {ground_truth}"


def decide(maximize: bool, champion: float, challenger: float, margin: float) -> tuple[bool, str]:
    """Whether the challenger wins: better in the objective's direction, by at least
    ``margin`` (in the objective's units), and strictly better."""
    if not math.isfinite(challenger):
        return False, "the challenger's score is not a number"
    if not math.isfinite(champion):
        return True, "the champion's score is not a number"
    gain = challenger - champion if maximize else champion - challenger
    direction = "higher" if maximize else "lower"
    if gain > 0 and gain >= margin:
        return (
            True,
            f"the challenger is better by {gain:.6g} ({direction} is better; margin {margin:g})",
        )
    return False, (
        f"the challenger is not better by the margin: {gain:+.6g} where {direction} is better "
        f"(margin {margin:g})"
    )


# -- the whole round ------------------------------------------------------------------------
def retrain_endpoint(
    control: Control,
    endpoint: str,
    *,
    data: str,
    holdout: pd.DataFrame,
    data_type: str = "S3Prefix",
    margin: float = 0.0,
    with_old_data: bool = False,
    job: str | None = None,
    canary: CanarySettings | None = None,
    job_timeout: float = 3600.0,
    load: Callable[[str], Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    ground_truth: str | None = None,
    captured_since: float = CAPTURED_SINCE,
    keyring: Any = None,
    challenger_job: str | None = None,
) -> RetrainOutcome:
    """One champion/challenger round on ``endpoint``; raises :class:`RetrainError` for bad
    input (nothing changed), else returns the decision. ``on_step`` hears each step as it is
    taken (``time``, ``action`` and its details); ``data_type`` is the new data channel's
    ``S3DataType`` (``S3Prefix`` or ``ManifestFile``). With ``ground_truth``, the endpoint's
    captured invocations of the last ``captured_since`` seconds that have a label there are
    scored with the holdout (``keyring``: for captures written under a ``KmsKeyId``). A
    forecasting champion is scored on ``holdout`` as a table of series (each item's last
    ``ForecastHorizon`` points forecast from the points before them; captured traffic is not
    scored). ``challenger_job``: the job an interrupted attempt of this round started on the
    same data; it is waited on instead of a new one while it is in progress or completed."""
    from mlpilot.data import list_objects, read_table
    from mlpilot.metrics import objective_direction
    from mlpilot.package import load_model

    loader: Callable[[str], Any] = load if load is not None else load_model
    canary = canary or CanarySettings()
    champion = find_champion(control, endpoint, job)
    record = control.call("DescribeAutoMLJobV2", AutoMLJobName=champion.job)
    outcome = RetrainOutcome(decision="kept", champion=champion.model)
    step = _stepper(outcome, on_step)
    step(
        "champion",
        endpoint=endpoint,
        endpoint_config=champion.endpoint_config,
        variant=champion.variant,
        model=champion.model,
        job=champion.job,
        package=champion.package,
    )
    problem = record.get("AutoMLProblemTypeConfigName", TABULAR)
    if problem not in (TABULAR, FORECASTING):
        raise RetrainError(
            f"Job {champion.job} is a {problem} job; mlpilot retrain scores tabular and "
            "forecasting models only"
        )
    champion_model = loader(champion.model_data_url)
    if (champion_model.problem_type == FORECASTING) != (problem == FORECASTING):
        raise RetrainError(
            f"Model {champion.model} is a {champion_model.problem_type} model, but job "
            f"{champion.job} is a {problem} job: give the job that made it (--job)"
        )
    metric, maximize = _objective(record, objective_direction)
    outcome.metric = metric
    # Bad input first, while nothing has started.
    target = str(champion_model.info.get("target"))
    if problem == FORECASTING:
        from mlpilot.service._retrain_series import series_columns

        expected = series_columns(champion_model)
    else:
        expected = champion_model.input_columns
    new_files = list_objects(data, data_type=data_type)
    if not new_files:
        raise RetrainError(f"No data files under {data}")
    for uri in new_files:  # each file: the one of another schema is the one named
        columns = list(read_table(uri).columns)
        check_schema(columns, expected, target, f"The new data {uri}")
    if problem == FORECASTING:
        scorer, scored_on = _series_scorer(champion_model, holdout, ground_truth, outcome)
    else:
        scorer, scored_on = _row_scorer(
            control,
            champion,
            champion_model,
            holdout,
            ground_truth,
            captured_since,
            keyring,
            outcome,
        )
    outcome.champion_score = scorer(champion_model, metric)

    name = _resumable_job(control, challenger_job)
    if name:
        step("challenger_started", job=name, data=data, with_old_data=with_old_data, resumed=True)
    else:
        request = _challenger_request(control, record, champion.job, data, data_type, with_old_data)
        name = request["AutoMLJobName"]
        control.call("CreateAutoMLJobV2", **request)
        step("challenger_started", job=name, data=data, with_old_data=with_old_data)
    outcome.challenger = name
    ended = _wait_job(control, name, job_timeout)
    if ended["AutoMLJobStatus"] != "Completed" or not ended.get("BestCandidate"):
        outcome.decision = "failed"
        outcome.reason = (
            f"challenger job {name} ended {ended['AutoMLJobStatus']}: "
            f"{ended.get('FailureReason') or 'no best candidate'}"
        )
        step("challenger_failed", job=name, reason=outcome.reason)
        return outcome
    container = ended["BestCandidate"]["InferenceContainers"][0]
    try:
        outcome.challenger_score = scorer(loader(container["ModelDataUrl"]), metric)
    except MlpilotError as exc:  # a package that will not load, labels it never saw…
        outcome.decision = "failed"
        outcome.reason = f"the challenger could not be scored: {exc}"
        step("challenger_failed", job=name, reason=outcome.reason)
        return outcome
    won, why = decide(maximize, outcome.champion_score, outcome.challenger_score, margin)
    why = f"{why}; {scored_on}"
    step(
        "evaluated",
        metric=metric,
        champion_score=outcome.champion_score,
        challenger_score=outcome.challenger_score,
        holdout_rows=outcome.holdout_rows,
        captured_rows=outcome.captured_rows,
        won=won,
        reason=why,
    )
    try:
        model_name, package = _challenger_model(
            control, champion, name, container, won, why, _CONTENT_TYPES[problem]
        )
    except RetrainError as exc:
        outcome.decision = "failed"
        outcome.reason = f"{why}; registering the challenger failed: {exc}"
        step("challenger_failed", job=name, reason=outcome.reason)
        return outcome
    outcome.challenger = model_name
    if package:
        step("registered", package=package, model=model_name, approval=_approval(champion, won))
    if not won:
        outcome.reason = why
        return outcome
    if package and champion.approval:
        # Gated: a person approves the version, then `mlpilot retrain promote` deploys it.
        outcome.decision = "pending_approval"
        outcome.reason = (
            f"{why}; version {package} awaits approval ({champion.approval}): approve it "
            f"(UpdateModelPackage ModelApprovalStatus=Approved), then run mlpilot retrain "
            f"promote {endpoint} --version {package}"
        )
        return outcome
    return _promote(control, champion, model_name, package, canary, outcome, step, why)


def _resumable_job(control: Control, job: str | None) -> str | None:
    """``job`` when it is in progress or completed (an interrupted attempt's challenger that the
    service picked up again on restart), else None."""
    if not job:
        return None
    try:
        status = control.call("DescribeAutoMLJobV2", AutoMLJobName=job)["AutoMLJobStatus"]
    except RetrainError:
        return None
    return job if status in ("InProgress", "Completed") else None


def challenger_model_name(job: str) -> str:
    """The model a round makes for its challenger job ``job``."""
    return f"{job}-model"


def restore_champion_config(control: Control, endpoint: str, config: str) -> bool:
    """Put ``endpoint`` back on its champion's endpoint config ``config`` when another is
    there (a canary left by an interrupted round), once it is in service; True when it was
    put back. Raises :class:`RetrainError` when the service refuses or the endpoint fails."""
    _wait_in_service(control, endpoint)
    now = control.call("DescribeEndpoint", EndpointName=endpoint)
    if now.get("EndpointConfigName") == config:
        return False
    control.call("UpdateEndpoint", EndpointName=endpoint, EndpointConfigName=config)
    _wait_in_service(control, endpoint)
    return True


def _row_scorer(
    control: Control,
    champion: Champion,
    model: Any,
    holdout: pd.DataFrame,
    ground_truth: str | None,
    captured_since: float,
    keyring: Any,
    outcome: RetrainOutcome,
) -> tuple[Callable[[Any, str], float], str]:
    """How a tabular round scores a package (the holdout's rows and the captured, labelled
    ones), and what it is scored on."""
    target = str(model.info.get("target"))
    captured, source = captured_rows(
        control,
        champion,
        model,
        ground_truth,
        captured_since,
        holdout=holdout,
        keyring=keyring,
    )
    outcome.holdout_rows = len(_labelled(holdout, target)) if target in holdout.columns else 0
    outcome.captured_rows = len(captured)
    if captured.empty:
        scored_on = f"scored on {outcome.holdout_rows} holdout rows alone ({source})"
        rows = holdout
    else:
        scored_on = (
            f"scored on {outcome.holdout_rows} holdout rows and {outcome.captured_rows} "
            f"captured rows ({source})"
        )
        rows = pd.concat([holdout, captured], ignore_index=True)
    return (lambda package, metric: score_package(package, rows, metric)), scored_on


def _series_scorer(
    model: Any, holdout: pd.DataFrame, ground_truth: str | None, outcome: RetrainOutcome
) -> tuple[Callable[[Any, str], float], str]:
    """How a forecasting round scores a package (each holdout item's last horizon points,
    forecast from the points before them), and what it is scored on."""
    from mlpilot.service._retrain_series import SeriesHoldout

    series = SeriesHoldout.of(model, holdout)
    outcome.holdout_rows = series.points
    outcome.captured_rows = 0
    captured = SERIES_CAPTURE_REASON
    if ground_truth:
        captured = f"{SERIES_CAPTURE_REASON}; {ground_truth} is not read"
    scored_on = (
        f"scored on {series.points} forecast points of {series.items} holdout item(s), the last "
        f"{series.horizon} of each ({captured})"
    )
    return series.score, scored_on


def _approval(champion: Champion, won: bool) -> str:
    if not won:
        return "Rejected"
    return "PendingManualApproval" if champion.approval else "Approved"


def promote_version(
    control: Control,
    endpoint: str,
    version: str,
    *,
    canary: CanarySettings | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> RetrainOutcome:
    """Put an ``Approved`` model package version on ``endpoint`` the way a winning challenger
    goes: a canary variant, watched, then all traffic (or rolled back, the version
    ``Rejected``). For a round that ended ``pending_approval``; raises :class:`RetrainError`
    (nothing changed) for a version that is not approved, already serves, or belongs to
    another group than the champion's."""
    canary = canary or CanarySettings()
    champion = find_champion(control, endpoint, need_job=False)
    found = control.call("DescribeModelPackage", ModelPackageName=version)
    arn = str(found["ModelPackageArn"])
    status = found.get("ModelApprovalStatus")
    if not found.get("ModelPackageVersion"):
        raise RetrainError(f"{arn} is an unversioned model package: give a group's version")
    if status != "Approved":
        raise RetrainError(
            f"Version {arn} is {status}: approve it (UpdateModelPackage "
            "ModelApprovalStatus=Approved) before promoting it"
        )
    group = found.get("ModelPackageGroupName")
    if champion.group and group != champion.group:
        raise RetrainError(
            f"Version {arn} is in model package group {group}, not in the champion's "
            f"({champion.group})"
        )
    if champion.package == arn:
        raise RetrainError(f"Version {arn} already serves endpoint {endpoint}")
    made_by = (found.get("CustomerMetadataProperties") or {}).get(JOB_METADATA)
    model = _model_of_package(control, arn, made_by, f"{group}-v{found['ModelPackageVersion']}")
    outcome = RetrainOutcome(decision="kept", champion=champion.model, challenger=model)
    step = _stepper(outcome, on_step)
    step(
        "champion",
        endpoint=endpoint,
        endpoint_config=champion.endpoint_config,
        variant=champion.variant,
        model=champion.model,
        job=champion.job or None,
        package=champion.package,
    )
    why = f"version {found['ModelPackageVersion']} of {group} is Approved"
    step("approved", package=arn, model=model)
    return _promote(control, champion, model, arn, canary, outcome, step, why)


def _model_of_package(control: Control, arn: str, job: str | None, fallback: str) -> str:
    """A model made from ``arn``: the one its round made (``<job>-model``), else a new one."""
    for name in ([f"{job}-model"] if job else []) + [fallback]:
        try:
            model = control.call("DescribeModel", ModelName=name)
        except RetrainError:
            control.call("CreateModel", ModelName=name, PrimaryContainer={"ModelPackageName": arn})
            return name
        if (model.get("PrimaryContainer") or {}).get("ModelPackageName") == arn:
            return name
    raise RetrainError(f"Models {job}-model and {fallback} exist but are not made from {arn}")


def _restore(control: Control, champion: Champion) -> None:
    """The champion's own config back on the endpoint, when another is there."""
    try:
        now = control.call("DescribeEndpoint", EndpointName=champion.endpoint)
        if now.get("EndpointConfigName") != champion.endpoint_config:
            control.call(
                "UpdateEndpoint",
                EndpointName=champion.endpoint,
                EndpointConfigName=champion.endpoint_config,
            )
    except RetrainError:
        pass  # the service refuses even that: the outcome already says what failed


def _stepper(
    outcome: RetrainOutcome, on_step: Callable[[dict[str, Any]], None] | None
) -> Callable[..., None]:
    def step(action: str, **details: Any) -> None:
        entry = {"time": round(time.time(), 3), "action": action, **details}
        outcome.steps.append(entry)
        if on_step is not None:
            on_step(entry)

    return step


def _objective(record: dict[str, Any], direction: Callable[..., bool]) -> tuple[str, bool]:
    final = (record.get("BestCandidate") or {}).get("FinalAutoMLJobObjectiveMetric") or {}
    resolved = (record.get("ResolvedAttributes") or {}).get("AutoMLJobObjective") or {}
    metric = (
        (record.get("AutoMLJobObjective") or {}).get("MetricName")
        or resolved.get("MetricName")
        or final.get("MetricName")
    )
    if not metric:
        raise RetrainError(f"Job {record['AutoMLJobName']} has no objective metric on record")
    return str(metric), bool(direction(metric, final.get("Type")))


def _challenger_request(
    control: Control,
    record: dict[str, Any],
    job: str,
    data: str,
    data_type: str,
    with_old_data: bool,
) -> dict[str, Any]:
    from mlpilot.data import list_objects

    request = {k: record[k] for k in _REQUEST_KEYS if k in record}
    stamp = time.strftime("%m%d%H%M%S", time.gmtime())
    # A challenger of a challenger is named after the first job, not after both.
    base = _ROUND_SUFFIX.sub("", job)[: 32 - len(stamp) - 3].rstrip("-")
    request["AutoMLJobName"] = f"{base}-r-{stamp}"
    channels = []
    for channel in request["AutoMLJobInputDataConfig"]:
        if channel.get("ChannelType", "training") != "training":
            channels.append(channel)
            continue
        source = channel["DataSource"]["S3DataSource"]
        uri, kind = data, data_type
        if with_old_data:
            uris = list_objects(source["S3Uri"], data_type=source.get("S3DataType", "S3Prefix"))
            uri = write_manifest(
                [*uris, *list_objects(data, data_type=data_type)],
                f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/"
                f"{request['AutoMLJobName']}-input.manifest",
            )
            kind = "ManifestFile"
        channels.append(
            {**channel, "DataSource": {"S3DataSource": {"S3DataType": kind, "S3Uri": uri}}}
        )
    request["AutoMLJobInputDataConfig"] = channels
    tags = control.call("ListTags", ResourceArn=record["AutoMLJobArn"]).get("Tags") or []
    if tags:
        request["Tags"] = tags
    return request


def write_manifest(uris: list[str], where: str) -> str:
    """A manifest file (SageMaker's ``ManifestFile`` channel) at ``where`` listing ``uris``,
    all local or all on S3."""
    import fsspec

    s3 = all(u.startswith("s3://") for u in uris)
    if not s3 and any(u.startswith("s3://") for u in uris):
        raise RetrainError("The old and the new data must be both local or both on S3")
    prefix = "s3://" if s3 else "/"
    body = [{"prefix": prefix}, *(u.removeprefix(prefix) for u in uris)]
    with fsspec.open(where, "w") as handle:
        json.dump(body, handle)
    return where


def _wait_job(control: Control, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = control.call("DescribeAutoMLJobV2", AutoMLJobName=name)
        if record["AutoMLJobStatus"] in _ENDED:
            return record
        if time.monotonic() > deadline:
            control.call("StopAutoMLJob", AutoMLJobName=name)
            return {**record, "AutoMLJobStatus": "Stopped", "FailureReason": "timed out"}
        time.sleep(1.0)


def _challenger_model(
    control: Control,
    champion: Champion,
    job: str,
    container: dict[str, Any],
    won: bool,
    why: str,
    content_types: list[str],
) -> tuple[str, str | None]:
    """The challenger's model: a new version in the champion's group when it has one
    (Approved on a win, PendingManualApproval on a win where the group needs approval,
    Rejected otherwise), else made from the job's container."""
    model_name = challenger_model_name(job)
    package = None
    if champion.group:
        package = control.call(
            "CreateModelPackage",
            ModelPackageGroupName=champion.group,
            ModelPackageDescription=f"mlpilot retrain challenger of {champion.endpoint}",
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": content_types,
                "SupportedResponseMIMETypes": content_types,
            },
            ModelApprovalStatus=_approval(champion, won),
            CustomerMetadataProperties={JOB_METADATA: job},
        )["ModelPackageArn"]
        control.call(
            "UpdateModelPackage",
            ModelPackageArn=package,
            ApprovalDescription=f"mlpilot retrain: {why}"[:1024],
        )
        control.call(
            "CreateModel", ModelName=model_name, PrimaryContainer={"ModelPackageName": package}
        )
    elif won:
        keep = ("Image", "ModelDataUrl", "Environment")
        control.call(
            "CreateModel",
            ModelName=model_name,
            PrimaryContainer={k: container[k] for k in keep if k in container},
        )
    return model_name, package


def _promote(
    control: Control,
    champion: Champion,
    model: str,
    package: str | None,
    canary: CanarySettings,
    outcome: RetrainOutcome,
    step: Callable[..., None],
    why: str,
) -> RetrainOutcome:
    """Deploy the winner as a canary, then to all traffic (or roll back); when a call is
    refused on the way (approval gating, an instance limit…) the champion serves on."""
    try:
        config = control.call("DescribeEndpointConfig", EndpointConfigName=champion.endpoint_config)
        settings = _config_settings(config)
        variants = [_variant(v) for v in config["ProductionVariants"]]
        served = next(v for v in variants if v["VariantName"] == champion.variant)
        total = sum(float(v.get("InitialVariantWeight", 1.0)) for v in variants)
        share = min(max(canary.weight, 0.0), 1.0)
        canary_weight = total * share / (1.0 - share) if share < 1.0 else total
        canary_variant = f"Challenger-{time.strftime('%H%M%S', time.gmtime())}"
        stem = model.removesuffix("-model")
        canary_config = _free_config(control, f"{stem}-canary")
        control.call(
            "CreateEndpointConfig",
            EndpointConfigName=canary_config,
            ProductionVariants=[
                *variants,
                {
                    **served,
                    "VariantName": canary_variant,
                    "ModelName": model,
                    "InitialVariantWeight": canary_weight,
                },
            ],
            **settings,
        )
        control.call(
            "UpdateEndpoint", EndpointName=champion.endpoint, EndpointConfigName=canary_config
        )
        _wait_in_service(control, champion.endpoint)
        step(
            "canary",
            endpoint_config=canary_config,
            model=model,
            variant=canary_variant,
            weight=share,
            seconds=canary.seconds,
        )
        trouble = _watch_canary(control, champion.endpoint, canary_variant, canary)
        if trouble:
            control.call(
                "UpdateEndpoint",
                EndpointName=champion.endpoint,
                EndpointConfigName=champion.endpoint_config,
            )
            _wait_in_service(control, champion.endpoint)
            if package:
                control.call(
                    "UpdateModelPackage",
                    ModelPackageArn=package,
                    ModelApprovalStatus="Rejected",
                    ApprovalDescription=f"mlpilot retrain: the canary was rolled back: {trouble}"[
                        :1024
                    ],
                )
            outcome.decision = "rolled_back"
            outcome.reason = f"{why}; the canary was rolled back: {trouble}"
            step("rolled_back", endpoint_config=champion.endpoint_config, reason=trouble)
            return outcome
        final_config = _free_config(control, f"{stem}-all")
        control.call(
            "CreateEndpointConfig",
            EndpointConfigName=final_config,
            ProductionVariants=[{**served, "ModelName": model, "InitialVariantWeight": 1.0}],
            **settings,
        )
        control.call(
            "UpdateEndpoint", EndpointName=champion.endpoint, EndpointConfigName=final_config
        )
        _wait_in_service(control, champion.endpoint)
        outcome.decision = "promoted"
        outcome.reason = why
        step(
            "promoted",
            endpoint_config=final_config,
            variant=champion.variant,
            model=model,
            package=package,
        )
        return outcome
    except RetrainError as exc:
        outcome.decision = "failed"
        outcome.reason = f"{why}; promoting it failed: {exc}"
        _restore(control, champion)
        step("promotion_failed", reason=str(exc))
        return outcome


def _free_config(control: Control, name: str) -> str:
    """``name``, or ``name-<hhmmss>`` when an endpoint config has it (a version promoted again
    after a rollback)."""
    try:
        control.call("DescribeEndpointConfig", EndpointConfigName=name)
    except RetrainError:
        return name
    return f"{name[:55]}-{time.strftime('%H%M%S', time.gmtime())}"


def _config_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A described endpoint config's settings that CreateEndpointConfig takes, but its name
    and variants."""
    import botocore.session

    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .operation_model("CreateEndpointConfig")
        .input_shape
    )
    skip = {"EndpointConfigName", "ProductionVariants"}
    return {k: v for k, v in config.items() if k in shape.members and k not in skip}


def _variant(described: dict[str, Any]) -> dict[str, Any]:
    import botocore.session

    shape = (
        botocore.session.get_session().get_service_model("sagemaker").shape_for("ProductionVariant")
    )
    return {k: v for k, v in described.items() if k in shape.members}


def _wait_in_service(control: Control, endpoint: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = control.call("DescribeEndpoint", EndpointName=endpoint)["EndpointStatus"]
        if status == "InService":
            return
        if status == "Failed" or time.monotonic() > deadline:
            raise RetrainError(f"Endpoint {endpoint} is {status} after an update")
        time.sleep(0.5)


def _watch_canary(
    control: Control, endpoint: str, variant: str, canary: CanarySettings
) -> str | None:
    """Why the canary must go (5XX errors, or p99 latency past the limit), or None."""
    deadline = time.monotonic() + canary.seconds
    while True:
        stats = control.variant_metrics(endpoint).get(variant) or {}
        errors = int(stats.get("Invocation5XXErrors") or 0)
        if errors:
            calls = int(stats.get("Invocations") or 0)
            return f"{errors} of its {calls} invocation(s) failed (5XX)"
        latency = (stats.get("ModelLatency") or {}).get("p99")
        limit = canary.max_latency_ms
        if limit is not None and latency is not None and float(latency) / 1000.0 > limit:
            return f"its p99 model latency {float(latency) / 1000.0:.1f} ms passed {limit:g} ms"
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
