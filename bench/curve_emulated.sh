#!/usr/bin/env bash
# What CURVE costs an emulated scenario: the paper's simple experiment (scenarios/paper/simple.yaml)
# emulated with the shaper, as it is and with `security: curve`, alternating, ROUNDS times each,
# shortened to DURATION seconds. Prints each run's p50 of the edge placement's requests (after
# the warm-up, nearest rank as `enoki report` computes it), then the medians and their difference
# (issue 14's goal: within 0.05 ms).
#   bench/curve_emulated.sh [ROUNDS] [DURATION]      e.g. bench/curve_emulated.sh 5 60
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
duration=${2:-40}
enoki=build/cli/enoki
[[ -x $enoki ]] || { echo "curve_emulated: $enoki not built; run scripts/build.sh" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "curve_emulated: sqlite3 missing; run scripts/setup.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp scenarios/paper/simple.yaml "$work/plain.yaml"
sed 's/^name: simple$/name: simple-curve\nsecurity: curve/' scenarios/paper/simple.yaml >"$work/curve.yaml"
grep -q '^security: curve' "$work/curve.yaml" || { echo "curve_emulated: simple.yaml has no 'name: simple' line" >&2; exit 1; }

pct='{v[NR] = $1} END {k = int(0.5 * NR); if (k < 0.5 * NR) k++; if (k < 1) k = 1; print v[k]}'
edge_p50() {
  sqlite3 "$1" "SELECT (r.end_ns - r.start_ns) / 1e6 FROM requests r JOIN workloads w
      ON r.workload = w.name WHERE w.name = 'edge' AND r.status = 'OK'
      AND r.start_ns >= w.start_ns + w.warmup_ns ORDER BY 1" | awk "$pct"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

printf "%6s %-6s %12s\n" round mode "edge p50 ms"
for r in $(seq 1 "$rounds"); do
  for mode in plain curve; do
    $enoki emulate "$work/$mode.yaml" -q --links shaper --duration "$duration" \
      --results "$work/$mode-$r" >/dev/null
    p50=$(edge_p50 "$(ls "$work/$mode-$r"/*.db)")
    echo "$p50" >>"$work/$mode.p50"
    printf "%6d %-6s %12.3f\n" "$r" "$mode" "$p50"
  done
done
plain=$(median <"$work/plain.p50")
curve=$(median <"$work/curve.p50")
printf "median: plain %.3f ms, curve %.3f ms, curve - plain %+.3f ms\n" "$plain" "$curve" \
  "$(awk -v a="$curve" -v b="$plain" 'BEGIN {print a - b}')"
