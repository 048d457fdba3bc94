"""Run the data-exploration notebook on every shared dataset (by hand, not in CI).

For each ``<datasets>/<name>/`` with a ``meta.json``, a candidates-only job analyses the full
table and executes its exploration notebook (the notebook works on a sample of at most 10,000
rows). Prints one line per dataset: notebook status, seconds, and the high-severity findings.

    python benchmarks/exploration_all.py [--datasets ../shared/datasets] [--out /tmp/explore]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mlpilot-explore"))
    parser.add_argument("--only", nargs="*", help="Dataset names (default: all).")
    args = parser.parse_args()
    sources = [(p.parent.name, p.parent) for p in sorted(args.datasets.glob("*/meta.json"))]
    sources.append(("churn-example", ROOT / "examples"))
    failures = 0
    for name, folder in sources:
        if args.only and name not in args.only:
            continue
        if name == "churn-example":
            data, target = folder / "churn.csv", "Churn"
        else:
            meta = json.loads((folder / "meta.json").read_text())
            data = next(folder.glob("data.csv*"))
            target = meta["target"]
        output = args.out / name
        subprocess.run(["rm", "-rf", str(output)], check=True)
        started = time.monotonic()
        run = subprocess.run(
            [
                sys.executable, "-m", "mlpilot.cli.main", "run", str(data), "--target", target,
                "--output", str(output), "--name", name.replace("_", "-")[:32],
                "--candidates-only", "--quiet",
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        seconds = time.monotonic() - started
        if run.returncode != 0:
            failures += 1
            print(f"{name:30s} JOB FAILED {seconds:6.1f} s  {run.stderr.strip()[-300:]}")
            continue
        record = json.loads((output / "job.json").read_text())
        entry = record["Mlpilot"]["Reports"].get("DataExplorationNotebook", {})
        status = entry.get("Status", "?")
        failures += status != "Completed"
        notebook = Path(record["AutoMLJobArtifacts"]["DataExplorationNotebookLocation"])
        high = []
        if status == "Completed":
            import nbformat

            nb = nbformat.read(notebook, as_version=4)
            (cell,) = [c for c in nb.cells if "insights" in c.metadata.get("tags", [])]
            text = "".join(o.get("data", {}).get("text/markdown", "") for o in cell.outputs)
            high = [line.split("|")[2].strip() for line in text.splitlines() if "**HIGH**" in line]
        print(
            f"{name:30s} {status:10s} {seconds:6.1f} s  {entry.get('Reason', '')[:80]}"
            f"{'  HIGH: ' + '; '.join(high) if high else ''}",
            flush=True,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
