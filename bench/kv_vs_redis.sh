#!/usr/bin/env bash
# Side-by-side on loopback, in one run: one Enoki node and one redis-server, both driven by the same
# load tool (redis-benchmark: the node through its Redis front end, docs/redis.md), SET and GET with
# 50 clients (N requests) and with 1 (N/10: unloaded latency), 3-byte values, 100,000 keys; and
# the node's ZeroMQ API with enoki-kvload (put, get and invocations of the built-in `increment`,
# one get and one conditional put each), plain and with CURVE keys. Each round runs every case once,
# the systems in alternating order from round to round; the script prints every run as a CSV line,
# then the medians and the ratios. Besides throughput and latency it reports each server's CPU time
# per request (user + system, all of its threads, from /proc), which does not depend on the speed
# of the load tool. enoki-kvload speaks ZeroMQ's wire protocol itself to the plain node and uses
# libzmq for the node with CURVE keys (bench/README.md): compare the CURVE rows with the plain ones
# by server CPU per request.
#
# Usage: bench/kv_vs_redis.sh [REQUESTS] [ROUNDS]     (defaults: 200000, 3)
# Needs: build/ (scripts/build.sh), redis-server and redis-benchmark (scripts/setup.sh).
# Enoki runs with its default durability (an acknowledged write survives a SIGKILL); Redis runs
# with appendonly yes, appendfsync no, which gives the same guarantee (redis-aof), and as it ships
# (redis-default: RDB snapshots only, which can lose recent writes).
source "$(dirname "$0")/common.sh"
requests=${1:-200000}
rounds=${2:-3}
need redis-server redis-benchmark redis-cli

tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_node bench --data-dir "$work/enoki" --log-level warn --redis 127.0.0.1:0 \
  --redis-keygroup bench
enoki_pid=${pids[-1]}
enoki_endpoint=$endpoint
enoki_redis_port=${redis_address##*:}
"$enoki" keygroup create bench --node "$enoki_endpoint" >/dev/null
# The same node with CURVE keys (docs/security.md), and a client key the node admits.
"$enoki" keys generate bench-curve --dir "$work" >/dev/null
"$enoki" keys generate kvload --dir "$work" >/dev/null
echo "kvload kvload.pub admin read:* write:* deploy invoke:*" >"$work/access"
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

# One run: `system` (its server's pid in `pid`), the op, the client count; the load tool's
# command line follows. Appends a CSV line.
measure() {
  local system=$1 pid=$2 op=$3 clients=$4 n=$5
  shift 5
  local before after line rps p50 p99
  before=$(cpu_ticks "$pid")
  line=$("$@" | tail -n 1)
  after=$(cpu_ticks "$pid")
  line=${line//\"/}
  if [[ $1 == redis-benchmark ]]; then
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$line"  # test,rps,avg,min,p50,p95,p99,max
  else
    IFS=, read -r _ rps p50 _ p99 _ <<<"$line"  # op,rps,p50,p95,p99,errors
  fi
  echo "$system,$clients,$op,$rps,$p50,$p99,$(cpu_us "$before" "$after" "$n")" | tee -a "$results"
}

# Each system: NAME PID and how to drive it (resp PORT, or zmq ENDPOINT).
systems=("enoki-resp $enoki_pid resp $enoki_redis_port"
  "redis-aof $redis_pid resp $redis_port"
  "redis-default $redis_plain_pid resp $redis_plain_port"
  "enoki-zmq $enoki_pid zmq $enoki_endpoint"
  "enoki-zmq-curve $curve_pid zmq $curve_endpoint")

echo "system,clients,op,rps,p50_ms,p99_ms,server_cpu_us_per_request" | tee "$results"
for ((r = 1; r <= rounds; r++)); do
  order=("${systems[@]}")
  if ((r % 2 == 0)); then  # alternate: the reverse order every other round
    order=()
    for ((i = ${#systems[@]} - 1; i >= 0; i--)); do order+=("${systems[i]}"); done
  fi
  for clients in 50 1; do
    n=$((clients == 1 ? requests / 10 : requests))
    for s in "${order[@]}"; do
      read -r name pid api target <<<"$s"
      if [[ $api == resp ]]; then
        for op in set get; do
          measure "$name" "$pid" "$op" "$clients" "$n" redis-benchmark -p "$target" \
            -c "$clients" -n "$n" -r 100000 -t "$op" --csv
        done
      else
        keys=()
        [[ $name == enoki-zmq-curve ]] && keys=("${curve_client[@]}")
        for op in set get invoke; do
          extra=()
          # Counters of their own: the keys of `set` hold values that are not integers.
          [[ $op == invoke ]] && extra=(--function increment --keygroup counters)
          measure "$name" "$pid" "$op" "$clients" "$n" "$kvload" --node "$target" --op "$op" \
            --clients "$clients" --requests "$n" --keyspace 100000 --csv "${keys[@]}" \
            "${extra[@]}"
        done
      fi
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
    print(f"  {clients:>2} clients {system:16} {op:6}: {m['rps']:9.0f} req/s  "
          f"p50 {m['p50_ms']:.3f} ms  p99 {m['p99_ms']:.3f} ms  "
          f"server CPU {m['server_cpu_us_per_request']:.2f} us/request")
print()
pairs = [(("enoki-resp", op), ("redis-aof", op)) for op in ("set", "get")]
pairs += [(("enoki-zmq", op), ("redis-aof", op)) for op in ("set", "get")]
pairs += [(("enoki-zmq", "invoke"), ("enoki-zmq", "get"))]
pairs += [(("enoki-zmq-curve", op), ("enoki-zmq", op)) for op in ("set", "get")]
for clients in ("50", "1"):
    for (a, aop), (b, bop) in pairs:
        if (clients, a, aop) in med and (clients, b, bop) in med:
            e, r = med[(clients, a, aop)], med[(clients, b, bop)]
            print(f"  {clients:>2} clients {a} {aop} vs {b} {bop}: "
                  f"throughput x{e['rps'] / r['rps']:.2f}, p50 x{e['p50_ms'] / r['p50_ms']:.2f}, "
                  f"server CPU per request "
                  f"x{e['server_cpu_us_per_request'] / r['server_cpu_us_per_request']:.2f}")
PY
