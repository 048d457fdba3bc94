"""The data-exploration notebook's findings: what counts as one (the thresholds), each
:class:`Insight`, and the table and list of fixes the notebook shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlpilot.notebooks._display import pct
from mlpilot.notebooks._measures import skewness
from mlpilot.profile import HIGH_CARDINALITY, ColumnKind

if TYPE_CHECKING:
    # Only for the annotation: the analysis imports this module.
    from mlpilot.notebooks._exploration import DataExploration

__all__ = [
    "IDENTIFIER_SHARE",
    "LEAKAGE_POWER",
    "MANY_MISSING",
    "NEAR_CONSTANT_SHARE",
    "OUTLIER_Z",
    "REDUNDANT_R",
    "Insight",
    "find_insights",
    "fixes",
    "markdown_table",
]

#: Prediction power from which a single column is reported as likely target leakage.
LEAKAGE_POWER = 0.9
#: Share of the most frequent value from which a column counts as near-constant.
NEAR_CONSTANT_SHARE = 0.99
#: Share of distinct values from which a kept column looks like an identifier.
IDENTIFIER_SHARE = 0.95
#: Robust z-score beyond which a value is an outlier (median and MAD, as Autopilot does).
OUTLIER_Z = 3.5
#: |Pearson r| from which two numeric features are reported as redundant.
REDUNDANT_R = 0.95
#: Missing share from which a column gets a finding.
MANY_MISSING = 0.3


@dataclass(frozen=True)
class Insight:
    """One finding: how severe, what, how to confirm it, what to do."""

    severity: str  # "high" | "low"
    title: str
    detail: str
    confirm: str
    fix: str
    columns: tuple[str, ...] = ()


#: Share of the rows above which a finding about some rows is of high severity.
HIGH_ROW_SHARE = 0.05


def _rows_insight(count: int, n_rows: int, title: str, what: str, check: str, fix: str) -> Insight:
    """A finding about ``count`` of the ``n_rows`` rows; ``what`` follows their count and
    share."""
    share = count / n_rows
    severity = "high" if share > HIGH_ROW_SHARE else "low"
    return Insight(severity, title, f"{count:,} rows ({pct(share)}) {what}", check, fix)


def find_insights(exploration: DataExploration) -> list[Insight]:
    """Every finding of ``exploration``, high severity first."""
    found: list[Insight] = []
    t = exploration.target
    p = exploration.profile
    for name, row in exploration.leakage().iterrows():
        found.append(
            Insight(
                "high",
                f"Possible target leakage: {name!r}",
                f"{name!r} alone predicts the target with prediction power "
                f"{row['prediction power']} (1 = perfectly).",
                f"Check when {name!r} is recorded: a value known only after the outcome "
                "cannot be used at prediction time.",
                f"Remove {name!r} from the training data (or list the other columns in a "
                "FeatureSpecification) unless it is known when predictions are made.",
                (str(name),),
            )
        )
    if t.missing_rows:
        found.append(
            _rows_insight(
                t.missing_rows,
                p.n_rows,
                "Rows without a target value",
                f"have no valid {t.name!r}; they are not used for training.",
                f"Count the empty or invalid values of {t.name!r} in the source table.",
                "Fill in the missing labels if they can be recovered; otherwise nothing to do.",
            )
        )
    ratio = exploration.imbalance_ratio
    if ratio is not None and ratio >= 3:
        counts = {k: v for k, v in t.class_counts.items() if v > 0}
        rare = min(counts, key=lambda k: counts[k])
        metric_hint = (
            f" The objective {exploration.objective} ignores the imbalance; consider "
            "BalancedAccuracy, F1 or AUC."
            if exploration.objective in ("Accuracy",)
            else ""
        )
        found.append(
            Insight(
                "high" if ratio >= 10 else "low",
                "Class imbalance",
                f"The largest class is {ratio:.1f}× the smallest ({rare!r}: "
                f"{counts[rare]:,} rows).{metric_hint}",
                "See the class frequencies under Target analysis.",
                "Judge models by a metric that weighs every class (BalancedAccuracy, F1, "
                "AUC) and collect more rows of the rare classes if you can; do not "
                "up-sample before the job (it leaks copies across validation folds).",
            )
        )
    if exploration.problem_type.is_classification:
        tiny = [k for k, v in t.class_counts.items() if 0 < v < 10]
        if tiny:
            found.append(
                Insight(
                    "high",
                    "Classes with fewer than 10 rows",
                    f"{len(tiny)} class(es) have under 10 rows: {', '.join(map(repr, tiny[:8]))}.",
                    "See the class frequencies under Target analysis.",
                    "Merge rare classes into a broader one or collect more rows; a model "
                    "cannot learn a class from a handful of examples.",
                )
            )
    if p.duplicate_rows:
        found.append(
            _rows_insight(
                p.duplicate_rows,
                p.n_rows,
                "Duplicate rows",
                "repeat an earlier row.",
                "See the examples under Duplicate rows.",
                "Remove copies that come from the data collection (joins, repeated "
                "exports); keep them only if they are real repeated observations.",
            )
        )
    ids = exploration.identifiers()
    for name, row in ids.iterrows():
        dropped = str(row["finding"]).startswith("dropped")
        found.append(
            Insight(
                "low",
                f"Identifier column {name!r}",
                str(row["finding"]),
                f"Look at the values of {name!r}: row numbers and keys carry no signal.",
                "Nothing to do: the column is not used."
                if dropped
                else f"Drop {name!r} (or exclude it with a FeatureSpecification) if it is "
                "a key or a row number.",
                (str(name),),
            )
        )
    consts = exploration.constant_columns()
    nearly = consts[consts["finding"] != "constant (dropped)"]
    if not nearly.empty:
        names = [str(n) for n in nearly.index]
        found.append(
            Insight(
                "low",
                "Near-constant columns",
                f"{len(names)} column(s) hold one value (or nothing) in at least "
                f"{NEAR_CONSTANT_SHARE:.0%} of the rows: {', '.join(map(repr, names[:10]))}"
                + (" ..." if len(names) > 10 else "")
                + ".",
                "See the Constant and near-constant columns section.",
                f"Drop {', '.join(map(repr, names[:10]))}"
                + (" ..." if len(names) > 10 else "")
                + " unless the rare values matter: they help only on the few rows where "
                "they differ.",
                tuple(names),
            )
        )
    high = exploration.high_cardinality()
    if not high.empty:
        names = list(high.index)
        found.append(
            Insight(
                "low",
                "High-cardinality categorical columns",
                f"{', '.join(map(repr, names[:8]))} have more than {HIGH_CARDINALITY} "
                "levels; they are target-encoded (cross-fitted) instead of one-hot encoded.",
                "See the High-cardinality categoricals section.",
                "Group rare levels into broader ones (e.g. by a prefix or a category "
                "hierarchy) if the levels have structure.",
                tuple(map(str, names)),
            )
        )
    many_missing = [
        c
        for c in p.columns
        if c.kind != ColumnKind.DROP and MANY_MISSING <= c.missing_ratio < NEAR_CONSTANT_SHARE
    ]
    if many_missing:
        found.append(
            Insight(
                "low",
                "Columns with many missing values",
                ", ".join(f"{c.name!r} ({pct(c.missing_ratio)})" for c in many_missing[:8]) + ".",
                "See the Missing values section.",
                "Check whether missing means 'none' (then fill it with that value) or 'not "
                "recorded' (the models handle it; linear models get a missing indicator).",
                tuple(c.name for c in many_missing),
            )
        )
    pairs = exploration.correlated_pairs()
    if not pairs.empty:
        shown = "; ".join(
            f"{a!r} and {b!r} (r = {r:.3f})" for a, b, r in pairs.head(5).itertuples(index=True)
        )
        found.append(
            Insight(
                "low",
                "Redundant numeric features",
                f"{len(pairs)} pair(s) with |r| ≥ {REDUNDANT_R}: {shown}.",
                "See the correlation matrix.",
                "Keep one column of each pair for linear models and for clearer "
                "explanations; tree models are unaffected.",
                tuple(sorted(set(pairs.index) | set(pairs["other feature"]))),
            )
        )
    if not exploration.problem_type.is_classification:
        y = np.asarray(exploration.y, dtype=float)
        skew = skewness(y)
        if abs(skew) > 2:
            found.append(
                Insight(
                    "low",
                    "Skewed target",
                    f"{t.name!r} has skew {skew:.1f}: a few large values dominate squared errors.",
                    "See the histogram under Target analysis.",
                    "Consider MAE as the objective, or predicting log(target) if relative "
                    "errors matter.",
                )
            )
    outliers = exploration._outlier_frame
    heavy = outliers[outliers["outliers"] > 0.05]
    if not heavy.empty:
        found.append(
            Insight(
                "low",
                "Numeric columns with many outliers",
                ", ".join(
                    f"{n!r} ({pct(s)})"
                    for n, s in list(zip(heavy["column"], heavy["outliers"], strict=True))[:6]
                )
                + " of the values lie beyond 3.5 robust standard deviations.",
                "See the box plots under Numeric outliers.",
                "Check for unit errors or sentinel values (e.g. 9999); tree models are "
                "robust to genuine extremes.",
                tuple(heavy["column"]),
            )
        )
    gaps = exploration.split_gaps
    for suggestion in p.split_suggestions:
        name = suggestion["Column"]
        gap = gaps.get(name)
        measured = (
            f" On this sample a quick model scores {gap[2]} {gap[0]:.3f} on a random 20% "
            f"holdout but {gap[1]:.3f} on the {suggestion['Type'].lower()} split's: the "
            "random split's score is not what the deployed model will reach."
            if gap is not None
            else ""
        )
        found.append(
            Insight(
                "high" if gap is not None and gap[0] - gap[1] > 0.05 else "low",
                f"Validate with a {suggestion['Type'].lower()} split on {name!r}",
                f"{name!r} is {suggestion['Reason']}.{measured}",
                "Compare the two scores above; the job's ValidationReason names the split used.",
                f"Run the job with {suggestion['Pass']}.",
                (name,),
            )
        )
    if p.n_rows < 500:
        found.append(
            Insight(
                "low",
                "Small dataset",
                f"{p.n_rows:,} rows: validation scores will vary noticeably between "
                "candidates by chance.",
                "Compare the leaderboard's top candidates: small differences are noise.",
                "Collect more rows if possible; prefer simpler candidates when scores are close.",
            )
        )
    return sorted(found, key=lambda i: i.severity != "high")


def _md(text: object) -> str:
    """Text for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(found: list[Insight]) -> str:
    """The findings as a Markdown table."""
    if not found:
        return "No data issues found: nothing to fix before training."
    lines = [
        "| severity | finding | details | how to confirm | suggested fix |",
        "|---|---|---|---|---|",
    ]
    for i in found:
        badge = "**HIGH**" if i.severity == "high" else "low"
        lines.append(
            f"| {badge} | {_md(i.title)} | {_md(i.detail)} | {_md(i.confirm)} | {_md(i.fix)} |"
        )
    return "\n".join(lines)


def fixes(found: list[Insight]) -> list[str]:
    """What the findings say to do, most important first, each once."""
    steps = [i.fix for i in found if not i.fix.startswith("Nothing to do")]
    if not steps:
        return [
            "No changes needed before training: the feature pipelines handle the missing "
            "values, categories and scales found here."
        ]
    return list(dict.fromkeys(steps))
