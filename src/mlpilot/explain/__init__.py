"""SHAP values of a packaged tabular model, per input column.

:func:`explain_model` explains many rows within a time budget (the white box's explainability
report); :class:`RowExplainer` explains a few rows at a time, fast enough to answer beside their
predictions (an endpoint's Clarify explanations). Both are exactly additive: a row's values add
up to its prediction minus the base value.
"""

from mlpilot.explain._rows import DEFAULT_PERMUTATIONS, RowExplainer, RowExplanation
from mlpilot.explain._sample import (
    Explanation,
    OutOfTime,
    explain_model,
    explained_outputs,
    tree_members,
)

__all__ = [
    "DEFAULT_PERMUTATIONS",
    "Explanation",
    "OutOfTime",
    "RowExplainer",
    "RowExplanation",
    "explain_model",
    "explained_outputs",
    "tree_members",
]
