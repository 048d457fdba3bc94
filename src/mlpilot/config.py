"""Job configuration: what CreateAutoMLJobV2 asks for, as one validated dataclass.

:meth:`JobConfig.from_request` reads a CreateAutoMLJobV2 request body (SageMaker's names and
shapes); :meth:`JobConfig.to_request` writes it back, so the service echoes what it was given.
The engine itself only reads the dataclass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlpilot._types import Mode, ProblemType
from mlpilot.algorithms import algorithm_path
from mlpilot.errors import ConfigError
from mlpilot.metrics import get_metric
from mlpilot.profile import FeatureSpecification
from mlpilot.search import CandidateDefinition

__all__ = ["JobConfig"]

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
CSV = "text/csv;header=present"
PARQUET = "x-application/vnd.amazon+parquet"
DEFAULT_MAX_CANDIDATES = 100  # SageMaker's HPO default
MAX_CANDIDATES_LIMIT = 750


@dataclass(frozen=True, eq=False)
class JobConfig:
    """Everything that defines an AutoML job.

    Parameters mirror ``CreateAutoMLJobV2`` (``TabularJobConfig``, ``CompletionCriteria``,
    ``DataSplitConfig``...). ``training_data`` and ``validation_data`` are paths, ``file://`` or
    ``s3://`` URIs, or DataFrames (Python API only).
    """

    name: str
    training_data: str | pd.DataFrame
    target: str
    output_path: str
    validation_data: str | pd.DataFrame | None = None
    content_type: str | None = None
    compression: str | None = None
    data_type: str = "S3Prefix"
    problem_type: ProblemType | None = None
    objective: str | None = None
    mode: Mode = Mode.AUTO
    algorithms: tuple[str, ...] | None = None
    max_candidates: int | None = None
    max_runtime_per_candidate: int | None = None
    max_runtime: int | None = None
    validation_fraction: float | None = None
    sample_weight: str | None = None
    feature_specification: str | FeatureSpecification | None = None
    candidates_only: bool = False
    seed: int = 0
    parallelism: int | None = None
    #: ENSEMBLING: the packaged model must predict one row within this many milliseconds
    #: (the ensemble gives up accuracy for it); not a SageMaker field.
    max_latency_ms: float | None = None
    #: Candidate pipelines searched instead of the algorithms' built-in ones: the
    #: candidate-definition notebook's knob (see :class:`mlpilot.search.CandidateDefinition`).
    candidates: tuple[CandidateDefinition, ...] | None = None
    #: Run the data-exploration notebook and write the explainability and model-quality
    #: reports (``mlpilot report JOB --generate`` makes them later when off).
    generate_reports: bool = True
    role_arn: str = "arn:aws:iam::000000000000:role/mlpilot"
    region: str = "us-east-1"
    account_id: str = "000000000000"
    tags: tuple[dict[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def problem_config_name(self) -> str:
        """``AutoMLProblemTypeConfigName`` of the problem type this config describes: a
        JobConfig holds a ``TabularJobConfig``'s fields (the problem registry is
        :mod:`mlpilot.problems`)."""
        return "Tabular"

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
        if not self.target:
            raise ConfigError("A target column is required")
        if self.problem_type is not None:
            object.__setattr__(
                self, "problem_type", _enum(ProblemType, self.problem_type, "problem type")
            )
        object.__setattr__(self, "mode", _enum(Mode, self.mode, "mode"))
        if self.objective is not None:
            get_metric(self.objective, self.problem_type)
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
        if self.algorithms is not None:
            if self.mode is Mode.AUTO:
                raise ConfigError("AlgorithmsConfig cannot be set when Mode is AUTO")
            for name in self.algorithms:
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
        if self.content_type not in (None, CSV, "text/csv", PARQUET):
            raise ConfigError(
                f"ContentType {self.content_type!r} is not supported; use {CSV!r} or {PARQUET!r}"
            )
        if self.compression not in (None, "None", "Gzip"):
            raise ConfigError(f"CompressionType must be None or Gzip; got {self.compression!r}")
        if self.data_type not in ("S3Prefix", "ManifestFile"):
            raise ConfigError(
                f"S3DataType must be S3Prefix or ManifestFile; got {self.data_type!r}"
            )
        if self.max_latency_ms is not None and not self.max_latency_ms > 0:
            raise ConfigError(f"The latency limit must be positive; got {self.max_latency_ms} ms")
        if self.parallelism is not None and self.parallelism < 1:
            raise ConfigError(f"Parallelism must be at least 1; got {self.parallelism}")
        if isinstance(self.output_path, str) and self.output_path.startswith("s3://"):
            raise ConfigError(
                "The engine writes its output to a local folder; S3 output is the service's job"
            )

    # -- derived --------------------------------------------------------------------------
    @property
    def output_dir(self) -> Path:
        path = str(self.output_path)
        return Path(path[len("file://") :] if path.startswith("file://") else path)

    @property
    def effective_max_candidates(self) -> int:
        return self.max_candidates or DEFAULT_MAX_CANDIDATES

    def load_feature_specification(self) -> FeatureSpecification | None:
        spec = self.feature_specification
        if spec is None or isinstance(spec, FeatureSpecification):
            return spec
        return FeatureSpecification.load(spec)

    # -- SageMaker request shapes ---------------------------------------------------------
    @classmethod
    def from_request(
        cls, request: dict[str, Any], *, output_path: str | None = None, **overrides: Any
    ) -> JobConfig:
        """Build from a CreateAutoMLJobV2 request body (already shape-checked by the caller)."""
        channels = request.get("AutoMLJobInputDataConfig") or []
        training = [c for c in channels if c.get("ChannelType", "training") == "training"]
        validation = [c for c in channels if c.get("ChannelType") == "validation"]
        if len(training) != 1 or len(validation) > 1:
            raise ConfigError(
                "Give exactly one training channel and at most one validation channel"
            )
        source = training[0]["DataSource"]["S3DataSource"]
        tabular = (request.get("AutoMLProblemTypeConfig") or {}).get("TabularJobConfig")
        if tabular is None:
            raise ConfigError("Only TabularJobConfig problems are supported")
        criteria = tabular.get("CompletionCriteria") or {}
        algorithms = None
        gen = tabular.get("CandidateGenerationConfig") or {}
        if gen.get("AlgorithmsConfig"):
            names = gen["AlgorithmsConfig"][0].get("AutoMLAlgorithms") or []
            algorithms = tuple(names) if names else None
        name = request["AutoMLJobName"]
        problem = tabular.get("ProblemType")
        objective = (request.get("AutoMLJobObjective") or {}).get("MetricName")
        # SageMaker's documentation asks for both or neither; AWS's own recipes give ProblemType
        # alone. A missing objective is the problem type's default; a lone objective is checked
        # against the inferred problem type once the data is analysed.
        values: dict[str, Any] = {
            "name": name,
            "training_data": source["S3Uri"],
            "data_type": source.get("S3DataType", "S3Prefix"),
            "content_type": training[0].get("ContentType"),
            "compression": training[0].get("CompressionType"),
            "validation_data": (
                validation[0]["DataSource"]["S3DataSource"]["S3Uri"] if validation else None
            ),
            "target": tabular["TargetAttributeName"],
            "output_path": output_path
            or f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}",
            "problem_type": problem,
            "objective": objective,
            "mode": tabular.get("Mode", "AUTO"),
            "algorithms": algorithms,
            "max_candidates": criteria.get("MaxCandidates"),
            "max_runtime_per_candidate": criteria.get("MaxRuntimePerTrainingJobInSeconds"),
            "max_runtime": criteria.get("MaxAutoMLJobRuntimeInSeconds"),
            "validation_fraction": (request.get("DataSplitConfig") or {}).get("ValidationFraction"),
            "sample_weight": tabular.get("SampleWeightAttributeName"),
            "feature_specification": tabular.get("FeatureSpecificationS3Uri"),
            "candidates_only": bool(tabular.get("GenerateCandidateDefinitionsOnly", False)),
            "role_arn": request.get("RoleArn", cls.role_arn),
            "tags": tuple(request.get("Tags") or ()),
        }
        values.update(overrides)
        return cls(**values)

    def to_request(self) -> dict[str, Any]:
        """The CreateAutoMLJobV2 request this configuration corresponds to."""

        def channel(kind: str, uri: Any) -> dict[str, Any]:
            out: dict[str, Any] = {
                "ChannelType": kind,
                "ContentType": self.content_type or CSV,
                "CompressionType": self.compression or "None",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": self.data_type,
                        "S3Uri": uri if isinstance(uri, str) else "dataframe://in-memory",
                    }
                },
            }
            return out

        channels = [channel("training", self.training_data)]
        if self.validation_data is not None:
            channels.append(channel("validation", self.validation_data))
        tabular: dict[str, Any] = {"TargetAttributeName": self.target, "Mode": self.mode.value}
        criteria = {
            k: v
            for k, v in (
                ("MaxCandidates", self.max_candidates),
                ("MaxRuntimePerTrainingJobInSeconds", self.max_runtime_per_candidate),
                ("MaxAutoMLJobRuntimeInSeconds", self.max_runtime),
            )
            if v is not None
        }
        if criteria:
            tabular["CompletionCriteria"] = criteria
        if self.problem_type is not None:
            tabular["ProblemType"] = self.problem_type.value
        if self.algorithms is not None:
            tabular["CandidateGenerationConfig"] = {
                "AlgorithmsConfig": [{"AutoMLAlgorithms": list(self.algorithms)}]
            }
        if self.sample_weight:
            tabular["SampleWeightAttributeName"] = self.sample_weight
        if isinstance(self.feature_specification, str):
            tabular["FeatureSpecificationS3Uri"] = self.feature_specification
        if self.candidates_only:
            tabular["GenerateCandidateDefinitionsOnly"] = True
        request: dict[str, Any] = {
            "AutoMLJobName": self.name,
            "AutoMLJobInputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": str(Path(str(self.output_path)).parent)},
            "AutoMLProblemTypeConfig": {"TabularJobConfig": tabular},
            "RoleArn": self.role_arn,
        }
        if self.objective is not None:
            request["AutoMLJobObjective"] = {"MetricName": self.objective}
        if self.validation_fraction is not None:
            request["DataSplitConfig"] = {"ValidationFraction": self.validation_fraction}
        if self.tags:
            request["Tags"] = list(self.tags)
        return request


def _enum(cls: Any, value: Any, what: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        valid = ", ".join(m.value for m in cls)
        raise ConfigError(f"Unknown {what} {value!r}; valid values: {valid}") from None
