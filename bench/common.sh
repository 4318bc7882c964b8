# Shared by the benchmark scripts (sourced, not run): the built binaries, a scratch directory
# removed on exit together with every process recorded in `pids`, free loopback ports, and
# waiting until a node answers.
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_node ENDPOINT: until the node answers (at most 10 s); an unknown keygroup's "not found" is
# an answer.
wait_node() {
  for _ in $(seq 100); do
    local out
    out=$("$enoki" keygroup info no-such-keygroup --node "$1" --timeout-ms 100 2>&1 || true)
    [[ $out == *"not found"* ]] && return 0
  done
  echo "$bench_name: node $1 did not answer" >&2
  exit 1
}
