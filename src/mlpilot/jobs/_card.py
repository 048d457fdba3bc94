"""The model card, built from what the job knows as it packages its model.

The card (:mod:`mlpilot.package._card` reads and renders it) gathers: the data's fingerprint and
profile summary, the job's config, the package's library versions, the best candidate's metrics
with a bootstrap interval over its validation predictions, the validation scheme, the intended
use, and caveats (single columns that predict the target alone, dropped identifiers, class
imbalance, duplicates, drift between the training and validation rows).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp

from mlpilot.metrics import THRESHOLD_METRICS, decision_matrix, get_metric
from mlpilot.package import CARD_JSON, CARD_MARKDOWN, CARD_VERSION, MANIFEST, card_markdown
from mlpilot.package import seal_files as seal
from mlpilot.problems import PackagedModel
from mlpilot.profile import MISSING_TOKENS, ColumnKind, DatasetProfile, parse_numeric
from mlpilot.search import VALIDATION_PREDICTIONS, load_validation_predictions

__all__ = ["build_card", "write_card"]

#: Bootstrap resamples of the validation predictions (seeded), and the interval's level. Only
#: the objective is resampled: each scoring costs milliseconds (scikit-learn's checks), and
#: every job pays for the card.
BOOTSTRAP_RESAMPLES = 100
BOOTSTRAP_LEVEL = 0.95
#: Scored (row, resample) pairs at most: larger validation sets get fewer resamples.
BOOTSTRAP_WORK = 20_000_000
#: Out-of-fold score of a single column's bins from which it is flagged as a likely leak.
LEAK_POWER = 0.9
#: A feature has drifted when its two-sample test (Kolmogorov-Smirnov for numeric features,
#: chi-squared on the levels for categorical ones) rejects at this level *and* the distance
#: (KS statistic, total variation) is at least DRIFT_DISTANCE: the test alone flags small
#: shifts on large tables, the distance alone flags noise on small validation sets.
DRIFT_P_VALUE = 0.001
DRIFT_DISTANCE = 0.1
#: A class this rare (share of rows) makes the problem imbalanced.
IMBALANCE_SHARE = 0.1
_BINS = 10


def write_card(job: Any, best: Any, packaged: PackagedModel) -> dict[str, Any] | None:
    """Build the card and seal it into the package at ``packaged.location``; None when the
    problem packaged something other than an mlpilot model package (no manifest to seal)."""
    if not (packaged.location / MANIFEST).is_file():
        return None
    card = build_card(job, best, packaged)
    seal(
        packaged.location,
        {
            CARD_JSON: json.dumps(card, indent=1, default=str),
            CARD_MARKDOWN: card_markdown(card),
        },
        archive=True,
    )
    return card


def build_card(job: Any, best: Any, packaged: PackagedModel) -> dict[str, Any]:
    """The card of ``job``'s packaged ``best`` candidate (a JSON-ready dict)."""
    info = json.loads((packaged.location / MANIFEST).read_text())
    analysis = job.analysis
    summary = dict(analysis.summary) if analysis is not None else {}
    problem = job.problem
    profile: DatasetProfile | None = getattr(problem, "profile", None)
    plan = getattr(problem, "validation", None)
    prepared = job.layout.prepared_data
    table = _read_table(prepared) if profile is not None else None
    folds = _read_folds(prepared) if profile is not None else None

    target = info.get("target", "")
    card: dict[str, Any] = {
        "card_version": CARD_VERSION,
        "model": {
            "job_name": job.config.name,
            "candidate": best.name,
            "algorithm": best.details.get("Algorithm", ""),
            "problem_type": info.get("problem_type", ""),
            "target": target,
            "packaged_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "refit": packaged.refit,
            "packaging_note": packaged.note,
        },
        "intended_use": _intended_use(info),
        "data": _data(profile, table, summary, prepared),
        "config": job.config.to_dict(),
        "versions": info.get("versions", {}),
        "validation": _validation(plan, summary),
        "metrics": {
            "objective": job.objective,
            "values": {k: v for k, v in best.metrics.items() if v is not None},
            "uncertainty": (
                _uncertainty(best, profile, table, job.objective, job.config.seed)
                if profile is not None
                else _window_spread(job.layout.backtest_results / best.name, best.name)
            ),
        },
        "caveats": _caveats(profile, table, folds, plan),
    }
    return card


# -- data -----------------------------------------------------------------------------------
def _read_table(prepared: Path) -> pd.DataFrame | None:
    path = prepared / "table.parquet"
    return pd.read_parquet(path) if path.exists() else None


def _read_folds(prepared: Path) -> np.ndarray | None:
    path = prepared / "folds.npy"
    return np.load(path) if path.exists() else None


def _fingerprint(table: pd.DataFrame) -> str:
    """SHA-256 of the rows' content and the column names (not of the file: the same rows
    in another format have the same fingerprint)."""
    digest = hashlib.sha256(json.dumps([str(c) for c in table.columns]).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _file_fingerprint(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data(
    profile: DatasetProfile | None,
    table: pd.DataFrame | None,
    summary: dict[str, Any],
    prepared: Path,
) -> dict[str, Any]:
    if profile is None:  # forecasting: the prepared series are what the models saw
        return {
            "fingerprint": _file_fingerprint(prepared / "series.npz"),
            "fingerprint_of": "the prepared series' values (series.npz)",
            "summary": {k: v for k, v in summary.items() if k != "Location"},
        }
    kinds: dict[str, int] = {}
    for column in profile.columns:
        kinds[column.kind] = kinds.get(column.kind, 0) + 1
    target = profile.target
    return {
        "fingerprint": None if table is None else _fingerprint(table),
        "fingerprint_of": "the training rows after the analysis (content and column names)",
        "rows": profile.n_rows,
        "rows_used": None if table is None else len(table),
        "columns": profile.n_columns,
        "column_kinds": kinds,
        "sample_weight": profile.sample_weight,
        "duplicate_rows": profile.duplicate_rows,
        "dropped_rows": dict(profile.dropped_rows),
        "class_counts": dict(target.class_counts),
        "target_stats": dict(target.stats),
        "notes": list(profile.notes),
    }


def _intended_use(info: dict[str, Any]) -> dict[str, Any]:
    problem_type = info.get("problem_type", "")
    target = info.get("target", "")
    columns = [c["name"] for c in info.get("input_columns", [])] or list(
        info.get("key_columns", [])
    )
    limits = [
        "Rows must have the training table's columns and kinds; values outside the training "
        "data's range or categories are extrapolated, not refused.",
        "Scores hold for data drawn like the training data (see the fingerprint): re-check "
        "them before relying on the model for another population or period.",
    ]
    if problem_type == "TimeSeriesForecasting":
        summary = (
            f"Forecast {target} for the series in the training data's schema, "
            f"{info.get('horizon', '')} steps of {info.get('frequency', '')} ahead."
        )
    else:
        summary = f"Predict {target} ({problem_type}) from the input columns of one row."
    return {"summary": summary, "inputs": columns, "limits": limits}


# -- validation and metrics ----------------------------------------------------------------
def _validation(plan: Any, summary: dict[str, Any]) -> dict[str, Any]:
    if plan is None:
        return {
            "method": "backtest" if "Backtest" in summary else summary.get("Validation", ""),
            "reason": summary.get("Backtest") or summary.get("ValidationReason", ""),
        }
    folds = np.asarray(plan.folds)
    searched = folds >= 0
    held = np.isin(folds, plan.eval_folds) & searched
    out: dict[str, Any] = {
        "method": plan.method,
        "reason": plan.reason,
        "search_rows": int(plan.search_rows),
    }
    if plan.method == "cross-validation":
        out["folds"] = len(plan.eval_folds)
    else:
        out["validation_rows"] = int(held.sum())
        out["holdout_fraction"] = round(float(held.sum() / max(1, searched.sum())), 4)
    return out


def _uncertainty(
    best: Any,
    profile: DatasetProfile | None,
    table: pd.DataFrame | None,
    objective: str,
    seed: int,
) -> dict[str, Any]:
    """A seeded bootstrap interval of the objective over the validation predictions the
    candidate saved; without them, none (said so)."""
    location = best.details.get("ModelLocation")
    saved = Path(location) / VALIDATION_PREDICTIONS if location else None
    if profile is None or saved is None or not saved.exists():
        return {
            "method": "none",
            "note": "the candidate kept no validation predictions to resample",
        }
    rows, _, predictions = load_validation_predictions(str(location))
    if table is None or len(rows) == 0:
        return {"method": "none", "note": "the validation rows' targets are not available"}
    y_all, weight_all = _targets(table, profile)
    y = y_all[rows]
    weight = None if weight_all is None else weight_all[rows]
    n = len(y)
    resamples = max(30, min(BOOTSTRAP_RESAMPLES, BOOTSTRAP_WORK // max(1, n)))
    rng = np.random.default_rng(seed)
    metric = get_metric(objective, profile.problem_type)
    if metric.fn is None:
        return {"method": "none", "note": f"{objective} is measured, not scored on rows"}
    threshold = best.details.get("DecisionThreshold")
    positive = profile.target.positive_index
    k = len(profile.target.labels)
    if threshold is not None and metric.name in THRESHOLD_METRICS:
        predictions = decision_matrix(predictions, float(threshold), positive)
    scored: dict[str, list[float]] = {metric.name: []}
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        w = None if weight is None else weight[pick]
        scored[metric.name].append(float(metric.fn(y[pick], predictions[pick], w, positive, k)))
    tail = (1 - BOOTSTRAP_LEVEL) / 2
    intervals = {
        name: [float(np.nanquantile(v, tail)), float(np.nanquantile(v, 1 - tail))]
        for name, v in scored.items()
        if np.isfinite(v).any()
    }
    return {
        "method": "bootstrap",
        "level": BOOTSTRAP_LEVEL,
        "resamples": resamples,
        "seed": seed,
        "rows": n,
        "intervals": intervals,
        "note": (
            f"percentile intervals over {resamples} seeded resamples of the {n:,} validation "
            "predictions the candidate was scored on (the packaged model may be a refit on "
            "every row; its scores are the candidate's)"
        ),
    }


def _window_spread(folder: Path, name: str) -> dict[str, Any]:
    """Forecasting: the spread of each metric over the backtest windows (no predictions are
    resampled: windows are what a forecaster is validated on)."""
    path = folder / "accuracy-metrics-values" / f"{name}_part0.csv"
    if not path.exists():
        return {"method": "none", "note": "the candidate's backtest metrics were not found"}
    frame = pd.read_csv(path)
    windows = frame[frame["backtest_window"].astype(str) != "Average"]
    numeric = windows.drop(
        columns=["backtest_window", "backtestwindow_start_time", "backtestwindow_end_time"],
        errors="ignore",
    ).select_dtypes("number")
    intervals = {
        str(c): [float(numeric[c].min()), float(numeric[c].max())]
        for c in numeric.columns
        if c != "item_count" and numeric[c].notna().any()
    }
    return {
        "method": "backtest windows' spread",
        "windows": len(windows),
        "intervals": intervals,
        "note": f"the lowest and highest value over the {len(windows)} backtest windows",
    }


def _targets(table: pd.DataFrame, profile: DatasetProfile) -> tuple[np.ndarray, np.ndarray | None]:
    """The prepared table's encoded targets and weights (the saved validation predictions
    number its rows)."""
    y = np.asarray(profile.target.encode(table[profile.target.name]))
    weight = None
    if profile.sample_weight:
        weight = parse_numeric(table[profile.sample_weight], MISSING_TOKENS).to_numpy()
    return y, weight


# -- caveats --------------------------------------------------------------------------------
def _caveats(
    profile: DatasetProfile | None,
    table: pd.DataFrame | None,
    folds: np.ndarray | None,
    plan: Any,
) -> dict[str, Any]:
    if profile is None:
        return {"findings": [], "leakage": [], "imbalance": None, "drift": {}}
    findings: list[str] = []
    leaks: list[dict[str, Any]] = []
    if table is not None:
        y = np.asarray(profile.target.encode(table[profile.target.name]))
        for name in profile.features():
            power = _single_column_power(profile, table[name], y)
            if power is not None and power >= LEAK_POWER:
                leaks.append({"column": name, "power": round(power, 4)})
                findings.append(
                    f"possible target leakage: {name!r} alone predicts the target "
                    f"(out-of-fold score {power:.2f} ≥ {LEAK_POWER})"
                )
    for column in profile.columns:
        if column.kind == ColumnKind.DROP:
            findings.append(f"column {column.name!r} was not used: {column.reason}")
    imbalance = None
    counts = profile.target.class_counts
    if profile.problem_type.is_classification and counts:
        total = sum(counts.values())
        label, fewest = min(counts.items(), key=lambda item: item[1])
        share = fewest / max(1, total)
        imbalance = {"minority_class": label, "minority_share": round(share, 4)}
        if share < IMBALANCE_SHARE:
            findings.append(
                f"class imbalance: {label!r} is {share:.1%} of the rows; accuracy-like "
                "metrics flatter the model"
            )
    if profile.duplicate_rows:
        findings.append(
            f"{profile.duplicate_rows:,} duplicate rows: copies may sit on both sides of a "
            "validation split and flatter the scores"
        )
    drift = _drift(profile, table, folds, plan)
    findings += [
        f"drift between training and validation rows: {f['column']!r} ({f['measure']} "
        f"{f['value']:.3f})"
        for f in drift.get("features", [])
    ]
    return {"findings": findings, "leakage": leaks, "imbalance": imbalance, "drift": drift}


def _codes(kind: str, values: pd.Series) -> np.ndarray | None:
    """Bin codes of one column: numeric deciles (missing its own bin), categorical levels;
    None for text and dates."""
    if kind == ColumnKind.NUMERIC:
        x = parse_numeric(values, MISSING_TOKENS).to_numpy(dtype=float)
        present = x[np.isfinite(x)]
        if len(present) == 0:
            return np.zeros(len(x), dtype=np.int64)
        edges = np.unique(np.quantile(present, np.linspace(0, 1, _BINS + 1)[1:-1]))
        codes = np.searchsorted(edges, x, side="right")
        return np.where(np.isfinite(x), codes, len(edges) + 1).astype(np.int64)
    if kind == ColumnKind.CATEGORICAL:
        return pd.factorize(values.astype(str).str.strip())[0].astype(np.int64) + 1
    return None


def _single_column_power(profile: DatasetProfile, values: pd.Series, y: np.ndarray) -> float | None:
    """Two-fold score of predicting the target from the column's bins alone: the share of
    the baseline's error removed (1: the column determines the target)."""
    codes = _codes(profile.column(values.name).kind, values)  # type: ignore[arg-type]
    if codes is None or len(codes) < 20:
        return None
    half = np.random.default_rng(0).permutation(len(codes)) % 2
    classification = profile.problem_type.is_classification
    target = np.asarray(y, dtype=float)
    present = np.isfinite(target)
    errors = 0.0
    base = 0.0
    n_bins = int(codes.max()) + 1
    for fold in (0, 1):
        train, test = (half != fold) & present, (half == fold) & present
        if not train.any() or not test.any():
            return None
        if classification:
            yi = np.where(present, target, 0).astype(np.int64)
            k = int(yi.max()) + 1
            table = np.bincount(codes[train] * k + yi[train], minlength=n_bins * k)
            table = table.reshape(n_bins, k)
            majority = int(np.bincount(yi[train], minlength=k).argmax())
            guess = np.where(table.sum(axis=1) > 0, table.argmax(axis=1), majority)
            errors += float(np.sum(guess[codes[test]] != yi[test]))
            base += float(np.sum(yi[test] != majority))
        else:
            sums = np.bincount(codes[train], weights=target[train], minlength=n_bins)
            counts = np.bincount(codes[train], minlength=n_bins)
            mean = float(target[train].mean())
            guess_r = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
            errors += float(np.sum((guess_r[codes[test]] - target[test]) ** 2))
            base += float(np.sum((mean - target[test]) ** 2))
    return 0.0 if base == 0 else max(0.0, 1.0 - errors / base)


def _drift(
    profile: DatasetProfile, table: pd.DataFrame | None, folds: np.ndarray | None, plan: Any
) -> dict[str, Any]:
    """Features whose distribution differs between the training rows and the validation rows
    (see DRIFT_P_VALUE); text and date columns are not compared."""
    if table is None or folds is None or plan is None or len(folds) != len(table):
        return {"note": "not computed: the split rows were not available"}
    held = int(plan.eval_folds[-1])
    valid = folds == held
    train = (folds >= 0) & ~valid
    if not valid.any() or not train.any():
        return {"note": "not computed: no training or validation rows"}
    split = "the holdout" if plan.method != "cross-validation" else f"fold {held} of the folds"
    found: list[dict[str, Any]] = []
    for name in profile.features():
        kind = profile.column(name).kind
        values = table[name]
        if kind == ColumnKind.NUMERIC:
            x = parse_numeric(values, MISSING_TOKENS).to_numpy(dtype=float)
            a, b = x[train & np.isfinite(x)], x[valid & np.isfinite(x)]
            if len(a) == 0 or len(b) == 0:
                continue
            test = ks_2samp(a, b)
            value, p_value, measure = float(test.statistic), float(test.pvalue), "KS statistic"
        elif kind == ColumnKind.CATEGORICAL:
            text = values.astype(str).str.strip()
            counts = pd.crosstab(text, valid)
            if counts.shape[0] < 2 or counts.shape[1] < 2:
                continue
            shares = counts / counts.sum(axis=0)
            value = 0.5 * float((shares.iloc[:, 0] - shares.iloc[:, 1]).abs().sum())
            p_value, measure = float(chi2_contingency(counts.to_numpy())[1]), "TV distance"
        else:
            continue
        if p_value < DRIFT_P_VALUE and value >= DRIFT_DISTANCE:
            found.append(
                {
                    "column": name,
                    "measure": measure,
                    "value": round(value, 4),
                    "p_value": float(f"{p_value:.3g}"),
                }
            )
    found.sort(key=lambda f: -f["value"])
    return {
        "method": (
            f"two-sample Kolmogorov-Smirnov (numeric) or chi-squared (categorical) test with "
            f"p < {DRIFT_P_VALUE}, and KS statistic or total variation distance ≥ {DRIFT_DISTANCE}"
        ),
        "compared": f"{int(train.sum()):,} training rows vs {int(valid.sum()):,} rows of {split}",
        "features": found,
        "note": (
            f"{len(found)} feature(s) above the thresholds"
            if found
            else "no feature above the thresholds"
        ),
    }
