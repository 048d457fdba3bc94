"""Data analysis: column types with reasons, the target and problem type, quality facts."""

from mlpilot.profile._columns import (
    HIGH_CARDINALITY,
    MISSING_TOKENS,
    ColumnKind,
    ColumnProfile,
    parse_numeric,
)
from mlpilot.profile._profile import DatasetProfile, FeatureSpecification, build_profile
from mlpilot.profile._target import TargetProfile, clean_labels, infer_target, label_key

__all__ = [
    "HIGH_CARDINALITY",
    "MISSING_TOKENS",
    "ColumnKind",
    "ColumnProfile",
    "DatasetProfile",
    "FeatureSpecification",
    "TargetProfile",
    "build_profile",
    "clean_labels",
    "infer_target",
    "label_key",
    "parse_numeric",
]
