"""The analysis behind the data-exploration notebook.

:class:`DataExploration` reads what the job's analysis step saved (the profile, computed on
every row, and a seeded sample of rows) and answers the notebook's questions: target balance,
column types, missing values, duplicates, constant columns, cardinality, association with the
target, likely leakage and identifiers, correlations, outliers, and what to do about them. Each
method returns a DataFrame, a matplotlib figure or a list of findings, so the notebook stays
short and the same checks can be run from Python.

Prediction power (0-1) is how well one column alone predicts the target: the column is cut into
bins (quantiles for numbers, the most frequent levels for categories), each bin's target rate is
learned on four fifths of the sample and applied to the rest (5-fold), and the out-of-fold
predictions are scored: 2·AUC−1 (binary), the accuracy gain over always predicting the majority
class (multiclass) or R² (regression), floored at 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mlpilot._types import ProblemType
from mlpilot.features import TableCleaner
from mlpilot.profile import HIGH_CARDINALITY, ColumnKind, DatasetProfile, label_key
from mlpilot.reports import load_duplicates, load_sample

__all__ = ["DataExploration", "Insight", "show", "table_style"]

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
_BINS = 32
_LEVELS = 100
_FOLDS = 5


@dataclass(frozen=True)
class Insight:
    """One finding: how severe, what, how to confirm it, what to do."""

    severity: str  # "high" | "low"
    title: str
    detail: str
    confirm: str
    fix: str
    columns: tuple[str, ...] = ()


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else "<0.1%"


def _md(text: object) -> str:
    """Text for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


class DataExploration:
    """The data-exploration notebook's analysis.

    Parameters
    ----------
    profile:
        The job's :class:`~mlpilot.profile.DatasetProfile` (facts about every row).
    sample:
        Raw training rows (a sample), including the target column.
    duplicates:
        Examples of repeated rows with their counts (``__count__``), if any.
    objective:
        The job's objective metric, for advice that depends on it.

    Examples
    --------
    >>> exploration = DataExploration.load("runs/churn/sagemaker-automl-candidates/<pr>")
    ...                                                                 # doctest: +SKIP
    >>> exploration.leakage()                                           # doctest: +SKIP
    """

    def __init__(
        self,
        profile: DatasetProfile,
        sample: pd.DataFrame,
        duplicates: pd.DataFrame | None = None,
        objective: str | None = None,
    ) -> None:
        self.profile = profile
        self.sample = sample
        self.duplicates = duplicates
        self.objective = objective
        self.target = profile.target
        self.problem_type = profile.problem_type

    @classmethod
    def load(cls, analysis_dir: str | Path) -> DataExploration:
        """Read a job's analysis folder (``sagemaker-automl-candidates/<job>-pr-1-<hash>``)."""
        root = Path(analysis_dir)
        profile = DatasetProfile.load(root / "profile.json")
        sample = load_sample(root / "data-sample")
        objective = None
        definitions = root / "candidates.json"
        if definitions.exists():
            objective = json.loads(definitions.read_text()).get("Objective")
        return cls(profile, sample, load_duplicates(root / "data-sample"), objective)

    # -- shared pieces --------------------------------------------------------------------
    @cached_property
    def features(self) -> list[str]:
        return self.profile.features()

    @cached_property
    def clean(self) -> pd.DataFrame:
        """The sample's feature columns typed as the models see them."""
        return TableCleaner.from_profile(self.profile).fit().transform(self.sample)

    @cached_property
    def y(self) -> np.ndarray:
        return self.target.encode(self.sample[self.target.name])

    def _kind(self, name: str) -> str:
        return self.profile.column(name).kind

    @cached_property
    def _folds(self) -> np.ndarray:
        rng = np.random.default_rng(0)
        return rng.permutation(len(self.sample)) % _FOLDS

    def _codes(self, name: str) -> np.ndarray | None:
        """Bin codes of one feature (None for text)."""
        kind = self._kind(name)
        values = self.clean[name]
        if kind in (ColumnKind.NUMERIC, ColumnKind.DATETIME):
            if kind == ColumnKind.DATETIME:
                stamps = pd.to_datetime(values)
                v = np.where(stamps.isna(), np.nan, stamps.astype("int64").astype("float64"))
            else:
                v = np.asarray(values, dtype="float64")
            finite = ~np.isnan(v)
            codes = np.full(len(v), -1, dtype=np.int64)
            distinct = np.unique(v[finite])
            if len(distinct) <= _BINS:
                codes[finite] = np.searchsorted(distinct, v[finite])
            else:
                inner = np.linspace(0, 1, _BINS + 1)[1:-1]
                edges = np.unique(np.quantile(v[finite], inner))
                codes[finite] = np.searchsorted(edges, v[finite], side="right")
            codes[~finite] = codes.max() + 1
            return codes
        if kind == ColumnKind.CATEGORICAL:
            series = pd.Series(values, dtype="object")
            top = series.value_counts().index[:_LEVELS]
            lookup = {level: i for i, level in enumerate(top)}
            mapped = series.map(lookup).where(series.notna(), len(top) + 1)
            return mapped.fillna(len(top)).to_numpy(dtype=np.int64)
        return None

    def _power(self, codes: np.ndarray) -> float:
        """Out-of-fold score of predicting the target from the bin alone (0-1)."""
        y, folds = self.y, self._folds
        n_bins = int(codes.max()) + 1
        if self.problem_type.is_classification:
            k = len(self.target.labels)
            pred = np.zeros((len(y), k))
            for f in range(_FOLDS):
                train, test = folds != f, folds == f
                counts = np.bincount(codes[train] * k + y[train], minlength=n_bins * k)
                counts = counts.reshape(n_bins, k).astype(float)
                prior = np.bincount(y[train], minlength=k) / max(1, train.sum())
                pred[test] = ((counts + prior) / (counts.sum(axis=1, keepdims=True) + 1))[
                    codes[test]
                ]
            if self.problem_type is ProblemType.BINARY:
                positive = self.target.positive_index
                truth = y == positive
                if truth.all() or not truth.any():
                    return 0.0
                return max(0.0, 2 * float(roc_auc_score(truth, pred[:, positive])) - 1)
            accuracy = float(np.mean(pred.argmax(axis=1) == y))
            base = float(np.bincount(y).max() / len(y))
            return 0.0 if base >= 1 else max(0.0, (accuracy - base) / (1 - base))
        target = np.asarray(y, dtype=float)
        pred_r = np.zeros(len(target))
        for f in range(_FOLDS):
            train, test = folds != f, folds == f
            sums = np.bincount(codes[train], weights=target[train], minlength=n_bins)
            counts = np.bincount(codes[train], minlength=n_bins)
            mean = float(target[train].mean())
            pred_r[test] = ((sums + mean) / (counts + 1))[codes[test]]
        total = float(np.sum((target - target.mean()) ** 2))
        if total == 0:
            return 0.0
        return max(0.0, 1 - float(np.sum((target - pred_r) ** 2)) / total)

    def _association(self, name: str, codes: np.ndarray) -> tuple[str, float]:
        """(measure, value) between one feature and the target."""
        kind = self._kind(name)
        y = self.y
        if kind in (ColumnKind.NUMERIC, ColumnKind.DATETIME) and not (
            self.problem_type.is_classification
        ):
            x = pd.Series(
                np.asarray(codes if kind == ColumnKind.DATETIME else self.clean[name], dtype=float)
            )
            rho = x.corr(pd.Series(np.asarray(y, dtype=float)), method="spearman")
            return "Spearman ρ", float(rho) if rho == rho else 0.0
        if kind in (ColumnKind.NUMERIC, ColumnKind.DATETIME):
            xs = np.asarray(codes if kind == ColumnKind.DATETIME else self.clean[name], dtype=float)
            present = ~np.isnan(xs)
            return "correlation ratio η", _correlation_ratio(y[present], xs[present])
        if self.problem_type.is_classification:
            return "Cramér's V", _cramers_v(codes, y)
        return "correlation ratio η", _correlation_ratio(codes, np.asarray(y, dtype=float))

    # -- summary --------------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """Rows, columns, kinds, duplicates, missing targets, problem type."""
        p = self.profile
        kinds = pd.Series([c.kind for c in p.columns]).value_counts()
        total_rows = p.n_rows
        rows = [
            ("Rows", f"{total_rows:,}"),
            (
                "Columns",
                f"{p.n_columns:,} (target{' and weight' if p.sample_weight else ''} included)",
            ),
            ("Target", f"{self.target.name} — {self.problem_type.value} ({self.target.reason})"),
            (
                "Feature columns",
                ", ".join(
                    f"{kinds.get(k, 0)} {k}"
                    for k in ("numeric", "categorical", "text", "datetime")
                    if kinds.get(k, 0)
                )
                or "none",
            ),
            ("Dropped columns", str(kinds.get(ColumnKind.DROP, 0))),
            (
                "Duplicate rows",
                f"{p.duplicate_rows:,} ({_pct(p.duplicate_rows / max(1, total_rows))})",
            ),
            (
                "Rows without a target",
                f"{self.target.missing_rows:,} ({_pct(self.target.missing_rows / total_rows)})",
            ),
            ("Rows in this notebook's sample", f"{len(self.sample):,}"),
        ]
        if self.objective:
            rows.append(("Objective metric", self.objective))
        if p.sample_weight:
            rows.append(("Sample weight column", p.sample_weight))
        return pd.DataFrame(rows, columns=["", "value"]).set_index("")

    # -- target ---------------------------------------------------------------------------
    def target_summary(self) -> pd.DataFrame:
        """Classes with counts and shares, or the regression target's statistics."""
        t = self.target
        if self.problem_type.is_classification:
            counts = pd.Series(
                {label_key(v): t.class_counts.get(label_key(v), 0) for v in t.labels}
            )
            frame = pd.DataFrame(
                {
                    "rows": counts.map("{:,}".format),
                    "share": (counts / counts.sum()).map(_pct),
                }
            )
            frame.index.name = "class"
            if self.problem_type is ProblemType.BINARY:
                frame["positive class"] = ["yes" if v == t.positive_label else "" for v in t.labels]
            return frame
        y = pd.Series(np.asarray(self.y, dtype=float))
        z = _robust_z(y.to_numpy())
        stats = {
            "mean": t.stats.get("mean"),
            "median": t.stats.get("median"),
            "std": t.stats.get("std"),
            "min": t.stats.get("min"),
            "max": t.stats.get("max"),
            "skew (sample)": _skew(y.to_numpy()),
            "outliers (sample, |robust z| > 3.5)": _pct(float(np.mean(np.abs(z) > OUTLIER_Z))),
        }
        return pd.DataFrame(
            {"value": [f"{v:,.4g}" if isinstance(v, float) else v for v in stats.values()]},
            index=list(stats),
        )

    @property
    def imbalance_ratio(self) -> float | None:
        """Largest class count over the smallest (classification)."""
        if not self.problem_type.is_classification:
            return None
        counts = [c for c in self.target.class_counts.values() if c > 0]
        return max(counts) / min(counts) if counts else None

    def plot_target(self) -> Any:
        fig, ax = _figure(8, 3.6)
        t = self.target
        if self.problem_type.is_classification:
            labels = [label_key(v) for v in t.labels]
            counts = [t.class_counts.get(k, 0) for k in labels]
            order = np.argsort(counts)[::-1][:40]
            colors = [
                "#d62728"
                if self.problem_type is ProblemType.BINARY and t.labels[i] == t.positive_label
                else "#1f77b4"
                for i in order
            ]
            ax.bar([labels[i] for i in order], [counts[i] for i in order], color=colors)
            ax.set_ylabel("rows")
            ax.set_title(f"Class frequencies of {t.name!r}")
            if len(order) > 8:
                ax.tick_params(axis="x", labelrotation=60)
        else:
            y = np.asarray(self.y, dtype=float)
            ax.hist(y, bins=50, color="#1f77b4")
            ax.axvline(np.median(y), color="black", linestyle="--", label="median")
            ax.set_xlabel(t.name)
            ax.set_ylabel("rows (sample)")
            ax.set_title(f"Distribution of {t.name!r}")
            ax.legend()
        fig.tight_layout()
        return fig

    # -- columns --------------------------------------------------------------------------
    def column_types(self) -> pd.DataFrame:
        """Every column: inferred type, why, missing share, distinct values, examples."""
        rows = []
        for c in self.profile.columns:
            raw = self.sample[c.name] if c.name in self.sample else pd.Series(dtype=object)
            examples = ", ".join(str(v)[:24] for v in raw.dropna().unique()[:3])
            rows.append(
                {
                    "column": c.name,
                    "type": "dropped" if c.kind == ColumnKind.DROP else c.kind,
                    "why": c.reason,
                    "missing": _pct(c.missing_ratio),
                    "distinct": f"{c.n_unique:,}",
                    "examples": examples,
                }
            )
        return pd.DataFrame(rows).set_index("column")

    def missing_values(self) -> pd.DataFrame:
        """Columns with missing values, most first (shares over every row)."""
        rows = [
            {
                "column": c.name,
                "missing": c.missing_ratio,
                "read as missing": ", ".join(repr(t) for t in c.missing_tokens) or "empty cells",
            }
            for c in self.profile.columns
            if c.missing_ratio > 0
        ]
        if not rows:
            return pd.DataFrame(columns=["missing", "read as missing"])
        frame = pd.DataFrame(rows).sort_values("missing", ascending=False).set_index("column")
        frame["missing"] = frame["missing"].map(_pct)
        return frame

    def plot_missing(self) -> Any:
        rows = sorted(
            ((c.missing_ratio, c.name) for c in self.profile.columns if c.missing_ratio > 0),
            reverse=True,
        )[:30]
        if not rows:
            return None
        fig, ax = _figure(8, max(2.0, 0.6 + 0.28 * len(rows)))
        ax.barh([name for _, name in rows][::-1], [100 * r for r, _ in rows][::-1], color="#ff7f0e")
        ax.set_xlabel("% missing")
        ax.set_xlim(0, min(100.0, max(5.0, 110 * rows[0][0])))
        ax.set_title("Missing values by column")
        fig.tight_layout()
        return fig

    def duplicate_rows(self) -> pd.DataFrame:
        """The most repeated rows, with how often each occurs."""
        if self.duplicates is None or self.duplicates.empty:
            return pd.DataFrame(columns=["occurrences"])
        frame = self.duplicates.rename(columns={"__count__": "occurrences"})
        return frame.reset_index(drop=True)

    @cached_property
    def _top_share(self) -> dict[str, float]:
        out = {}
        for name in self.features:
            values = pd.Series(self.clean[name]).dropna()
            if len(values):
                out[name] = float(values.value_counts(normalize=True).iloc[0])
        return out

    def constant_columns(self) -> pd.DataFrame:
        """Constant columns (dropped) and near-constant ones (one value in ≥ 99% of rows)."""
        rows = [
            {"column": c.name, "finding": "constant (dropped)", "most frequent value share": "100%"}
            for c in self.profile.columns
            if c.kind == ColumnKind.DROP and c.reason.startswith("constant")
        ]
        for name, share in self._top_share.items():
            if share >= NEAR_CONSTANT_SHARE:
                rows.append(
                    {
                        "column": name,
                        "finding": "near-constant",
                        "most frequent value share": _pct(share),
                    }
                )
        for c in self.profile.columns:
            if c.kind != ColumnKind.DROP and c.missing_ratio >= NEAR_CONSTANT_SHARE:
                rows.append(
                    {
                        "column": c.name,
                        "finding": "almost always missing",
                        "most frequent value share": f"missing in {_pct(c.missing_ratio)}",
                    }
                )
        if not rows:
            return pd.DataFrame(columns=["finding", "most frequent value share"])
        return pd.DataFrame(rows).set_index("column")

    def high_cardinality(self) -> pd.DataFrame:
        """Categorical columns with many levels (target-encoded rather than one-hot)."""
        rows = []
        for c in self.profile.columns:
            if c.kind != ColumnKind.CATEGORICAL or c.n_unique <= HIGH_CARDINALITY:
                continue
            rows.append(
                {
                    "column": c.name,
                    "levels": f"{c.n_unique:,}",
                    "levels per row": f"{c.n_unique / max(1, self.profile.n_rows):.2f}",
                }
            )
        if not rows:
            return pd.DataFrame(columns=["levels", "levels per row"])
        return pd.DataFrame(rows).set_index("column")

    # -- the target and each feature ------------------------------------------------------
    @cached_property
    def _association_frame(self) -> pd.DataFrame:
        rows = []
        for name in self.features:
            codes = self._codes(name)
            if codes is None:
                rows.append(
                    {
                        "column": name,
                        "type": self._kind(name),
                        "measure": "—",
                        "association": np.nan,
                        "prediction power": np.nan,
                    }
                )
                continue
            measure, value = self._association(name, codes)
            rows.append(
                {
                    "column": name,
                    "type": self._kind(name),
                    "measure": measure,
                    "association": value,
                    "prediction power": self._power(codes),
                }
            )
        frame = pd.DataFrame(
            rows, columns=["column", "type", "measure", "association", "prediction power"]
        )
        return frame.sort_values("prediction power", ascending=False, na_position="last")

    def target_association(self) -> pd.DataFrame:
        """Per feature: association with the target and prediction power, strongest first."""
        frame = self._association_frame.copy()
        for col in ("association", "prediction power"):
            frame[col] = frame[col].map(lambda v: "n/a (text)" if v != v else f"{v:.3f}")
        return frame.set_index("column")

    def plot_association(self, top: int = 20) -> Any:
        frame = self._association_frame.dropna(subset=["prediction power"]).head(top)
        if frame.empty:
            return None
        fig, ax = _figure(8, max(2.0, 0.6 + 0.3 * len(frame)))
        colors = ["#d62728" if v >= LEAKAGE_POWER else "#1f77b4" for v in frame["prediction power"]]
        ax.barh(frame["column"][::-1], frame["prediction power"][::-1], color=colors[::-1])
        ax.axvline(LEAKAGE_POWER, color="#d62728", linestyle=":", label="leakage threshold")
        ax.set_xlim(0, 1)
        ax.set_xlabel("prediction power of the column alone (0-1)")
        ax.set_title("Which columns predict the target")
        ax.legend(loc="lower right")
        fig.tight_layout()
        return fig

    def leakage(self) -> pd.DataFrame:
        """Columns that alone predict the target (almost) perfectly."""
        frame = self._association_frame
        hits = frame[frame["prediction power"] >= LEAKAGE_POWER]
        out = pd.DataFrame(
            {
                "prediction power": hits["prediction power"].map("{:.3f}".format).to_numpy(),
                "finding": "likely target leakage: this column alone predicts the target",
            },
            index=pd.Index(hits["column"].to_numpy(), name="column"),
        )
        return out

    def identifiers(self) -> pd.DataFrame:
        """Identifier columns: dropped by the profile, or kept but almost unique per row."""
        rows = [
            {"column": c.name, "finding": "dropped: " + c.reason}
            for c in self.profile.columns
            if c.kind == ColumnKind.DROP and c.reason.startswith("identifier")
        ]
        n = len(self.sample)
        for name in self.features:
            kind = self._kind(name)
            if kind not in (ColumnKind.NUMERIC, ColumnKind.CATEGORICAL) or n < 50:
                continue
            values = pd.Series(self.clean[name]).dropna()
            if len(values) < 0.9 * n:
                continue
            share = values.nunique() / len(values)
            if kind == ColumnKind.NUMERIC:
                integral = bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
                if not integral:
                    continue
            if share >= IDENTIFIER_SHARE:
                rows.append(
                    {
                        "column": name,
                        "finding": f"kept, but {_pct(share)} of its values are distinct: "
                        "possibly an identifier",
                    }
                )
        if not rows:
            return pd.DataFrame(columns=["finding"])
        return pd.DataFrame(rows).set_index("column")

    # -- between features -----------------------------------------------------------------
    @cached_property
    def _numeric(self) -> pd.DataFrame:
        names = [n for n in self.features if self._kind(n) == ColumnKind.NUMERIC]
        return pd.DataFrame({n: np.asarray(self.clean[n], dtype=float) for n in names})

    def correlations(self, top: int = 20) -> pd.DataFrame:
        """Pearson correlations of the numeric features most associated with the target."""
        numeric = self._numeric
        if numeric.shape[1] < 2:
            return pd.DataFrame()
        ranked = [c for c in self._association_frame["column"] if c in numeric.columns][:top]
        return numeric[ranked].corr()

    def plot_correlations(self, top: int = 20) -> Any:
        corr = self.correlations(top)
        if corr.empty:
            return None
        size = 1.5 + 0.4 * len(corr)
        fig, ax = _figure(size + 1.5, size)
        image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(len(corr)), corr.columns, rotation=90)
        ax.set_yticks(range(len(corr)), corr.columns)
        if len(corr) <= 12:
            for i in range(len(corr)):
                for j in range(len(corr)):
                    value = float(corr.to_numpy()[i, j])
                    if value == value:
                        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax, shrink=0.8, label="Pearson r")
        ax.set_title("Correlation between numeric features")
        fig.tight_layout()
        return fig

    def correlated_pairs(self) -> pd.DataFrame:
        """Pairs of numeric features with |r| ≥ 0.95 (one of each pair is redundant)."""
        numeric = self._numeric
        if numeric.shape[1] < 2:
            return pd.DataFrame(columns=["other feature", "Pearson r"]).rename_axis("feature")
        corr = numeric.corr()
        matrix = corr.to_numpy()
        rows = []
        names = list(corr.columns)
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                b, r = names[j], float(matrix[i, j])
                if r == r and abs(r) >= REDUNDANT_R:
                    rows.append({"feature": a, "other feature": b, "Pearson r": round(float(r), 4)})
        frame = pd.DataFrame(rows, columns=["feature", "other feature", "Pearson r"])
        return frame.set_index("feature")

    # -- outliers -------------------------------------------------------------------------
    @cached_property
    def _outlier_frame(self) -> pd.DataFrame:
        rows = []
        for name in self._numeric.columns:
            x = self._numeric[name].to_numpy()
            z = _robust_z(x)
            present = ~np.isnan(x)
            if not present.any():
                continue
            share = float(np.mean(np.abs(z[present]) > OUTLIER_Z))
            stats = self.profile.column(name).stats
            rows.append(
                {
                    "column": name,
                    "outliers": share,
                    "beyond 3 IQR (every row)": stats.get("outliers_3iqr", 0),
                    "median": stats.get("median"),
                    "min": stats.get("min"),
                    "max": stats.get("max"),
                }
            )
        columns = ["column", "outliers", "beyond 3 IQR (every row)", "median", "min", "max"]
        return pd.DataFrame(rows, columns=columns).sort_values("outliers", ascending=False)

    def outliers(self) -> pd.DataFrame:
        """Numeric columns with values far from the median (|robust z| > 3.5), most first."""
        frame = self._outlier_frame[self._outlier_frame["outliers"] > 0].copy()
        frame["outliers"] = frame["outliers"].map(_pct)
        for col in ("median", "min", "max"):
            frame[col] = frame[col].map(lambda v: "" if v is None else f"{v:,.4g}")
        return frame.set_index("column")

    def plot_outliers(self, top: int = 6) -> Any:
        frame = self._outlier_frame[self._outlier_frame["outliers"] > 0].head(top)
        if frame.empty:
            return None
        fig, axes = _figure(3 * len(frame), 3.2, ncols=len(frame))
        for ax, name in zip(np.atleast_1d(axes), frame["column"], strict=True):
            x = self._numeric[name].dropna().to_numpy()
            ax.boxplot(x, whis=(0.5, 99.5), flierprops={"markersize": 2})
            ax.set_title(name, fontsize=9)
            ax.set_xticks([])
        fig.suptitle("Numeric columns with the most outliers (whiskers: 0.5-99.5%)")
        fig.tight_layout()
        return fig

    # -- findings -------------------------------------------------------------------------
    def insights(self) -> list[Insight]:
        """Every finding, high severity first."""
        found: list[Insight] = []
        t = self.target
        p = self.profile
        for name, row in self.leakage().iterrows():
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
            share = t.missing_rows / p.n_rows
            found.append(
                Insight(
                    "high" if share > 0.05 else "low",
                    "Rows without a target value",
                    f"{t.missing_rows:,} rows ({_pct(share)}) have no valid {t.name!r}; they are "
                    "not used for training.",
                    f"Count the empty or invalid values of {t.name!r} in the source table.",
                    "Fill in the missing labels if they can be recovered; otherwise nothing to do.",
                )
            )
        ratio = self.imbalance_ratio
        if ratio is not None and ratio >= 3:
            counts = {k: v for k, v in t.class_counts.items() if v > 0}
            rare = min(counts, key=lambda k: counts[k])
            metric_hint = (
                f" The objective {self.objective} ignores the imbalance; consider "
                "BalancedAccuracy, F1 or AUC."
                if self.objective in ("Accuracy",)
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
        if self.problem_type.is_classification:
            tiny = [k for k, v in t.class_counts.items() if 0 < v < 10]
            if tiny:
                found.append(
                    Insight(
                        "high",
                        "Classes with fewer than 10 rows",
                        f"{len(tiny)} class(es) have under 10 rows: "
                        f"{', '.join(map(repr, tiny[:8]))}.",
                        "See the class frequencies under Target analysis.",
                        "Merge rare classes into a broader one or collect more rows; a model "
                        "cannot learn a class from a handful of examples.",
                    )
                )
        if p.duplicate_rows:
            share = p.duplicate_rows / p.n_rows
            found.append(
                Insight(
                    "high" if share > 0.05 else "low",
                    "Duplicate rows",
                    f"{p.duplicate_rows:,} rows ({_pct(share)}) repeat an earlier row.",
                    "See the examples under Duplicate rows.",
                    "Remove copies that come from the data collection (joins, repeated "
                    "exports); keep them only if they are real repeated observations.",
                )
            )
        ids = self.identifiers()
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
        consts = self.constant_columns()
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
        high = self.high_cardinality()
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
                    ", ".join(f"{c.name!r} ({_pct(c.missing_ratio)})" for c in many_missing[:8])
                    + ".",
                    "See the Missing values section.",
                    "Check whether missing means 'none' (then fill it with that value) or 'not "
                    "recorded' (the models handle it; linear models get a missing indicator).",
                    tuple(c.name for c in many_missing),
                )
            )
        pairs = self.correlated_pairs()
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
        if not self.problem_type.is_classification:
            y = np.asarray(self.y, dtype=float)
            skew = _skew(y)
            if abs(skew) > 2:
                found.append(
                    Insight(
                        "low",
                        "Skewed target",
                        f"{t.name!r} has skew {skew:.1f}: a few large values dominate squared "
                        "errors.",
                        "See the histogram under Target analysis.",
                        "Consider MAE as the objective, or predicting log(target) if relative "
                        "errors matter.",
                    )
                )
        outliers = self._outlier_frame
        heavy = outliers[outliers["outliers"] > 0.05]
        if not heavy.empty:
            found.append(
                Insight(
                    "low",
                    "Numeric columns with many outliers",
                    ", ".join(
                        f"{n!r} ({_pct(s)})"
                        for n, s in list(zip(heavy["column"], heavy["outliers"], strict=True))[:6]
                    )
                    + " of the values lie beyond 3.5 robust standard deviations.",
                    "See the box plots under Numeric outliers.",
                    "Check for unit errors or sentinel values (e.g. 9999); tree models are "
                    "robust to genuine extremes.",
                    tuple(heavy["column"]),
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
                    "Collect more rows if possible; prefer simpler candidates when scores are "
                    "close.",
                )
            )
        return sorted(found, key=lambda i: i.severity != "high")

    def insights_markdown(self) -> str:
        found = self.insights()
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

    def recommendations(self) -> list[str]:
        """Concrete things to do, most important first."""
        found = self.insights()
        steps = [i.fix for i in found if not i.fix.startswith("Nothing to do")]
        if not steps:
            return [
                "No changes needed before training: the feature pipelines handle the missing "
                "values, categories and scales found here."
            ]
        return list(dict.fromkeys(steps))

    def recommendations_markdown(self) -> str:
        return "\n".join(f"{n}. {text}" for n, text in enumerate(self.recommendations(), 1))

    # -- display helpers for the notebook -------------------------------------------------
    def show_insights(self) -> Any:
        # IPython and matplotlib load only in the notebook that displays something: the job
        # imports this module without them.
        from IPython.display import Markdown

        return Markdown(self.insights_markdown())

    def show_recommendations(self) -> Any:
        from IPython.display import Markdown

        return Markdown(self.recommendations_markdown())


def table_style() -> Any:
    """CSS that left-aligns table cells (the notebook's HTML export shows text columns)."""
    from IPython.display import HTML

    return HTML(
        "<style>.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th, .dataframe td, "
        ".dataframe th { text-align: left !important; }</style>"
    )


def show(result: Any, empty: str) -> Any:
    """``result`` (a table or figure), or ``empty`` as Markdown when there is nothing to show."""
    from IPython.display import Markdown

    if result is None or (isinstance(result, pd.DataFrame) and result.empty):
        return Markdown(f"*{empty}*")
    return result


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    """A figure outside pyplot's global state (safe in threads; shown once in notebooks)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.subplots()
    return fig, axes


def _skew(values: np.ndarray) -> float:
    """Sample skewness (adjusted Fisher-Pearson, as pandas computes it)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 3:
        return 0.0
    d = x - x.mean()
    m2, m3 = float(np.mean(d**2)), float(np.mean(d**3))
    if m2 == 0:
        return 0.0
    return m3 / m2**1.5 * np.sqrt(n * (n - 1)) / (n - 2)


def _robust_z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    present = x[~np.isnan(x)]
    if present.size == 0:
        return np.zeros_like(x)
    median = np.median(present)
    mad = np.median(np.abs(present - median)) * 1.4826
    if mad == 0:
        q1, q3 = np.percentile(present, [25, 75])
        mad = (q3 - q1) / 1.349
    if mad == 0:
        return np.zeros_like(x)
    return np.where(np.isnan(x), 0.0, (x - median) / mad)


def _correlation_ratio(groups: np.ndarray, values: np.ndarray) -> float:
    """η: how much of the variance of ``values`` the groups explain (0-1)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return 0.0
    _, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(inverse)
    means = np.bincount(inverse, weights=values) / counts
    total = float(np.sum((values - values.mean()) ** 2))
    between = float(np.sum(counts * (means - values.mean()) ** 2))
    return float(np.sqrt(between / total)) if total > 0 else 0.0


def _cramers_v(codes: np.ndarray, y: np.ndarray) -> float:
    table = pd.crosstab(codes, y).to_numpy().astype(float)
    n = table.sum()
    if n == 0 or min(table.shape) < 2:
        return 0.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(np.sum((table - expected) ** 2 / np.where(expected > 0, expected, 1)))
    return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
