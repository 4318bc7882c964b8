#!/usr/bin/env bash
# What one `enoki run --cluster` process sustains: the driver and every caller of the scenario's
# clients run in it, so with many hosts it becomes the limit. For each total RATE given, two
# fresh edge nodes run on this host (loopback TCP, each keeping a trace, as the cluster mode
# needs), and a generated scenario calls the `echo` function at both edges (client-edge 1 ms: a
# floor of 2 ms; echo touches no state) at RATE/2 requests/s each (20 callers each, at RATE/40 each), for
# DURATION seconds, run with `enoki run --cluster`. Prints
# per rate the requests answered per second, the p50, p95 and p99 (after a 2 s warm-up), the p50
# over the floor, and the CPU time the run process used per second of the run.
#   bench/cluster_driver.sh [DURATION] RATE...     e.g. bench/cluster_driver.sh 10 500 1000 2000
source "$(dirname "$0")/common.sh"
need sqlite3
duration=${1:-10}
shift || true
rates=("$@")
[[ $# -gt 0 ]] || rates=(500 1000 2000 4000)

printf "%8s %9s %9s %9s %9s %12s %12s\n" rate "OK/s" "p50 ms" "p95 ms" "p99 ms" "p50 - floor" "run cpu s/s"
for rate in "${rates[@]}"; do
  pids=()
  echo "nodes:" >"$work/cluster.yaml"
  for e in edge1 edge2; do
    mkdir -p "$work/$rate"
    rm -f "$work/$e.ready"  # the last rate's node wrote it
    start_node "$e" --data-dir "$work/$rate/$e" --trace "$work/$rate/$e.trace" --log-level warn
    printf '  %s: {endpoint: %s}\n' "$e" "$endpoint" >>"$work/cluster.yaml"
  done
  f=$work/driver-$rate.yaml
  each=$(awk -v r="$rate" 'BEGIN {print r / 40}')  # a caller's rate: 20 callers at each edge
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
keygroups:
  - {name: kg1, replicas: [edge1]}
  - {name: kg2, replicas: [edge2]}
functions:
  - {name: echo1, nodes: [edge1], handler: echo, keygroup: kg1}
  - {name: echo2, nodes: [edge2], handler: echo, keygroup: kg2}
workloads:
  - {name: at-edge1, client: client, function: echo1, node: edge1, callers: 20, rate: ${each}/s, duration: ${duration}s, body: "x{int:0:1000}"}
  - {name: at-edge2, client: client, function: echo2, node: edge2, callers: 20, rate: ${each}/s, duration: ${duration}s, body: "y{int:0:1000}"}
EOF
  cpu_before=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  start=$(date +%s%N)
  "$enoki" run "$f" --cluster "$work/cluster.yaml" -q --results "$work" >"$work/out-$rate.txt"
  secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN {print (b - a) / 1e9}')
  # The run's CPU time: this shell's children's (user and system), in clock ticks.
  cpu=$(awk -v b="$cpu_before" -v t="$(getconf CLK_TCK)" -v s="$secs" \
    '{print ($14 + $15 + $16 + $17 - b) / t / s}' /proc/$$/stat)
  db=$(ls -t "$work"/driver-$rate-*.db | head -1)
  read -r p50 p95 p99 < <(request_latencies "$db" | percentiles 0.5,0.95,0.99)
  ok=$(sqlite3 "$db" "SELECT count(*) / ((max(end_ns) - min(start_ns)) / 1e9) FROM requests
      WHERE status = 'OK'")
  printf "%8d %9.0f %9.3f %9.3f %9.3f %12.3f %12.2f\n" "$rate" "$ok" "$p50" "$p95" "$p99" \
    "$(awk -v p="$p50" 'BEGIN {print p - 2}')" "$cpu"
  for p in "${pids[@]}"; do kill "$p"; done
  wait 2>/dev/null || true
done
