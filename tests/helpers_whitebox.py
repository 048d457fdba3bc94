"""Helpers shared by the notebook, report and candidates-only tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd

import mlpilot
from helpers_data import TELCO


def telco_slice(path: Path, rows: int) -> Path:
    """The first ``rows`` rows of the Telco table, as written."""
    with TELCO.open(encoding="utf-8") as handle:
        lines = handle.readlines()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return path


def leaky_telco(path: Path, rows: int, seed: int = 0) -> Path:
    """A Telco slice with planted problems: ``refund_amount`` leaks the target (a refund paid
    to churned customers, 1% of rows wrong), ``row_id`` is an identifier, ``region`` is
    constant and ``promo_code`` is almost always the same value."""
    frame = pd.read_csv(TELCO, dtype=str, keep_default_na=False).head(rows)
    rng = np.random.default_rng(seed)
    churned = (frame["Churn"] == "Yes").to_numpy()
    churned = np.where(rng.random(rows) < 0.01, ~churned, churned)
    frame["refund_amount"] = np.where(churned, rng.uniform(40, 120, rows).round(2), 0.0)
    frame["row_id"] = [f"R{i:06d}x" for i in rng.permutation(rows)]
    frame["region"] = "north"
    frame["promo_code"] = np.where(np.arange(rows) == 7, "SPRING", "NONE")
    frame.to_csv(path, index=False)
    return path


def run(data: Path | pd.DataFrame, output: Path, name: str, **settings: Any) -> Any:
    """``mlpilot.run_job`` with the tests' defaults: two workers, HYPERPARAMETER_TUNING."""
    settings.setdefault("parallelism", 2)
    settings.setdefault("mode", "HYPERPARAMETER_TUNING")
    target = settings.pop("target", "Churn")
    return mlpilot.run_job(
        data if isinstance(data, pd.DataFrame) else str(data),
        target=target,
        output=output,
        name=name,
        **settings,
    )


def read_notebook(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


def tagged(nb: Any, tag: str) -> Any:
    (cell,) = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    return cell


def output_text(cell: Any) -> str:
    """Everything a code cell printed or displayed, as text (HTML and Markdown included)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        data = output.get("data", {})
        # A Markdown object's plain text is only its repr.
        kinds = ("text/markdown",) if "text/markdown" in data else ("text/plain", "text/html")
        for kind in kinds:
            value = data.get(kind)
            if value:
                parts.append(value if isinstance(value, str) else "".join(value))
        if output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "\n".join(parts)
