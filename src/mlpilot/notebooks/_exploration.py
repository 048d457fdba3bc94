"""The analysis behind the data-exploration notebook.

:class:`DataExploration` reads what the job's analysis step saved (the profile, computed on
every row, and a seeded sample of rows) and answers the notebook's questions: target balance,
column types, missing values, duplicates, constant columns, cardinality, association with the
target, likely leakage and identifiers, correlations, outliers, and what to do about them. Each
method returns a DataFrame, a matplotlib figure or a list of findings, so the notebook stays
short and the same checks can be run from Python.

The measures it uses (prediction power among them) are in :mod:`._measures`, the findings and
their thresholds in :mod:`._findings`, the display helpers in :mod:`._display`.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot._types import ProblemType
from mlpilot.errors import MlpilotError
from mlpilot.features import TableCleaner
from mlpilot.notebooks._display import figure, pct
from mlpilot.notebooks._findings import (
    IDENTIFIER_SHARE,
    LEAKAGE_POWER,
    NEAR_CONSTANT_SHARE,
    OUTLIER_Z,
    REDUNDANT_R,
    Insight,
    find_insights,
    fixes,
    markdown_table,
)
from mlpilot.notebooks._measures import (
    FOLDS,
    association,
    bin_codes,
    prediction_power,
    robust_z,
    skewness,
)
from mlpilot.profile import HIGH_CARDINALITY, ColumnKind, DatasetProfile, label_key
from mlpilot.reports import load_duplicates, load_sample
from mlpilot.search import plan_validation, split_keys

__all__ = ["DataExploration"]


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
    def split_gaps(self) -> dict[str, tuple[float, float, str]]:
        """For each suggested split's column: ``(random split's score, the split's score,
        metric)`` of a quick gradient-boosting model on this sample (80/20 holdouts); a large
        gap means a random split's validation score overstates the deployed model's."""
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from sklearn.metrics import accuracy_score, r2_score

        if len(self.sample) < 50 or not self.profile.split_suggestions:
            return {}
        columns = []
        for name in self.features:
            x = self.clean[name]
            if self._kind(name) == ColumnKind.TEXT:
                continue
            if isinstance(x.dtype, pd.CategoricalDtype) or x.dtype == object:
                columns.append(pd.Series(pd.factorize(x)[0], dtype=float).where(x.notna()))
            else:
                columns.append(pd.to_numeric(x, errors="coerce").astype(float))
        if not columns:
            return {}
        X = np.column_stack([c.to_numpy() for c in columns])
        y = self.y
        classification = self.problem_type.is_classification
        gaps = {}
        for suggestion in self.profile.split_suggestions:
            name = suggestion["Column"]
            if name not in self.sample:
                continue
            scores = []
            try:
                split = split_keys(suggestion["Type"].lower(), name, self.sample[name])
                for how in (None, split):
                    plan = plan_validation(
                        len(y), y, classification=classification, seed=0, fraction=0.2, split=how
                    )
                    train, valid = plan.folds == 0, plan.folds == 1
                    model = (
                        HistGradientBoostingClassifier(max_iter=50, random_state=0)
                        if classification
                        else HistGradientBoostingRegressor(max_iter=50, random_state=0)
                    ).fit(X[train], y[train])
                    predicted = model.predict(X[valid])
                    scores.append(
                        float(
                            accuracy_score(y[valid], predicted)
                            if classification
                            else r2_score(y[valid], predicted)
                        )
                    )
            except (ValueError, MlpilotError):  # a split this sample cannot make
                continue
            gaps[name] = (scores[0], scores[1], "accuracy" if classification else "R²")
        return gaps

    @cached_property
    def _folds(self) -> np.ndarray:
        rng = np.random.default_rng(0)
        return rng.permutation(len(self.sample)) % FOLDS

    def _codes(self, name: str) -> np.ndarray | None:
        """Bin codes of one feature (None for text)."""
        return bin_codes(self._kind(name), self.clean[name])

    def _power(self, codes: np.ndarray) -> float:
        """Out-of-fold score of predicting the target from the bin alone (0-1)."""
        return prediction_power(codes, self.y, self._folds, self.problem_type, self.target)

    def _association(self, name: str, codes: np.ndarray) -> tuple[str, float]:
        """(measure, value) between one feature and the target."""
        return association(self._kind(name), self.clean[name], codes, self.y, self.problem_type)

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
                f"{p.duplicate_rows:,} ({pct(p.duplicate_rows / max(1, total_rows))})",
            ),
            (
                "Rows without a target",
                f"{self.target.missing_rows:,} ({pct(self.target.missing_rows / total_rows)})",
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
                    "share": (counts / counts.sum()).map(pct),
                }
            )
            frame.index.name = "class"
            if self.problem_type is ProblemType.BINARY:
                frame["positive class"] = ["yes" if v == t.positive_label else "" for v in t.labels]
            return frame
        y = pd.Series(np.asarray(self.y, dtype=float))
        z = robust_z(y.to_numpy())
        stats = {
            "mean": t.stats.get("mean"),
            "median": t.stats.get("median"),
            "std": t.stats.get("std"),
            "min": t.stats.get("min"),
            "max": t.stats.get("max"),
            "skew (sample)": skewness(y.to_numpy()),
            "outliers (sample, |robust z| > 3.5)": pct(float(np.mean(np.abs(z) > OUTLIER_Z))),
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
        fig, ax = figure(8, 3.6)
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
                    "missing": pct(c.missing_ratio),
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
        frame["missing"] = frame["missing"].map(pct)
        return frame

    def plot_missing(self) -> Any:
        rows = sorted(
            ((c.missing_ratio, c.name) for c in self.profile.columns if c.missing_ratio > 0),
            reverse=True,
        )[:30]
        if not rows:
            return None
        fig, ax = figure(8, max(2.0, 0.6 + 0.28 * len(rows)))
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
                        "most frequent value share": pct(share),
                    }
                )
        for c in self.profile.columns:
            if c.kind != ColumnKind.DROP and c.missing_ratio >= NEAR_CONSTANT_SHARE:
                rows.append(
                    {
                        "column": c.name,
                        "finding": "almost always missing",
                        "most frequent value share": f"missing in {pct(c.missing_ratio)}",
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
        fig, ax = figure(8, max(2.0, 0.6 + 0.3 * len(frame)))
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
                        "finding": f"kept, but {pct(share)} of its values are distinct: "
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
        fig, ax = figure(size + 1.5, size)
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
            z = robust_z(x)
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
        frame["outliers"] = frame["outliers"].map(pct)
        for col in ("median", "min", "max"):
            frame[col] = frame[col].map(lambda v: "" if v is None else f"{v:,.4g}")
        return frame.set_index("column")

    def plot_outliers(self, top: int = 6) -> Any:
        frame = self._outlier_frame[self._outlier_frame["outliers"] > 0].head(top)
        if frame.empty:
            return None
        fig, axes = figure(3 * len(frame), 3.2, ncols=len(frame))
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
        return find_insights(self)

    def insights_markdown(self) -> str:
        return markdown_table(self.insights())

    def recommendations(self) -> list[str]:
        """Concrete things to do, most important first."""
        return fixes(self.insights())

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
