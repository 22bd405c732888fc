#!/usr/bin/python3
"""bench/plot.py: PNG plots from the benchmarks' JSON (tools/dev.sh bench writes both).

    bench/plot.py [--bench FILE] [--persist FILE] [--out DIR]

--bench   `shmbus-bench --json FILE`: latency.png (one-way latency percentiles, p50 to
          max, log scale, shmbus and every baseline) and throughput.png (records/s and
          GB/s by record size).
--persist `shmbus-persist-bench --json FILE`: persister.png (persister against the
          disk's own write + fdatasync rate, by record size and store) and replay.png
          (replay from the store against a raw sequential read of the same files).
--out     the directory for the PNGs (default bench/results/, made if missing).

Uses Debian's python3-matplotlib (Agg backend, no display).  Without matplotlib it says
so and exits 0 (nothing to draw with); a missing or malformed JSON file is a one-line
error and exit status 1.
"""

import argparse
import json
import math
import os
import sys

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class InputError(Exception):
    pass


def load(path, what):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise InputError(f"cannot read {what} JSON {path}: {e.strerror}") from None
    except ValueError as e:
        raise InputError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise InputError(f"{path}: expected an object with a \"rows\" list ({what} --json output)")
    return doc


def number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: expected a number, got {value!r}")
    return float(value)


# ---- shmbus-bench -------------------------------------------------------------------

_PERCENTILES = [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)]


def _nines(p):
    """The position of percentile p on a "number of nines" axis: p50 0.3, p99 2, p99.9 3."""
    return -math.log10(1.0 - p)


def latency_series(doc):
    """[(name, [(x, ns)...])] for each row with a latency, and the x of `max`."""
    series, max_x = [], 4.0
    for i, row in enumerate(doc["rows"]):
        lat = row.get("latency_ns")
        if row.get("na") or not isinstance(lat, dict) or lat.get("error"):
            continue
        where = f"rows[{i}] ({row.get('name')}) latency_ns"
        pts = [(_nines(p), number(lat.get(k), f"{where}.{k}")) for k, p in _PERCENTILES]
        samples = lat.get("samples")
        if isinstance(samples, int) and samples > 1000:
            max_x = max(max_x, math.log10(samples))
        pts.append((None, number(lat.get("max"), f"{where}.max")))
        series.append((str(row.get("name")), pts))
    return [(n, [(max_x if x is None else x, y) for x, y in pts]) for n, pts in series], max_x


def throughput_series(doc):
    """[(name, [(size, records_per_s, gb_per_s)...])] for each row with throughput."""
    out = []
    for i, row in enumerate(doc["rows"]):
        cells = row.get("throughput") or []
        if row.get("na") or not isinstance(cells, list):
            continue
        pts = []
        for j, c in enumerate(cells):
            if not isinstance(c, dict) or c.get("error"):
                continue
            where = f"rows[{i}] ({row.get('name')}) throughput[{j}]"
            size = number(c.get("size"), where + ".size")
            rate = number(c.get("records_per_s"), where + ".records_per_s")
            pts.append((size, rate, rate * size / 1e9))
        if pts:
            out.append((str(row.get("name")), sorted(pts)))
    return out


def plot_latency(plt, doc, out):
    series, max_x = latency_series(doc)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(10, 6))
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # 20 colours: one per series
    for name, pts in series:
        style = "-" if name.startswith("shmbus") else "--"
        width = 2.4 if name.startswith("shmbus") else 1.2
        ax.plot([x for x, _ in pts], [y for _, y in pts], style, marker="o", linewidth=width, label=name)
    ax.set_yscale("log")
    ax.set_xticks([_nines(p) for _, p in _PERCENTILES] + [max_x])
    ax.set_xticklabels(["p50", "p99", "p99.9", "max"])
    ax.set_xlabel("percentile")
    ax.set_ylabel("one-way latency (ns, log scale)")
    ax.set_title("64 B one-way latency by percentile (shmbus-bench)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return save(fig, out, "latency.png", doc)


def plot_throughput(plt, doc, out):
    series = throughput_series(doc)
    if not series:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 6))
    for ax in (a1, a2):
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # 20 colours: one per series
    for name, pts in series:
        style = "-" if name.startswith("shmbus") else "--"
        width = 2.4 if name.startswith("shmbus") else 1.2
        sizes = [s for s, _, _ in pts]
        a1.plot(sizes, [r for _, r, _ in pts], style, marker="o", linewidth=width, label=name)
        a2.plot(sizes, [g for _, _, g in pts], style, marker="o", linewidth=width, label=name)
    for ax, label in ((a1, "records/s"), (a2, "GB/s")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("record size (bytes)")
        ax.set_ylabel(label + " (log scale)")
        ax.grid(True, which="both", alpha=0.3)
    a1.set_title("throughput: records/s by record size")
    a2.set_title("throughput: GB/s by record size")
    a2.legend(fontsize=7, loc="lower right")
    return save(fig, out, "throughput.png", doc)


# ---- shmbus-persist-bench -----------------------------------------------------------


def _spread(row, key, where):
    s = row.get(key)
    if not isinstance(s, dict):
        raise InputError(f"{where}.{key}: expected {{median, min, max}}")
    return tuple(number(s.get(k), f"{where}.{key}.{k}") for k in ("median", "min", "max"))


def _bar(ax, x, spread, label, color=None, width=0.35):
    med, lo, hi = (v / 1e9 for v in spread)
    ax.bar(x, med, width, yerr=[[med - lo], [hi - med]], capsize=4, label=label, color=color)


def plot_persister(plt, doc, out):
    rows = [(i, r) for i, r in enumerate(doc["rows"]) if isinstance(r, dict) and r.get("kind") == "persister"]
    disk = [r for r in doc["rows"] if isinstance(r, dict) and r.get("kind") == "disk"]
    if not rows or not disk:
        return None
    d = _spread(disk[0], "value", "disk row")
    sizes = sorted({int(number(r.get("record_bytes"), f"rows[{i}].record_bytes")) for i, r in rows})
    stores = sorted({str(r.get("store")) for _, r in rows})
    fig, ax = plt.subplots(figsize=(10, 6))
    width = 0.8 / (len(stores) + 1)
    for k, store in enumerate(stores):
        for i, r in rows:
            if str(r.get("store")) != store:
                continue
            x = sizes.index(int(r["record_bytes"])) + k * width
            _bar(ax, x, _spread(r, "value", f"rows[{i}]"), f"persister, {store} store", f"C{k}", width)
    for s in range(len(sizes)):
        _bar(ax, s + len(stores) * width, d, "disk: 1 MiB write + fdatasync", "0.6", width)
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, l in zip(handles, labels):
        seen.setdefault(l, h)
    ax.legend(seen.values(), seen.keys(), loc="upper left")
    ax.set_xticks([s + len(stores) * width / 2 for s in range(len(sizes))])
    ax.set_xticklabels([f"{s} B records" for s in sizes])
    ax.set_ylabel("GB/s (median, bars: min..max)")
    ax.set_title("persister against the disk (shmbus-persist-bench)")
    ax.grid(True, axis="y", alpha=0.3)
    return save(fig, out, "persister.png", doc)


def plot_replay(plt, doc, out):
    rows = [(i, r) for i, r in enumerate(doc["rows"]) if isinstance(r, dict) and r.get("kind") == "replay"]
    if not rows:
        return None
    i, r = rows[0]
    size = r.get("record_bytes")
    fig, ax = plt.subplots(figsize=(7, 6))
    _bar(ax, 0, _spread(r, "value", f"rows[{i}]"), "replay from the store", "C0", 0.6)
    _bar(ax, 1, _spread(r, "baseline", f"rows[{i}]"), "raw sequential read() of the same files", "0.6", 0.6)
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["replay", "raw read"])
    ax.set_ylabel("GB/s (median, bars: min..max)")
    ax.set_title(f"replay against raw read, {size} B records (shmbus-persist-bench)")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    return save(fig, out, "replay.png", doc)


def save(fig, out, name, doc):
    note = doc.get("date") or ("quick run" if doc.get("quick") else "")
    if note:
        fig.text(0.99, 0.01, str(note), ha="right", va="bottom", fontsize=7, alpha=0.6)
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", help="shmbus-bench --json output")
    ap.add_argument("--persist", help="shmbus-persist-bench --json output")
    ap.add_argument("--out", default=DEFAULT_OUT, help="directory for the PNGs (default: %(default)s)")
    args = ap.parse_args(argv)
    if not args.bench and not args.persist:
        ap.error("give --bench FILE and/or --persist FILE")
    try:
        docs = []  # read first: bad input is an error even where nothing could be drawn
        if args.bench:
            docs.append((load(args.bench, "shmbus-bench"), (plot_latency, plot_throughput)))
        if args.persist:
            docs.append((load(args.persist, "shmbus-persist-bench"), (plot_persister, plot_replay)))
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("bench/plot.py: matplotlib is not installed (Debian: apt install python3-matplotlib): "
                  "no plots written", file=sys.stderr)
            return 0
        os.makedirs(args.out, exist_ok=True)
        for doc, plots in docs:
            for plot in plots:
                path = plot(plt, doc, args.out)
                print(f"wrote {path}" if path else f"{plot.__name__}: nothing to plot in the input",
                      file=sys.stderr)
    except InputError as e:
        print(f"bench/plot.py: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"bench/plot.py: cannot write to {args.out}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
