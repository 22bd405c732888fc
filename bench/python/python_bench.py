#!/usr/bin/python3
"""python_bench.py: the shmbus Python module against Python's own IPC, in one run.

Producer and consumer run in separate processes (multiprocessing "spawn"), pinned to
two cores (os.sched_setaffinity; default 0 and 1).  64-byte records:

  shmbus publish        records/s of Producer.publish() while a durable consumer reads
                        (the ring holds every record: the producer never waits)
  shmbus publish_batch  the same with Producer.publish_batch() of --batch records
  shmbus iteration      records/s of `for rec in consumer.iter()` over a ring filled
                        beforehand (a durable group: zero-copy records), and of
                        `for batch in consumer.iter_batches(1024): for rec in batch`
  end to end            first publish -> last record received (every record handed to
                        Python code: len(rec), as the Queue's consumer does len() of each),
                        for shmbus publish and publish_batch with either consumer
                        (iter(), iter_batches()) and for the baselines multiprocessing.Queue
                        (put/get), multiprocessing.Pipe (send_bytes/recv_bytes) and a
                        socket.socketpair (one sendall per record; recv_into a large
                        buffer, so the reader batches)
  zero copy             1 MiB records: the producer claims ring space and writes a numpy
                        array into it (numpy.frombuffer over the claim), the consumer
                        sums numpy.frombuffer(rec.data) (checked); GB/s against a numpy
                        copy of the same size in one process (hot buffers, and rotating
                        through as much memory as the ring)

Every case runs --reps times (default 3; --quick: 1 and smaller counts, < 20 s) and
prints the median with min..max, then a markdown table with the targets.  Run with
Debian's interpreter and the built package on the path:

    PYTHONPATH=<build>/bindings/pkg /usr/bin/python3 bench/python/python_bench.py [--quick]
"""

import argparse
import multiprocessing as mp
import os
import platform
import socket
import statistics
import sys
import time

RECORD = 64
ZC_SIZE = 1 << 20
GROUP = "bench"


# ---- helpers ------------------------------------------------------------------------


def pin(core):
    """Pins this process to `core`; returns the core, or None when it cannot."""
    if core is None:
        return None
    try:
        os.sched_setaffinity(0, {core})
        return core
    except (OSError, AttributeError):
        return None


def ring_capacity(records, size):
    """A power-of-two ring that holds `records` records of `size` bytes (32-byte header,
    32-byte alignment), at least 1 MiB."""
    need = records * ((size + 32 + 31) // 32 * 32) + (1 << 20)
    cap = 1 << 20
    while cap < need:
        cap <<= 1
    return cap


def build_type():
    """CMAKE_BUILD_TYPE of the build tree the shmbus package was loaded from, if any."""
    import shmbus

    d = os.path.dirname(os.path.abspath(shmbus.__file__))
    for _ in range(4):
        d = os.path.dirname(d)
        cache = os.path.join(d, "CMakeCache.txt")
        if os.path.exists(cache):
            with open(cache) as f:
                for line in f:
                    if line.startswith("CMAKE_BUILD_TYPE:"):
                        # Empty: the top-level CMakeLists.txt picks RelWithDebInfo.
                        return line.split("=", 1)[1].strip() or "RelWithDebInfo (default)"
    return "unknown (installed package)"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- worker processes (top level: "spawn" imports this module) --------------------------


def shmbus_producer(conn, ns, stream, mode, n, batch, core):
    pin(core)
    import shmbus

    payload = bytes(range(RECORD))
    with shmbus.Producer(stream, namespace=ns, full_timeout=120) as p:
        conn.send("ready")
        conn.recv()
        t0 = time.perf_counter()
        if mode == "batch":
            items = [payload] * batch
            pub = p.publish_batch
            for _ in range(n // batch):
                pub(items)
        else:
            pub = p.publish
            for _ in range(n):
                pub(payload)
        t1 = time.perf_counter()
    conn.send((t0, t1))


def shmbus_consumer(conn, ns, stream, n, reader, core):
    """Reads n records, each handed to Python code (len(), as the Queue consumer does):
    one per iteration step (reader "iter") or in lists (reader "batches":
    Consumer.iter_batches)."""
    pin(core)
    import shmbus

    with shmbus.Consumer(stream, group=GROUP, start="earliest", namespace=ns) as c:
        conn.send("ready")
        conn.recv()
        count = 0
        t0 = time.perf_counter()
        if reader == "batches":
            for batch in c.iter_batches(1024, max_records=n, idle_timeout=60):
                for rec in batch:
                    if len(rec) == RECORD:
                        count += 1
        else:
            for rec in c.iter(max_records=n, idle_timeout=60):
                if len(rec) == RECORD:
                    count += 1
        t1 = time.perf_counter()
        if c.next_seq != n:
            count = -c.next_seq
    conn.send((t0, t1, count))


def zc_producer(conn, ns, stream, n, core):
    pin(core)
    import numpy as np

    import shmbus

    src = np.arange(ZC_SIZE // 8, dtype=np.uint64)
    with shmbus.Producer(stream, namespace=ns, full_timeout=120) as p:
        conn.send("ready")
        conn.recv()
        t0 = time.perf_counter()
        for i in range(n):
            with p.claim(ZC_SIZE, type=1) as claim:
                arr = np.frombuffer(claim.data, dtype=np.uint64)
                arr[:] = src
                arr[0] = i
            del arr
        t1 = time.perf_counter()
    conn.send((t0, t1))


def zc_consumer(conn, ns, stream, n, core):
    pin(core)
    import numpy as np

    import shmbus

    base = int(np.arange(ZC_SIZE // 8, dtype=np.uint64)[1:].sum())
    bad = 0
    with shmbus.Consumer(stream, group=GROUP, start="earliest", namespace=ns) as c:
        conn.send("ready")
        conn.recv()
        t0 = time.perf_counter()
        for rec in c.iter(max_records=n, idle_timeout=60):
            if int(np.frombuffer(rec.data, dtype=np.uint64).sum()) != base + rec.seq:
                bad += 1
        t1 = time.perf_counter()
        count = c.next_seq
    conn.send((t0, t1, count - bad))


def baseline_producer(conn, obj, method, n, core):
    """Sends n records through obj.<method> (Queue.put, Connection.send_bytes,
    socket.sendall): the producer side of every Python baseline."""
    pin(core)
    payload = bytes(range(RECORD))
    conn.send("ready")
    conn.recv()
    t0 = time.perf_counter()
    send = getattr(obj, method)
    for _ in range(n):
        send(payload)
    t1 = time.perf_counter()
    conn.send((t0, t1))


def baseline_consumer(conn, obj, method, n, core):
    """Receives n records through obj.<method> (Queue.get, Connection.recv_bytes), each
    a separate message."""
    pin(core)
    conn.send("ready")
    conn.recv()
    t0 = time.perf_counter()
    get = getattr(obj, method)
    count = 0
    for _ in range(n):
        if len(get()) == RECORD:
            count += 1
    t1 = time.perf_counter()
    conn.send((t0, t1, count))


def socket_consumer(conn, s, n, core):
    pin(core)
    buf = bytearray(RECORD * 4096)
    view = memoryview(buf)
    conn.send("ready")
    conn.recv()
    t0 = time.perf_counter()
    want, got = n * RECORD, 0
    recv = s.recv_into
    while got < want:
        k = recv(view)
        if k == 0:
            break
        got += k
    t1 = time.perf_counter()
    conn.send((t0, t1, got // RECORD))


# ---- one measurement ------------------------------------------------------------------


def run_pair(ctx, prod_fn, prod_args, cons_fn, cons_args, drain_first=False, timeout=300):
    """Runs a consumer and a producer process; returns (prod t0, prod t1, cons t0, cons
    t1, count).  drain_first: the producer publishes everything before the consumer is
    told to start (the consumer then reads a full ring)."""
    pc, pc_child = ctx.Pipe()
    cc, cc_child = ctx.Pipe()
    cons = ctx.Process(target=cons_fn, args=(cc_child, *cons_args))
    cons.start()
    if not cc.poll(timeout) or cc.recv() != "ready":
        raise RuntimeError("consumer did not start")
    prod = ctx.Process(target=prod_fn, args=(pc_child, *prod_args))
    prod.start()
    if not pc.poll(timeout) or pc.recv() != "ready":
        raise RuntimeError("producer did not start")
    if drain_first:
        pc.send("go")
        if not pc.poll(timeout):
            raise RuntimeError("producer timed out")
        p0, p1 = pc.recv()
        cc.send("go")
    else:
        cc.send("go")
        pc.send("go")
        if not pc.poll(timeout):
            raise RuntimeError("producer timed out")
        p0, p1 = pc.recv()
    if not cc.poll(timeout):
        raise RuntimeError("consumer timed out")
    c0, c1, count = cc.recv()
    prod.join(timeout)
    cons.join(timeout)
    if prod.exitcode != 0 or cons.exitcode != 0:
        raise RuntimeError(f"worker failed: producer {prod.exitcode}, consumer {cons.exitcode}")
    return p0, p1, c0, c1, count


class Results:
    def __init__(self):
        self.samples = {}  # case -> list of values
        self.notes = []

    def add(self, case, value):
        self.samples.setdefault(case, []).append(value)

    def median(self, case):
        v = self.samples.get(case)
        return statistics.median(v) if v else None

    def spread(self, case):
        v = self.samples.get(case)
        return (min(v), max(v)) if v else (None, None)


def check_count(results, case, count, n):
    if count != n:
        results.notes.append(f"{case}: expected {n} records, got {count}")


def bench_shmbus(ctx, results, ns, args, cores, rep):
    import shmbus

    pcore, ccore = cores
    # label, producer mode, records, consumer reader, drain first (the consumer reads a
    # full ring: its own rate)
    cases = [
        ("publish", "publish", args.n_publish, "iter", False),
        ("publish_batch", "batch", args.n_batch, "iter", False),
        ("publish batches", "publish", args.n_publish, "batches", False),
        ("publish_batch batches", "batch", args.n_batch, "batches", False),
        ("iteration", "batch", args.n_iter, "iter", True),
        ("iteration batches", "batch", args.n_iter, "batches", True),
    ]
    for label, mode, n, reader, drain in cases:
        n = n // args.batch * args.batch if mode == "batch" else n
        stream = f"{label.replace(' ', '_')}{rep}"
        shmbus.create(stream, capacity=ring_capacity(n, RECORD), namespace=ns)
        try:
            p0, p1, c0, c1, count = run_pair(
                ctx, shmbus_producer, (ns, stream, mode, n, args.batch, pcore),
                shmbus_consumer, (ns, stream, n, reader, ccore), drain_first=drain)
        finally:
            shmbus.remove(stream, namespace=ns, force=True)
        check_count(results, f"shmbus {label}", count, n)
        if drain:
            results.add(f"shmbus {label}", n / (c1 - c0))
        else:
            if reader == "iter":  # the producer's rate: once per producer mode
                results.add(f"shmbus {label}", n / (p1 - p0))
            results.add(f"shmbus {label} e2e", n / (c1 - p0))


def bench_baselines(ctx, results, args, cores):
    pcore, ccore = cores
    n = args.n_base
    q = ctx.Queue()
    p0, p1, c0, c1, count = run_pair(ctx, baseline_producer, (q, "put", n, pcore), baseline_consumer, (q, "get", n, ccore))
    check_count(results, "multiprocessing.Queue", count, n)
    results.add("multiprocessing.Queue e2e", n / (c1 - p0))
    q.close()

    r, w = ctx.Pipe(duplex=False)
    p0, p1, c0, c1, count = run_pair(ctx, baseline_producer, (w, "send_bytes", n, pcore), baseline_consumer, (r, "recv_bytes", n, ccore))
    check_count(results, "multiprocessing.Pipe", count, n)
    results.add("multiprocessing.Pipe e2e", n / (c1 - p0))
    r.close()
    w.close()

    a, b = socket.socketpair()
    p0, p1, c0, c1, count = run_pair(ctx, baseline_producer, (a, "sendall", n, pcore), socket_consumer, (b, n, ccore))
    check_count(results, "socketpair", count, n)
    results.add("socketpair e2e", n / (c1 - p0))
    a.close()
    b.close()


def bench_zero_copy(ctx, results, ns, args, cores, rep):
    import shmbus

    pcore, ccore = cores
    n = args.n_zc
    stream = f"zc{rep}"
    cap = 64 << 20
    shmbus.create(stream, capacity=cap, max_record=ZC_SIZE, namespace=ns)
    try:
        p0, p1, c0, c1, count = run_pair(ctx, zc_producer, (ns, stream, n, pcore),
                                         zc_consumer, (ns, stream, n, ccore))
    finally:
        shmbus.remove(stream, namespace=ns, force=True)
    check_count(results, "zero copy (checked sums)", count, n)
    results.add("zero copy 1 MiB e2e", n * ZC_SIZE / (c1 - p0) / 1e9)


def bench_memcpy(results, args, core):
    import numpy as np

    old = os.sched_getaffinity(0)
    pin(core)
    try:
        src = np.arange(ZC_SIZE // 8, dtype=np.uint64)
        dst = np.empty_like(src)
        reps = max(50, args.n_zc)
        np.copyto(dst, src)
        t0 = time.perf_counter()
        for _ in range(reps):
            np.copyto(dst, src)
        t1 = time.perf_counter()
        results.add("numpy copy 1 MiB (hot)", reps * ZC_SIZE / (t1 - t0) / 1e9)
        # As much memory as the ring: sources and destinations rotate through 64 MiB each.
        k = 64
        srcs = np.ones((k, ZC_SIZE // 8), dtype=np.uint64)
        dsts = np.zeros_like(srcs)
        t0 = time.perf_counter()
        for i in range(reps):
            np.copyto(dsts[i % k], srcs[(i * 7) % k])
        t1 = time.perf_counter()
        results.add("numpy copy 1 MiB (64 MiB rotating)", reps * ZC_SIZE / (t1 - t0) / 1e9)
    finally:
        os.sched_setaffinity(0, old)


# ---- report ---------------------------------------------------------------------------


def fmt_rate(v):
    if v is None:
        return "n/a"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    return f"{v / 1e3:.0f} k/s"


def fmt_gbs(v):
    return "n/a" if v is None else f"{v:.2f} GB/s"


def report(results, args, cores, pinned):
    import numpy as np

    import shmbus

    r = results
    q = r.median("multiprocessing.Queue e2e")
    print()
    print(f"shmbus {shmbus.__version__} Python module ({build_type()} build), Python "
          f"{platform.python_version()}, numpy {np.__version__}; {cpu_model()}, "
          f"{os.cpu_count()} CPUs")
    print(f"producer on core {cores[0]}, consumer on core {cores[1]} "
          f"({'pinned' if pinned else 'NOT pinned: sched_setaffinity failed'}); "
          f"{RECORD}-byte records; reps {args.reps}; records: publish {args.n_publish}, "
          f"publish_batch {args.n_batch} (batches of {args.batch}), iteration {args.n_iter}, "
          f"baselines {args.n_base}; zero copy {args.n_zc} x 1 MiB through a 64 MiB ring"
          + (" [quick]" if args.quick else ""))
    print()
    print("| case | median | min..max | vs multiprocessing.Queue | target | met |")
    print("|---|---:|---:|---:|---|---|")

    def row(case, label, target=None, target_text="", gb=False):
        med = r.median(case)
        lo, hi = r.spread(case)
        f = fmt_gbs if gb else fmt_rate
        ratio = "" if gb or med is None or not q else f"{med / q:.1f}x"
        met = "" if target is None or med is None else ("yes" if med >= target else "NO")
        print(f"| {label} | {f(med)} | {f(lo)}..{f(hi)} | {ratio} | {target_text} | {met} |")

    row("shmbus publish", "shmbus publish (producer)", 1e6, ">= 1 M/s")
    row("shmbus publish e2e", "shmbus publish, end to end", q * 10 if q else None,
        ">= 10x Queue")
    row("shmbus publish_batch", f"shmbus publish_batch of {args.batch} (producer)", 5e6, ">= 5 M/s")
    row("shmbus publish_batch e2e", "shmbus publish_batch, end to end", q * 10 if q else None,
        ">= 10x Queue")
    row("shmbus publish batches e2e", "shmbus publish, end to end, iter_batches consumer",
        q * 10 if q else None, ">= 10x Queue")
    row("shmbus publish_batch batches e2e",
        "shmbus publish_batch, end to end, iter_batches consumer", q * 20 if q else None,
        ">= 20x Queue")
    row("shmbus iteration", "shmbus consumer iteration (durable, zero-copy)", 1e6, ">= 1 M/s")
    row("shmbus iteration batches", "shmbus consumer iter_batches (durable, zero-copy)", 1e6,
        ">= 1 M/s")
    row("multiprocessing.Queue e2e", "multiprocessing.Queue put/get, end to end")
    row("multiprocessing.Pipe e2e", "multiprocessing.Pipe send_bytes/recv_bytes, end to end")
    row("socketpair e2e", "socket.socketpair sendall/recv_into, end to end")
    row("zero copy 1 MiB e2e", "shmbus zero copy 1 MiB (claim + numpy write, numpy sum), end to end",
        gb=True)
    row("numpy copy 1 MiB (hot)", "numpy copy 1 MiB, one process, hot buffers", gb=True)
    row("numpy copy 1 MiB (64 MiB rotating)", "numpy copy 1 MiB, one process, rotating through 64 MiB",
        gb=True)
    zc = r.median("zero copy 1 MiB e2e")
    cp = r.median("numpy copy 1 MiB (64 MiB rotating)")
    if zc and cp:
        print(f"\nzero copy end to end moves {zc / cp:.2f}x the bytes/s of one numpy copy of the "
              f"same size (rotating); hot: {zc / r.median('numpy copy 1 MiB (hot)'):.2f}x")
    for note in r.notes:
        print(f"NOTE: {note}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: small counts, 1 rep (< 20 s)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3; --quick 1)")
    ap.add_argument("--cores", default="0,1", help="producer,consumer cores (default 0,1)")
    ap.add_argument("--batch", type=int, default=256, help="records per publish_batch (256)")
    ap.add_argument("--only", default="shmbus,baselines,zerocopy",
                    help="comma-separated subset of shmbus,baselines,zerocopy")
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.quick:
        args.n_publish, args.n_batch, args.n_iter, args.n_base, args.n_zc = 200_000, 1_000_000, 200_000, 50_000, 200
    else:
        args.n_publish, args.n_batch, args.n_iter, args.n_base, args.n_zc = 1_000_000, 4_000_000, 1_000_000, 200_000, 2000
    cores = tuple(int(c) for c in args.cores.split(","))
    pinned = set(cores) <= os.sched_getaffinity(0)  # the workers pin themselves
    only = set(args.only.split(","))

    import shmbus

    ctx = mp.get_context("spawn")
    ns = f"pybench{os.getpid()}"
    results = Results()
    t_start = time.monotonic()
    try:
        for rep in range(args.reps):
            if "shmbus" in only:
                bench_shmbus(ctx, results, ns, args, cores, rep)
            if "baselines" in only:
                bench_baselines(ctx, results, args, cores)
            if "zerocopy" in only:
                bench_zero_copy(ctx, results, ns, args, cores, rep)
                bench_memcpy(results, args, cores[0])
            print(f"rep {rep + 1}/{args.reps} done ({time.monotonic() - t_start:.1f} s)",
                  file=sys.stderr, flush=True)
    finally:
        for s in shmbus.ls(ns):
            shmbus.remove(s, namespace=ns, force=True)
    report(results, args, cores, pinned)
    print(f"\n(total {time.monotonic() - t_start:.1f} s)")
    return 1 if results.notes else 0


if __name__ == "__main__":
    sys.exit(main())
