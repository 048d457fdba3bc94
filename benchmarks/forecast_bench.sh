#!/usr/bin/env bash
# The forecasting benchmark: the four forecasting sets through ../shared/bench/forecast at
# BUDGET seconds, beside the peers' reference results for that budget where there are some.
# Prints the harness's table, each `mlpilot run`'s own wall time (the harness's fit_s also
# counts `mlpilot predict`) and the quantile coverage.
#
# usage: benchmarks/forecast_bench.sh BUDGET [RESULTS_DIR]
set -euo pipefail
budget=${1:?usage: forecast_bench.sh BUDGET [RESULTS_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
bench=$(cd "$here/../../shared/bench/forecast" && pwd)
results=${2:-/tmp/fres-$budget}
cache=${FCACHE:-/tmp/fcache}
[ -d "$cache" ] || python3 "$bench/prepare.py" "$bench/../../datasets" "$cache"
mkdir -p "$results"
if [ -d "$bench/reference/${budget}s" ]; then cp -r "$bench/reference/${budget}s/"* "$results/"; fi
timings="$results/mlpilot-run-seconds.txt"
: > "$timings"
# The harness calls $MLPILOT for `run` and `predict`: time the run alone.
wrapper="$results/mlpilot-timed"
cat > "$wrapper" <<WRAP
#!/usr/bin/env bash
if [ "\$1" = run ]; then
  start=\$EPOCHREALTIME; mlpilot "\$@"; rc=\$?
  python3 -c "import sys; print(sys.argv[1], round(float(sys.argv[3]) - float(sys.argv[2]), 1))" \\
    "\$BENCH_DATASET" "\$start" "\$EPOCHREALTIME" >> "$timings"
  exit \$rc
fi
exec mlpilot "\$@"
WRAP
chmod +x "$wrapper"
for d in air_passengers australian_tourism_quarterly m4_hourly victoria_electricity_demand; do
  (cd "$bench" && BENCH_DATASET=$d MLPILOT="$wrapper" python3 systems.py mlpilot "$cache/$d" "$budget" "$results/mlpilot/$d")
done
(cd "$bench" && python3 score.py "$cache" "$results")
echo
echo "mlpilot run wall time (${budget} s budget):"
cat "$timings"
python3 "$here/forecast_coverage.py" "$cache" "$results/mlpilot"
