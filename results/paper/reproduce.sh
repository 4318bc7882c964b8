#!/usr/bin/env bash
# Re-creates this folder: runs each of the paper's experiments (scenarios/paper/) at full length,
# emulated with the user-space shaper and simulated, and keeps per experiment its summaries
# (emulate.txt, simulate.txt), the two side by side (compare.txt), the figures of both
# (plots-emulate/, plots-simulate/) and where and when they ran (machine.txt). The results
# databases go to a scratch folder (RESULTS_DIR, default results/paper-runs/, ignored by git).
#   results/paper/reproduce.sh [EXPERIMENT...]    default: simple replication befaas scale
# Full length: simple about 10 min, replication 15 min, befaas 10 min, scale 45 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=results/paper
runs=${RESULTS_DIR:-results/paper-runs}
enoki=build/cli/enoki
[[ -x $enoki ]] || ./scripts/build.sh >/dev/null
experiments=("$@")
[[ $# -gt 0 ]] || experiments=(simple replication befaas scale)
for e in "${experiments[@]}"; do
  scenario=scenarios/paper/$e.yaml
  [[ -f $scenario ]] || { echo "reproduce: no experiment $e ($scenario)" >&2; exit 1; }
  out=$here/$e
  mkdir -p "$out" "$runs/$e"
  {
    echo "host: $(hostname), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB; kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "enoki: $(git describe --always --dirty), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "calibration: $($enoki simulate --help | grep -o '[^ ]*calibration.tsv' | head -1)"
  } >"$out/machine.txt"
  echo "== $e: emulating (full length)"
  $enoki emulate "$scenario" --links shaper --quiet --results "$runs/$e" >"$out/emulate.txt"
  emu=$(sed -n 's/^results: //p' "$out/emulate.txt")
  echo "== $e: simulating"
  $enoki simulate "$scenario" --results "$runs/$e" >"$out/simulate.txt"
  sim=$(sed -n 's/^results: //p' "$out/simulate.txt")
  $enoki report "$emu" "$sim" >"$out/compare.txt"
  rm -rf "$out/plots-emulate" "$out/plots-simulate"
  $enoki report "$emu" --plots "$out/plots-emulate" >/dev/null
  $enoki report "$sim" --plots "$out/plots-simulate" >/dev/null
  # The databases' paths differ from run to run; the folder keeps their names only.
  sed -i "s|^results: .*/|results: $runs/$e/|" "$out/emulate.txt" "$out/simulate.txt"
  echo "== $e: done ($out)"
done
