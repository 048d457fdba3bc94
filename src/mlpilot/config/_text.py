"""A text classification job's settings: CreateAutoMLJobV2's ``TextClassificationJobConfig``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlpilot._types import ProblemType
from mlpilot.config._tabular import TabularConfig
from mlpilot.errors import ConfigError
from mlpilot.features import DEFAULT_ENCODER, ENCODERS
from mlpilot.profile import FeatureSpecification

__all__ = ["TextClassificationConfig"]


@dataclass(frozen=True, eq=False)
class TextClassificationConfig(TabularConfig):
    """Classify a text column: ``ContentColumn`` holds the documents, ``TargetLabelColumn``
    (``target``) their labels; every other column of the table is left out.

    It is a table job underneath (the same folds, candidates, stacking and packages), whose
    one feature is the content column read as text: TF-IDF of word and character n-grams, and
    the sentence embeddings of ``text_encoder`` when its package is installed (mlpilot's own
    field; ``None`` leaves them out). The objective defaults to Accuracy, as Autopilot's.
    """

    config_name: ClassVar[str] = "TextClassification"
    jobs: ClassVar[str] = "text classification jobs"

    content_column: str = ""
    text_encoder: str | None = DEFAULT_ENCODER

    def __post_init__(self) -> None:
        column = self.content_column
        if not column or not isinstance(column, str):
            raise ConfigError("A text classification job needs its content column (ContentColumn)")
        if column == self.target:
            raise ConfigError(
                f"ContentColumn and TargetLabelColumn must differ; both are {column!r}"
            )
        if self.problem_type is not None and ProblemType(self.problem_type) is (
            ProblemType.REGRESSION
        ):
            raise ConfigError("A text classification job predicts labels, not a Regression")
        if self.text_encoder is not None and self.text_encoder not in ENCODERS:
            raise ConfigError(
                f"Unknown text encoder {self.text_encoder!r}; known: {', '.join(ENCODERS)} "
                "(or none)"
            )
        if self.feature_specification is None:
            spec = FeatureSpecification((column,), {column: "text"})
            object.__setattr__(self, "feature_specification", spec)
        super().__post_init__()

    @classmethod
    def from_request(cls, body: dict[str, Any]) -> TextClassificationConfig:
        return cls(target=body["TargetLabelColumn"], content_column=body["ContentColumn"])

    def to_request(self) -> dict[str, Any]:
        return {"ContentColumn": self.content_column, "TargetLabelColumn": self.target}

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "content_column": self.content_column,
            "text_encoder": self.text_encoder,
        }
