# The figures of a run, drawn with matplotlib from its results database (docs/results.md).
# `enoki report RUN.db --plots DIR` runs this (the enoki binary carries it); by hand:
#   python3 testbed/plots.py RUN.db DIR
# Writes PNG and SVG of each figure the run has data for and prints their names:
#   latency_cdf            empirical CDF of request latency per workload (OK requests after the
#                          warm-up), the paper's figures for simple, replication and befaas
#   latency_over_time      request latency over the run per workload, timeline events marked
#   throughput_over_size   MB/s over item size per operation and placement (workloads named
#                          OP-SIZE-PLACEMENT, as in the paper's scale experiment)
#   staleness_cdf          CDF of the paper's staleness at the client per read workload (its
#                          reads after the warm-up, against the writes of its stale_against)
#   store_staleness_cdf    CDF of the store-side staleness per keygroup (reads by functions)
#   replication_lag        replication lag over the run per keygroup, timeline events marked
import os
import re
import sqlite3
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

UNITS = {"B": 1, "kB": 1000, "MB": 1000 * 1000}


def ecdf(values):
    v = sorted(values)
    n = len(v)
    return v, [(i + 1) / n for i in range(n)]


def finish(fig, ax, title, what, xlabel, ylabel, out, name, written, **legend):
    """Labels, grid and legend of a figure, then save()."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}: {what}")
    ax.grid(True, alpha=0.3)
    ax.legend(**legend)
    save(fig, out, name, written)


def save(fig, out, name, written):
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out, f"{name}.{ext}"), dpi=120)
    plt.close(fig)
    written.append(name)


def log_axis(axis):
    """A log scale labelled 1, 2, 5, 10, 20, 50, ... rather than in powers of ten."""
    axis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def mark_events(ax, events):
    """The timeline: a vertical line and a label per event (phases by name)."""
    for at_s, kind, detail in events:
        label = detail if kind == "phase" else f"{kind} {detail}"[:40]
        ax.axvline(at_s, color="grey", linestyle=":", linewidth=1)
        ax.annotate(label, (at_s, 1), xycoords=("data", "axes fraction"), rotation=90,
                    fontsize=6, color="dimgrey", ha="right", va="top")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plots.py RUN.db DIR")
    db, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    run = con.execute("SELECT scenario, mode, backend FROM run").fetchone()
    title = f"{run[0]} ({run[1]}, {run[2]})"
    workloads = [r[0] for r in con.execute("SELECT name FROM workloads ORDER BY rowid")]
    rows = con.execute(
        "SELECT r.workload, r.start_ns, r.end_ns, r.request_bytes + r.response_bytes "
        "FROM requests r JOIN workloads w ON r.workload = w.name "
        "WHERE r.status = 'OK' AND r.start_ns >= w.start_ns + w.warmup_ns").fetchall()
    by_workload = {w: [] for w in workloads}
    for w, start, end, size in rows:
        by_workload[w].append((start, end, size))
    events = [(at / 1e9, kind, detail) for at, kind, detail in
              con.execute("SELECT at_ns, kind, detail FROM events ORDER BY at_ns")]
    written = []
    shown = [w for w in workloads if by_workload[w]][:20]  # a figure stays readable

    if shown:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for w in shown:
            x, y = ecdf([(e - s) / 1e6 for s, e, _ in by_workload[w]])
            ax.step(x, y, where="post", label=w)
        lat = [(e - s) / 1e6 for w in shown for s, e, _ in by_workload[w]]
        if max(lat) > 20 * max(min(lat), 1e-3):
            ax.set_xscale("log")
            log_axis(ax.xaxis)
        finish(fig, ax, title, "latency CDF", "request latency (ms)", "fraction of requests", out,
               "latency_cdf", written, fontsize=7)

        fig, ax = plt.subplots(figsize=(8, 4.5))
        for w in shown:
            pts = by_workload[w]
            ax.plot([s / 1e9 for s, _, _ in pts], [(e - s) / 1e6 for s, e, _ in pts], ".",
                    markersize=2, label=w, rasterized=True)  # a small SVG for many points
        if max(lat) > 20 * max(min(lat), 1e-3):
            ax.set_yscale("log")
            log_axis(ax.yaxis)
        mark_events(ax, events)
        finish(fig, ax, title, "latency over time", "request start (s into the run)",
               "latency (ms)", out, "latency_over_time", written, fontsize=7, markerscale=4)

    sized = {}
    for w in workloads:
        m = re.fullmatch(r"(\w+)-(\d+)(B|kB|MB)-(\w+)", w)
        pts = by_workload[w]
        if not m or len(pts) < 2:
            continue
        seconds = (max(e for _, e, _ in pts) - min(s for s, _, _ in pts)) / 1e9
        if seconds <= 0:
            continue
        mbs = sum(b for _, _, b in pts) / 1e6 / seconds
        size = int(m.group(2)) * UNITS[m.group(3)]
        sized.setdefault(f"{m.group(1)} {m.group(4)}", []).append((size, mbs))
    if sized:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, pts in sorted(sized.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda v, _: f"{v / 1e6:g} MB" if v >= 1e6 else f"{v / 1e3:g} kB" if v >= 1e3
            else f"{v:g} B"))
        ax.set_ylim(bottom=0)  # from zero: equal throughputs look equal
        finish(fig, ax, title, "throughput over item size", "item size", "throughput (MB/s)", out,
               "throughput_over_size", written, fontsize=8)

    def cdfs(groups, what, xlabel, name):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, values in sorted(groups.items()):
            x, y = ecdf(values)
            ax.step(x, y, where="post", label=label)
        # Staleness is never negative: the axis starts at 0, and when no read was stale (every
        # value 0) it spans 1 ms rather than matplotlib's -0.04 to 0.04 around the one value.
        if max(max(values) for values in groups.values()) <= 0:
            ax.set_xlim(0, 1)
        else:
            ax.set_xlim(left=0)
        finish(fig, ax, title, what, xlabel, "fraction of reads", out, name, written, fontsize=8)

    at_client = {}
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'client_staleness'").fetchone():
        for reads, writes, ns in con.execute(
                "SELECT w.name, w.stale_against, c.staleness_ns FROM client_staleness c "
                "JOIN workloads w ON c.workload = w.name "
                "WHERE c.start_ns >= w.start_ns + w.warmup_ns AND c.staleness_ns >= 0"):
            at_client.setdefault(f"{reads} against {writes}", []).append(ns / 1e6)
    if at_client:
        cdfs(at_client, "staleness at the client (the paper's) CDF",
             "staleness of a read (ms; 0: its value was not yet overwritten at the writer)",
             "staleness_cdf")

    stale = {}
    for kg, ns in con.execute("SELECT keygroup, staleness_ns FROM read_staleness"):
        stale.setdefault(kg, []).append(ns / 1e6)
    if stale:
        cdfs(stale, "store-side read staleness CDF",
             "staleness of a function's read (ms; 0: it returned the newest version)",
             "store_staleness_cdf")

    lag = {}
    for kg, committed, ns in con.execute(
            "SELECT keygroup, committed_ns, lag_ns FROM replica_applies ORDER BY committed_ns"):
        lag.setdefault(kg, []).append((committed / 1e9, ns / 1e6))
    if lag:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for kg, pts in sorted(lag.items()):
            ax.plot([p[0] for p in pts], [p[1] for p in pts], ".", markersize=2, label=kg,
                    rasterized=True)
        mark_events(ax, events)
        finish(fig, ax, title, "replication lag over time",
               "write committed at its origin (s into the run)", "replication lag (ms)", out,
               "replication_lag", written, fontsize=8, markerscale=4)

    for name in written:
        print(name)


if __name__ == "__main__":
    main()
