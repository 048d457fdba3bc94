#!/usr/bin/env bash
# mlpilot on the shared bench harness, beside the peers' reference results.
# usage: benchmarks/run_bench.sh [--portfolio-dir DIR [--in-sample RESULTS]] BUDGET_S [CACHE] [RESULTS]
#   (BUDGET_S e.g. 60 or 300)
# Writes benchmarks/results/<budget>s-table.txt (scores, normalized score, rank, fit time) and
# benchmarks/results/<budget>s-scores.json (every row).
#
# --portfolio-dir DIR: the cross-validated run. Each dataset's job trains DIR/<dataset>.json
# (`mlpilot run --portfolio`), the portfolio learned without that dataset
# (benchmarks/portfolio/build.py --lodo-dir DIR); a dataset without a file there was never in
# the sweep and runs the shipped portfolio. Results go to their own folder (default
# /tmp/bench-results-<budget>s-lodo) and to benchmarks/results/<budget>s-lodo-{table.txt,scores.json};
# RESULTS/portfolios.tsv says which portfolio each dataset ran. --in-sample RESULTS (an earlier
# run's results folder) adds its mlpilot runs to the table as system mlpilot_in_sample.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=$(cd "$here/../../shared/bench" && pwd)
lodo="" in_sample=""
while [ $# -gt 0 ]; do
  case $1 in
    --portfolio-dir) lodo=$(cd "${2:?--portfolio-dir needs a folder}" && pwd); shift 2 ;;
    --in-sample) in_sample=$(cd "${2:?--in-sample needs a results folder}" && pwd); shift 2 ;;
    -*) echo "run_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ -n "$in_sample" ] && [ -z "$lodo" ]; then
  echo "run_bench.sh: --in-sample goes with --portfolio-dir" >&2; exit 2
fi
budget=${1:-60}
cache=${2:-/tmp/bench-cache}
suffix=${lodo:+-lodo}
results=${3:-/tmp/bench-results-${budget}s${suffix}}
if [ ! -d "$cache" ]; then
  python3 "$bench/prepare.py" "$bench/../datasets" "$cache" --max-train 100000
fi
mkdir -p "$results"
if [ -d "$bench/reference/${budget}s" ]; then
  cp -rn "$bench/reference/${budget}s/." "$results/"
else
  echo "no peers' reference at ${budget} s in $bench/reference: scoring mlpilot alone" >&2
fi
mlpilot=${MLPILOT:-$(command -v mlpilot)}
if [ -z "$lodo" ]; then
  MLPILOT=$mlpilot "$bench/run_all.sh" mlpilot "$budget" "$cache" "$results"
else
  # run_all.sh runs every case of a cache with one executable: give it one case at a time,
  # through a wrapper that adds that dataset's --portfolio to `mlpilot run`.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  for case in "$cache"/*/; do
    name=$(basename "$case")
    [ -f "$case/meta.json" ] || continue
    mkdir -p "$work/$name"
    ln -s "$(cd "$case" && pwd)" "$work/$name/$name"
    file="$lodo/$name.json"
    if [ -f "$file" ]; then
      printf '#!/usr/bin/env bash\nif [ "$1" = run ]; then exec %q "$@" --portfolio %q; fi\nexec %q "$@"\n' \
        "$mlpilot" "$file" "$mlpilot" >"$work/$name.sh"
      chmod +x "$work/$name.sh"
      exe="$work/$name.sh" used="$file"
    else
      exe=$mlpilot used="shipped (not in the sweep)"
    fi
    [ -f "$results/mlpilot/$name/info.json" ] || printf '%s\t%s\n' "$name" "$used" >>"$results/portfolios.tsv"
    MLPILOT=$exe "$bench/run_all.sh" mlpilot "$budget" "$work/$name" "$results"
  done
  if [ -n "$in_sample" ]; then
    rm -rf "$results/mlpilot_in_sample"
    cp -r "$in_sample/mlpilot" "$results/mlpilot_in_sample"
  fi
fi
python3 "$bench/score.py" "$cache" "$results" --json "$here/results/${budget}s${suffix}-scores.json" \
  | tee "$here/results/${budget}s${suffix}-table.txt"
python3 "$here/wall_time.py" "$cache" "$results" "$budget" | tee -a "$here/results/${budget}s${suffix}-table.txt"
