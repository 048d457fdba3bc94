"""The analysis behind a forecasting job's data-exploration notebook.

:class:`SeriesExploration` reads what the job saved of its prepared series (``data-sample/``:
the facts, one row of statistics per series, and the prepared series themselves or a seeded
sample of them, see :mod:`mlpilot.reports`) and answers the notebook's questions: how many
series and how long, when they start and end, gaps and filled values, zeros and intermittent
series, what the preparation aggregated, seasonality, covariates and static attributes, and
what to do about it. Each method returns a DataFrame, a matplotlib figure or findings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.notebooks._display import figure, pct
from mlpilot.notebooks._findings import Insight, fixes, markdown_table
from mlpilot.problems.forecasting import SERIES
from mlpilot.reports import SERIES_FILLED, SeriesSample, load_series_sample, series_key_text

__all__ = ["INTERMITTENT_INTERVAL", "SeriesExploration"]

#: Average interval between non-zero values above which a series is intermittent
#: (Syntetos and Boylan's cut-off).
INTERMITTENT_INTERVAL = 1.32
#: Autocorrelation at the season's lag from which a series counts as seasonal.
SEASONAL_ACF = 0.3
#: Share of filled target values from which a finding is raised.
MANY_FILLED = 0.1


class SeriesExploration:
    """A forecasting job's data-exploration analysis.

    Parameters
    ----------
    sample:
        What the job saved of its series (:class:`~mlpilot.reports.SeriesSample`).
    objective:
        The job's objective metric, for the summary.

    Examples
    --------
    >>> exploration = SeriesExploration.load("runs/sales/sagemaker-automl-candidates/<pr>")
    ...                                                                 # doctest: +SKIP
    >>> exploration.gaps()                                              # doctest: +SKIP
    """

    def __init__(self, sample: SeriesSample, objective: str | None = None) -> None:
        self.sample = sample
        self.facts = sample.facts
        self.objective = objective
        #: Statistics per series, by series code.
        self.items = sample.items
        self.key_columns = sample.key_columns
        #: Each series' key as text, by series code.
        self.names = pd.Series(
            series_key_text(sample.keys, self.key_columns).to_numpy(),
            index=sample.keys[SERIES].to_numpy(),
        )
        self.target = sample.target
        self.timestamp = sample.timestamp

    @classmethod
    def load(cls, analysis_dir: str | Path) -> SeriesExploration:
        """Read a job's analysis folder (``sagemaker-automl-candidates/<job>-pr-1-<hash>``)."""
        root = Path(analysis_dir)
        objective = None
        definitions = root / "candidates.json"
        if definitions.exists():
            objective = json.loads(definitions.read_text()).get("Objective")
        return cls(load_series_sample(root / "data-sample"), objective)

    # -- pieces -----------------------------------------------------------------------------
    @property
    def n_series(self) -> int:
        return len(self.items)

    @property
    def season(self) -> int:
        return self.sample.season_length

    def _named(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (one row per series, with its code) indexed by the series' keys."""
        out = frame.drop(columns=SERIES)
        names = self.names.reindex(frame[SERIES].to_numpy()).to_numpy()
        out.index = pd.Index(names, name=" | ".join(self.key_columns))
        return out

    @staticmethod
    def _date(value: Any) -> str:
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else str(stamp)

    # -- summary ----------------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """The series' count, grid, lengths, dates and what the job will forecast."""
        f = self.facts
        items = self.items
        rows = [
            ("Series", f"{self.n_series:,} (key: {', '.join(self.key_columns)})"),
            ("Target", self.target),
            ("Timestamp", self.timestamp + (f" (in {f['timezone']})" if f.get("timezone") else "")),
            ("Frequency", f"{f['frequency']} (ForecastFrequency {f['forecast_frequency']})"),
            ("Forecast horizon", f"{f['horizon']} steps"),
            ("Season length", f"{self.season} steps" if self.season > 1 else "none (1)"),
            ("History rows (on the grid)", f"{f['history_rows']:,}"),
            ("Series length", f"{items['length'].min():,} to {items['length'].max():,} steps "
             f"(median {int(items['length'].median()):,})"),
            ("First timestamp", self._date(items["start"].min())),
            ("Last timestamp", self._date(items["end"].max())),
            ("Filled target values", f"{f['filled_target_values']:,} "
             f"({pct(f['filled_target_values'] / max(1, f['history_rows']))})"),
            ("Covariates", ", ".join(f"{k} ({v})" for k, v in f["covariates"].items()) or "none"),
            ("Static attributes",
             ", ".join(f"{k} ({v})" for k, v in f["static_attributes"].items()) or "none"),
        ]  # fmt: skip
        if f.get("backtest"):
            rows.append(("Backtests", str(f["backtest"])))
        if f.get("quantiles"):
            rows.append(("Forecast quantiles", ", ".join(f["quantiles"])))
        if self.objective:
            rows.append(("Objective metric", self.objective))
        if f["sampled_series"] < self.n_series:
            rows.append(
                ("Series drawn in this notebook", f"{f['sampled_series']:,} (a seeded sample)")
            )
        return pd.DataFrame(rows, columns=["", "value"]).set_index("")

    def preparation_notes(self) -> pd.DataFrame:
        """What the preparation aggregated, dropped and filled, one line each."""
        return pd.DataFrame({"note": self.facts.get("notes", [])})

    # -- lengths and dates ------------------------------------------------------------------
    def lengths(self) -> pd.DataFrame:
        """The distribution of series lengths (grid steps from the first target value)."""
        lengths = self.items["length"]
        horizon = int(self.facts["horizon"])
        stats = lengths.describe(percentiles=[0.05, 0.25, 0.5, 0.75, 0.95])
        frame = stats.rename(
            {"count": "series", "mean": "mean length", "std": "spread (std)"}
        ).to_frame("steps")
        frame.loc["shorter than 2 horizons"] = float((lengths < 2 * horizon).sum())
        return frame.round(1)

    def plot_lengths(self) -> Any:
        fig, ax = figure(6.5, 3.4)
        ax.hist(self.items["length"], bins=min(40, max(5, self.n_series // 2)), color="#2c6fbb")
        ax.axvline(2 * int(self.facts["horizon"]), color="#d9822b", linestyle="--",
                   label="2 × horizon")  # fmt: skip
        ax.set_xlabel("series length (steps)")
        ax.set_ylabel("series")
        ax.set_title("Series lengths")
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        return fig

    def dates(self) -> pd.DataFrame:
        """When series start and end: the earliest, latest and most common dates, and how many
        series end before the last timestamp (their forecasts start earlier)."""
        rows = []
        for column, label in (("start", "first value"), ("end", "last value")):
            values = pd.to_datetime(self.items[column])
            common = values.mode()
            rows.append(
                {
                    "": label,
                    "earliest": self._date(values.min()),
                    "latest": self._date(values.max()),
                    "most common": self._date(common.iloc[0]) if len(common) else "",
                    "series at the most common": int((values == common.iloc[0]).sum()),
                }
            )
        return pd.DataFrame(rows).set_index("")

    def plot_coverage(self) -> Any:
        """How many series have history at each time (from each series' first to last
        value)."""
        starts = pd.to_datetime(self.items["start"]).value_counts()
        ends = pd.to_datetime(self.items["end"]).value_counts()
        # A series counts from its start through its end: +1 at the start, -1 after the end.
        change = starts.add(-ends, fill_value=0).sort_index()
        active = change.cumsum() + ends.reindex(change.index, fill_value=0)
        fig, ax = figure(7, 3.2)
        ax.step(active.index, active.to_numpy(), where="post", color="#2c6fbb")
        ax.set_ylabel("series with history")
        ax.set_title("Series over time")
        ax.set_ylim(0, max(1, int(active.max()) * 1.1))
        fig.autofmt_xdate()
        fig.tight_layout()
        return fig

    # -- gaps, zeros ------------------------------------------------------------------------
    def gaps(self, top: int = 15) -> pd.DataFrame:
        """Series with filled target values (grid steps missing from the data, or given without
        a target), most filled first."""
        items = self.items[self.items["filled"] > 0]
        frame = items[[SERIES, "length", "filled", "longest_gap"]].copy()
        frame["filled share"] = (frame["filled"] / frame["length"]).map(pct)
        frame = frame.sort_values(["filled", "longest_gap"], ascending=False).head(top)
        return self._named(frame.rename(columns={"longest_gap": "longest gap (steps)"}))

    def zeros(self) -> pd.DataFrame:
        """Zeros in the target: their overall share, series of zeros only, intermittent series
        (average interval between non-zero values above 1.32)."""
        items = self.items
        zero_share = items["zero_share"].fillna(0)
        rows = [
            ("Series with any zero", int((zero_share > 0).sum())),
            ("Series of zeros only", int((zero_share >= 1).sum())),
            ("Series with ≥ 50% zeros", int((zero_share >= 0.5).sum())),
            ("Intermittent series (interval > 1.32)",
             int((items["mean_interval"] > INTERMITTENT_INTERVAL).sum())),
            ("Median share of zeros", pct(float(zero_share.median()))),
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=["", "series"]).set_index("")
        frame["share of series"] = [
            pct(v / max(1, self.n_series)) if isinstance(v, int) else "" for v in frame["series"]
        ]
        return frame

    def intermittent(self, top: int = 15) -> pd.DataFrame:
        """The most intermittent series: share of zeros and interval between non-zero values."""
        items = self.items[self.items["mean_interval"] > INTERMITTENT_INTERVAL]
        frame = items[[SERIES, "length", "zero_share", "mean_interval"]].copy()
        frame = frame.sort_values("zero_share", ascending=False).head(top)
        frame["zero_share"] = frame["zero_share"].map(pct)
        return self._named(
            frame.rename(columns={"zero_share": "zeros", "mean_interval": "mean interval"})
        ).round(2)

    def plot_zeros(self) -> Any:
        fig, ax = figure(6.5, 3.2)
        ax.hist(self.items["zero_share"].fillna(0), bins=20, range=(0, 1), color="#2c6fbb")
        ax.set_xlabel("share of zeros in the series")
        ax.set_ylabel("series")
        ax.set_title("Zeros per series")
        fig.tight_layout()
        return fig

    def duplicates(self) -> pd.DataFrame:
        """Rows for the same series and timestamp: what the preparation aggregated (timestamps
        finer than the frequency), or nothing (it refuses duplicates on the frequency's grid)."""
        kinds = ("Timestamps finer", "Aggregation")
        notes = [n for n in self.facts.get("notes", []) if n.startswith(kinds)]
        if not notes:
            notes = [
                "No two rows share a series and timestamp: the data are on the "
                f"{self.facts['frequency']} grid, where the job refuses duplicates."
            ]
        return pd.DataFrame({"aggregation": notes})

    # -- seasonality ------------------------------------------------------------------------
    def seasonality(self) -> pd.DataFrame:
        """The autocorrelation at the season's lag per series, summarised: how many series
        repeat their pattern from one season to the next."""
        if self.season <= 1:
            return pd.DataFrame(
                {"value": [f"No season at {self.facts['frequency']}: nothing to measure"]},
                index=pd.Index(["season length 1"], name=""),
            )
        acf = self.items["season_acf"].dropna()
        rows = [
            ("Season length (steps)", str(self.season)),
            ("Series long enough to measure", f"{len(acf):,} of {self.n_series:,}"),
            ("Median autocorrelation at the season's lag",
             f"{acf.median():.2f}" if len(acf) else ""),
            (f"Seasonal series (autocorrelation ≥ {SEASONAL_ACF})",
             f"{int((acf >= SEASONAL_ACF).sum()):,} ({pct((acf >= SEASONAL_ACF).mean())})"
             if len(acf) else ""),
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=["", "value"]).set_index("")

    def plot_seasonality(self) -> Any:
        acf = self.items["season_acf"].dropna()
        if self.season <= 1 or acf.empty:
            return None
        fig, ax = figure(6.5, 3.2)
        ax.hist(acf, bins=20, range=(-1, 1), color="#2c6fbb")
        ax.axvline(SEASONAL_ACF, color="#d9822b", linestyle="--", label=f"{SEASONAL_ACF}")
        ax.set_xlabel(f"autocorrelation at lag {self.season}")
        ax.set_ylabel("series")
        ax.set_title("Seasonality per series")
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        return fig

    def plot_season_profile(self, top: int = 6) -> Any:
        """The average shape of a season (each step's mean, each series scaled by its mean) for
        the longest sampled series."""
        if self.season <= 1:
            return None
        history = self.sample.history
        fig, ax = figure(6.5, 3.4)
        drawn = 0
        for code in self._longest_sampled(top):
            y = history.loc[history[SERIES] == code, self.target].to_numpy(np.float64)
            if len(y) < 2 * self.season or not np.nanmean(np.abs(y)):
                continue
            step = np.arange(len(y)) % self.season
            shape = pd.Series(y / np.nanmean(np.abs(y))).groupby(step).mean()
            ax.plot(shape.index, shape.to_numpy(), marker="o", markersize=3,
                    label=self._label(code))  # fmt: skip
            drawn += 1
        if not drawn:
            return None
        if self.season <= 24:
            ax.set_xticks(range(self.season))
        ax.set_xlabel(f"step in the season (of {self.season}, from each series' start)")
        ax.set_ylabel("value / series mean")
        ax.set_title("Season profile")
        ax.legend(loc="best", fontsize=7)
        fig.tight_layout()
        return fig

    # -- covariates -------------------------------------------------------------------------
    def covariates(self) -> pd.DataFrame:
        """Each covariate and static attribute: its kind, and for covariates the share of the
        horizon's values the data gave in future-dated rows (the rest were filled)."""
        rows = []
        given = self.facts.get("future_given", {})
        for name, kind in self.facts.get("covariates", {}).items():
            rows.append([name, "covariate (changes over time)", kind, pct(given.get(name, 0.0))])
        for name, kind in self.facts.get("static_attributes", {}).items():
            rows.append([name, "static attribute (one value per series)", kind, ""])
        return pd.DataFrame(
            rows, columns=["column", "role", "kind", "future values given"]
        ).set_index("column")

    def static_values(self, top: int = 10) -> pd.DataFrame:
        """The most frequent values of each static attribute, with their series counts."""
        rows = []
        for name in self.facts.get("static_attributes", {}):
            counts = self.sample.keys[name].astype(str).value_counts().head(top)
            rows += [[name, value, int(n)] for value, n in counts.items()]
        return pd.DataFrame(rows, columns=["attribute", "value", "series"])

    # -- plots of series --------------------------------------------------------------------
    def _longest_sampled(self, top: int) -> list[int]:
        sampled = self.items[self.items["sampled"]]
        ordered = sampled.sort_values(["length", "mean"], ascending=False)
        return [int(c) for c in ordered[SERIES].head(top)]

    def _label(self, code: int) -> str:
        return str(self.names.get(code, code))[:40]

    def plot_series(self, top: int = 6) -> Any:
        """A few series overlaid (the longest, then the largest): as given, and each divided by
        its mean so shapes compare; filled values marked."""
        history = self.sample.history
        codes = self._longest_sampled(top)
        fig, axes = figure(11, 3.8, ncols=2)
        for code in codes:
            rows = history[history[SERIES] == code]
            stamps = pd.to_datetime(rows[self.timestamp])
            y = rows[self.target].to_numpy(np.float64)
            scale = np.nanmean(np.abs(y)) or 1.0
            line = axes[0].plot(stamps, y, linewidth=1, label=self._label(code))[0]
            axes[1].plot(stamps, y / scale, linewidth=1, color=line.get_color())
            filled = rows[SERIES_FILLED].to_numpy(bool)
            if filled.any():
                axes[0].scatter(stamps[filled], y[filled], s=10, color=line.get_color(), marker="x")
        axes[0].set_title(f"{len(codes)} series ({self.target})")
        axes[1].set_title("The same, each divided by its mean")
        axes[0].legend(loc="best", fontsize=7)
        for ax in axes:
            for label in ax.get_xticklabels():
                label.set_rotation(30)
                label.set_ha("right")
        fig.tight_layout()
        return fig

    # -- findings ---------------------------------------------------------------------------
    def insights(self) -> list[Insight]:
        """Every finding, high severity first."""
        found: list[Insight] = []
        items = self.items
        n = max(1, self.n_series)
        horizon = int(self.facts["horizon"])
        short = int((items["length"] < 2 * horizon).sum())
        if short:
            found.append(
                Insight(
                    "high" if short / n > 0.2 else "low",
                    "Short series",
                    f"{short:,} series ({pct(short / n)}) have less than two horizons of history "
                    f"({2 * horizon} steps): they take part in fewer backtest windows and their "
                    "forecasts rest on little data.",
                    "See the length table and histogram.",
                    "Shorten ForecastHorizon, or give more history for these series.",
                )
            )
        filled = int(self.facts.get("filled_target_values", 0))
        rows = max(1, int(self.facts["history_rows"]))
        if filled:
            found.append(
                Insight(
                    "high" if filled / rows > MANY_FILLED else "low",
                    "Filled target values",
                    f"{filled:,} of {rows:,} grid steps ({pct(filled / rows)}) had no target "
                    "value and were filled (by default with 0).",
                    "See the gaps table: the series, their filled steps and longest gap.",
                    "Check the frequency matches the data; choose Transformations.Filling "
                    "middlefill (e.g. mean or median) when a missing value is not a zero.",
                )
            )
        intermittent = int((items["mean_interval"] > INTERMITTENT_INTERVAL).sum())
        if intermittent:
            found.append(
                Insight(
                    "low",
                    "Intermittent series",
                    f"{intermittent:,} series ({pct(intermittent / n)}) are mostly zeros between "
                    "non-zero values.",
                    "See the zeros table and the intermittent series.",
                    "Nothing to do: NPTS and the quantile forecasts suit them; judge them by wQL "
                    "rather than MAPE (undefined at zero).",
                )
            )
        missing_future = [k for k, v in self.facts.get("future_given", {}).items() if v < 1]
        if missing_future:
            found.append(
                Insight(
                    "high",
                    "Covariates without future values",
                    f"{', '.join(missing_future)}: the data do not give every value over the "
                    "horizon; the missing ones were filled.",
                    "See the covariates table (future values given).",
                    "Add future-dated rows (empty target) carrying the known covariate values "
                    "through the horizon.",
                )
            )
        return sorted(found, key=lambda i: i.severity != "high")

    def insights_markdown(self) -> str:
        return markdown_table(self.insights())

    def recommendations(self) -> list[str]:
        """Concrete things to do, most important first."""
        found = self.insights()
        if not found:
            return ["No changes needed before training: the series are regular and complete."]
        return fixes(found)

    def show_insights(self) -> Any:
        from IPython.display import Markdown

        return Markdown(self.insights_markdown())

    def show_recommendations(self) -> Any:
        from IPython.display import Markdown

        steps = self.recommendations()
        return Markdown("\n".join(f"{n}. {text}" for n, text in enumerate(steps, 1)))
