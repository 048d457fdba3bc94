"""A table's settings: CreateAutoMLJobV2's ``TabularJobConfig``, plus mlpilot's own."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mlpilot._types import Mode, ProblemType
from mlpilot.algorithms import algorithm_path
from mlpilot.config._channels import CSV, check_table_channels
from mlpilot.errors import ConfigError
from mlpilot.metrics import (
    DISPARITY_METRICS,
    CostMatrix,
    ObjectiveFunction,
    get_metric,
    metric_names,
)
from mlpilot.profile import FeatureSpecification
from mlpilot.search import CandidateDefinition, Portfolio

if TYPE_CHECKING:
    from mlpilot.config._job import JobConfig

__all__ = ["TabularConfig"]

#: Autopilot's time-series algorithms: named in a tabular job, they get their own message.
TIME_SERIES_ALGORITHMS = frozenset({"cnn-qr", "deepar", "prophet", "npts", "arima", "ets"})


@dataclass(frozen=True, eq=False)
class TabularConfig:
    """Binary or multiclass classification or regression of one column of a table.

    Fields mirror ``TabularJobConfig`` (``TargetAttributeName``, ``ProblemType``, ``Mode``,
    ``CandidateGenerationConfig.AlgorithmsConfig``, ``SampleWeightAttributeName``,
    ``FeatureSpecificationS3Uri``, ``GenerateCandidateDefinitionsOnly``); ``max_latency_ms``,
    ``candidates``, ``cost_matrix``, ``objective_function``, ``portfolio`` and the fairness
    settings (``sensitive_attribute``, ``max_disparity``, ``disparity_metric``) are mlpilot's
    own.
    """

    config_name: ClassVar[str] = "Tabular"
    default_content_type: ClassVar[str] = CSV
    jobs: ClassVar[str] = "tabular jobs"

    target: str
    problem_type: ProblemType | None = None
    mode: Mode = Mode.AUTO
    algorithms: tuple[str, ...] | None = None
    sample_weight: str | None = None
    #: A JSON document's URI, or the document itself.
    feature_specification: str | FeatureSpecification | None = None
    candidates_only: bool = False
    #: The shipped model should predict one row within this many milliseconds, as measured in
    #: the job: ENSEMBLING selects and packages within it, HYPERPARAMETER_TUNING ships the best
    #: candidate within it (else the fastest). Not a SageMaker field: the API's tag
    #: ``mlpilot:MaxLatencyMs``, the CLI's ``--max-latency-ms``.
    max_latency_ms: float | None = None
    #: Candidate pipelines searched instead of the algorithms' built-in ones: the
    #: candidate-definition notebook's knob (see :class:`mlpilot.search.CandidateDefinition`).
    candidates: tuple[CandidateDefinition, ...] | None = None
    #: Classification: the job minimises the expected cost of these costs[actual][predicted]
    #: (objective ``ExpectedCost``) and the model predicts the cost-minimising class. The API's
    #: tag ``mlpilot:CostMatrix``, the CLI's ``--cost-matrix``.
    cost_matrix: CostMatrix | None = None
    #: A user metric ranking the candidates in place of SageMaker's objectives. The API's tags
    #: ``mlpilot:Objective`` (+ ``mlpilot:ObjectiveDirection``, ``mlpilot:ObjectiveInput``),
    #: the CLI's ``--objective module:function --objective-direction``.
    objective_function: ObjectiveFunction | None = None
    #: A column whose groups the model-quality report compares (selection rate, TPR, FPR,
    #: accuracy per group; demographic-parity and equalized-odds differences). It stays a
    #: feature unless a feature specification leaves it out. Tag ``mlpilot:SensitiveAttribute``,
    #: the CLI's ``--sensitive-attribute``.
    sensitive_attribute: str | None = None
    #: The shipped model's disparity on the validation predictions must be at most this (0 to
    #: 1): the best candidate within it ships, else the one with the least disparity. Binary
    #: classification only. Tag ``mlpilot:MaxDisparity``, the CLI's ``--max-disparity``.
    max_disparity: float | None = None
    #: Which disparity ``max_disparity`` bounds: ``demographic_parity`` or ``equalized_odds``.
    #: Tag ``mlpilot:DisparityMetric``, the CLI's ``--disparity-metric``.
    disparity_metric: str = DISPARITY_METRICS[0]
    #: ENSEMBLING trains this portfolio (a file in ``portfolio.json``'s format, read and
    #: checked when the job is specified) in place of the shipped one. Tag
    #: ``mlpilot:Portfolio``, the CLI's ``--portfolio``; a path or URI is loaded here.
    portfolio: Portfolio | None = None

    def __post_init__(self) -> None:
        if not self.target or not isinstance(self.target, str):
            raise ConfigError("A target column is required")
        if self.problem_type is not None:
            object.__setattr__(
                self, "problem_type", _enum(ProblemType, self.problem_type, "problem type")
            )
        object.__setattr__(self, "mode", _enum(Mode, self.mode, "mode"))
        if self.algorithms is not None:
            object.__setattr__(self, "algorithms", tuple(self.algorithms))
            if self.mode is Mode.AUTO:
                raise ConfigError(
                    "AlgorithmsConfig cannot be set when Mode is AUTO; set Mode to ENSEMBLING or "
                    "HYPERPARAMETER_TUNING"
                )
            for name in self.algorithms:
                if name in TIME_SERIES_ALGORITHMS:
                    raise ConfigError(f"Algorithm {name} is for time-series forecasting jobs only")
                algorithm_path(name)
        if self.candidates is not None:
            object.__setattr__(self, "candidates", tuple(self.candidates))
            if not self.candidates or not all(
                isinstance(c, CandidateDefinition) for c in self.candidates
            ):
                raise ConfigError("candidates must be one or more CandidateDefinition objects")
            if self.algorithms is not None and set(self.algorithms) != {
                c.algorithm for c in self.candidates
            }:
                raise ConfigError(
                    "Give either algorithms or candidates: the candidates' algorithms "
                    "differ from the algorithms given"
                )
        if self.max_latency_ms is not None and not (
            isinstance(self.max_latency_ms, int | float)
            and not isinstance(self.max_latency_ms, bool)
            and math.isfinite(self.max_latency_ms)
            and self.max_latency_ms > 0
        ):
            raise ConfigError(f"The latency limit must be positive; got {self.max_latency_ms} ms")
        if self.cost_matrix is not None and not isinstance(self.cost_matrix, CostMatrix):
            raise ConfigError("cost_matrix must be a CostMatrix (CostMatrix.load reads JSON)")
        if self.objective_function is not None and not isinstance(
            self.objective_function, ObjectiveFunction
        ):
            raise ConfigError("objective_function must be an ObjectiveFunction")
        if self.cost_matrix is not None and self.objective_function is not None:
            raise ConfigError("Give either a cost matrix or a user objective, not both")
        if self.cost_matrix is not None and self.problem_type is ProblemType.REGRESSION:
            raise ConfigError(
                "A cost matrix applies to binary and multiclass classification, not Regression"
            )
        self._check_fairness()
        if isinstance(self.portfolio, str | os.PathLike):
            object.__setattr__(self, "portfolio", Portfolio.load(self.portfolio))
        if self.portfolio is not None:
            if not isinstance(self.portfolio, Portfolio):
                raise ConfigError("portfolio must be a Portfolio, or a portfolio file's path")
            if self.mode is Mode.HYPERPARAMETER_TUNING:
                raise ConfigError(
                    "A portfolio is what ENSEMBLING trains: give it with Mode ENSEMBLING or "
                    "AUTO, not HYPERPARAMETER_TUNING"
                )

    @property
    def custom_objective(self) -> CostMatrix | ObjectiveFunction | None:
        """The cost matrix or user metric that replaces SageMaker's objective, if any."""
        return self.cost_matrix or self.objective_function

    def _check_fairness(self) -> None:
        column = self.sensitive_attribute
        if column is not None and (not isinstance(column, str) or not column.strip()):
            raise ConfigError("The sensitive attribute must be a column name")
        if column is not None and column in (self.target, self.sample_weight):
            raise ConfigError(
                f"The sensitive attribute {column!r} cannot be the target or the sample weight"
            )
        if self.disparity_metric not in DISPARITY_METRICS:
            raise ConfigError(
                f"Unknown disparity metric {self.disparity_metric!r}; valid values: "
                f"{', '.join(DISPARITY_METRICS)}"
            )
        if column is not None and self.problem_type is ProblemType.REGRESSION:
            raise ConfigError(
                "Fairness metrics (a sensitive attribute) apply to classification jobs; this job "
                "is a regression"
            )
        if self.max_disparity is None:
            return
        value = self.max_disparity
        if not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and 0 <= value <= 1
        ):
            raise ConfigError(f"The maximum disparity must be between 0 and 1; got {value}")
        if column is None:
            raise ConfigError("A maximum disparity needs a sensitive attribute to measure it by")
        if self.problem_type is ProblemType.MULTICLASS:
            raise ConfigError(
                "A maximum disparity applies to binary classification: demographic parity and "
                "equalized odds are not defined for a multiclass job (its report still shows "
                "the count and accuracy per group)"
            )

    def check(self, job: JobConfig) -> None:
        if job.objective is not None and self.custom_objective is not None:
            given = "a cost matrix" if self.cost_matrix is not None else "a user objective"
            raise ConfigError(
                f"Give either the objective metric {job.objective} or {given}, not both"
            )
        if job.objective is not None:
            metric = get_metric(job.objective, self.problem_type)
            if not metric.problem_types:  # resolved without a problem type: forecasting's own
                raise ConfigError(
                    f"Objective metric {job.objective!r} is a time-series forecasting metric; "
                    f"valid names for a tabular job: {', '.join(metric_names())}"
                )
        check_table_channels(job, self.jobs)

    def load_feature_specification(self) -> FeatureSpecification | None:
        spec = self.feature_specification
        if spec is None or isinstance(spec, FeatureSpecification):
            return spec
        return FeatureSpecification.load(spec)

    # -- TabularJobConfig ------------------------------------------------------------------
    @classmethod
    def from_request(cls, body: dict[str, Any]) -> TabularConfig:
        generation = body.get("CandidateGenerationConfig") or {}
        algorithms = None
        if generation.get("AlgorithmsConfig"):
            names = generation["AlgorithmsConfig"][0].get("AutoMLAlgorithms") or []
            algorithms = tuple(names) if names else None
        return cls(
            target=body["TargetAttributeName"],
            problem_type=body.get("ProblemType"),
            mode=body.get("Mode", Mode.AUTO.value),
            algorithms=algorithms,
            sample_weight=body.get("SampleWeightAttributeName"),
            feature_specification=body.get("FeatureSpecificationS3Uri"),
            candidates_only=bool(body.get("GenerateCandidateDefinitionsOnly", False)),
        )

    def to_request(self) -> dict[str, Any]:
        body: dict[str, Any] = {"TargetAttributeName": self.target, "Mode": self.mode.value}
        if self.problem_type is not None:
            body["ProblemType"] = self.problem_type.value
        if self.algorithms is not None:
            body["CandidateGenerationConfig"] = {
                "AlgorithmsConfig": [{"AutoMLAlgorithms": list(self.algorithms)}]
            }
        if self.sample_weight:
            body["SampleWeightAttributeName"] = self.sample_weight
        if isinstance(self.feature_specification, str):
            body["FeatureSpecificationS3Uri"] = self.feature_specification
        if self.candidates_only:
            body["GenerateCandidateDefinitionsOnly"] = True
        return body

    # -- the spec file ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        spec = self.feature_specification
        return {
            "target": self.target,
            "problem_type": None if self.problem_type is None else self.problem_type.value,
            "mode": self.mode.value,
            "algorithms": None if self.algorithms is None else list(self.algorithms),
            "sample_weight": self.sample_weight,
            "feature_specification": spec.to_dict()
            if isinstance(spec, FeatureSpecification)
            else spec,
            "candidates_only": self.candidates_only,
            "max_latency_ms": self.max_latency_ms,
            "candidates": None
            if self.candidates is None
            else [c.to_dict() for c in self.candidates],
            "cost_matrix": None if self.cost_matrix is None else self.cost_matrix.to_dict(),
            "objective_function": None
            if self.objective_function is None
            else self.objective_function.to_dict(),
            "sensitive_attribute": self.sensitive_attribute,
            "max_disparity": self.max_disparity,
            "disparity_metric": self.disparity_metric,
            "portfolio": None if self.portfolio is None else self.portfolio.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularConfig:
        values = dict(data)
        spec = values.get("feature_specification")
        if isinstance(spec, dict):
            values["feature_specification"] = FeatureSpecification.from_dict(spec)
        if values.get("candidates") is not None:
            values["candidates"] = tuple(
                CandidateDefinition.from_dict(c) for c in values["candidates"]
            )
        if values.get("cost_matrix") is not None:
            values["cost_matrix"] = CostMatrix.parse(values["cost_matrix"])
        if values.get("objective_function") is not None:
            values["objective_function"] = ObjectiveFunction(**values["objective_function"])
        if values.get("portfolio") is not None:
            values["portfolio"] = Portfolio.from_dict(values["portfolio"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"Job spec: bad tabular config: {exc}") from None


def _enum(cls: Any, value: Any, what: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        valid = ", ".join(m.value for m in cls)
        raise ConfigError(f"Unknown {what} {value!r}; valid values: {valid}") from None
