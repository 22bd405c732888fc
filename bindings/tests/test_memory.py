"""A million operations in a loop leave memory flat (no per-call leak)."""

import resource
import tracemalloc

import numpy as np

import shmbus
from conftest import run_python


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def test_million_publishes_and_reads_leave_memory_flat(ns):
    shmbus.create("s", capacity="1M", namespace=ns)
    p = shmbus.Producer("s", namespace=ns, when_full="fail")
    c = shmbus.Consumer("s", group="g", namespace=ns)
    t = shmbus.Consumer("s", namespace=ns)  # tailing: copies
    payload = b"x" * 64
    arr = np.arange(8, dtype="<f8")

    def cycle(n):
        for i in range(n):
            p.publish(payload if i & 1 else arr, type=i & 7)
            r = c.poll(0)
            bytes(r.data[:8])  # touch the view (cached memoryview, expired at next poll)
            t.poll(0)
            if i % 1000 == 0:
                p.publish_batch([payload] * 10)
                with p.claim(16) as claim:
                    claim.data[:4] = b"abcd"
                c.read_batch(100, timeout=0)
                t.read_batch(100, timeout=0)

    cycle(50_000)  # warm up: allocator pools, caches
    tracemalloc.start()
    rss0 = rss_kib()
    snap0 = tracemalloc.take_snapshot()
    cycle(1_000_000)
    snap1 = tracemalloc.take_snapshot()
    rss1 = rss_kib()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    assert grown < 64 * 1024, f"Python heap grew by {grown} bytes"
    assert rss1 - rss0 < 4 * 1024, f"RSS grew by {rss1 - rss0} KiB"
    assert shmbus.stat("s", namespace=ns)["next_seq"] > 1_050_000
    for h in (p, c, t):
        h.close()


def test_opening_and_closing_handles_does_not_leak(ns):
    shmbus.create("s", capacity="64K", namespace=ns)
    code = r"""
import sys, shmbus, resource
ns = sys.argv[1]
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
def cycle(n):
    for i in range(n):
        with shmbus.Producer("s", namespace=ns) as p, shmbus.Consumer("s", group="g", namespace=ns) as c:
            p.publish(b"x")
            r = c.poll(0)
            r.data
        shmbus.stat("s", namespace=ns)
cycle(500)
r0 = rss()
cycle(5000)
print(rss() - r0)
"""
    r = run_python(code, ns)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) < 2048, f"RSS grew by {r.stdout.strip()} KiB over 5000 open/close cycles"
