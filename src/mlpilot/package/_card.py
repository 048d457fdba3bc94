"""The model card a package holds: reading it back (verified) and rendering it as Markdown.

The card is built by the job as it packages the model (:mod:`mlpilot.jobs`) and sealed into the
package with :func:`~._files.seal_files`: ``model-card.json`` and ``model-card.md`` are under the
manifest's checksums and in ``model.tar.gz``, so the package never changes after it is written.
It holds facts about the data (counts, a fingerprint, column names), never rows, so it stays
readable when the payload is encrypted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlpilot.errors import ModelPackageError
from mlpilot.package._files import CARD_JSON, verify_package

__all__ = ["CARD_VERSION", "card_markdown", "read_card"]

CARD_VERSION = 1


def read_card(folder: str | Path) -> dict[str, Any]:
    """The card of the package at ``folder``, once its checksum (and the payload's) verify;
    a :class:`ModelPackageError` when the package has none or it was modified."""
    src = Path(folder)
    verify_package(src)
    if not (src / CARD_JSON).is_file():
        raise ModelPackageError(
            f"Model package {src} has no model card (packaged before cards were written)"
        )
    card: dict[str, Any] = json.loads((src / CARD_JSON).read_text(encoding="utf-8"))
    return card


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = (_number(v).replace("|", "\\|").replace("\n", " ") for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def card_markdown(card: dict[str, Any], deployments: list[dict[str, Any]] | None = None) -> str:
    """The card as Markdown; with ``deployments`` (the service's audit trail of this package)
    a last section lists them."""
    model = card.get("model", {})
    out = [f"# Model card: {model.get('candidate', '')}", ""]
    out += _table(
        ("Fact", "Value"),
        [
            ("Job", model.get("job_name", "")),
            ("Problem type", model.get("problem_type", "")),
            ("Target", model.get("target", "")),
            ("Algorithm", model.get("algorithm", "")),
            ("Packaged", model.get("packaged_at", "")),
            ("How it was packaged", model.get("packaging_note", "")),
        ],
    )
    use = card.get("intended_use", {})
    out += ["", "## Intended use", "", str(use.get("summary", ""))]
    out += [f"- {line}" for line in use.get("limits", [])]

    data = card.get("data", {})
    out += ["", "## Training data", ""]
    facts = [
        ("Fingerprint", data.get("fingerprint") or "not recorded"),
        ("Fingerprint of", data.get("fingerprint_of", "")),
        ("Rows", data.get("rows", "")),
        ("Columns", data.get("columns", "")),
    ]
    facts += [(f"{kind} columns", n) for kind, n in sorted(data.get("column_kinds", {}).items())]
    if data.get("class_counts"):
        counts = ", ".join(f"{k}: {v}" for k, v in data["class_counts"].items())
        facts.append(("Classes", counts))
    out += _table(("Fact", "Value"), facts)

    validation = card.get("validation", {})
    out += ["", "## Validation", "", f"{validation.get('method', '')}: "]
    out[-1] += str(validation.get("reason", ""))

    metrics = card.get("metrics", {})
    uncertainty = metrics.get("uncertainty", {})
    out += ["", "## Metrics", "", f"Objective: {metrics.get('objective', '')}", ""]
    intervals = uncertainty.get("intervals", {})
    rows = []
    for name, value in metrics.get("values", {}).items():
        low, high = intervals.get(name, (None, None))
        rows.append((name, value, "" if low is None else f"{_number(low)} – {_number(high)}"))
    level = uncertainty.get("level")
    interval_head = f"{level:.0%} interval" if isinstance(level, float) else "interval"
    out += _table(("Metric", "Value", interval_head), rows)
    out += ["", f"Uncertainty: {uncertainty.get('method', 'none')}. {uncertainty.get('note', '')}"]

    caveats = card.get("caveats", {})
    out += ["", "## Caveats", ""]
    lines = [str(c) for c in caveats.get("findings", [])]
    out += [f"- {line}" for line in lines] or ["No caveats were found."]
    drift = caveats.get("drift", {})
    if drift:
        out += ["", f"Drift between training and validation rows: {drift.get('note', '')}"]
        if drift.get("features"):
            out += [
                "",
                *_table(
                    ("Feature", "Measure", "Value"),
                    [(f["column"], f["measure"], f["value"]) for f in drift["features"]],
                ),
            ]

    out += ["", "## Configuration", "", "```json", json.dumps(card.get("config", {}), indent=1)]
    out += ["```", "", "## Library versions", ""]
    out += _table(("Library", "Version"), sorted(card.get("versions", {}).items()))
    if deployments is not None:
        out += ["", "## Deployments", ""]
        if deployments:
            out += _table(
                ("Time", "Action", "Endpoint", "Variant", "Endpoint config"),
                [
                    (d["time"], d["action"], d["endpoint"], d["variant"], d["endpoint_config"])
                    for d in deployments
                ],
            )
        else:
            out.append("Not deployed through this service.")
    return "\n".join(out) + "\n"
