"""The dataset profile: every column's decision, the target, and data-quality facts.

It is saved as JSON in the job's output; the data-exploration notebook and the feature plan both
read it, so what is decided here is decided once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.errors import ConfigError, DataError
from mlpilot.profile._columns import (
    HIGH_CARDINALITY,
    MISSING_TOKENS,
    ColumnKind,
    ColumnProfile,
    infer_column,
    numeric_column,
    parse_numeric,
)
from mlpilot.profile._target import TargetProfile, infer_target

__all__ = ["DatasetProfile", "FeatureSpecification", "build_profile", "suggest_splits"]

PROFILE_VERSION = 1


@dataclass(frozen=True)
class FeatureSpecification:
    """SageMaker's ``FeatureSpecificationS3Uri`` document.

    ``{"FeatureAttributeNames": [...], "FeatureDataTypes": {"col": "numeric" | "categorical" |
    "text" | "datetime" | "sequence"}}``: the names select the features, the types override
    inference.
    """

    attribute_names: tuple[str, ...] | None = None
    data_types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(
        cls, doc: dict[str, Any], *, source: str = "feature specification"
    ) -> FeatureSpecification:
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: expected a JSON object")
        unknown = set(doc) - {"FeatureAttributeNames", "FeatureDataTypes"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(unknown)}; expected FeatureAttributeNames, "
                "FeatureDataTypes"
            )
        names = doc.get("FeatureAttributeNames")
        if names is not None and (
            not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        ):
            raise ConfigError(f"{source}: FeatureAttributeNames must be a list of column names")
        types = doc.get("FeatureDataTypes") or {}
        if not isinstance(types, dict):
            raise ConfigError(f"{source}: FeatureDataTypes must be an object")
        for col, kind in types.items():
            if kind not in ColumnKind.FROM_SPEC:
                raise ConfigError(
                    f"{source}: data type {kind!r} for column {col!r} is not one of "
                    f"{', '.join(ColumnKind.FROM_SPEC)}"
                )
        return cls(tuple(names) if names is not None else None, dict(types))

    @classmethod
    def load(cls, uri: str) -> FeatureSpecification:
        try:
            with fsspec.open(uri, "rt") as fh:
                doc = json.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"Feature specification {uri} does not exist") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Feature specification {uri} is not readable JSON: {exc}") from exc
        return cls.from_dict(doc, source=uri)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.attribute_names is not None:
            out["FeatureAttributeNames"] = list(self.attribute_names)
        if self.data_types:
            out["FeatureDataTypes"] = dict(self.data_types)
        return out


@dataclass
class DatasetProfile:
    """Everything the analysis step learned about the training table."""

    n_rows: int
    n_columns: int
    target: TargetProfile
    columns: list[ColumnProfile]
    sample_weight: str | None = None
    duplicate_rows: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Splits that would validate as the model is used (see :func:`suggest_splits`).
    split_suggestions: list[dict[str, str]] = field(default_factory=list)

    @property
    def problem_type(self) -> ProblemType:
        return self.target.problem_type

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def features(self, kind: str | None = None) -> list[str]:
        """Names of the columns used as features (optionally of one kind), in table order."""
        return [
            c.name
            for c in self.columns
            if c.kind != ColumnKind.DROP and (kind is None or c.kind == kind)
        ]

    @property
    def input_columns(self) -> list[str]:
        """Every column of the training table but the target and weight, in order."""
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "problem_type": self.problem_type.value,
            "target": self.target.to_dict(),
            "sample_weight": self.sample_weight,
            "duplicate_rows": self.duplicate_rows,
            "dropped_rows": self.dropped_rows,
            "notes": self.notes,
            "split_suggestions": self.split_suggestions,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        return cls(
            n_rows=data["n_rows"],
            n_columns=data["n_columns"],
            target=TargetProfile.from_dict(data["target"]),
            columns=[ColumnProfile.from_dict(c) for c in data["columns"]],
            sample_weight=data.get("sample_weight"),
            duplicate_rows=data.get("duplicate_rows", 0),
            dropped_rows=data.get("dropped_rows", {}),
            notes=data.get("notes", []),
            split_suggestions=data.get("split_suggestions", []),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, default=str))

    @classmethod
    def load(cls, path: str | Path) -> DatasetProfile:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _apply_spec(col: ColumnProfile, spec: FeatureSpecification, raw: pd.Series) -> ColumnProfile:
    if spec.attribute_names is not None and col.name not in spec.attribute_names:
        col.kind, col.reason = ColumnKind.DROP, "not listed in FeatureAttributeNames"
        return col
    wanted = spec.data_types.get(col.name)
    if wanted is None:
        return col
    kind = ColumnKind.FROM_SPEC[wanted]
    if kind == col.kind:
        col.reason = f"FeatureSpecification ({wanted}); inference agreed: {col.reason}"
        return col
    inferred = col.reason
    if kind == ColumnKind.NUMERIC:
        # Identifiers and constants are numbers too: the declaration keeps them as features.
        forced = numeric_column(col.name, raw)
        if forced is None:
            raise DataError(
                f"FeatureSpecification declares {col.name!r} numeric, but its values are not "
                f"numbers ({inferred})"
            )
        col = forced
    else:
        col.zero_means_missing = False  # only numeric columns read zeros as missing
    if kind == ColumnKind.CATEGORICAL:
        col.high_cardinality = col.n_unique > HIGH_CARDINALITY
    col.kind = kind
    col.reason = f"FeatureSpecification ({wanted}); inference said {inferred}"
    return col


def build_profile(
    df: pd.DataFrame,
    target: str,
    *,
    problem_type: ProblemType | str | None = None,
    sample_weight: str | None = None,
    feature_spec: FeatureSpecification | None = None,
) -> DatasetProfile:
    """Profile a raw training table.

    Raises
    ------
    DataError
        The target (or weight) column is missing, the table is empty, or the target cannot be
        learned (a single value, wrong type for the problem type).
    """
    if target not in df.columns:
        raise DataError(
            f"Target column {target!r} is not in the data; columns are: "
            f"{', '.join(map(str, df.columns[:30]))}"
        )
    if sample_weight is not None and sample_weight not in df.columns:
        raise DataError(f"Sample weight column {sample_weight!r} is not in the data")
    if sample_weight == target:
        raise ConfigError("The sample weight column cannot be the target column")
    if len(df) == 0:
        raise DataError("The training data has no rows")
    if feature_spec is not None:
        if target in (feature_spec.attribute_names or ()) or target in feature_spec.data_types:
            raise ConfigError(f"The feature specification must not list the target {target!r}")
        listed = set(feature_spec.attribute_names or ()) | set(feature_spec.data_types)
        absent = sorted(listed - set(map(str, df.columns)))
        if absent:
            raise DataError(f"The feature specification names columns not in the data: {absent}")

    target_profile = infer_target(target, df[target], problem_type)
    notes: list[str] = []
    dropped: dict[str, int] = {}
    if target_profile.missing_rows:
        dropped["missing_target"] = target_profile.missing_rows
        notes.append(f"{target_profile.missing_rows} row(s) without a target value are not used")

    columns: list[ColumnProfile] = []
    for name in df.columns:
        if name in (target, sample_weight):
            continue
        col = infer_column(str(name), df[name])
        if feature_spec is not None:
            col = _apply_spec(col, feature_spec, df[name])
        columns.append(col)
    if not any(c.kind != ColumnKind.DROP for c in columns):
        raise DataError("No usable feature columns: every column besides the target was dropped")

    if sample_weight is not None:
        w = parse_numeric(df[sample_weight], MISSING_TOKENS)
        if (w < 0).any():
            raise DataError(f"Sample weight column {sample_weight!r} has negative values")
        bad = int(w.isna().sum())
        if bad:
            dropped["missing_weight"] = bad
            notes.append(f"{bad} row(s) without a valid sample weight are not used")

    duplicates = int(df.duplicated().sum()) if len(df) <= 2_000_000 else 0
    if duplicates:
        notes.append(f"{duplicates} duplicate row(s)")
    return DatasetProfile(
        n_rows=len(df),
        n_columns=len(df.columns),
        target=target_profile,
        columns=columns,
        sample_weight=sample_weight,
        duplicate_rows=duplicates,
        dropped_rows=dropped,
        notes=notes,
        split_suggestions=suggest_splits(columns, len(df)),
    )


#: Column names that read as an entity's key: customer_id, CustomerId, userID, store_key...
_ENTITY_NAME = re.compile(r"(^|[_\s.-])(id|key)$|[a-z](Id|ID|Key)$|^(id|key)$", re.IGNORECASE)


def suggest_splits(columns: list[ColumnProfile], n_rows: int) -> list[dict[str, str]]:
    """A time split for each date column; a group split for each entity key whose values
    repeat (a random split would put an entity's rows on both sides)."""
    found = []
    for col in columns:
        if col.kind == ColumnKind.DATETIME:
            kind, why = "Time", "a date column: the model will predict later rows than it saw"
        elif (
            _ENTITY_NAME.search(col.name)
            and 2 <= col.n_unique <= n_rows * (1 - col.missing_ratio) / 1.5
        ):
            kind = "Group"
            why = (
                f"an entity key with repeated values ({col.n_unique:,} values in {n_rows:,} "
                "rows): the model will meet entities it never saw"
            )
        else:
            continue
        flag = f"--split-by-{kind.lower()} {col.name}"
        found.append(
            {
                "Type": kind,
                "Column": col.name,
                "Reason": why,
                "Pass": f"mlpilot run ... {flag} (API: tag mlpilot:SplitBy{kind}={col.name})",
            }
        )
    return found
