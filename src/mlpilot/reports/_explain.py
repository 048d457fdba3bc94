"""The explainability report of one candidate: SHAP values on the original features, as
:func:`mlpilot.explain.explain_model` computes them (the methods are described there).

Outputs, in Clarify's layout: ``analysis.json``
(``explanations.kernel_shap.<label>.global_shap_values`` = mean |SHAP| per feature, and
``expected_value``; ``mlpilot.method``/``rows``/``background_rows`` say how they were made),
``explanations_shap/out.csv`` (the SHAP value of every explained row),
``explanations_shap/baseline.csv`` (the background rows: permutation SHAP, forests),
``report.html`` and ``report.pdf``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlpilot.explain import Explanation, OutOfTime, explain_model
from mlpilot.profile import ColumnKind
from mlpilot.reports._render import Report, Section, figure, write_html, write_pdf

__all__ = ["Explanation", "OutOfTime", "explain_model", "write_explainability"]

#: Features shown in the importance chart (Autopilot's report shows ten) and dependence plots.
TOP_FEATURES = 10
DEPENDENCE_FEATURES = 4
EXAMPLE_ROWS = 3


def analysis_document(x: Explanation, candidate: str) -> dict[str, Any]:
    """``analysis.json`` in Clarify's layout (+ an ``mlpilot`` block)."""
    importance = x.global_importance()
    labels = {}
    for key in x.values:
        ranked = importance[key].sort_values(ascending=False, kind="stable")
        labels[key] = {
            "global_shap_values": {f: float(v) for f, v in ranked.items()},
            "expected_value": float(x.expected[key]),
        }
    return {
        "version": "1.0",
        "explanations": {"kernel_shap": labels},
        "mlpilot": {
            "candidate": candidate,
            "method": x.method,
            "units": x.units,
            "aggregation": "mean_abs",
            "outputs": x.outputs,
            "rows": len(x.rows),
            "background_rows": 0 if x.background is None else len(x.background),
            "seconds": round(x.seconds, 3),
            "notes": x.notes,
        },
    }


# -- figures -----------------------------------------------------------------------------------
def _importance_figure(x: Explanation) -> Any:
    importance = x.global_importance().head(TOP_FEATURES)
    fig, ax = figure(8, 0.8 + 0.38 * len(importance))
    features = list(importance.index)[::-1]
    left = np.zeros(len(features))
    palette = ["#2c6fbb", "#d9822b", "#3a9a5b", "#c4453c", "#7d5ba6", "#8c6d31", "#4aa3b5"]
    for i, key in enumerate(importance.columns):
        widths = importance[key].to_numpy()[::-1]
        ax.barh(features, widths, left=left, color=palette[i % len(palette)], label=key)
        left += widths
    ax.set_xlabel(f"mean |SHAP value| ({x.units})")
    ax.set_title(f"Global feature importance (top {len(importance)})")
    if len(importance.columns) > 1:
        ax.legend(title="class", fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _dependence_figure(x: Explanation, feature: str, kind: str) -> Any:
    key = max(
        x.values, key=lambda k: float(np.abs(x.values[k][:, x.features.index(feature)]).mean())
    )
    shap_values = x.values[key][:, x.features.index(feature)]
    raw = x.rows[feature]
    fig, ax = figure(4.8, 3.6)
    numeric = pd.to_numeric(raw, errors="coerce")
    if kind == ColumnKind.NUMERIC and numeric.notna().mean() > 0.5:
        ax.scatter(numeric, shap_values, s=9, alpha=0.6, color="#2c6fbb")
        ax.set_xlabel(feature)
    elif kind == ColumnKind.TEXT:
        ax.hist(shap_values, bins=30, color="#2c6fbb")
        ax.set_xlabel(f"SHAP value of {feature!r} (text)")
        ax.set_ylabel("rows")
    else:
        levels = raw.astype("string").fillna("(missing)").str.slice(0, 18)
        top = levels.value_counts().index[:12]
        groups = [shap_values[(levels == level).to_numpy()] for level in top]
        ax.boxplot(groups, showfliers=False)
        ax.set_xticks(range(1, len(top) + 1), list(top), rotation=45, ha="right")
        ax.set_xlabel(feature)
    if kind != ColumnKind.TEXT:
        ax.axhline(0, color="grey", linestyle=":", linewidth=1)
        ax.set_ylabel("SHAP value")
    suffix = f" (class {key})" if len(x.values) > 1 else ""
    ax.set_title(f"{feature}{suffix}", fontsize=10)
    fig.tight_layout()
    return fig


def _example_figure(x: Explanation, position: int, title: str) -> Any:
    key = next(iter(x.values)) if len(x.values) == 1 else None
    if key is None:  # multiclass: the class the row's scores favour
        key = max(x.values, key=lambda k: x.predictions[k][position])
    values = x.values[key][position]
    order = np.argsort(-np.abs(values), kind="stable")
    shown = order[:8]
    rest = float(values[order[8:]].sum()) if len(order) > 8 else 0.0
    row = x.rows.iloc[position]
    labels = [f"{x.features[i]} = {str(row[x.features[i]])[:20]}" for i in shown]
    contributions = [float(values[i]) for i in shown]
    if len(order) > 8:
        labels.append(f"{len(order) - 8} other features")
        contributions.append(rest)
    fig, ax = figure(7, 0.9 + 0.34 * len(labels))
    colors = ["#c4453c" if v > 0 else "#2c6fbb" for v in contributions]
    ax.barh(labels[::-1], contributions[::-1], color=colors[::-1])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"SHAP value ({x.units})")
    ax.set_title(
        f"{title}: {x.outputs[key]} = {x.predictions[key][position]:.4g} "
        f"(base {x.expected[key]:.4g})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def write_explainability(
    x: Explanation,
    out_dir: Path,
    *,
    candidate: str,
    job_name: str,
    algorithm: str,
    kinds: dict[str, str],
    model_location: str = "",
    pdf: bool = True,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Write analysis.json, explanations_shap/, report.html (and report.pdf). ``deadline``
    (``time.monotonic()``): report.pdf, the HTML's figures drawn again, is left out (with a
    note in analysis.json) when drawing them again would pass it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = analysis_document(x, candidate)
    document["mlpilot"]["model"] = model_location
    (out_dir / "analysis.json").write_text(json.dumps(document, indent=1))
    # The PDF draws every figure again: as long as drawing them for the HTML took.
    drawing = time.monotonic()
    shap_dir = out_dir / "explanations_shap"
    shap_dir.mkdir(exist_ok=True)
    if len(x.values) == 1:
        local = pd.DataFrame(next(iter(x.values.values())), columns=x.features)
    else:
        local = pd.concat(
            [
                pd.DataFrame(v, columns=[f"{k}_{f}" for f in x.features])
                for k, v in x.values.items()
            ],
            axis=1,
        )
    local.index = x.rows.index
    local.to_csv(shap_dir / "out.csv")
    if x.background is not None:
        x.background[x.features].to_csv(shap_dir / "baseline.csv", index=False)

    importance = x.global_importance()
    report = Report(
        title=f"Explainability: {candidate}",
        subtitle=f"Job {job_name} — which features drive the candidate's predictions, by SHAP "
        "values.",
        facts=[
            ("Candidate", candidate),
            ("Algorithm", algorithm),
            ("Explained output", "; ".join(f"{k}: {v}" for k, v in x.outputs.items())),
            ("Method", x.method),
            ("Units", x.units),
            ("Rows explained", f"{len(x.rows):,} (a random sample of the training rows)"),
        ],
    )
    overview = Section(
        "Global feature importance",
        text=[
            "A SHAP value is how much a feature moved one prediction away from the average "
            "prediction (the base value); a row's SHAP values add up to its prediction minus "
            "the base value. The importance of a feature is the mean absolute SHAP value over "
            "the explained rows, on the original columns (one-hot, indicator and text columns "
            "are added back to the feature they came from)."
        ],
    )
    overview.add(_importance_figure(x), "Mean |SHAP value| per feature, largest first.")
    rows = []
    for feature, entry in importance.head(TOP_FEATURES).iterrows():
        rows.append([feature, kinds.get(str(feature), ""), *[float(v) for v in entry]])
    overview.table(["feature", "type", *[f"mean |SHAP| {k}" for k in importance.columns]], rows)
    if x.notes:
        overview.warning = "; ".join(x.notes)
    report.sections.append(overview)

    dependence = Section(
        "How the top features act",
        text=[
            "Each point (or box) is an explained row: the feature's value against its SHAP "
            "value. A rising cloud means larger values push the prediction up."
        ],
        grid=True,
    )
    for feature in list(importance.index[:DEPENDENCE_FEATURES]):
        dependence.add(
            _dependence_figure(x, str(feature), kinds.get(str(feature), "")),
            f"Dependence of the prediction on {feature!r}.",
        )
    report.sections.append(dependence)

    examples = Section(
        "Example rows",
        text=[
            "Three rows explained feature by feature: the rows with the highest, the median "
            "and the lowest prediction. Red bars push the prediction up, blue bars down."
        ],
    )
    key = next(iter(x.predictions))
    scores = (
        x.predictions[key]
        if len(x.values) == 1
        else np.max(np.column_stack(list(x.predictions.values())), axis=1)
    )
    order = np.argsort(scores, kind="stable")
    picks = [("Highest", order[-1]), ("Median", order[len(order) // 2]), ("Lowest", order[0])]
    for title, position in picks[:EXAMPLE_ROWS]:
        examples.add(_example_figure(x, int(position), title), f"{title} prediction.")
    report.sections.append(examples)
    write_html(report, out_dir / "report.html")
    html_seconds = time.monotonic() - drawing
    if pdf and (deadline is None or deadline - time.monotonic() > html_seconds):
        write_pdf(report, out_dir / "report.pdf")
    elif pdf:
        document["mlpilot"].setdefault("notes", []).append(
            "report.pdf left out: the job's time ran out (mlpilot report JOB --generate --force "
            "writes it)"
        )
        (out_dir / "analysis.json").write_text(json.dumps(document, indent=1))
    return document
