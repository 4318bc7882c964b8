#!/usr/bin/env bash
# The simulation at scale: runs `enoki simulate` on the generated region scenarios (1,000 and
# 10,000 edges, a million invocations each) ROUNDS times and prints, per scenario and round, the
# wall time, the peak memory (max RSS), the events and the events per second while running.
#   bench/simulate_scale.sh [ROUNDS]        (default 1; each round takes about a minute)
source "$(dirname "$0")/common.sh"
rounds=${1:-1}
need /usr/bin/time
printf "%-12s %5s %9s %10s %11s %12s\n" scenario round "wall s" "peak MB" events "events/s"
for name in regions-1k regions-10k; do
  for r in $(seq 1 "$rounds"); do
    /usr/bin/time -f "%e %M" -o "$work/time" \
      "$enoki" simulate "scenarios/examples/$name.yaml" --results "$work" >"$work/out" 2>&1 ||
      { cat "$work/out" >&2; exit 1; }
    read -r wall kb <"$work/time"
    # "... N events, M events/s while running"
    line=$(grep '^simulated ' "$work/out")
    events=$(sed -E 's/.*: ([0-9]+) events,.*/\1/' <<<"$line")
    rate=$(sed -E 's/.* ([0-9]+) events\/s.*/\1/' <<<"$line")
    printf "%-12s %5s %9s %10d %11s %12s\n" "$name" "$r" "$wall" $((kb / 1024)) "$events" "$rate"
    rm -f "$work"/*.db
  done
done
