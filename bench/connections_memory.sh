#!/usr/bin/env bash
# What many client connections cost a node in memory, and whether it gives the memory back once
# they close: one `enoki node` on loopback (SQLite, no keys); ROUNDS times, enoki-kvload opens
# CONNECTIONS DEALER sockets at once, each does one get, and all close together. Prints the
# node's resident memory (VmRSS in /proc/PID/status) before the first round, the most it has
# reached (VmHWM) after each round, and its resident memory 1 s and SETTLE s after they closed. Memory that stays after every round alike is kept by the allocator; memory that
# grows round after round is state the node keeps per connection.
#
# Usage: bench/connections_memory.sh [CONNECTIONS] [ROUNDS] [SETTLE]   (defaults: 3000, 3, 5)
# Needs: build/ (scripts/build.sh), and a hard file descriptor limit of 2 per connection and some
# (enoki-kvload holds a socket and ZeroMQ's mailbox per connection).
source "$(dirname "$0")/common.sh"
connections=${1:-3000}
rounds=${2:-3}
settle=${3:-5}
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < 2 * connections + 256)); then
  echo "$bench_name: the file descriptor limit ($(ulimit -n)) is too low for $connections" \
    "connections" >&2
  exit 1
fi

start_node bench --data-dir "$work/node" --log-level warn --max-clients $((connections + 100))
node_pid=${pids[-1]}
# status_mb FIELD: a field of the node's /proc/PID/status (VmRSS: resident now; VmHWM: the most
# it has been), in MB.
status_mb() { awk -v f="$1:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$node_pid/status"; }

# The keygroup, and a few keys to get.
"$kvload" --node "$endpoint" --op set --clients 1 --requests 1000 --keyspace 1000 >/dev/null
sleep 1
echo "node RSS before: $(status_mb VmRSS) MB"
for round in $(seq "$rounds"); do
  "$kvload" --node "$endpoint" --op get --clients "$connections" --requests "$connections" \
    --keyspace 1000 >"$work/kvload.out" || { cat "$work/kvload.out" >&2; exit 1; }
  sleep 1
  after_1=$(status_mb VmRSS)
  sleep $((settle > 1 ? settle - 1 : 0))
  echo "round $round: $connections connections: peak $(status_mb VmHWM) MB, 1 s after they closed" \
    "$after_1 MB, ${settle} s after $(status_mb VmRSS) MB"
done
