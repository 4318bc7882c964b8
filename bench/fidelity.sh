#!/usr/bin/env bash
# The fidelity suite: does each way of running a scenario give the latencies its links should?
# For a matrix of links (delays, uniform and normal jitter, a rate, TCP-like loss; two nodes and
# twenty) it runs a generated scenario (a client calling the `echo` function at each edge over
# the link) in simulation, on the user-space shaper and on kernel netem, and compares each
# backend's request p50 and p99 with the link's analytic expectation:
#   - the round trip, 2 x delay, plus the two messages' serialization at the rate;
#   - jitter: the sum of the two directions' draws (uniform +-j: triangular, p99 at +1.717 j;
#     normal sd s: normal with sd s x sqrt(2), p99 at +3.290 s);
#   - loss: each direction's one segment lost with the loss rate and recovered after Linux's
#     retransmission timeout (the round trip plus 200 ms, doubling: net::RetransmissionTimeout),
#     the exact quantile of the sum of the two directions' delays;
#   - plus the backend's own floor: the time the node and the callers take, which is not the
#     link's: its p50 over a 1 ms link less the 2 ms round trip (the `floor-1ms` case, whose
#     p50 is therefore not judged; over a link of no delay the shaper hands messages over late,
#     not ahead of their time, and the receiver's wake-up from idle shows). The simulation's
#     echo costs a fixed 60 us and a commit 20 us (the scenario's `cost` and `commit_cost`), so
#     that its floor is not the calibration's and no idle wake-up is charged: the suite judges
#     the link models, and what the host adds (its stalls, its wake-ups) shows in the shaper's
#     and netem's figures against the simulation's.
# Tolerances (issue 17): p50 within 0.1 ms + 1% of the expectation, p99 within 1 ms + 5%.
# Keeps each backend's figures in results/fidelity/BACKEND.tsv (with the commit, machine, date and
# duration they were measured with; a backend measured again replaces its file) and writes
# results/fidelity/README.md from all of them (expected, each backend's p50 and p99, pass or
# fail, and how late the run's slowest process was at its p99, which says when a failure is the
# host's rather than the backend's), keeping what was written by hand below its last marker line.
#
#   bench/fidelity.sh [--duration S] [--backends LIST] [--vm NETEM_VM] [--out FILE]
#
# --duration: seconds each case runs (default 30); --backends: a comma-separated subset of
# simulation, shaper, netem (default: all three), or none (only write the README again); netem
# runs here when this host can (root and sch_netem), else in the VM that --vm names (default
# ../shared/tools/netem-vm, when present), else it is left as it was. --out: the README to write
# (default results/fidelity/README.md; the .tsv files go beside it). Internally, --measure
# BACKEND --tsv FILE measures one backend into FILE (how the VM is used).
source "$(dirname "$0")/common.sh"
need sqlite3 python3
duration=30 backends=simulation,shaper,netem vm=../shared/tools/netem-vm out=results/fidelity/README.md
measure_only="" tsv=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    --vm) vm=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --measure) measure_only=$2; shift 2 ;;
    --tsv) tsv=$2; shift 2 ;;
    -h|--help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "$bench_name: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $duration =~ ^[0-9]+$ && $duration -ge 5 ]] || { echo "$bench_name: --duration '$duration' is not a whole number of seconds, at least 5" >&2; exit 2; }

# The cases: name, nodes (2: a client and an edge; 20: a client and 19 edges), the client-edge
# link (scenario fields), each caller's rate, the body's size in bytes. Requests of one link are
# further apart than the jitter, than a message's serialization at the rate, and on lossy links
# than the retransmission timeout, so that none waits behind another (which the expectation does
# not count). Every case sends 50 to 100 requests a second over all its links, so that in 20 s
# a p99 is the 10th to 20th slowest of 1,000 to 2,000, not the 4th of 400: one stall of the host
# that delays a few requests does not move it.
cases=(
  "floor-1ms|2|delay: 1ms|100|100"
  "delay-25ms|2|delay: 25ms|100|100"
  "uniform-25ms-2ms|2|delay: 25ms, jitter: 2ms|100|100"
  "normal-10ms-1ms|2|delay: 10ms, jitter: 1ms, distribution: normal|100|100"
  "rate-10mbit-10kB|2|delay: 5ms, rate: 10mbit|50|10000"
  "delay-25ms-20-nodes|20|delay: 25ms|5|100"
  "normal-10ms-1ms-20-nodes|20|delay: 10ms, jitter: 1ms, distribution: normal|5|100"
  "loss-1pct-20-nodes|20|delay: 5ms, loss: 1%|4|100"
  "loss-5pct-20-nodes|20|delay: 5ms, loss: 5%|4|100"
)

# scenario NAME NODES LINK RATE BYTES: writes the case's scenario file and prints its path.
scenario() {
  local f=$work/$1.yaml edges=1 i
  [[ $2 == 20 ]] && edges=19
  {
    echo "name: fidelity-$1"
    echo "seed: 1"
    echo "warmup: 2s"
    echo "commit_cost: 20us"
    echo "nodes:"
    echo "  - {name: client, tier: client}"
    for i in $(seq 1 $edges); do echo "  - {name: edge$i, tier: edge}"; done
    echo "tier_links:"
    echo "  client-edge: {$3}"
    echo "keygroups:"
    for i in $(seq 1 $edges); do echo "  - {name: k$i, replicas: [edge$i]}"; done
    echo "functions:"
    for i in $(seq 1 $edges); do
      echo "  - {name: echo$i, nodes: [edge$i], handler: echo, keygroup: k$i, cost: 60us}"
    done
    echo "workloads:"
    for i in $(seq 1 $edges); do
      echo "  - {name: w$i, client: client, function: echo$i, node: edge$i, callers: 1, rate: $4/s, duration: $((duration + 2))s, body: '{random:$5}'}"
    done
  } >"$f"
  echo "$f"
}

# measure BACKEND TSV: runs every case on BACKEND and writes TSV: a "#" line saying where, when
# and with what, then per case "case backend p50 p99 count errors late" (late: the p99 lateness
# of the run's slowest process, ms; "-" in a simulation).
measure() {
  local backend=$1 file=$2 c name nodes link rate bytes f db lat errors
  local commit dirty
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
  printf "# %s: commit %s%s, on %s (%s cores, kernel %s), %s, %s s per case\n" "$backend" \
    "$commit" "$dirty" "$(hostname)" "$(nproc)" "$(uname -r)" "$(date -u +%Y-%m-%dT%H:%MZ)" \
    "$duration" >"$file"
  for c in "${cases[@]}"; do
    IFS='|' read -r name nodes link rate bytes <<<"$c"
    f=$(scenario "$name" "$nodes" "$link" "$rate" "$bytes")
    rm -rf "$work/res"
    case $backend in
      simulation) "$enoki" simulate "$f" --results "$work/res" >"$work/log" 2>&1 ;;
      shaper) "$enoki" emulate "$f" --links shaper --quiet --results "$work/res" >"$work/log" 2>&1 ;;
      netem) "$enoki" emulate "$f" --links netem --quiet --results "$work/res" >"$work/log" 2>&1 ;;
    esac || { echo "$bench_name: $backend $name failed:" >&2; tail -5 "$work/log" >&2; exit 1; }
    db=$(ls "$work"/res/*.db | head -1)
    lat=$(request_latencies "$db" | percentiles 0.5,0.99)
    errors=$(sqlite3 "$db" "SELECT count(*) FROM requests WHERE status != 'OK'")
    # How late the run's slowest process ran its timers or handed on messages at the p99, ms
    # (the processes table; none in a simulation): above 5 ms the host did not keep up.
    late=$(sqlite3 "$db" "SELECT coalesce(printf('%.3f', max(max(timer_p99_ns, delivery_p99_ns)) / 1e6), '-') FROM processes")
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$backend" $lat \
      "$(request_latencies "$db" | wc -l)" "$errors" "$late" >>"$file"
    echo "$bench_name: $backend $name: p50 p99 $lat ms, $errors failed, processes late by $late ms at p99" >&2
  done
}

if [[ -n $measure_only ]]; then
  [[ -n $tsv ]] || { echo "$bench_name: --measure needs --tsv FILE" >&2; exit 2; }
  measure "$measure_only" "$tsv"
  exit 0
fi

dir=$(dirname "$out")
mkdir -p "$dir"
[[ $backends == none ]] && backends=""
for b in ${backends//,/ }; do
  case $b in
    simulation | shaper) measure "$b" "$work/$b.tsv" && mv "$work/$b.tsv" "$dir/$b.tsv" ;;
    netem)
      if [[ $(id -u) == 0 ]] && { [[ -d /sys/module/sch_netem ]] || modprobe sch_netem 2>/dev/null; }; then
        measure netem "$work/netem.tsv" && mv "$work/netem.tsv" "$dir/netem.tsv"
      elif [[ -x $vm ]]; then
        inside=.fidelity-netem-$$.tsv  # in the folder the VM can write
        rm -f "$inside"
        if "$vm" --timeout 3600 -- bash bench/fidelity.sh --duration "$duration" --measure netem --tsv "$inside"; then
          mv "$inside" "$dir/netem.tsv"
        else
          rm -f "$inside"
          echo "$bench_name: the netem VM ($vm) failed; netem's figures are left as they were" >&2
        fi
      else
        echo "$bench_name: no sch_netem here and no netem VM (--vm); netem's figures are left as they were" >&2
      fi
      ;;
    *) echo "$bench_name: unknown backend '$b' (simulation, shaper, netem)" >&2; exit 2 ;;
  esac
done

python3 - "$dir" "$out" "${cases[@]}" <<'PY'
import math, os, sys
folder, out = sys.argv[1:3]
cases = [c.split("|") for c in sys.argv[3:]]
rows, origins = {}, []
for backend in ("simulation", "shaper", "netem"):
    path = os.path.join(folder, backend + ".tsv")
    if not os.path.exists(path):
        origins.append(f"- {backend}: not measured")
        continue
    for line in open(path):
        if line.startswith("#"):
            origins.append("- " + line[1:].strip())
            continue
        f = line.rstrip("\n").split("\t")
        late = float(f[6]) if len(f) > 6 and f[6] != "-" else None  # older files: not measured
        rows[(f[0], f[1])] = (float(f[2]), float(f[3]), int(f[4]), int(f[5]), late)

def fields(link):
    f = {}
    for item in link.split(","):
        k, v = item.split(":")
        f[k.strip()] = v.strip()
    return f

def ms(text):
    if text == "0": return 0.0
    for unit, factor in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit) and text[:-len(unit)].replace(".", "").isdigit():
            return float(text[:-len(unit)]) * factor
    raise ValueError(text)

def quantile(dist, q):  # nearest rank on a discrete distribution [(value, probability)]
    acc = 0.0
    for v, p in sorted(dist):
        acc += p
        if acc >= q - 1e-12: return v
    return sorted(dist)[-1][0]

def expected(link, nbytes):
    """The link's p50 and p99 of the round trip, ms, without the backend's floor."""
    f = fields(link)
    d = ms(f.get("delay", "0"))
    base = 2 * d
    if "rate" in f:
        bps = float(f["rate"].replace("mbit", "")) * 1e6
        base += 2 * nbytes * 8 / bps * 1e3
    j = ms(f.get("jitter", "0"))
    if j > 0:
        if f.get("distribution") == "normal":
            return base, base + 2.3263 * j * math.sqrt(2)
        return base, base + (2 - math.sqrt(0.08)) * j  # triangular on +-2j
    if "loss" in f:
        p = float(f["loss"].rstrip("%")) / 100
        rto = 2 * d + 200  # net::RetransmissionTimeout
        one, extra, wait = [(0.0, 1 - p)], 0.0, rto
        for k in range(1, 8):  # lost k times: rto, then doubling
            extra += wait
            wait *= 2
            one.append((extra, p ** k * (1 - p)))
        both = [(a + b, pa * pb) for a, pa in one for b, pb in one]
        return base + quantile(both, 0.5), base + quantile(both, 0.99)
    return base, base

def verdict(e, m, abs_ms, rel):
    return abs(m - e) <= abs_ms + rel * e

backends = ["simulation", "shaper", "netem"]
lines = []
lines.append("# The fidelity suite: each backend against the links' analytic expectation\n")
lines.append("Made by `bench/fidelity.sh` (read its header for the cases and the expectations); "
             "each case ran the time below after a 2 s warm-up. Netem ran in a software-emulated "
             "VM (`../shared/tools/netem-vm`) when the host's kernel lacks sch_netem: its "
             "timings hold only as well as that VM keeps time. Each backend's figures are in "
             "its `.tsv` beside this file, measured:\n")
lines.extend(origins)
lines.append("")
lines.append("Request latencies in ms at the client (p50 and p99 of the requests after the "
             "warm-up), for the `echo` function over the client-edge link. *expected* is the "
             "link's analytic round trip plus the backend's floor (its p50 in the `floor-1ms` "
             "case less 2 ms; that case's p50 is not judged). "
             "A cell passes when p50 is within 0.1 ms + 1% and p99 within 1 ms + 5% of it, and no "
             "request failed. *late* is how late the run's slowest process ran its timers or "
             "handed on shaped messages at the p99 (the `processes` table); a failed cell whose "
             "run was later than 5 ms (what marks a run `OVERLOADED`) says so, and so does one "
             "whose p99 is off by no more than its tolerance plus that lateness: the host did "
             "not keep the schedule, and the cell judges the host rather than the backend.\n")
header = "| case | link | expected p50 / p99 (link only) |"
sep = "| --- | --- | --- |"
for b in backends:
    header += f" {b} p50 / p99 | {b} |"
    sep += " --- | --- |"
lines.append(header)
lines.append(sep)
failed = 0
for name, nodes, link, rate, nbytes in cases:
    e50, e99 = expected(link, int(nbytes))
    row = f"| {name} | {link} | {e50:.3f} / {e99:.3f} |"
    for b in backends:
        m = rows.get((name, b))
        floor = rows.get(("floor-1ms", b))
        if not m or not floor:
            row += " - | - |"
            continue
        x50, x99 = e50 + floor[0] - 2, e99 + floor[0] - 2
        p50_ok = name == "floor-1ms" or verdict(x50, m[0], 0.1, 0.01)
        ok = m[3] == 0 and p50_ok and verdict(x99, m[1], 1.0, 0.05)
        failed += 0 if ok else 1
        note = "pass" if ok else "FAIL"
        if m[3]:
            note += f" ({m[3]} failed)"
        if not ok and m[4] is not None and m[3] == 0:
            if m[4] > 5:
                note += " (host overloaded)"
            elif p50_ok and verdict(x99, m[1], 1.0 + m[4], 0.05):
                note += " (p99 within the host's lateness)"
        late = "" if m[4] is None else f", late {m[4]:.3f}"
        row += (f" {m[0]:.3f} / {m[1]:.3f} | {note} (exp. {x50:.3f} / {x99:.3f}, n={m[2]}{late})"
                " |")
    lines.append(row)
lines.append("")
lines.append(f"{failed} cell(s) failed.\n")
# What people wrote below the marker (the differences explained) survives a new run.
marker = "<!-- written by hand below: bench/fidelity.sh keeps it -->"
kept = ""
if os.path.exists(out):
    old = open(out).read()
    if marker in old:
        kept = old[old.index(marker) + len(marker):]
lines.append(marker + kept)
with open(out, "w") as o:
    o.write("\n".join(lines))
print(f"wrote {out}: {failed} cell(s) failed")
PY
