"""Consumer.iter_batches() and read_batch(): many records per call into C++; and the
iterator of iter() (a plain CPython type: one C call per step)."""

import gc
import subprocess
import sys
import threading
import time
import weakref

import pytest

import shmbus


def fill(ns, stream, n, size=8):
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([i.to_bytes(size, "little") for i in range(n)], type=3)


def test_iter_batches_delivers_every_record_in_order(ns, stream):
    fill(ns, stream, 1000)
    with shmbus.Consumer(stream, group="g", start="earliest", namespace=ns) as c:
        sizes, got = [], []
        for batch in c.iter_batches(64, idle_timeout=0):
            assert isinstance(batch, list) and all(isinstance(r, shmbus.Record) for r in batch)
            sizes.append(len(batch))
            got += [(r.seq, r.type, int.from_bytes(r.data, "little")) for r in batch]
        assert got == [(i, 3, i) for i in range(1000)]
        assert max(sizes) == 64 and sum(sizes) == 1000
        assert c.next_seq == 1000


def test_iter_batches_max_records_and_idle_timeout(ns, stream):
    fill(ns, stream, 100)
    with shmbus.Consumer(stream, group="g", start="earliest", namespace=ns) as c:
        batches = [[r.seq for r in b] for b in c.iter_batches(30, idle_timeout=0, max_records=70)]
        assert batches == [list(range(0, 30)), list(range(30, 60)), list(range(60, 70))]
        assert list(c.iter_batches(max_records=0)) == []
        t0 = time.monotonic()
        rest = [r.seq for b in c.iter_batches(idle_timeout=0.2) for r in b]
        assert rest == list(range(70, 100))
        assert list(c.iter_batches(idle_timeout=0.05)) == []  # nothing comes: ends
        assert time.monotonic() - t0 < 30


def test_a_batch_is_valid_until_the_next_step_then_committed(ns, stream):
    """Durable records of a list are ring views valid until the next step, which commits
    the whole list (auto_commit): a group's next reader starts after the last list taken."""
    fill(ns, stream, 10)
    with shmbus.Consumer(stream, group="g", start="earliest", namespace=ns) as c:
        it = c.iter_batches(4, idle_timeout=0)
        first = next(it)
        view = first[0].data
        assert [r.expired for r in first] == [False] * 4
        assert int.from_bytes(view, "little") == 0
        del view  # a memoryview keeps the consumer attached after close()
        second = next(it)
        assert [r.seq for r in second] == [4, 5, 6, 7]
        assert all(r.expired for r in first) and not any(r.expired for r in second)
        with pytest.raises(ValueError):
            first[1].bytes()
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:  # close() committed 4..7
        assert [r.seq for r in c.read_batch(10, timeout=0)] == [8, 9]


def test_without_auto_commit_nothing_is_committed(ns, stream):
    fill(ns, stream, 10)
    with shmbus.Consumer(stream, group="g", start="earliest", namespace=ns, auto_commit=False) as c:
        assert [len(b) for b in c.iter_batches(4, idle_timeout=0)] == [4, 4, 2]
    with shmbus.Consumer(stream, group="g", namespace=ns, auto_commit=False) as c:
        assert [r.seq for b in c.iter_batches(100, idle_timeout=0) for r in b] == list(range(10))
        c.commit()
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert c.poll(0) is None


def test_read_batch_takes_what_is_there_in_one_call(ns, stream):
    fill(ns, stream, 300)
    with shmbus.Consumer(stream, group="g", start="earliest", namespace=ns) as c:
        a = c.read_batch(200, timeout=0)
        assert [r.seq for r in a] == list(range(200))
        b = c.read_batch(200, timeout=0)
        assert [r.seq for r in b] == list(range(200, 300))
        assert all(r.expired for r in a) and not b[0].expired
        assert c.read_batch(200, timeout=0) == []


def test_tailing_batches_are_copies(ns, stream):
    fill(ns, stream, 50)
    with shmbus.Consumer(stream, start="earliest", namespace=ns) as c:
        batches = list(c.iter_batches(20, idle_timeout=0))
        assert [len(b) for b in batches] == [20, 20, 10]
        # copies: every record is still readable after the iteration moved on
        assert [int.from_bytes(r.bytes(), "little") for b in batches for r in b] == list(range(50))
        assert not any(r.expired for b in batches for r in b)


def test_iter_batches_waits_for_records_published_later(ns, stream):
    with shmbus.Consumer(stream, group="g", start="earliest", namespace=ns) as c:
        def later():
            time.sleep(0.2)
            fill(ns, stream, 5)

        t = threading.Thread(target=later)
        t.start()
        try:
            got = [r.seq for b in c.iter_batches(idle_timeout=30, max_records=5) for r in b]
        finally:
            t.join()
        assert got == [0, 1, 2, 3, 4]


def test_close_from_another_thread_ends_iter_batches(ns, stream):
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    out = []

    def run():
        out.extend(list(c.iter_batches()))  # waits forever: ends only with close()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.2)
    c.close()
    t.join(30)
    assert not t.is_alive() and out == []
    with pytest.raises(shmbus.ClosedError):
        c.iter_batches()


def test_lapped_tailing_reader_raises_at_the_step(ns):
    shmbus.create("s4", capacity="4K", namespace=ns)
    with shmbus.Producer("s4", namespace=ns) as p:
        c = shmbus.Consumer("s4", start="earliest", raise_on_lap=True, namespace=ns)
        it = c.iter_batches(2, idle_timeout=0)
        p.publish_batch([b"a", b"b", b"c"])
        assert [r.bytes() for r in next(it)] == [b"a", b"b"]
        for i in range(200):  # ~25 KB through a 4K ring: the reader is overrun
            p.publish(b"%100d" % i)
        with pytest.raises(shmbus.LappedError) as e:
            next(it)
        assert e.value.lost > 0
        rest = [r.bytes() for b in c.iter_batches(idle_timeout=0) for r in b]
        assert rest[-1] == b"%100d" % 199
        c.close()


def test_bad_arguments(ns, stream):
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        with pytest.raises(shmbus.InvalidArgumentError, match="max_batch"):
            c.iter_batches(0)
        with pytest.raises(shmbus.InvalidArgumentError, match="max_batch"):
            c.iter_batches(-5)
        with pytest.raises(TypeError):
            c.iter_batches("10")
        with pytest.raises(shmbus.InvalidArgumentError):
            c.iter_batches(idle_timeout=-1)
        with pytest.raises(TypeError):
            c.iter_batches(idle_timeout="1")
        with pytest.raises(shmbus.InvalidArgumentError, match="max_records"):
            c.iter_batches(max_records=-1)
        with pytest.raises(TypeError, match="max_records"):
            c.iter_batches(max_records=True)
        with pytest.raises(TypeError, match="max_records"):
            c.iter_batches(max_records=1.5)
        with pytest.raises(shmbus.InvalidArgumentError):
            c.read_batch(0)
        with pytest.raises(TypeError):
            c.read_batch("1")
        # Counts of any size: no cap to know (above 2**63 - 1 pybind11's int64_t caster
        # raised "incompatible function arguments"); bools and floats are no counts.
        assert c.read_batch(2**70, 0) == []
        assert list(c.iter_batches(max_batch=2**70, idle_timeout=0)) == []
        with pytest.raises(shmbus.InvalidArgumentError, match="max_batch must be >= 1"):
            c.iter_batches(max_batch=-2**70)
        for bad in (True, 1.5, None):
            with pytest.raises(TypeError, match="max_records must be an int"):
                c.read_batch(bad)
            with pytest.raises(TypeError, match="max_batch must be an int"):
                c.iter_batches(max_batch=bad)
    with pytest.raises(shmbus.ClosedError):
        c.iter_batches()
    with pytest.raises(shmbus.ClosedError):
        c.read_batch()


def test_an_iterator_made_before_close_ends(ns, stream):
    fill(ns, stream, 5)
    c = shmbus.Consumer(stream, group="g", start="earliest", namespace=ns)
    it = c.iter_batches(idle_timeout=0)
    c.close()
    assert list(it) == []


def test_iter_steps_are_records_and_errors_propagate(ns):
    shmbus.create("s4", capacity="4K", namespace=ns)
    with shmbus.Producer("s4", namespace=ns) as p:
        c = shmbus.Consumer("s4", start="earliest", raise_on_lap=True, namespace=ns)
        it = c.iter(idle_timeout=0)
        assert iter(it) is it and isinstance(it, shmbus.ConsumerIterator)
        p.publish_batch([b"a", b"b"])
        assert [r.bytes() for r in it] == [b"a", b"b"]
        assert next(it, None) is None  # ended: stays ended while nothing comes
        for i in range(200):  # the reader is overrun
            p.publish(b"%100d" % i)
        with pytest.raises(shmbus.LappedError):
            next(c.iter(idle_timeout=0))
        with pytest.raises(shmbus.InvalidArgumentError):
            c.iter(max_records=-1)
        c.close()
        with pytest.raises(shmbus.ClosedError):
            c.iter()
    with pytest.raises(TypeError):
        shmbus.ConsumerIterator()


def test_an_iterator_keeps_its_consumer_and_a_cycle_is_collected(ns, stream):
    fill(ns, stream, 6)
    it = shmbus.Consumer(stream, group="g", start="earliest", namespace=ns).iter(idle_timeout=0)
    assert [next(it).seq for _ in range(3)] == [0, 1, 2]  # the iterator holds the consumer
    del it  # the consumer goes with it: closed, which commits what was returned
    gc.collect()
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    c.it = c.iter(idle_timeout=0)  # a cycle: consumer -> iterator -> consumer
    assert next(c.it).seq == 3
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None  # the GC saw the cycle through the iterator and freed both
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert [r.seq for r in c.iter(idle_timeout=0)] == [4, 5]
    # The same through iter_batches() (its iterator was not GC-tracked: the cycle was never
    # collected, and the group stayed held: BusyError below).
    fill(ns, stream, 2)
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    c.batches = c.iter_batches(idle_timeout=0, max_batch=1)
    assert [r.seq for r in next(c.batches)] == [6]
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert [r.seq for r in c.iter(idle_timeout=0)] == [7]


@pytest.mark.parametrize("case", ["collection_in_teardown", "collection_in_consumer_teardown",
                                  "unconstructed", "subclass"])
def test_the_batch_iterator_survives_the_collector(ns, stream, case):
    """The GC-tracked BatchIterator and Consumer (dynamic_attr), reviewed: a collection
    started while one was being freed (a finalizer in the Consumer's __dict__) freed it
    a second time: the type's reference count fell by one per Consumer until an abort
    (pybind11 2.10 leaves a dying instance tracked); the collector traversing an
    instance whose C++ object was never built (made by __new__) read a garbage pointer (a
    segfault).  In a child: a crash fails the test."""
    teardown = """
class Meta:
    def __del__(self):
        self.log = [[j] for j in range(1000)]
        gc.collect()
C = shmbus.Consumer
before = sys.getrefcount(C)
for i in range(300):
    c = shmbus.Consumer(STREAM, group="g", namespace=NS)
    c.meta = Meta()
    it = ITERATOR
    del c
    del it
assert sys.getrefcount(C) == before, (before, sys.getrefcount(C))
"""
    script = {
        "collection_in_teardown": teardown.replace("ITERATOR", "c.iter_batches(idle_timeout=0.01)"),
        "collection_in_consumer_teardown": teardown.replace("ITERATOR", "None"),
        "unconstructed": """
B = shmbus.BatchIterator
x = B.__new__(B)
gc.get_referents(x)
gc.collect()
with pytest.raises(Exception):
    next(x)
""",
        "subclass": """
class S(shmbus.BatchIterator):
    pass
y = S.__new__(S)
y.self = y
del y
gc.collect()
""",
    }[case]
    prelude = "import gc, sys, pytest, shmbus\nSTREAM, NS = %r, %r\n" % (stream, ns)
    r = subprocess.run([sys.executable, "-c", prelude + script], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
