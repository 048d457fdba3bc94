"""The model-quality report of a forecasting candidate (the time-series "performance report").

It reads the candidate's BacktestResults (forecasts and accuracy per backtest window, written by
the job), the job's candidates and what the job kept of its series, and writes:

``statistics.json``
    Each metric's mean over the windows with its spread across them (``{"value",
    "standard_deviation"}``, as Model Monitor writes scalars; ``"NaN"`` with one window), the
    metrics per window, the quantile coverage, and the items drawn.
``report.html`` / ``report.pdf``
    The metrics per window, the quantile coverage, the leaderboard of models, and forecast
    plots for a few items (the worst and best by wQL): the history's tail, each backtest
    window's forecast with its quantile bands over the actual values, and the forecast after
    the history with its bands.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot._layout import JobLayout, job_candidates
from mlpilot.errors import JobNotFoundError, MlpilotError
from mlpilot.metrics import get_metric, quantile_coverage, quantile_level
from mlpilot.package import SeriesModel
from mlpilot.problems.forecasting import (
    AVERAGE,
    WINDOW,
    WINDOW_END,
    WINDOW_START,
    read_backtest_results,
)
from mlpilot.reports._render import Report, Section, figure, write_html, write_pdf
from mlpilot.reports._series_data import SERIES, SeriesSample, load_series_sample, series_key_text

__all__ = ["write_forecast_insights"]

#: Items drawn: this many worst and as many best by wQL.
DRAWN_EACH_WAY = 3
#: Horizons of history drawn before the earliest backtest window.
HISTORY_HORIZONS = 2
#: Seconds the forecast after the history needs at least (its models fit each history).
FINAL_FORECAST_SECONDS = 2.0
_METRICS_ORDER = ("AverageWeightedQuantileLoss", "RMSE", "WAPE", "MASE", "MAPE")


def _stamps(text: pd.Series) -> pd.Series:
    """Timestamps as written (with their zone, if any) as naive UTC, like the prepared series."""
    return pd.to_datetime(text, utc=True).dt.tz_localize(None)


def _item_losses(forecasts: pd.DataFrame, actual: str, quantiles: list[str]) -> pd.Series:
    """Each item's wQL averaged over the quantiles, over every window it took part in."""
    y = forecasts[actual].to_numpy(np.float64)
    keys = forecasts["_key"]
    scale = pd.Series(np.abs(y)).groupby(keys.to_numpy()).sum()
    losses = []
    for name in quantiles:
        tau = quantile_level(name)
        q = forecasts[name].to_numpy(np.float64)
        pinball = tau * np.maximum(y - q, 0) + (1 - tau) * np.maximum(q - y, 0)
        total = pd.Series(pinball).groupby(keys.to_numpy()).sum()
        losses.append(2 * total / scale.where(scale > 0, 1.0))
    return pd.concat(losses, axis=1).mean(axis=1)


def _chosen_items(losses: pd.Series, available: set[str] | None) -> list[tuple[str, str]]:
    """(item, why) for the items drawn: every item when few, else the worst and best."""
    ranked = losses.dropna().sort_values(ascending=False)
    if available is not None:
        ranked = ranked[ranked.index.isin(available)] if available else ranked
    if len(ranked) <= 2 * DRAWN_EACH_WAY:
        return [(str(k), f"wQL {v:.4f}") for k, v in ranked.items()]
    head, tail = ranked.head(DRAWN_EACH_WAY), ranked.tail(DRAWN_EACH_WAY)
    worst = [(str(k), f"among the worst: wQL {v:.4f}") for k, v in head.items()]
    best = [(str(k), f"among the best: wQL {v:.4f}") for k, v in tail.items()]
    return worst + best[::-1]


def _final_forecast(
    model_dir: Path | None, sample: SeriesSample | None, codes: list[int]
) -> tuple[pd.DataFrame | None, str]:
    """The packaged model's forecast after the history of the sampled series ``codes``, from
    the history the job prepared (as a user would forecast them)."""
    if model_dir is None or sample is None or not codes:
        return None, "the job kept no model or no series to forecast from"
    try:
        model = SeriesModel.load(model_dir)
        forecast = model.forecast(sample.table(codes))
    except (MlpilotError, OSError, KeyError, ValueError) as exc:
        return None, f"the final forecast could not be made: {exc}"
    forecast["_key"] = series_key_text(forecast, sample.key_columns).to_numpy()
    return forecast, ""


def _band_pairs(quantiles: list[str]) -> list[tuple[str, str, float]]:
    """(low, high, opacity) for the bands drawn: outermost palest."""
    pairs = []
    for i in range(len(quantiles) // 2):
        pairs.append((quantiles[i], quantiles[-1 - i], 0.18 + 0.17 * i))
    return pairs


def _item_figure(
    key: str,
    why: str,
    backtests: pd.DataFrame,
    history: pd.DataFrame | None,
    final: pd.DataFrame | None,
    *,
    actual: str,
    target: str,
    timestamp: str,
    quantiles: list[str],
    horizon: int,
) -> Any:
    fig, ax = figure(9.5, 3.6)
    rows = backtests.sort_values(timestamp)
    if history is not None and len(history):
        start = rows[timestamp].min()
        before = history[history[timestamp] < start].tail(HISTORY_HORIZONS * horizon)
        shown = pd.concat([before, history[history[timestamp] >= start]])
        ax.plot(shown[timestamp], shown[target], color="#1d2733", linewidth=1.2, label="actual")
    else:
        ax.plot(rows[timestamp], rows[actual], color="#1d2733", linewidth=1.2, label="actual")
    for number, window in rows.groupby(WINDOW):
        first = number == rows[WINDOW].min()
        for low, high, alpha in _band_pairs(quantiles):
            ax.fill_between(
                window[timestamp], window[low], window[high], color="#2c6fbb", alpha=alpha,
                linewidth=0, label=f"backtest {low}–{high}" if first else None,
            )  # fmt: skip
        ax.plot(
            window[timestamp], window["mean"], color="#2c6fbb", linewidth=1.2, linestyle="--",
            label="backtest mean" if first else None,
        )  # fmt: skip
    if final is not None and len(final):
        ahead = final.sort_values(timestamp)
        for low, high, alpha in _band_pairs(quantiles):
            ax.fill_between(
                ahead[timestamp], ahead[low], ahead[high], color="#d9822b", alpha=alpha,
                linewidth=0, label=f"forecast {low}–{high}",
            )  # fmt: skip
        ax.plot(ahead[timestamp], ahead["mean"], color="#d9822b", linewidth=1.4,
                label="forecast mean")  # fmt: skip
        ax.axvline(ahead[timestamp].min(), color="grey", linestyle=":", linewidth=1)
    ax.set_title(f"{key[:70]} ({why})", fontsize=10)
    ax.set_ylabel(target)
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _coverage_figure(levels: list[float], observed: list[float]) -> Any:
    fig, ax = figure(4.8, 4.2)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    ax.plot(levels, observed, marker="o", color="#2c6fbb", label="backtests")
    ax.set_xlabel("quantile level")
    ax.set_ylabel("share of actual values at or below it")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Quantile coverage")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def _number(value: Any) -> float | str:
    value = float(value)
    return value if math.isfinite(value) else "NaN"


def _leaderboard(layout: JobLayout, objective: str, weights: dict[str, float]) -> list[list[Any]]:
    metric = get_metric(objective)
    rows = []
    for record in job_candidates(layout):
        if record.get("CandidateStatus") != "Completed":
            continue
        value = record.get("FinalAutoMLJobObjectiveMetric", {}).get("Value")
        if value is None:
            continue
        metrics = {
            m.get("MetricName") or m["StandardMetricName"]: m["Value"]
            for m in record.get("CandidateProperties", {}).get("CandidateMetrics", [])
        }
        algorithm = str(record.get("Mlpilot", {}).get("Algorithm", ""))
        rows.append(
            [
                record["CandidateName"],
                algorithm,
                float(value),
                *[
                    float(metrics.get(name, math.nan))
                    for name in _METRICS_ORDER
                    if name != objective
                ],
                f"{weights[algorithm]:.2f}" if algorithm in weights else "",
            ]
        )
    rows.sort(key=lambda r: r[2] if metric.direction == "Minimize" else -r[2])
    return [[i, *row] for i, row in enumerate(rows, 1)]


def write_forecast_insights(
    layout: JobLayout,
    job_record: dict[str, Any],
    candidate: dict[str, Any],
    *,
    model_dir: Path | None = None,
    pdf: bool = True,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Write ``candidate``'s statistics.json, report.html (and report.pdf) under its
    ModelInsights folder; returns the statistics. ``model_dir``: its packaged model, for the
    forecast after the history (left out without one). By ``deadline`` (monotonic), the report
    leaves out what would not fit: the forecast after the history, then the PDF."""
    started = time.monotonic()

    def left() -> float:
        return math.inf if deadline is None else deadline - time.monotonic()

    name = candidate["CandidateName"]
    locations = candidate.get("CandidateProperties", {}).get("CandidateArtifactLocations", {})
    backtest_dir = Path(locations.get("BacktestResults") or layout.backtest_results_for(name))
    try:
        forecasts, accuracy = read_backtest_results(backtest_dir)
    except FileNotFoundError as exc:
        raise JobNotFoundError(f"Candidate {name} has no backtest results: {exc}") from None
    try:
        sample: SeriesSample | None = load_series_sample(layout.data_sample)
    except JobNotFoundError:
        sample = None
    objective = str(
        job_record.get("ResolvedAttributes", {})
        .get("AutoMLJobObjective", {})
        .get("MetricName", "AverageWeightedQuantileLoss")
    )
    columns = list(forecasts.columns)
    window_at = columns.index(WINDOW)
    actual, timestamp = columns[window_at - 1], columns[window_at - 2]
    keys = columns[: window_at - 2]
    quantiles = columns[columns.index("mean") + 1 :]
    target = sample.target if sample is not None else actual
    horizon = int(forecasts.groupby([*keys, WINDOW]).size().max())
    forecasts["_key"] = series_key_text(forecasts, keys).to_numpy()
    forecasts[timestamp] = _stamps(forecasts[timestamp])

    # Metrics: the Average row is the candidate's record; the spread is across windows.
    windows = accuracy[accuracy[WINDOW] != AVERAGE]
    average = accuracy[accuracy[WINDOW] == AVERAGE].iloc[0]
    metric_names = [
        c for c in accuracy.columns if c not in (WINDOW, WINDOW_START, WINDOW_END, "item_count")
    ]
    spread = {
        m: (float(windows[m].std(ddof=1)) if len(windows) > 1 else math.nan) for m in metric_names
    }
    y = forecasts[actual].to_numpy(np.float64)
    coverage = quantile_coverage(y, {q: forecasts[q].to_numpy(np.float64) for q in quantiles})
    coverage_by_window = {
        str(w): quantile_coverage(
            part[actual].to_numpy(np.float64), {q: part[q].to_numpy(np.float64) for q in quantiles}
        )
        for w, part in forecasts.groupby(WINDOW)
    }

    # The items drawn, and what is drawn of them.
    losses = _item_losses(forecasts, actual, quantiles)
    codes: dict[str, int] = {}
    if sample is not None:
        names = series_key_text(sample.keys, sample.key_columns)
        sampled = set(sample.items.loc[sample.items["sampled"], SERIES].astype(int))
        codes = {
            k: int(c) for k, c in zip(names, sample.keys[SERIES], strict=True) if int(c) in sampled
        }
    chosen = _chosen_items(losses, set(codes) if sample is not None else None)
    if left() > FINAL_FORECAST_SECONDS:
        final, final_note = _final_forecast(
            model_dir, sample, [codes[k] for k, _ in chosen if k in codes]
        )
    else:
        final, final_note = None, "the forecast after the history is left out: no time left"

    details = candidate.get("Mlpilot", {})
    weights = {str(k): float(v) for k, v in (details.get("Weights") or {}).items()}
    algorithm = str(details.get("Algorithm", ""))
    metric = get_metric(objective)
    facts = job_record.get("Mlpilot", {}).get("Profile", {})
    evaluated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    stats: dict[str, Any] = {
        "version": 0.0,
        "dataset": {"item_count": int(forecasts["_key"].nunique()), "evaluation_time": evaluated},
        "time_series_forecasting_metrics": {
            m: {"value": _number(average[m]), "standard_deviation": _number(spread[m])}
            for m in metric_names
        },
        "mlpilot": {
            "candidate": name,
            "objective": objective,
            "backtest_results": str(backtest_dir),
            "windows": [
                {
                    "window": str(row[WINDOW]),
                    "start": str(row[WINDOW_START]),
                    "end": str(row[WINDOW_END]),
                    **{m: _number(row[m]) for m in metric_names},
                }
                for _, row in windows.iterrows()
            ],
            "quantile_coverage": coverage,
            "quantile_coverage_by_window": coverage_by_window,
            "items_drawn": [{"item": k, "why": why} for k, why in chosen],
        },
    }

    weights_text = ", ".join(f"{m} {w:.2f}" for m, w in weights.items())
    report = Report(
        title=f"Model quality: {name}",
        subtitle=f"Job {layout.job_name} — how the candidate forecast the last horizons of "
        "each series (backtests), from the history before them.",
        facts=[
            ("Candidate", name),
            ("Algorithm", algorithm + (f" ({weights_text})" if weights_text else "")),
            ("Job", layout.job_name),
            ("Problem type", "TimeSeriesForecasting"),
            ("Objective metric", f"{objective} ({metric.direction.lower()})"),
            ("Frequency", str(facts.get("Frequency", ""))),
            ("Forecast horizon", f"{horizon} steps"),
            ("Quantiles", ", ".join(quantiles)),
            ("Backtests", str(facts.get("Backtest", f"{len(windows)} window(s)"))),
            ("Series scored", f"{stats['dataset']['item_count']:,}"),
            ("Backtest results", str(backtest_dir)),
            ("Evaluated", evaluated),
        ],
    )
    per_window = Section(
        "Accuracy per backtest window",
        text=[
            "Window 1 is the last horizon of each series, window 2 the one before, and so on; "
            "each is forecast from the history before it. The Average row (the mean over the "
            "windows) is the candidate's score on the leaderboard. wQL[τ] is the weighted "
            "quantile loss of the τ quantile; MAPE skips zero actual values."
        ],
    )
    per_window.table(
        ["window", "start", "end", "series", *metric_names],
        [
            [str(row[WINDOW]), str(row[WINDOW_START]), str(row[WINDOW_END]),
             int(row["item_count"]), *[float(row[m]) for m in metric_names]]
            for _, row in accuracy.iterrows()
        ],
    )  # fmt: skip
    report.sections.append(per_window)

    calibration = Section(
        "Quantile coverage",
        text=[
            "The share of actual values at or below each quantile forecast over the backtests: "
            "a calibrated τ quantile covers about τ of them. Far below, the forecasts run high; "
            "far above, they run low."
        ],
    )
    window_names = sorted(coverage_by_window, key=int)
    calibration.table(
        ["quantile", "level", "coverage", *[f"window {w}" for w in window_names]],
        [
            [q, quantile_level(q), coverage[q], *[coverage_by_window[w][q] for w in window_names]]
            for q in quantiles
        ],
    )
    drawing = time.monotonic()
    calibration.add(
        _coverage_figure([quantile_level(q) for q in quantiles], [coverage[q] for q in quantiles]),
        "Observed coverage against the quantile level; the dotted line is perfect calibration.",
    )
    report.sections.append(calibration)
    # What one figure takes on this machine: items are drawn while the deadline allows.
    figure_seconds = time.monotonic() - drawing

    board = Section(
        "Models",
        text=[
            "Every completed candidate, best first, with its metrics averaged over the backtest "
            "windows; the weight is each model's share in the ensemble."
        ],
    )
    others = [m for m in _METRICS_ORDER if m != objective]
    board.table(
        ["rank", "candidate", "algorithm", f"{objective} (objective)", *others, "weight"],
        _leaderboard(layout, objective, weights),
    )
    report.sections.append(board)

    plots = Section(
        "Forecasts",
        text=[
            "For a few items (the worst and best by wQL, averaged over the quantiles and "
            "windows): the actual values (black), each backtest window's mean forecast (dashed) "
            "with its quantile bands (blue), and the forecast after the history with its bands "
            "(orange), made by the packaged model from the history the job prepared."
        ],
    )
    notes = []
    if final_note:
        plots.note = final_note
        notes.append(final_note)
    if sample is None:
        plots.warning = "The job kept no series sample: only the backtest windows are drawn."
    drawn = 0
    for key, why in chosen:
        if left() < 2 * figure_seconds + 0.5:
            notes.append(f"{len(chosen) - drawn} of {len(chosen)} items not drawn: no time left")
            break
        drawn += 1
        history = None
        if sample is not None and key in codes:
            rows = sample.history[sample.history[SERIES] == codes[key]]
            history = rows[[sample.timestamp, sample.target]].rename(
                columns={sample.timestamp: timestamp, sample.target: target}
            )
            history[timestamp] = pd.to_datetime(history[timestamp])
        ahead = None
        if final is not None:
            ahead = final[final["_key"] == key].copy()
            ahead[timestamp] = pd.to_datetime(ahead[timestamp])
        plots.add(
            _item_figure(
                key, why, forecasts[forecasts["_key"] == key], history, ahead,
                actual=actual, target=target, timestamp=timestamp, quantiles=quantiles,
                horizon=horizon,
            ),
            f"{key}: {why}.",
            wide=True,
        )  # fmt: skip
    report.sections.append(plots)
    stats["mlpilot"]["items_drawn"] = stats["mlpilot"]["items_drawn"][:drawn]

    out_dir = layout.model_insights_for(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_html(report, out_dir / "report.html")
    if pdf and left() > 2 * figure_seconds * (drawn + 2) + 0.5:
        write_pdf(report, out_dir / "report.pdf")
    elif pdf:
        notes.append(
            "report.pdf left out: the job's time ran out (mlpilot report JOB --generate --force "
            "writes it)"
        )
    if notes:
        stats["mlpilot"]["notes"] = notes
    stats["mlpilot"]["seconds"] = round(time.monotonic() - started, 3)
    (out_dir / "statistics.json").write_text(json.dumps(stats, indent=1))
    return stats
