"""The job spec: what a job is asked to do, built once and validated once.

A :class:`JobConfig` holds what every problem type shares (name, data channels, output,
completion criteria, seed, parallelism) and one problem type's own settings (``problem``: a
:class:`ProblemConfig`, e.g. :class:`~mlpilot.config.TabularConfig`). It is built from the
Python API, the CLI or a CreateAutoMLJobV2 request (:meth:`JobConfig.from_request`, where every
rule the request's shapes cannot state is checked), and written beside the job's record
(:meth:`JobConfig.to_dict`) so a later step (the candidate-definition notebook's training, the
service's job runner) reads it back instead of parsing the request again.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import pandas as pd

from mlpilot.config._forecasting import ForecastingConfig
from mlpilot.config._tabular import TabularConfig
from mlpilot.config._text import TextClassificationConfig
from mlpilot.data import one_line, resolve_uri
from mlpilot.errors import ConfigError
from mlpilot.metrics import CostMatrix, ObjectiveFunction
from mlpilot.search import Portfolio

__all__ = ["JobConfig", "ProblemConfig", "problem_configs"]

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
DEFAULT_MAX_CANDIDATES = 100  # SageMaker's HPO default
MAX_CANDIDATES_LIMIT = 750
#: What a DataFrame given to the Python API is called in the request and the spec file.
IN_MEMORY = "dataframe://in-memory"
#: mlpilot's DataSplitConfig extensions, carried as tags: boto3 validates request members
#: against SageMaker's model, so a member of our own could not be sent, while any tag can.
SPLIT_TAGS = {"split_by_time": "mlpilot:SplitByTime", "split_by_group": "mlpilot:SplitByGroup"}
#: ``false`` turns off the data-exploration notebook's run and the explainability and
#: model-quality reports of one job (``generate_reports``; ``mlpilot run --no-reports``).
REPORTS_TAG = "mlpilot:GenerateReports"
#: A tabular job's single-row latency limit in milliseconds (``TabularConfig.max_latency_ms``).
LATENCY_TAG = "mlpilot:MaxLatencyMs"
#: A tabular classification job's cost matrix (``TabularConfig.cost_matrix``): inline as
#: ``no=0:1/yes=5:0`` (a tag value allows no JSON), or the location of its JSON document (an
#: absolute path, ``file://`` or ``s3://`` URI).
COST_MATRIX_TAG = "mlpilot:CostMatrix"
#: A tabular ENSEMBLING job's portfolio (``TabularConfig.portfolio``): the location of a file in
#: ``portfolio.json``'s format (an absolute path, ``file://`` or ``s3://`` URI).
PORTFOLIO_TAG = "mlpilot:Portfolio"
#: A user metric's entry point ``module:function`` (``TabularConfig.objective_function``); the
#: service runs it only from the modules it is told to allow.
OBJECTIVE_TAG = "mlpilot:Objective"
#: The user metric's direction: ``Maximize`` or ``Minimize`` (required with the metric).
OBJECTIVE_DIRECTION_TAG = "mlpilot:ObjectiveDirection"
#: What the user metric's ``y_pred`` is for classification: ``labels`` (default) or
#: ``probabilities``.
OBJECTIVE_INPUT_TAG = "mlpilot:ObjectiveInput"
#: A tabular job's fairness settings (``TabularConfig`` field → tag).
FAIRNESS_TAGS = {
    "sensitive_attribute": "mlpilot:SensitiveAttribute",
    "max_disparity": "mlpilot:MaxDisparity",
    "disparity_metric": "mlpilot:DisparityMetric",
}


class ProblemConfig(Protocol):
    """One problem type's settings: the body of CreateAutoMLJobV2's
    ``AutoMLProblemTypeConfig.<config_name>JobConfig`` (less its ``CompletionCriteria``, which
    the job holds).

    Each problem type's config is a frozen dataclass that validates its own fields on
    construction; :meth:`check` validates what depends on the job's common fields too.
    """

    #: ``AutoMLProblemTypeConfigName``: ``"Tabular"``, ``"TimeSeriesForecasting"``...
    config_name: ClassVar[str]
    #: The channels' ``ContentType`` when the request gives none.
    default_content_type: ClassVar[str]
    #: What the jobs are called in messages (``"tabular jobs"``).
    jobs: ClassVar[str]

    @property
    def candidates_only(self) -> bool:
        """Stop once the candidates are defined (``GenerateCandidateDefinitionsOnly``)."""
        ...

    def check(self, job: JobConfig) -> None:
        """Raise :class:`~mlpilot.errors.ConfigError` for a combination with the job's own
        fields this problem type cannot run (content type, objective, data type...)."""
        ...

    def to_request(self) -> dict[str, Any]:
        """The request's ``<config_name>JobConfig`` body (without ``CompletionCriteria``)."""
        ...

    @classmethod
    def from_request(cls, body: dict[str, Any]) -> ProblemConfig:
        """Read the request's ``<config_name>JobConfig`` body."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; :meth:`from_dict` reads it back."""
        ...

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProblemConfig: ...


P = TypeVar("P", bound=ProblemConfig)


def problem_configs() -> dict[str, type[ProblemConfig]]:
    """The problem types a job can be configured for, by ``AutoMLProblemTypeConfigName``."""
    return {c.config_name: c for c in (TabularConfig, ForecastingConfig, TextClassificationConfig)}


@dataclass(frozen=True, eq=False)
class JobConfig:
    """Everything that defines an AutoML job.

    Parameters mirror ``CreateAutoMLJobV2``: the input channels, ``OutputDataConfig``,
    ``AutoMLJobObjective``, ``CompletionCriteria``, ``DataSplitConfig``; ``problem`` is the
    ``AutoMLProblemTypeConfig`` (:class:`~mlpilot.config.TabularConfig` for a table).
    ``training_data`` and ``validation_data`` are paths, ``file://`` or ``s3://`` URIs, or
    DataFrames (Python API only).

    Examples
    --------
    >>> JobConfig(name="churn", training_data="examples/churn.csv", output_path="runs/churn",
    ...           problem=TabularConfig(target="Churn"), max_runtime=60)  # doctest: +SKIP
    """

    name: str
    training_data: str | pd.DataFrame
    output_path: str
    problem: ProblemConfig
    validation_data: str | pd.DataFrame | None = None
    content_type: str | None = None
    compression: str | None = None
    data_type: str = "S3Prefix"
    objective: str | None = None
    max_candidates: int | None = None
    max_runtime_per_candidate: int | None = None
    max_runtime: int | None = None
    validation_fraction: float | None = None
    #: Validate on the latest rows by this column (CV: time-series folds); not SageMaker's.
    split_by_time: str | None = None
    #: Keep each value of this (entity) column's rows on one side of every split.
    split_by_group: str | None = None
    seed: int = 0
    parallelism: int | None = None
    #: Run the data-exploration notebook and write the explainability and model-quality
    #: reports (``mlpilot report JOB --generate`` makes them later when off).
    generate_reports: bool = True
    role_arn: str = "arn:aws:iam::000000000000:role/mlpilot"
    region: str = "us-east-1"
    account_id: str = "000000000000"
    tags: tuple[dict[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # SageMaker's pattern, whole string (``$`` alone lets a trailing newline through), and its
        # length limit (the pattern alone allows any number of hyphens).
        if (
            not isinstance(self.name, str)
            or len(self.name) > 32
            or not JOB_NAME.fullmatch(self.name)
        ):
            raise ConfigError(
                f"Job name {self.name!r} must be 1-32 letters, digits or hyphens, starting and "
                "ending with a letter or digit"
            )
        known = problem_configs()
        if type(self.problem) not in known.values():
            raise ConfigError(
                f"problem must be one of {', '.join(c.__name__ for c in known.values())}; got "
                f"{type(self.problem).__name__}"
            )
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.max_candidates is not None and not 1 <= self.max_candidates <= MAX_CANDIDATES_LIMIT:
            raise ConfigError(
                f"MaxCandidates must be between 1 and {MAX_CANDIDATES_LIMIT}; got "
                f"{self.max_candidates}"
            )
        for label, value in (
            ("MaxRuntimePerTrainingJobInSeconds", self.max_runtime_per_candidate),
            ("MaxAutoMLJobRuntimeInSeconds", self.max_runtime),
        ):
            if value is not None and value < 1:
                raise ConfigError(f"{label} must be at least 1; got {value}")
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise ConfigError(
                f"ValidationFraction must be between 0 and 1 (exclusive); got "
                f"{self.validation_fraction}"
            )
        if self.validation_fraction is not None and self.validation_data is not None:
            raise ConfigError("Give either a validation channel or ValidationFraction, not both")
        if self.split_by_time is not None and self.split_by_group is not None:
            raise ConfigError("Give either a time split or a group split, not both")
        split = self.split_by_time or self.split_by_group
        if split is not None:
            if not isinstance(split, str) or not split:
                raise ConfigError("The split column must be a column name")
            if self.validation_data is not None:
                raise ConfigError(
                    "A validation channel is the validation set: it cannot be split by time "
                    "or group too"
                )
        if self.compression not in (None, "None", "Gzip"):
            raise ConfigError(f"CompressionType must be None or Gzip; got {self.compression!r}")
        if self.parallelism is not None and self.parallelism < 1:
            raise ConfigError(f"Parallelism must be at least 1; got {self.parallelism}")
        if isinstance(self.output_path, str) and self.output_path.startswith("s3://"):
            raise ConfigError(
                "The engine writes its output to a local folder; S3 output is the service's job"
            )
        self.problem.check(self)

    @classmethod
    def tabular(cls, *, target: str, **settings: Any) -> JobConfig:
        """A table's job from flat settings: :class:`~mlpilot.config.TabularConfig`'s fields
        (``problem_type``, ``mode``, ``algorithms``, ``sample_weight``...) make ``problem``, the
        others are the job's own (``name``, ``training_data``, ``max_runtime``...)."""
        table = {f.name for f in fields(TabularConfig)}
        return cls(
            problem=TabularConfig(
                target=target, **{k: v for k, v in settings.items() if k in table}
            ),
            **{k: v for k, v in settings.items() if k not in table},
        )

    def problem_as(self, kind: type[P]) -> P:
        """``problem``, which a problem type's code expects to be its own config ``kind``."""
        if not isinstance(self.problem, kind):
            raise ConfigError(
                f"A {kind.config_name} job cannot run a {self.problem.config_name} job's config"
            )
        return self.problem

    # -- derived --------------------------------------------------------------------------
    @property
    def output_dir(self) -> Path:
        path = str(self.output_path)
        return Path(path[len("file://") :] if path.startswith("file://") else path)

    @property
    def effective_max_candidates(self) -> int:
        return self.max_candidates or DEFAULT_MAX_CANDIDATES

    def completion_criteria(self) -> dict[str, int]:
        """``CompletionCriteria`` as given (members left out are not set)."""
        return {
            k: v
            for k, v in (
                ("MaxCandidates", self.max_candidates),
                ("MaxRuntimePerTrainingJobInSeconds", self.max_runtime_per_candidate),
                ("MaxAutoMLJobRuntimeInSeconds", self.max_runtime),
            )
            if v is not None
        }

    # -- the spec file --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a DataFrame channel is written as ``dataframe://in-memory``);
        :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name == "problem":
                value = {"ConfigName": self.problem.config_name, **self.problem.to_dict()}
            elif isinstance(value, pd.DataFrame):
                value = IN_MEMORY
            elif isinstance(value, tuple):
                value = list(value)
            out[spec.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"Job spec: unknown field(s) {', '.join(unknown)}")
        values = dict(data)
        for channel in ("training_data", "validation_data"):
            if values.get(channel) == IN_MEMORY:
                raise ConfigError(
                    f"Job {values.get('name')}: its {channel.replace('_', ' ')} was a DataFrame "
                    "given in memory; give it again as a file"
                )
        problem = dict(values.pop("problem"))
        config_name = problem.pop("ConfigName", None)
        kinds = problem_configs()
        if config_name not in kinds:
            raise ConfigError(f"Job spec: unknown problem type config {config_name!r}")
        values["tags"] = tuple(values.get("tags") or ())
        return cls(problem=kinds[config_name].from_dict(problem), **values)

    # -- SageMaker request shapes ---------------------------------------------------------
    @classmethod
    def from_request(
        cls, request: dict[str, Any], *, output_path: str | None = None, **settings: Any
    ) -> JobConfig:
        """Build from a CreateAutoMLJobV2 request body whose shapes botocore's service model
        has checked; the rules the shapes cannot state are checked here (and by the problem
        config's own validation). ``settings`` set the fields a request has no member for
        (``region``, ``parallelism``, ``seed``...)."""
        config_name, body = _problem_block(request)
        kind = problem_configs()[config_name]
        training, validation = _channels(request, kind.default_content_type)
        if validation is not None and request.get("DataSplitConfig"):
            raise ConfigError("Give either a validation channel or DataSplitConfig, not both")
        output = request["OutputDataConfig"]["S3OutputPath"]
        if output.startswith("https://"):
            raise ConfigError(
                f"S3OutputPath {output!r}: give an s3:// URI, a file:// URI or an absolute path"
            )
        source = training["DataSource"]["S3DataSource"]
        criteria = body.get("CompletionCriteria") or {}
        name = request["AutoMLJobName"]
        problem = kind.from_request(body)
        latency_ms = _latency_tag(request.get("Tags") or ())
        if latency_ms is not None:
            if not isinstance(problem, TabularConfig):
                raise ConfigError(f"Tag {LATENCY_TAG} applies to tabular jobs only")
            problem = replace(problem, max_latency_ms=latency_ms)
        custom = _objective_tags(request.get("Tags") or ())
        if custom:
            if not isinstance(problem, TabularConfig):
                raise ConfigError(
                    f"Tags {COST_MATRIX_TAG} and {OBJECTIVE_TAG} apply to tabular jobs only"
                )
            problem = replace(problem, **custom)
        portfolio = _one_tag(request.get("Tags") or (), PORTFOLIO_TAG)
        if portfolio is not None:
            if not isinstance(problem, TabularConfig):
                raise ConfigError(f"Tag {PORTFOLIO_TAG} applies to tabular jobs only")
            problem = replace(problem, portfolio=_tag_portfolio(portfolio))
        fairness = _fairness_tags(request.get("Tags") or ())
        if fairness:
            if not isinstance(problem, TabularConfig):
                raise ConfigError(
                    f"Tags {', '.join(FAIRNESS_TAGS.values())} apply to tabular jobs only"
                )
            problem = replace(problem, **fairness)
        values: dict[str, Any] = {
            "name": name,
            "training_data": source["S3Uri"],
            "data_type": source.get("S3DataType", "S3Prefix"),
            "content_type": training.get("ContentType"),
            "compression": training.get("CompressionType"),
            "validation_data": (
                None if validation is None else validation["DataSource"]["S3DataSource"]["S3Uri"]
            ),
            "output_path": output_path or f"{output.rstrip('/')}/{name}",
            "problem": problem,
            # SageMaker's documentation asks for ProblemType and the objective together; AWS's
            # own recipes give ProblemType alone. A missing objective is the problem type's
            # default; a lone objective is checked against the inferred problem type once the
            # data is analysed.
            "objective": (request.get("AutoMLJobObjective") or {}).get("MetricName"),
            "max_candidates": criteria.get("MaxCandidates"),
            "max_runtime_per_candidate": criteria.get("MaxRuntimePerTrainingJobInSeconds"),
            "max_runtime": criteria.get("MaxAutoMLJobRuntimeInSeconds"),
            "validation_fraction": (request.get("DataSplitConfig") or {}).get("ValidationFraction"),
            **_split_tags(request.get("Tags") or ()),
            **_reports_tag(request.get("Tags") or ()),
            "role_arn": request.get("RoleArn", cls.role_arn),
            "tags": tuple(request.get("Tags") or ()),
        }
        values.update(settings)
        return cls(**values)

    def to_request(self) -> dict[str, Any]:
        """The CreateAutoMLJobV2 request this configuration corresponds to."""

        def channel(kind: str, uri: Any) -> dict[str, Any]:
            return {
                "ChannelType": kind,
                "ContentType": self.content_type or self.problem.default_content_type,
                "CompressionType": self.compression or "None",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": self.data_type,
                        "S3Uri": uri if isinstance(uri, str) else IN_MEMORY,
                    }
                },
            }

        channels = [channel("training", self.training_data)]
        if self.validation_data is not None:
            channels.append(channel("validation", self.validation_data))
        body = self.problem.to_request()
        criteria = self.completion_criteria()
        if criteria:
            body["CompletionCriteria"] = criteria
        request: dict[str, Any] = {
            "AutoMLJobName": self.name,
            "AutoMLJobInputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": str(Path(str(self.output_path)).parent)},
            "AutoMLProblemTypeConfig": {f"{self.problem.config_name}JobConfig": body},
            "RoleArn": self.role_arn,
        }
        if self.objective is not None:
            request["AutoMLJobObjective"] = {"MetricName": self.objective}
        if self.validation_fraction is not None:
            request["DataSplitConfig"] = {"ValidationFraction": self.validation_fraction}
        tags = list(self.tags)
        for name, key in SPLIT_TAGS.items():
            column = getattr(self, name)
            if column is not None and not any(t.get("Key") == key for t in tags):
                tags.append({"Key": key, "Value": column})
        if not self.generate_reports and not any(t.get("Key") == REPORTS_TAG for t in tags):
            tags.append({"Key": REPORTS_TAG, "Value": "false"})
        latency_ms = getattr(self.problem, "max_latency_ms", None)
        if latency_ms is not None and not any(t.get("Key") == LATENCY_TAG for t in tags):
            tags.append({"Key": LATENCY_TAG, "Value": f"{latency_ms:g}"})
        custom = getattr(self.problem, "custom_objective", None)
        keys = {t.get("Key") for t in tags}
        if isinstance(custom, CostMatrix) and COST_MATRIX_TAG not in keys:
            # Labels the inline form cannot spell go as JSON: what the job was given, though a
            # service would want that document's location instead.
            value = custom.to_inline() or json.dumps(custom.to_dict(), separators=(",", ":"))
            tags.append({"Key": COST_MATRIX_TAG, "Value": value})
        if isinstance(custom, ObjectiveFunction) and OBJECTIVE_TAG not in keys:
            tags.append({"Key": OBJECTIVE_TAG, "Value": custom.entry_point})
            tags.append({"Key": OBJECTIVE_DIRECTION_TAG, "Value": custom.direction})
            if custom.probabilities:
                tags.append({"Key": OBJECTIVE_INPUT_TAG, "Value": "probabilities"})
        portfolio = getattr(self.problem, "portfolio", None)
        if portfolio is not None and PORTFOLIO_TAG not in keys:
            tags.append({"Key": PORTFOLIO_TAG, "Value": portfolio.location})
        if isinstance(self.problem, TabularConfig) and self.problem.sensitive_attribute:
            for name, key in FAIRNESS_TAGS.items():
                value = getattr(self.problem, name)
                if value is not None and not any(t.get("Key") == key for t in tags):
                    tags.append(
                        {"Key": key, "Value": value if isinstance(value, str) else f"{value:g}"}
                    )
        if tags:
            request["Tags"] = tags
        return request


def _split_tags(tags: Any) -> dict[str, str]:
    """The split settings among the request's tags."""
    keys = {key: name for name, key in SPLIT_TAGS.items()}
    return {keys[t["Key"]]: t.get("Value", "") for t in tags if t.get("Key") in keys}


def _reports_tag(tags: Any) -> dict[str, bool]:
    """``generate_reports`` from the request's tags, when one sets it."""
    values = [t.get("Value", "") for t in tags if t.get("Key") == REPORTS_TAG]
    if not values:
        return {}
    if len(values) > 1:
        raise ConfigError(f"Tag {REPORTS_TAG} is given {len(values)} times; give it once")
    value = values[0].strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"Tag {REPORTS_TAG} must be true or false; got {values[0]!r}")
    return {"generate_reports": value == "true"}


def _latency_tag(tags: Any) -> float | None:
    """The latency limit among the request's tags (milliseconds), checked."""
    values = [t.get("Value", "") for t in tags if t.get("Key") == LATENCY_TAG]
    if not values:
        return None
    if len(values) > 1:
        raise ConfigError(f"Tag {LATENCY_TAG} is given {len(values)} times; give it once")
    try:
        value = float(values[0])
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"Tag {LATENCY_TAG}: expected a positive number of milliseconds (e.g. 5 or 2.5); "
            f"got {values[0]!r}"
        )
    return value


def _one_tag(tags: Any, key: str) -> str | None:
    values = [str(t.get("Value", "")) for t in tags if t.get("Key") == key]
    if len(values) > 1:
        raise ConfigError(f"Tag {key} is given {len(values)} times; give it once")
    return values[0] if values else None


def cost_matrix_location(value: str) -> bool:
    """Whether a ``mlpilot:CostMatrix`` tag names a JSON document's location (else it holds
    the matrix inline)."""
    return _is_location(value)


def _is_location(value: str) -> bool:
    """An absolute path or a URI (what a tag naming a document holds)."""
    text = value.strip()
    return text.startswith("/") or "://" in text


def _tag_cost_matrix(value: str) -> CostMatrix:
    source = f"Tag {COST_MATRIX_TAG}"
    if value.strip().startswith("{"):
        return CostMatrix.from_json(value, source)
    if not cost_matrix_location(value):
        return CostMatrix.parse_inline(value, source)
    location = value.strip()
    fs, path = resolve_uri(location)
    try:
        with fs.open(path, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source}: cannot read {location} ({one_line(exc)})") from None
    return CostMatrix.from_json(text, f"{source}: cost matrix {location}")


def _tag_portfolio(value: str) -> Portfolio:
    location = value.strip()
    if not _is_location(location):
        raise ConfigError(
            f"Tag {PORTFOLIO_TAG}: give the portfolio file's absolute path, file:// or s3:// "
            f"URI; got {value!r}"
        )
    return Portfolio.load(location)


def _objective_tags(tags: Any) -> dict[str, Any]:
    """``cost_matrix`` / ``objective_function`` from the request's tags, checked (the user
    metric's module is not imported here)."""
    matrix = _one_tag(tags, COST_MATRIX_TAG)
    entry_point = _one_tag(tags, OBJECTIVE_TAG)
    direction = _one_tag(tags, OBJECTIVE_DIRECTION_TAG)
    given_input = _one_tag(tags, OBJECTIVE_INPUT_TAG)
    out: dict[str, Any] = {}
    if matrix is not None:
        out["cost_matrix"] = _tag_cost_matrix(matrix)
    if entry_point is None:
        for key, value in (
            (OBJECTIVE_DIRECTION_TAG, direction),
            (OBJECTIVE_INPUT_TAG, given_input),
        ):
            if value is not None:
                raise ConfigError(f"Tag {key} goes with tag {OBJECTIVE_TAG} (module:function)")
        return out
    if direction is None or direction.strip().lower() not in ("maximize", "minimize"):
        raise ConfigError(
            f"Tag {OBJECTIVE_TAG} needs tag {OBJECTIVE_DIRECTION_TAG}: Maximize or Minimize"
            + ("" if direction is None else f"; got {direction!r}")
        )
    kind = (given_input or "labels").strip().lower()
    if kind not in ("labels", "probabilities"):
        raise ConfigError(
            f"Tag {OBJECTIVE_INPUT_TAG} must be labels or probabilities; got {given_input!r}"
        )
    out["objective_function"] = ObjectiveFunction(
        entry_point.strip(),
        maximize=direction.strip().lower() == "maximize",
        probabilities=kind == "probabilities",
    )
    return out


def _fairness_tags(tags: Any) -> dict[str, Any]:
    """The fairness settings among the request's tags, as ``TabularConfig`` fields (its own
    validation checks their values together)."""
    found: dict[str, Any] = {}
    for name, key in FAIRNESS_TAGS.items():
        values = [t.get("Value", "") for t in tags if t.get("Key") == key]
        if len(values) > 1:
            raise ConfigError(f"Tag {key} is given {len(values)} times; give it once")
        if values:
            found[name] = values[0].strip()
    if "max_disparity" in found:
        try:
            found["max_disparity"] = float(found["max_disparity"])
        except ValueError:
            raise ConfigError(
                f"Tag {FAIRNESS_TAGS['max_disparity']}: expected a number between 0 and 1 "
                f"(e.g. 0.05); got {found['max_disparity']!r}"
            ) from None
    return found


def _problem_block(request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(config name, body)`` of the request's one supported ``AutoMLProblemTypeConfig``."""
    given = {
        k: v for k, v in (request.get("AutoMLProblemTypeConfig") or {}).items() if v is not None
    }
    kinds = problem_configs()
    supported = {f"{name}JobConfig": name for name in kinds}
    if len(given) != 1 or next(iter(given)) not in supported:
        names = ", ".join(f"{key} ({kinds[name].jobs})" for key, name in supported.items())
        got = ", ".join(given) or "nothing"
        raise ConfigError(f"mlpilot runs these AutoML problem types: {names}; got {got}")
    key, body = next(iter(given.items()))
    return supported[key], body


def _channels(
    request: dict[str, Any], default_content_type: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The training channel and the validation channel (if any)."""
    channels = request.get("AutoMLJobInputDataConfig") or []
    types = [c.get("ChannelType", "training") for c in channels]
    if types.count("training") != 1 or types.count("validation") > 1:
        raise ConfigError(
            "AutoMLJobInputDataConfig must have exactly one training channel and at most one "
            f"validation channel; got {types}"
        )
    contents = {c.get("ContentType") or default_content_type for c in channels}
    if len(contents) > 1:
        raise ConfigError(
            "The training and validation channels must have the same ContentType; got "
            f"{sorted(contents)}"
        )
    training = channels[types.index("training")]
    validation = channels[types.index("validation")] if "validation" in types else None
    return training, validation
