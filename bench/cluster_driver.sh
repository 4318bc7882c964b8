#!/usr/bin/env bash
# What one `enoki run --cluster` process sustains: the driver and every caller of the scenario's
# clients run in it, so with many hosts it becomes the limit. Two edge nodes run on this host
# (loopback TCP); for each total RATE given, a generated scenario calls the stateless `echo`
# function at both edges (client-edge 1 ms: a floor of 2 ms) at RATE/2 requests/s each, from 20
# callers each, for DURATION seconds, run with `enoki run --cluster` on the same two nodes. Prints
# per rate the requests answered per second, the p50, p95 and p99 (after a 2 s warm-up), the p50
# over the floor, and the CPU time the run process used per second of the run.
#   bench/cluster_driver.sh [DURATION] RATE...     e.g. bench/cluster_driver.sh 10 500 1000 2000
source "$(dirname "$0")/common.sh"
need sqlite3
duration=${1:-10}
shift || true
rates=("$@")
[[ $# -gt 0 ]] || rates=(500 1000 2000 4000)

start_node edge1 --data-dir "$work/edge1"
e1=$endpoint
start_node edge2 --data-dir "$work/edge2"
e2=$endpoint
printf 'nodes:\n  edge1: {endpoint: %s}\n  edge2: {endpoint: %s}\n' "$e1" "$e2" >"$work/cluster.yaml"

printf "%8s %9s %9s %9s %9s %12s %12s\n" rate "OK/s" "p50 ms" "p95 ms" "p99 ms" "p50 - floor" "run cpu s/s"
for rate in "${rates[@]}"; do
  f=$work/driver-$rate.yaml
  half=$(awk -v r="$rate" 'BEGIN {print r / 2}')
  cat >"$f" <<EOF
name: driver-$rate
seed: 1
warmup: 2s
nodes:
  - {name: edge1, tier: edge}
  - {name: edge2, tier: edge}
  - {name: client, tier: client}
tier_links:
  client-edge: {delay: 1ms}
functions:
  - {name: echo, nodes: [edge1, edge2], handler: echo}
workloads:
  - {name: at-edge1, client: client, function: echo, node: edge1, callers: 20, rate: ${half}/s, duration: ${duration}s, body: "x{int:0:1000}"}
  - {name: at-edge2, client: client, function: echo, node: edge2, callers: 20, rate: ${half}/s, duration: ${duration}s, body: "y{int:0:1000}"}
EOF
  cpu_before=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  start=$(date +%s%N)
  "$enoki" run "$f" --cluster "$work/cluster.yaml" -q --results "$work" >"$work/out-$rate.txt"
  secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN {print (b - a) / 1e9}')
  # The run's CPU time: this shell's children's (user and system), in clock ticks.
  cpu=$(awk -v b="$cpu_before" -v t="$(getconf CLK_TCK)" -v s="$secs" \
    '{print ($14 + $15 + $16 + $17 - b) / t / s}' /proc/$$/stat)
  db=$(ls -t "$work"/driver-$rate-*.db | head -1)
  pct='{v[NR] = $1} END {n = split(q, qs, ","); for (i = 1; i <= n; i++) {k = int(qs[i] * NR);
        if (k < qs[i] * NR) k++; if (k < 1) k = 1; printf "%s ", v[k]} print ""}'
  read -r p50 p95 p99 < <(sqlite3 "$db" "SELECT (r.end_ns - r.start_ns) / 1e6 FROM requests r
      JOIN workloads w ON r.workload = w.name WHERE r.status = 'OK'
      AND r.start_ns >= w.start_ns + w.warmup_ns ORDER BY 1" | awk -v q=0.5,0.95,0.99 "$pct")
  ok=$(sqlite3 "$db" "SELECT count(*) / ((max(end_ns) - min(start_ns)) / 1e9) FROM requests
      WHERE status = 'OK'")
  printf "%8d %9.0f %9.3f %9.3f %9.3f %12.3f %12.2f\n" "$rate" "$ok" "$p50" "$p95" "$p99" \
    "$(awk -v p="$p50" 'BEGIN {print p - 2}')" "$cpu"
done
