#!/usr/bin/env bash
# How large a topology the shaper emulates on this host with its delays held: for each N given,
# a generated scenario with one cloud, N edges and one client; every edge runs the moving average
# on a keygroup replicated to it and the cloud, called by 2 callers at 5 requests/s each for
# DURATION seconds (client-edge 1 ms: a floor of 2 ms; edge-cloud 25 ms). Prints per N the p50,
# p95 and p99 of all the edges' requests, the p50 over the floor, the median replication lag
# (floor 25 ms) and the run's wall time.
#   bench/topology_sweep.sh [DURATION] N...      e.g. bench/topology_sweep.sh 20 10 20 30 40
source "$(dirname "$0")/common.sh"
need sqlite3
duration=${1:-20}
shift || true
sizes=("$@")
[[ $# -gt 0 ]] || sizes=(10 20 30 40)
printf "%6s %9s %9s %9s %12s %12s %10s\n" nodes "p50 ms" "p95 ms" "p99 ms" "p50 - floor" "lag p50 ms" "wall s"
for n in "${sizes[@]}"; do
  f=$work/sweep-$n.yaml
  {
    echo "name: sweep-$n"
    echo "seed: 1"
    echo "warmup: 2s"
    echo "nodes:"
    echo "  - {name: cloud, tier: cloud}"
    echo "  - {name: client, tier: client}"
    for i in $(seq 1 "$n"); do echo "  - {name: edge$i, tier: edge}"; done
    echo "tier_links:"
    echo "  client-edge: {delay: 1ms}"
    echo "  edge-cloud: {delay: 25ms}"
    echo "  edge-edge: {delay: 10ms}"
    echo "  client-cloud: {delay: 25ms}"
    echo "keygroups:"
    for i in $(seq 1 "$n"); do echo "  - {name: kg$i, replicas: [edge$i, cloud]}"; done
    echo "functions:"
    for i in $(seq 1 "$n"); do
      echo "  - {name: ma$i, nodes: edge$i, handler: movingaverage, keygroup: kg$i}"
    done
    echo "workloads:"
    for i in $(seq 1 "$n"); do
      echo "  - {name: w$i, client: client, function: ma$i, node: edge$i, callers: 2, rate: 5/s, duration: ${duration}s, body: 'c{caller} {int:0:100}'}"
    done
  } >"$f"
  start=$(date +%s%N)
  $enoki emulate "$f" -q --links shaper --results "$work" >"$work/out-$n.txt"
  secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN {print (b - a) / 1e9}')
  db=$(ls -t "$work"/sweep-$n-*.db | head -1)
  read -r p50 p95 p99 < <(request_latencies "$db" | percentiles 0.5,0.95,0.99)
  read -r lag < <(sqlite3 "$db" "SELECT lag_ns / 1e6 FROM replica_applies ORDER BY 1" | percentiles 0.5)
  printf "%6d %9.3f %9.3f %9.3f %12.3f %12s %10.1f\n" $((n + 2)) "$p50" "$p95" "$p99" \
    "$(awk -v p="$p50" 'BEGIN {print p - 2}')" "${lag:--}" "$secs"
done
