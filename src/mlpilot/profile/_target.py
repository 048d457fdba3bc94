"""The target column: problem type (with its reason), labels, and the positive class."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.errors import DataError
from mlpilot.profile._columns import MISSING_TOKENS, parse_numeric

__all__ = ["TargetProfile", "infer_target", "label_key"]

#: Integer targets with at most this many distinct values are read as classes.
MAX_INTEGER_CLASSES = 20
_POSITIVE_WORDS = ("1", "true", "yes", "y", "t", "positive", "pos", "1.0")


def label_key(value: Any) -> str:
    """The label as it is spelled in output column names (``probability_<label>``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class TargetProfile:
    """What the target is: problem type, classes in model order, and the positive class."""

    name: str
    problem_type: ProblemType
    reason: str
    labels: list[Any] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    positive_label: Any = None
    positive_reason: str = ""
    missing_rows: int = 0
    stats: dict[str, float] = field(default_factory=dict)
    #: A cost matrix job's costs[actual][predicted] in the order of ``labels``: the model
    #: predicts the class of least expected cost (None: the arg-max, or a tuned threshold).
    decision_costs: list[list[float]] | None = None

    @property
    def positive_index(self) -> int:
        return self.labels.index(self.positive_label) if self.positive_label in self.labels else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "problem_type": self.problem_type.value,
            "reason": self.reason,
            "labels": self.labels,
            "class_counts": self.class_counts,
            "positive_label": self.positive_label,
            "positive_reason": self.positive_reason,
            "missing_rows": self.missing_rows,
            "stats": self.stats,
            **({} if self.decision_costs is None else {"decision_costs": self.decision_costs}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetProfile:
        data = dict(data)
        data["problem_type"] = ProblemType(data["problem_type"])
        return cls(**data)

    def encode(self, y: pd.Series) -> np.ndarray:
        """Labels to class indices (classification) or floats (regression)."""
        if self.problem_type is ProblemType.REGRESSION:
            return parse_numeric(y, MISSING_TOKENS).to_numpy(dtype="float64")
        index = {label_key(v): i for i, v in enumerate(self.labels)}
        keys = clean_labels(y).map(label_key)
        codes = keys.map(index)
        by_value = _label_values(self.labels)
        if codes.isna().any() and by_value:
            # Numeric classes match by value whatever the spelling: "1.0" is class "1".
            codes = codes.fillna(parse_numeric(keys, frozenset()).map(by_value))
        if codes.isna().any():
            unknown = sorted(set(keys[codes.isna()].astype(str)))[:5]
            raise DataError(f"Target {self.name!r} has labels unseen in training: {unknown}")
        return codes.to_numpy(dtype="int64")


def _label_values(labels: list[Any]) -> dict[float, int]:
    """Class index by numeric value when every label is a number (else empty)."""
    try:
        return {float(v): i for i, v in enumerate(labels) if not isinstance(v, bool)}
    except (TypeError, ValueError):
        return {}


def _one_spelling(present: pd.Series, numeric: pd.Series) -> pd.Series:
    """Numbers spelled several ways ("1" and "1.0", e.g. from a training and a validation
    file) are one class, spelled as most of its rows spell it."""
    text = present.astype(str)
    if text.nunique() == numeric.nunique():
        return present
    spellings = pd.DataFrame({"value": numeric.to_numpy(), "text": text.to_numpy()})
    counts = spellings.value_counts().reset_index(name="n")
    counts = counts.sort_values(["n", "text"], ascending=[False, True], kind="stable")
    spelling = counts.drop_duplicates("value").set_index("value")["text"]
    return pd.Series(numeric.map(spelling).to_numpy(), index=present.index)


#: Spellings of infinity (as ``float()`` reads them): no usable target value.
_INFINITY = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


def clean_labels(y: pd.Series) -> pd.Series:
    """Strip text labels; missing tokens and infinities become missing."""
    if pd.api.types.is_string_dtype(y) or pd.api.types.is_object_dtype(y):
        s = y.astype("string").str.strip()
        lowered = s.str.lower()
        return s.mask(lowered.isin(MISSING_TOKENS - {"none"}) | lowered.isin(_INFINITY))
    if pd.api.types.is_float_dtype(y):
        return y.mask(np.isinf(y))
    return y


def _sorted_labels(values: list[Any]) -> list[Any]:
    try:
        return sorted(values, key=lambda v: (0, float(v)))
    except (TypeError, ValueError):
        return sorted(values, key=lambda v: (1, str(v)))


def _positive(labels: list[Any], counts: dict[str, int]) -> tuple[Any, str]:
    for word in _POSITIVE_WORDS:
        for label in labels:
            if label_key(label).strip().lower() == word:
                return label, f"{label_key(label)!r} reads as the positive answer"
    minority = min(labels, key=lambda v: (counts[label_key(v)], label_key(v)))
    return minority, f"{label_key(minority)!r} is the minority class"


def infer_target(
    name: str, y: pd.Series, problem_type: ProblemType | str | None = None
) -> TargetProfile:
    """Infer (or check) the problem type from the target's values."""
    y = clean_labels(y)
    missing = int(y.isna().sum())
    present = y.dropna()
    if present.empty:
        raise DataError(f"Target column {name!r} has no values")
    numeric = parse_numeric(present, frozenset())
    is_numeric = bool(numeric.notna().all())
    if is_numeric and not pd.api.types.is_numeric_dtype(present):
        present = _one_spelling(present, numeric)
    n_unique = int(present.astype("string").nunique()) if not is_numeric else int(numeric.nunique())
    if n_unique < 2:
        value = present.iloc[0]
        raise DataError(
            f"Target column {name!r} has a single distinct value ({value!r}): nothing to learn"
        )

    requested = ProblemType(problem_type) if problem_type else None
    if requested is ProblemType.REGRESSION or (requested is None and is_numeric):
        integral = is_numeric and bool(np.all(np.mod(numeric.to_numpy(), 1) == 0))
        if requested is ProblemType.REGRESSION:
            if not is_numeric:
                bad = present[numeric.isna()].astype(str).unique()[:3].tolist()
                raise DataError(
                    f"Target column {name!r} must be numeric for Regression; found {bad}"
                )
            reason = "set by the job"
        elif n_unique == 2:
            requested, reason = ProblemType.BINARY, "the target has exactly 2 distinct values"
        elif integral and n_unique <= MAX_INTEGER_CLASSES:
            requested = ProblemType.MULTICLASS
            reason = (
                f"the target holds {n_unique} distinct integers (at most {MAX_INTEGER_CLASSES})"
            )
        else:
            requested = ProblemType.REGRESSION
            kind = "integers" if integral else "real numbers"
            reason = f"the target holds {n_unique} distinct {kind}"
        if requested is ProblemType.REGRESSION:
            v = numeric
            stats = {
                "min": float(v.min()),
                "max": float(v.max()),
                "mean": float(v.mean()),
                "std": float(v.std(ddof=0)),
                "median": float(v.median()),
            }
            return TargetProfile(name, requested, reason, missing_rows=missing, stats=stats)
    elif requested is None:
        requested = ProblemType.BINARY if n_unique == 2 else ProblemType.MULTICLASS
        reason = f"the target holds {n_unique} distinct text labels"
    else:
        reason = "set by the job"

    counts_series = present.map(_python).value_counts()
    labels = _sorted_labels([_python(v) for v in counts_series.index])
    counts = {label_key(k): int(v) for k, v in counts_series.items()}
    if requested is ProblemType.BINARY and len(labels) != 2:
        raise DataError(
            f"Target column {name!r} has {len(labels)} distinct values; BinaryClassification "
            "needs exactly 2"
        )
    if requested is ProblemType.MULTICLASS and len(labels) < 3:
        raise DataError(
            f"Target column {name!r} has {len(labels)} distinct values; "
            "MulticlassClassification needs at least 3"
        )
    profile = TargetProfile(name, requested, reason, labels, counts, missing_rows=missing)
    if requested is ProblemType.BINARY:
        profile.positive_label, profile.positive_reason = _positive(labels, counts)
    return profile
