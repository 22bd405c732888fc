"""Waiting without the GIL, Ctrl-C, close() from another thread, shared handles."""

import _thread
import signal
import threading
import time

import pytest

import shmbus
from conftest import spawn_python

BLOCKER = r"""
import sys, time, shmbus
ns, what = sys.argv[1], sys.argv[2]
if what == "poll":
    c = shmbus.Consumer("s", group="g", namespace=ns)
    block = lambda: c.poll()
elif what == "iterate":
    c = shmbus.Consumer("s", namespace=ns)
    block = lambda: [r for r in c]
elif what == "publish":  # a durable group that never reads fills the 4K ring
    c = shmbus.Consumer("s", group="stuck", namespace=ns)
    p = shmbus.Producer("s", namespace=ns, full_timeout=None)
    def block():
        while True:
            p.publish(b"x" * 100)
print("ready", flush=True)
try:
    block()
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(0)
print("returned", flush=True)
sys.exit(1)
"""


@pytest.mark.parametrize("what", ["poll", "iterate", "publish"])
def test_sigint_interrupts_a_blocking_call(ns, what):
    import subprocess

    shmbus.create("s", capacity="4K", namespace=ns)
    proc = spawn_python(BLOCKER, ns, what, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it block
        assert proc.poll() is None
        t = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert out.strip() == "KeyboardInterrupt"
        assert proc.returncode == 0
        assert time.monotonic() - t < 1.0  # slices of 50 ms
    finally:
        if proc.poll() is None:
            proc.kill()


def test_interrupt_main_while_polling_in_process(ns, stream):
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    timer = threading.Timer(0.2, _thread.interrupt_main)  # needs the GIL to run at all
    timer.start()
    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        c.poll()
    assert time.monotonic() - t < 1.0
    timer.join()
    c.close()


def test_other_threads_run_while_one_blocks(ns, stream):
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    got = []
    reader = threading.Thread(target=lambda: got.append(c.poll(timeout=10)))
    reader.start()
    # this thread keeps running Python while the reader waits in poll()
    n, end = 0, time.monotonic() + 0.3
    while time.monotonic() < end:
        n += 1
    assert n > 10_000 and reader.is_alive()
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish(b"wake up")
    reader.join(5)
    assert got and got[0].bytes() == b"wake up"
    c.close()


def test_close_from_another_thread_ends_iteration_and_poll(ns, stream):
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    seen, errors = [], []

    def iterate():
        for rec in c:  # waits forever
            seen.append(rec.seq)

    def poll():
        try:
            c.poll()
        except shmbus.ClosedError as e:
            errors.append(e)

    threads = [threading.Thread(target=iterate), threading.Thread(target=poll)]
    threads[0].start()
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish(b"one")
    # The iterator has the record before poll() waits too (started together, either
    # could take it: a static review of flaky tests).
    deadline = time.monotonic() + 10
    while seen != [0] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [0]
    threads[1].start()
    time.sleep(0.3)
    t0 = time.monotonic()
    c.close()
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    assert time.monotonic() - t0 < 1
    assert seen == [0] and len(errors) == 1
    # the group was committed at close and is free again
    with shmbus.Consumer(stream, group="g", namespace=ns) as c2:
        assert c2.next_seq == 1


def _fill(ns, stream):
    with shmbus.Producer(stream, namespace=ns, when_full="fail") as filler:
        for payload in (b"x" * 1000, b""):
            try:
                while True:
                    filler.publish(payload)
            except shmbus.FullError:
                pass


def _start(fn):
    """Runs fn in a thread: its result, or the ClosedError it raised, lands in the list."""
    out = []

    def run():
        try:
            out.append(fn())
        except shmbus.ClosedError as e:
            out.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t, out


@pytest.mark.parametrize("call", ["publish", "publish_batch", "claim"])
def test_close_from_another_thread_ends_a_producer_call_waiting_for_room(ns, call):
    """close() while another thread waits for room: ClosedError there (the C++ producer
    and its mutex were once destroyed under the waiting call: a segfault)."""
    shmbus.create("s", capacity="64K", namespace=ns)
    stuck = shmbus.Consumer("s", group="stuck", namespace=ns)  # never reads: the ring fills
    p = shmbus.Producer("s", namespace=ns, full_timeout=None)
    _fill(ns, "s")
    t, out = _start({"publish": lambda: p.publish(b"x" * 100),
                     "publish_batch": lambda: p.publish_batch([b"x" * 100]),
                     "claim": lambda: p.claim(100)}[call])
    time.sleep(0.3)
    p.close()
    t.join(5)
    assert not t.is_alive() and len(out) == 1 and isinstance(out[0], shmbus.ClosedError), out
    assert p.closed
    p.close()  # idempotent
    stuck.close()


@pytest.mark.parametrize("other", ["close", "abort"])
def test_a_claim_finished_by_two_threads_at_once_is_finished_once(ns, other):
    """Claim.commit() in one thread and the producer's close() (or the claim's abort()) in
    another, while a third thread's publish holds the producer's mutex: both wait for it
    without the GIL.  One finishes the claim, the other raises ClosedError (both once
    finished the same claim: a segfault)."""
    shmbus.create("s", capacity="64K", namespace=ns)
    stuck = shmbus.Consumer("s", group="g", namespace=ns)  # never reads: the ring fills
    p = shmbus.Producer("s", namespace=ns, full_timeout=2.0)
    claim = p.claim(8)
    _fill(ns, "s")
    results = {}

    def run(name, fn):
        try:
            results[name] = fn()
        except (shmbus.ClosedError, shmbus.FullError) as e:
            results[name] = type(e).__name__

    waiter = threading.Thread(target=run, args=("publish", lambda: p.publish(b"y")))
    waiter.start()
    time.sleep(0.05)
    committer = threading.Thread(target=run, args=("commit", claim.commit))
    committer.start()
    time.sleep(0.05)
    run(other, p.close if other == "close" else claim.abort)
    waiter.join(10)
    committer.join(10)
    assert not waiter.is_alive() and not committer.is_alive()
    assert claim.done
    if other == "close":  # never raises; the commit won (seq 0) or found it aborted
        assert results["close"] is None and results["commit"] in (0, "ClosedError"), results
    else:  # exactly one of the two finished it
        assert sorted(map(str, [results["abort"], results["commit"]])) in (
            ["0", "ClosedError"], ["ClosedError", "None"]), results
    p.close()
    stuck.close()


def test_a_claim_that_came_after_close_is_not_left_open(ns):
    """claim() waiting for room when another thread closes the producer, and room comes
    at once: ClosedError, not a claim left open in the ring (readers would wait behind
    it for the abandon timeout)."""
    shmbus.create("s", capacity="64K", namespace=ns)
    c = shmbus.Consumer("s", group="g", namespace=ns)
    p = shmbus.Producer("s", namespace=ns, full_timeout=None)
    _fill(ns, "s")
    t, out = _start(lambda: p.claim(100))
    time.sleep(0.2)
    p.close()
    c.read_batch(10000, timeout=0)  # room, at once
    c.commit()
    t.join(5)
    assert not t.is_alive() and len(out) == 1 and isinstance(out[0], shmbus.ClosedError), out
    c.close()


def test_producer_waiting_for_room_lets_a_consumer_thread_make_it(ns):
    shmbus.create("s", capacity="4K", namespace=ns)
    c = shmbus.Consumer("s", group="g", namespace=ns)
    p = shmbus.Producer("s", namespace=ns, full_timeout=20)
    n = 200  # far more than 4K holds: every publish past ~30 waits for the reader
    done = threading.Event()
    got = []

    def read():
        time.sleep(0.3)  # the producer fills the ring and waits meanwhile
        while len(got) < n:
            r = c.poll(timeout=5)
            if r is None:
                break
            got.append(r.bytes())
        done.set()

    t = threading.Thread(target=read)
    t.start()
    for i in range(n):
        p.publish(b"%100d" % i)
    t.join(20)
    assert done.is_set() and len(got) == n and got[-1] == b"%100d" % (n - 1)
    assert shmbus.stat("s", namespace=ns)["producer_waits"] > 0
    p.close()
    c.close()


def test_threads_sharing_one_producer_and_one_consumer(ns):
    shmbus.create("s", capacity="1M", namespace=ns)
    p = shmbus.Producer("s", namespace=ns)
    c = shmbus.Consumer("s", group="g", namespace=ns, copy=True)
    per_thread, nthreads = 5000, 4
    seqs = [[] for _ in range(nthreads)]

    def publish(k):
        for i in range(per_thread):
            seqs[k].append(p.publish(b"%d:%d" % (k, i)))

    got = [[] for _ in range(2)]

    def consume(k):
        while True:
            r = c.poll(timeout=1)
            if r is None:
                return
            got[k].append((r.seq, r.bytes()))

    threads = [threading.Thread(target=publish, args=(k,)) for k in range(nthreads)]
    threads += [threading.Thread(target=consume, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    all_seqs = sorted(s for lst in seqs for s in lst)
    assert all_seqs == list(range(nthreads * per_thread))
    for lst in seqs:
        assert lst == sorted(lst)  # each thread's records keep their order
    records = sorted(got[0] + got[1])
    assert [s for s, _ in records] == all_seqs  # each record delivered exactly once
    p.close()
    c.close()


def test_a_commit_waiting_for_another_threads_poll_expires_what_that_poll_returned(ns):
    """Thread B waits in poll(); thread A's commit() waits for B's hold of the consumer;
    B returns a record meanwhile, which A's commit covers: its view must die with the
    commit, not show the bytes producers later put there (a review: 28 of 30 runs)."""
    import struct
    import time

    def pay(i):
        return struct.pack("<Q", i) * 8

    torn = []
    for _ in range(5):
        name = "race"
        shmbus.create(name, "4K", max_record=64, namespace=ns)
        p = shmbus.Producer(name, when_full="fail", namespace=ns)
        c = shmbus.Consumer(name, group="g", start="earliest", auto_commit=False, namespace=ns)
        p.publish(pay(0))
        assert c.poll(0).seq == 0  # returned, not committed
        got = {}
        b = threading.Thread(target=lambda: got.setdefault("rec", c.poll(timeout=5)))
        b.start()
        time.sleep(0.1)
        a = threading.Thread(target=c.commit)
        a.start()
        time.sleep(0.001)
        p.publish(pay(1))
        b.join()
        a.join()
        rec = got["rec"]
        while True:  # fill what the commit freed
            try:
                p.publish(pay(7))
            except shmbus.FullError:
                break
        if not rec.expired and rec.bytes() != pay(1):
            torn.append(rec.seq)
        p.close()
        c.close()
        del rec, got
        shmbus.remove(name, namespace=ns, force=True)
    assert torn == []
