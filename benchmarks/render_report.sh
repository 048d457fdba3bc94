#!/usr/bin/env bash
# Render a job's HTML reports to PNG with headless Chromium, to look at them as a reader would.
#
#   bash benchmarks/render_report.sh JOB_DIR [OUT_DIR]
#
# Writes OUT_DIR/{model-quality,explainability,data-exploration}.png (default OUT_DIR:
# JOB_DIR/screenshots). Needs Chromium (Debian: apt-get install -y chromium); the test suite
# does not. Without JOB_DIR it first runs a 60-second job on the bundled churn example.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
job="${1:-}"
if [[ -z "$job" ]]; then
    job="$(mktemp -d)/churn"
    mlpilot run "$here/examples/churn.csv" --target Churn --max-runtime 60 --output "$job" --quiet
fi
out="${2:-$job/screenshots}"
mkdir -p "$out"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [[ -z "$browser" ]]; then
    echo "No Chromium found: apt-get install -y chromium" >&2
    exit 2
fi
mlpilot report "$job" --generate --format json >/dev/null

shoot() {  # name, html file, page height
    local name="$1" page="$2" height="${3:-4000}"
    if [[ ! -f "$page" ]]; then
        echo "skip $name: no $page" >&2
        return
    fi
    "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1200,"$height" --screenshot="$out/$name.png" "file://$(realpath "$page")" \
        >/dev/null 2>&1
    echo "$out/$name.png"
}

best="$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["BestCandidate"]["CandidateName"])' "$job/job.json")"
shoot model-quality "$job/documentation/model_monitor/output/$best/report.html" 4200
shoot explainability "$job/documentation/explainability/output/$best/report.html" 4200
shoot data-exploration "$(ls "$job"/sagemaker-automl-candidates/*/notebooks/SageMakerAutopilotDataExplorationNotebook.html)" 9000
