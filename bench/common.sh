# Shared by the benchmark scripts (sourced, not run): the built binaries, a scratch directory
# removed on exit together with every process recorded in `pids`, starting a node, ports for
# Redis, and the percentiles of a run's latencies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
enoki=build/cli/enoki
kvload=build/bench/enoki-kvload
bench_name=$(basename "$0" .sh)
for b in "$enoki" "$kvload"; do
  [[ -x $b ]] || { echo "$bench_name: $b not built; run scripts/build.sh" >&2; exit 1; }
done

# need CMD...: fails with a clear message when a tool is missing.
need() {
  for c in "$@"; do
    command -v "$c" >/dev/null || { echo "$bench_name: $c missing; run scripts/setup.sh" >&2; exit 1; }
  done
}

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# percentiles Q1,Q2,...: the nearest-rank percentiles (as `enoki report` computes them) of the
# sorted numbers on stdin, on one line.
percentiles() {
  awk -v q="$1" '{v[NR] = $1} END {n = split(q, qs, ","); for (i = 1; i <= n; i++) {
    k = int(qs[i] * NR); if (k < qs[i] * NR) k++; if (k < 1) k = 1; printf "%s ", v[k]} print ""}'
}

# request_latencies DB: the latencies (ms, sorted) of a run's OK requests after each workload's
# warm-up, as the summary counts them.
request_latencies() {
  sqlite3 "$1" "SELECT (r.end_ns - r.start_ns) / 1e6 FROM requests r
      JOIN workloads w ON r.workload = w.name WHERE r.status = 'OK'
      AND r.start_ns >= w.start_ns + w.warmup_ns ORDER BY 1"
}

# free_port: a loopback port that is free now, for third-party servers (redis-server) that cannot
# pick one themselves and say which; check afterwards that the server got it (redis_owns).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_node ID ARGS...: starts `enoki node --id ID ARGS...` on a loopback port that it picks itself
# (its pid goes to `pids`), waits (at most 10 s) for its ready file and sets `endpoint` to what it
# bound, `http_address` (HOST:PORT) when ARGS hold --http and `redis_address` when they hold --redis
# (give port 0).
start_node() {
  local id=$1
  shift
  local ready="$work/$id.ready"
  "$enoki" node --id "$id" --listen tcp://127.0.0.1:0 --ready-file "$ready" "$@" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1000); do
    [[ -e $ready ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "$bench_name: node $id ended before it was ready" >&2; exit 1; }
    sleep 0.01
  done
  [[ -e $ready ]] || { echo "$bench_name: node $id was not ready within 10 s" >&2; exit 1; }
  endpoint=$(awk '$1 == "endpoint" {print $2}' "$ready")
  http_address=$(awk '$1 == "http" {print $2}' "$ready")
  redis_address=$(awk '$1 == "redis" {print $2}' "$ready")
}

# redis_owns PORT PID: until the redis-server PID answers on PORT (at most 10 s); fails when
# another server does.
redis_owns() {
  for _ in $(seq 100); do
    local owner
    owner=$(redis-cli -p "$1" info server 2>/dev/null | tr -d '\r' | awk -F: '$1 == "process_id" {print $2}')
    if [[ -n $owner ]]; then
      [[ $owner == "$2" ]] && return 0
      echo "$bench_name: port $1 is held by process $owner, not by redis-server $2" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$bench_name: redis-server $2 did not answer on port $1" >&2
  exit 1
}
