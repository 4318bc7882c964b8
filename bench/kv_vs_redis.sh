#!/usr/bin/env bash
# Side-by-side: one Enoki node (enoki-kvload), the same with CURVE keys (enoki-curve: every
# message authenticated and encrypted, docs/security.md) and one redis-server (redis-benchmark),
# all on loopback on this machine, in the same run: SET/put and GET, 3-byte values (the redis-benchmark
# default), with 50 clients (N requests) and with 1 client (N/10 requests: unloaded latency). Each pair runs ROUNDS times, alternating; the script
# prints every run as a CSV line and the medians. Besides throughput and latency it reports the
# server's CPU time per request (user + system, all of its threads, from /proc), which does not
# depend on how fast the load generator is.
#
# Usage: bench/kv_vs_redis.sh [REQUESTS] [ROUNDS]     (defaults: 200000, 3)
# Needs: build/ (scripts/build.sh), redis-server and redis-benchmark (scripts/setup.sh).
# Enoki runs with its default durability (an acknowledged write survives a SIGKILL); Redis runs
# with appendonly yes, appendfsync no, which gives the same guarantee, and as it ships (RDB
# snapshots only, which can lose recent writes).
source "$(dirname "$0")/common.sh"
requests=${1:-200000}
rounds=${2:-3}
need redis-server redis-benchmark redis-cli

tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_node bench --data-dir "$work/enoki" --log-level warn
enoki_pid=${pids[-1]}
enoki_endpoint=$endpoint
# The same node with CURVE keys (docs/security.md), and a client key the node admits.
"$enoki" keys generate bench-curve --dir "$work" >/dev/null
"$enoki" keys generate kvload --dir "$work" >/dev/null
echo "kvload kvload.pub admin read:* write:*" >"$work/access"
start_node bench-curve --data-dir "$work/enoki-curve" --log-level warn \
  --key "$work/bench-curve.key" --access "$work/access"
curve_pid=${pids[-1]}
curve_endpoint=$endpoint
curve_client=(--identity "$work/kvload.key" --server-key "$work/bench-curve.pub")
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly yes \
  --appendfsync no --daemonize no --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=($redis_pid)
redis_plain_port=$(free_port)
redis-server --port "$redis_plain_port" --bind 127.0.0.1 --dir "$work" --dbfilename plain.rdb \
  --daemonize no --loglevel warning >"$work/redis-plain.log" 2>&1 &
redis_plain_pid=$!
pids+=($redis_plain_pid)
redis_owns "$redis_port" "$redis_pid"
redis_owns "$redis_plain_port" "$redis_plain_pid"

results="$work/results.csv"
# Server CPU microseconds per request between two tick readings.
cpu_us() { python3 -c "print(round(($2 - $1) / $tck * 1e6 / $3, 2))"; }

echo "system,clients,op,rps,p50_ms,p99_ms,server_cpu_us_per_request" | tee "$results"
for ((r = 1; r <= rounds; r++)); do
  for clients in 50 1; do
    n=$((clients == 1 ? requests / 10 : requests))
    for name in enoki enoki-curve; do
      pid=$enoki_pid target=$enoki_endpoint keys=()
      [[ $name == enoki-curve ]] && pid=$curve_pid target=$curve_endpoint keys=("${curve_client[@]}")
      for op in set get; do
        before=$(cpu_ticks "$pid")
        line=$("$kvload" --node "$target" --op "$op" --clients "$clients" \
          --requests "$n" --keyspace 100000 --csv "${keys[@]}")
        after=$(cpu_ticks "$pid")
        IFS=, read -r _ rps p50 _ p99 _ <<<"${line//\"/}"
        echo "$name,$clients,$op,$rps,$p50,$p99,$(cpu_us "$before" "$after" "$n")" | tee -a "$results"
      done
    done
    for target in "redis-aof:$redis_port:$redis_pid" "redis-default:$redis_plain_port:$redis_plain_pid"; do
      IFS=: read -r name port pid <<<"$target"
      for op in set get; do
        before=$(cpu_ticks "$pid")
        line=$(redis-benchmark -p "$port" -c "$clients" -n "$n" -r 100000 -t "$op" --csv | tail -n 1)
        after=$(cpu_ticks "$pid")
        IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"${line//\"/}"
        echo "$name,$clients,$op,$rps,$p50,$p99,$(cpu_us "$before" "$after" "$n")" | tee -a "$results"
      done
    done
  done
done

echo
echo "medians over $rounds rounds:"
python3 - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
groups = {}
for r in rows:
    groups.setdefault((r["clients"], r["system"], r["op"]), []).append(r)
med = {}
for (clients, system, op), rs in sorted(groups.items(), key=lambda g: (-int(g[0][0]), g[0][1:])):
    m = {k: statistics.median(float(r[k]) for r in rs)
         for k in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_request")}
    med[(clients, system, op)] = m
    print(f"  {clients:>2} clients {system:14} {op}: {m['rps']:9.0f} req/s  p50 {m['p50_ms']:.3f} ms  "
          f"p99 {m['p99_ms']:.3f} ms  server CPU {m['server_cpu_us_per_request']:.2f} us/request")
for a, b in (("enoki", "redis-aof"), ("enoki-curve", "enoki")):
    for clients, op in (("50", "set"), ("50", "get"), ("1", "set"), ("1", "get")):
        if (clients, a, op) in med and (clients, b, op) in med:
            e, r = med[(clients, a, op)], med[(clients, b, op)]
            print(f"  {a} vs {b}, {clients} clients, {op}: throughput x{e['rps'] / r['rps']:.2f}, "
                  f"p50 x{e['p50_ms'] / r['p50_ms']:.2f}, server CPU per request "
                  f"x{e['server_cpu_us_per_request'] / r['server_cpu_us_per_request']:.2f}")
PY
