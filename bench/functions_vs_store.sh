#!/usr/bin/env bash
# What the function layer adds over the store, on one node on loopback, in one run: a plain get,
# the built-in `increment` function (one local get, one local put) and the same increment as a
# Python process function (tests/integration/functions/counter.py), called over ZeroMQ
# (enoki-kvload) and over the HTTP gateway (wrk, POST), with 50 concurrent clients and with 1.
#
# Usage: bench/functions_vs_store.sh [REQUESTS] [SECONDS]    (defaults: 100000, 10)
# Needs: build/ (scripts/build.sh) and wrk (scripts/setup.sh).
source "$(dirname "$0")/common.sh"
requests=${1:-100000}
seconds=${2:-10}
need wrk
counter_py="$(cd "$(dirname "$0")/.." && pwd)/tests/integration/functions/counter.py"

start_node bench --data-dir "$work/node" --http 127.0.0.1:0 --log-level warn \
  --process-dir "$(dirname "$counter_py")"

echo "ZeroMQ (enoki-kvload): op, req/s, p50 ms, p95 ms, p99 ms, errors"
for clients in 50 1; do
  n=$((clients == 1 ? requests / 10 : requests))
  echo "  $clients clients:"
  "$kvload" --node "$endpoint" --op get --clients "$clients" --requests "$n" --csv | sed 's/^/    /'
  "$kvload" --node "$endpoint" --op invoke --function increment --clients "$clients" \
    --requests "$n" --csv | sed 's/^/    /'
  # The same increment as a Python process function (a worker per concurrent call).
  "$kvload" --node "$endpoint" --op invoke --runtime process --function "$counter_py" \
    --clients "$clients" --requests $((n / 5)) --csv | sed 's/^/    /'
done

# Its own deployment (default concurrency limit, 100); enoki-kvload created the keygroup.
"$enoki" deploy http-increment --handler increment --keygroup bench --node "$endpoint"
# Bodies name one of 100,000 keys at random, as enoki-kvload's do.
cat >"$work/spread.lua" <<'LUA'
request = function()
  return wrk.format("POST", nil, nil, "key" .. math.random(1, 100000))
end
LUA
# Every call increments the same key: each one that read the value another call then changed has
# its conditional put refused and retries, so this measures contention, and no increment is lost.
cat >"$work/hot.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "hot-key"
LUA
http_run() {  # CONNECTIONS SCRIPT LABEL
  local threads=$(($1 < 2 ? 1 : 2))
  echo "HTTP (wrk, POST /http-increment), $1 connections, $3, ${seconds}s:"
  wrk -t "$threads" -c "$1" -d "${seconds}s" --latency -s "$work/$2" \
    "http://$http_address/http-increment" |
    grep -E 'Requests/sec|^ +(50|99)%|Non-2xx|requests in' | sed 's/^/    /'
}
http_run 50 spread.lua "keys spread"
http_run 1 spread.lua "keys spread"
http_run 50 hot.lua "one hot key"
