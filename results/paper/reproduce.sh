#!/usr/bin/env bash
# Re-creates this folder: runs each of the paper's experiments (scenarios/paper/) at full length,
# emulated with the user-space shaper and simulated, and keeps per experiment its summaries
# (emulate.txt, simulate.txt), the two side by side (compare.txt), the figures of both
# (plots-emulate/, plots-simulate/) and where and when they ran (machine.txt). Each simulation
# takes its compute costs from the experiment's own calibration.tsv, kept in its folder with the
# results: the one there is used again, else one is measured for that scenario (`enoki
# calibrate`, which refuses on a busy machine; one file per experiment, since a commit measured
# with the scale experiment's 1 MB writes is not the others' commit). The results
# databases go to a scratch folder (RESULTS_DIR, default results/paper-runs/, ignored by git).
#   results/paper/reproduce.sh [EXPERIMENT...]    default: simple replication befaas scale
# Full length: simple about 10 min, replication 15 min, befaas 10 min, scale 50 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=results/paper
runs=${RESULTS_DIR:-results/paper-runs}
enoki=build/cli/enoki
[[ -x $enoki ]] || ./scripts/build.sh >/dev/null
experiments=("$@")
[[ $# -gt 0 ]] || experiments=(simple replication befaas scale)
# run CMD...: runs it; a run that recorded errors (exit status 1: a node died, an event failed)
# is kept, with a warning, as the report in the folder says what went wrong.
run() {
  local status=0
  "$@" || status=$?
  [[ $status -le 1 ]] || exit "$status"
  [[ $status -eq 0 ]] || echo "reproduce: the run recorded errors (ERROR lines in its summary)" >&2
}
for e in "${experiments[@]}"; do
  scenario=scenarios/paper/$e.yaml
  [[ -f $scenario ]] || { echo "reproduce: no experiment $e ($scenario)" >&2; exit 1; }
  # Written to a new folder that replaces the experiment's once everything is in it.
  out=$here/$e.new
  rm -rf "$out"
  mkdir -p "$out" "$runs/$e"
  calibration=$out/calibration.tsv
  if [[ -f $here/$e/calibration.tsv ]]; then
    cp "$here/$e/calibration.tsv" "$calibration"
  else
    $enoki calibrate "$scenario" --file "$calibration"
  fi
  started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  echo "== $e: emulating (full length)"
  run $enoki emulate "$scenario" --links shaper --quiet --results "$runs/$e" >"$out/emulate.txt"
  emu=$(sed -n 's/^results: //p' "$out/emulate.txt")
  echo "== $e: simulating"
  run $enoki simulate "$scenario" --calibration "$calibration" --results "$runs/$e" \
    >"$out/simulate.txt"
  sim=$(sed -n 's/^results: //p' "$out/simulate.txt")
  $enoki report "$emu" "$sim" >"$out/compare.txt"
  $enoki report "$emu" --plots "$out/plots-emulate" >/dev/null
  $enoki report "$sim" --plots "$out/plots-simulate" >/dev/null
  # The databases' paths differ from run to run; the folder keeps their names only.
  sed -i "s|^results: .*/|results: $runs/$e/|" "$out/emulate.txt" "$out/simulate.txt"
  # And the calibration's, to where the folder ends up.
  sed -i "s|$out/|$here/$e/|g" "$out/simulate.txt" "$out/compare.txt"
  {
    echo "host: $(hostname), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB; kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "enoki: $(git describe --always --dirty), runs from $started to $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "calibration: $here/$e/calibration.tsv (simulate.txt names its digest)"
  } >"$out/machine.txt"
  rm -rf "${here:?}/$e"
  mv "$out" "$here/$e"
  echo "== $e: done ($here/$e)"
done
