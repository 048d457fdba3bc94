#!/usr/bin/env bash
# mlpilot on the shared bench harness, beside the peers' reference results.
# usage: benchmarks/run_bench.sh BUDGET_S [CACHE] [RESULTS]     (e.g. 60 or 300)
# Writes benchmarks/results/<budget>s-table.txt (scores, normalized score, rank, fit time) and
# benchmarks/results/<budget>s-scores.json (every row).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=$(cd "$here/../../shared/bench" && pwd)
budget=${1:-60}
cache=${2:-/tmp/bench-cache}
results=${3:-/tmp/bench-results-${budget}s}
if [ ! -d "$cache" ]; then
  python3 "$bench/prepare.py" "$bench/../datasets" "$cache" --max-train 100000
fi
mkdir -p "$results"
if [ -d "$bench/reference/${budget}s" ]; then
  cp -rn "$bench/reference/${budget}s/." "$results/"
else
  echo "no peers' reference at ${budget} s in $bench/reference: scoring mlpilot alone" >&2
fi
MLPILOT=${MLPILOT:-$(command -v mlpilot)} "$bench/run_all.sh" mlpilot "$budget" "$cache" "$results"
python3 "$bench/score.py" "$cache" "$results" --json "$here/results/${budget}s-scores.json" \
  | tee "$here/results/${budget}s-table.txt"
python3 "$here/wall_time.py" "$cache" "$results" "$budget" | tee -a "$here/results/${budget}s-table.txt"
