"""Every publish and read API, start positions, commit modes, and their errors."""

import array
import datetime
import gc
import os
import time

import numpy as np
import pytest

import shmbus


def drain(c, **kw):
    return [(r.seq, r.type, r.bytes()) for r in c.iter(idle_timeout=0, **kw)]


def test_publish_any_buffer(ns, stream):
    payloads = [b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview"),
                np.arange(3, dtype="<u2"), array.array("B", [1, 2, 3]), b""]
    with shmbus.Producer(stream, namespace=ns) as p:
        seqs = [p.publish(x, type=i) for i, x in enumerate(payloads)]
    assert seqs == list(range(6))
    with shmbus.Consumer(stream, start="earliest", namespace=ns) as c:
        got = drain(c)
    assert got == [(i, i, bytes(memoryview(x).cast("B"))) for i, x in enumerate(payloads)]


def test_publish_batch_and_claim(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        assert p.publish_batch([b"a", b"bb", b"ccc"], type=3) == 0
        assert p.publish_batch((x for x in [b"d"])) == 3
        assert p.publish_batch(np.zeros((2, 4), dtype="u1")) == 4  # rows
        assert p.publish_batch([]) == 6  # nothing published: the next sequence
        with p.claim(5, type=9) as claim:
            assert isinstance(claim, shmbus.Claim) and claim.seq == 6 and len(claim) == 5
            buf = claim.data
            assert isinstance(buf, memoryview) and not buf.readonly and len(buf) == 5
            buf[:] = b"hello"
        cl = p.claim(3)
        cl.data[:] = b"xyz"
        assert cl.commit() == 7 and cl.done
        with pytest.raises(shmbus.ClosedError):
            cl.commit()
        with pytest.raises(shmbus.ClosedError):
            cl.data
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        got = drain(c)
    assert got == [(0, 3, b"a"), (1, 3, b"bb"), (2, 3, b"ccc"), (3, 0, b"d"),
                   (4, 0, b"\0" * 4), (5, 0, b"\0" * 4), (6, 9, b"hello"), (7, 0, b"xyz")]


def test_claim_aborts_when_the_block_raises(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        with pytest.raises(RuntimeError):
            with p.claim(4) as claim:
                claim.data[:] = b"nope"
                raise RuntimeError("boom")
        assert claim.done
        cl = p.claim(2)
        cl.abort()
        with pytest.raises(shmbus.ClosedError):
            cl.abort()
        p.publish(b"ok")
        with p.claim(1) as claim:
            buf = claim.data
            buf[0] = 0
            obj = buf.obj
        with pytest.raises(ValueError, match="committed or aborted"):
            memoryview(obj)  # the claim's buffer refuses new exports once done
        with pytest.raises(ValueError, match="released"):
            buf[0] = 1  # and its memoryview was released
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        got = drain(c)
    assert got == [(2, 0, b"ok"), (3, 0, b"\0")]
    st = shmbus.stat(stream, namespace=ns)
    assert st["aborted"] == 2


def test_claim_block_gives_the_claim(ns, stream):
    """`with producer.claim(n) as claim` gives the claim: data, seq, commit(n), abort();
    the block's end commits what is still open, an exception aborts it."""
    with shmbus.Producer(stream, namespace=ns) as p:
        with p.claim(8, type=5) as claim:
            assert isinstance(claim, shmbus.Claim) and not claim.done
            assert claim.seq == 0 and claim.size == 8
            claim.data[:3] = b"abc"
            assert claim.commit(3) == 0  # committed inside: the end of the block leaves it
        assert claim.done
        with p.claim(4) as claim:
            claim.data[:] = b"gone"
            claim.abort()  # aborted inside: a gap, not committed at the end
        with p.claim(2) as claim:
            claim.data[:] = b"ok"  # committed (both bytes) when the block ends
        assert claim.done and claim.seq == 2
        with pytest.raises(KeyError):
            with p.claim(2) as claim:
                claim.data[:] = b"no"
                raise KeyError("x")
        assert claim.done
        with pytest.raises(shmbus.ClosedError):
            with claim:  # a finished claim is not entered again
                pass
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        got = drain(c)
    assert got == [(0, 5, b"abc"), (2, 0, b"ok")]
    assert shmbus.stat(stream, namespace=ns)["aborted"] == 2


def test_claim_indexing_is_the_deprecated_spelling(ns, stream):
    """Up to 0.1 the block gave the memoryview: indexing the claim still writes the record,
    with a DeprecationWarning."""
    with shmbus.Producer(stream, namespace=ns) as p:
        with p.claim(4, type=1) as buf:
            with pytest.warns(DeprecationWarning, match="claim.data"):
                buf[:] = b"old!"
            with pytest.warns(DeprecationWarning):
                assert buf[1] == ord("l")
            assert len(buf) == 4
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert drain(c) == [(0, 1, b"old!")]


def test_producer_close_aborts_open_claims(ns, stream):
    p = shmbus.Producer(stream, namespace=ns)
    cl = p.claim(8)
    p.close()
    assert p.closed
    with pytest.raises(shmbus.ClosedError, match="aborted"):
        cl.commit()
    assert shmbus.stat(stream, namespace=ns)["aborted"] == 1


def test_closed_handles_raise(ns, stream):
    p = shmbus.Producer(stream, namespace=ns)
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    p.close()
    p.close()  # idempotent
    c.close()
    c.close()
    for call in (lambda: p.publish(b"x"), lambda: p.publish_batch([b"x"]), lambda: p.claim(1),
                 lambda: p.max_record, lambda: c.poll(0), lambda: c.read_batch(), lambda: c.commit(),
                 lambda: c.iter(), lambda: iter(c), lambda: c.next_seq):
        with pytest.raises(shmbus.ClosedError):
            call()
    with pytest.raises(shmbus.ClosedError):
        with p:
            pass
    assert "closed" in repr(p) and "closed" in repr(c)


def test_publish_takes_its_arguments_as_any_python_method(ns, stream):
    """publish() is bound without pybind11's dispatcher: its argument handling is its own."""

    class Seven:
        def __index__(self):
            return 7

    class MyProducer(shmbus.Producer):
        pass

    with shmbus.Producer(stream, namespace=ns) as p, \
            shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert p.publish(b"a") == 0
        assert p.publish(b"b", 3) == 1
        assert p.publish(data=b"c", type=4) == 2
        assert p.publish(b"d", type=Seven()) == 3
        assert p.publish(memoryview(b"e"), type=True) == 4  # numbers convert as pybind11 does:
        assert p.publish(b"e2", type=np.float32(5.5)) == 5  # int() of a number, not a float
        assert p.publish(b"e3", np.uint64(6)) == 6
        assert shmbus.Producer.publish(p, b"f", 0xFFFFFFFF) == 7
        assert drain(c) == [(0, 0, b"a"), (1, 3, b"b"), (2, 4, b"c"), (3, 7, b"d"), (4, 1, b"e"),
                            (5, 5, b"e2"), (6, 6, b"e3"), (7, 0xFFFFFFFF, b"f")]
        bad = [lambda: p.publish(), lambda: p.publish(type=1), lambda: p.publish(b"x", 1, 2),
               lambda: p.publish(b"x", kind=1), lambda: p.publish(b"x", data=b"y"),
               lambda: p.publish(b"x", type=1.0),
               lambda: p.publish(b"x", type=None), lambda: p.publish_batch([b"x"], type="1"),
               lambda: p.claim(1, type=None), lambda: shmbus.Producer.publish(object(), b"x"),
               lambda: shmbus.Producer.publish(MyProducer.__new__(MyProducer), b"x")]
        for call in bad:
            with pytest.raises(TypeError):
                call()
        # An int out of range is a bad value, in every call that takes a type (publish()
        # raised TypeError, publish_batch() pybind11's "incompatible function arguments").
        out_of_range = [lambda: p.publish(b"x", type=2**32), lambda: p.publish(b"x", type=np.int64(-1)),
                        lambda: p.publish_batch([b"x"], type=-1), lambda: p.publish_batch([b"x"], 2**32),
                        lambda: p.publish_durable(b"x", type=-1, timeout=0), lambda: p.claim(1, type=2**40)]
        for call in out_of_range:
            with pytest.raises(shmbus.InvalidArgumentError, match=r"\(\): type must be in 0..4294967295"):
                call()
        # A number's own error from __index__ comes out as it is, not as a range message.
        class Raises:
            def __init__(self, error):
                self.error = error

            def __index__(self):
                raise self.error
        for error in (RuntimeError("index broke"), ValueError("index broke"), TypeError("index broke")):
            for call in (lambda: p.publish(b"x", type=Raises(error)),
                         lambda: p.publish_batch([b"x"], Raises(error))):
                with pytest.raises(type(error), match="index broke"):
                    call()
        assert p.publish(b"g") == 8, "a refused call published nothing"
        with pytest.raises(shmbus.InvalidArgumentError, match="must be in 0..4294967295"):
            p.publish(b"x", type=10**5000)  # its repr fails: the message does not use it
        assert p.publish.__doc__.startswith("publish(self: ")
    with MyProducer(stream, namespace=ns) as mine:
        assert mine.publish(b"h", type=2) == 9


def test_poll_takes_its_arguments_as_any_python_method(ns, stream):
    """Consumer.poll is bound without pybind11's dispatcher too (shmbus/_aio.py wraps it)."""
    from shmbus import _aio

    raw = _aio._orig["poll"]
    with shmbus.Producer(stream, namespace=ns) as p, \
            shmbus.Consumer(stream, group="g", namespace=ns) as c:
        for i in range(4):
            p.publish(b"%d" % i)
        assert raw(c).bytes() == b"0"
        assert raw(c, 0).bytes() == b"1"
        assert raw(c, timeout=0.5).bytes() == b"2"
        assert raw(c, None).bytes() == b"3"
        assert raw(c, 0) is None and c.poll(0.01) is None
        for call in (lambda: raw(c, 0, 1), lambda: raw(c, tmo=0), lambda: raw(c, 0, timeout=0),
                     lambda: raw(c, "soon"), lambda: raw(object())):
            with pytest.raises(TypeError):
                call()
        with pytest.raises(shmbus.InvalidArgumentError):
            raw(c, -1)
        assert raw.__doc__.startswith("poll(self: ")
    with pytest.raises(shmbus.ClosedError):
        raw(c, 0)


def test_too_large_and_wrong_types(ns):
    shmbus.create("s", capacity="64K", max_record=1000, namespace=ns)
    with shmbus.Producer("s", namespace=ns) as p:
        assert p.max_record == 1000 and p.capacity == 65536
        p.publish(b"x" * 1000)
        with pytest.raises(shmbus.RecordTooLargeError) as e:
            p.publish(b"x" * 1001)
        assert isinstance(e.value, ValueError) and "1001" in str(e.value)
        with pytest.raises(ValueError):
            p.claim(1001)
        with pytest.raises(ValueError):
            p.publish_batch([b"a", b"x" * 1001])
        with pytest.raises(ValueError, match="half the ring"):
            p.publish_batch([b"x" * 1000] * 40)
        for bad in ("text", 42, None, [b"a"]):
            with pytest.raises(TypeError):
                p.publish(bad)
        for bad in (b"abc", "abc", 5, [1, 2], [b"a", "b"]):
            with pytest.raises(TypeError):
                p.publish_batch(bad)
        with pytest.raises(shmbus.InvalidArgumentError):  # a ValueError: the value, not the type
            p.publish(b"x", type=-1)
        with pytest.raises(TypeError):
            p.publish(b"x", type="7")
        with pytest.raises(TypeError):
            p.claim("10")
        with pytest.raises(ValueError):
            p.claim(-1)
        with pytest.raises(TypeError):
            p.claim(1.0)
        # Too large for the stream, however large (2**70 was pybind11's generic TypeError).
        for huge in (1001, 2**64 - 1):
            with pytest.raises(shmbus.RecordTooLargeError, match=f"record of {huge} bytes"):
                p.claim(huge)
        for huge in (2**64, 2**70, 10**5000):  # (10**5000 has no str() in Python 3.11)
            with pytest.raises(shmbus.RecordTooLargeError, match=r"record of more than 2\*\*64 - 1 bytes"):
                p.claim(huge)
        with pytest.raises((BufferError, ValueError)):  # not C-contiguous (numpy: ValueError)
            p.publish(np.zeros((4, 4))[:, 1])
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Producer("s", namespace=ns, when_full="maybe")
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Producer("s", namespace=ns, wait="sleepy")
    with pytest.raises(TypeError):
        shmbus.Producer("s", "positional-namespace")


def test_full_fail_and_timeout(ns):
    shmbus.create("s", capacity="4K", namespace=ns)
    with shmbus.Consumer("s", group="slow", namespace=ns):  # holds producers back
        with shmbus.Producer("s", namespace=ns, when_full="fail") as p:
            with pytest.raises(shmbus.FullError):
                for _ in range(1000):
                    p.publish(b"x" * 100)
        with shmbus.Producer("s", namespace=ns, full_timeout=0.2) as p:
            t = time.monotonic()
            with pytest.raises(shmbus.FullError):
                p.publish(b"x" * 100)
            assert 0.15 < time.monotonic() - t < 2
        with shmbus.Producer("s", namespace=ns, full_timeout=0.6) as p:  # 3 slices of 0.2 s
            t = time.monotonic()
            with pytest.raises(shmbus.FullError):
                p.publish_batch([b"x" * 100] * 3)
            assert 0.55 < time.monotonic() - t < 5


def test_start_positions(ns, stream):
    p = shmbus.Producer(stream, namespace=ns)
    for i in range(5):
        p.publish(b"%d" % i)
    time.sleep(0.01)
    middle = datetime.datetime.now()  # naive: local time
    middle_utc = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.01)
    for i in range(5, 10):
        p.publish(b"%d" % i)

    def seqs(**kw):
        with shmbus.Consumer(stream, namespace=ns, **kw) as c:
            return [r.seq for r in c.iter(idle_timeout=0)]

    assert seqs() == list(range(10))
    assert seqs(start="earliest") == list(range(10))
    assert seqs(start="latest") == []
    assert seqs(start=7) == [7, 8, 9]
    assert seqs(start="7") == [7, 8, 9]
    assert seqs(start=middle) == [5, 6, 7, 8, 9]
    assert seqs(start=middle_utc) == [5, 6, 7, 8, 9]
    assert seqs(start=middle_utc.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))) == [5, 6, 7, 8, 9]
    ns_epoch = int(middle_utc.timestamp() * 1e9)
    assert seqs(start=f"@{ns_epoch}") == [5, 6, 7, 8, 9]
    assert seqs(start=100) == []
    with shmbus.Consumer(stream, namespace=ns, start="latest") as c:
        assert c.poll(0) is None
        p.publish(b"new")
        assert c.poll(1).bytes() == b"new"
    for bad in ("soon", -1, datetime.datetime(1960, 1, 1, tzinfo=datetime.timezone.utc)):
        with pytest.raises(ValueError):
            shmbus.Consumer(stream, namespace=ns, start=bad)
    for bad in (1.5, True, datetime.date.today(), b"earliest"):
        with pytest.raises(TypeError):
            shmbus.Consumer(stream, namespace=ns, start=bad)
    p.close()


def test_a_with_block_that_raises_leaves_the_record_it_failed_on_to_the_group(ns, stream):
    # at least once: the record being processed when the body raised comes again (its
    # close committed it: a review); the ones before it, processed, do not.
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"%d" % i for i in range(10)])

    class Failed(Exception):
        pass

    with pytest.raises(Failed):
        with shmbus.Consumer(stream, group="g", namespace=ns) as c:
            for rec in c:
                if rec.seq == 3:
                    raise Failed()
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert c.poll(0).seq == 3
    # The same for a batch (the list being processed) and for asyncio's wrapper.
    with pytest.raises(Failed):
        with shmbus.Consumer(stream, group="g", namespace=ns) as c:
            for batch in c.iter_batches(max_batch=3, idle_timeout=0):
                if batch[0].seq >= 7:
                    raise Failed()
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert c.poll(0).seq == 7
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    assert c.poll(0).seq == 8
    c.close(commit=False)
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert c.poll(0).seq == 8
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:  # a clean exit commits
        assert c.poll(0).seq == 9
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"%d" % i for i in range(10, 20)])

    # A generator's caller that stops it (GeneratorExit) ended normally: committed.
    def seqs():
        with shmbus.Consumer(stream, group="g", namespace=ns) as c:
            for rec in c:
                yield rec.seq

    for seq in seqs():
        if seq == 11:
            break
    # Never closed: its teardown commits as close() does (a script that takes one record
    # a run and exits must not read the same one again: review 4).
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    assert c.poll(0).seq == 12
    del c
    gc.collect()
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert c.poll(0).seq == 13


def test_durable_group_resumes_after_commit(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"%d" % i for i in range(10)])
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert c.group == "g" and c.durable
        assert [r.seq for r in c.read_batch(4, timeout=0)] == [0, 1, 2, 3]
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:  # auto-committed at close
        assert c.next_seq == 4
        assert c.poll(0).seq == 4
        # start= "committed" is the default for a group; explicit works too
    with shmbus.Consumer(stream, group="g", start="committed", namespace=ns) as c:
        assert c.poll(0).seq == 5
    # manual commits: what was not committed is delivered again
    with shmbus.Consumer(stream, group="g", auto_commit=False, namespace=ns) as c:
        assert [r.seq for r in c.read_batch(2, timeout=0)] == [6, 7]
        c.commit()
        assert c.poll(0).seq == 8
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert [r.seq for r in c.iter(idle_timeout=0)] == [8, 9]
    # a second live holder of the group is refused
    with shmbus.Consumer(stream, group="g", namespace=ns):
        with pytest.raises(shmbus.BusyError):
            shmbus.Consumer(stream, group="g", namespace=ns)
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Consumer(stream, group="", namespace=ns)
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Consumer(stream, group="g", read_only=True, namespace=ns)


def test_tailing_consumer_records_are_copies(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p, \
            shmbus.Consumer(stream, start="earliest", read_only=True, namespace=ns) as c:
        assert c.group is None and not c.durable
        p.publish_batch([b"one", b"two"])
        batch = c.read_batch(10, timeout=1)
        c.commit()  # no-op for tailing readers
        assert c.poll(0) is None
        assert [r.bytes() for r in batch] == [b"one", b"two"]
        assert not batch[0].expired and bytes(batch[0].data) == b"one"


def test_records_and_batches(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p, \
            shmbus.Consumer(stream, group="g", namespace=ns) as c:
        before = time.time_ns()
        p.publish(b"abc", type=0xFFFFFFFF)
        r = c.poll(1)
        assert isinstance(r, shmbus.Record)
        assert (r.seq, r.type, len(r), r.bytes(), bytes(r)) == (0, 0xFFFFFFFF, 3, b"abc", b"abc")
        assert before - 10**9 < r.timestamp_ns <= time.time_ns()
        assert r.data.readonly and r.data.tobytes() == b"abc"
        assert "seq=0" in repr(r)
        with pytest.raises(TypeError):
            shmbus.Record()
        with pytest.raises((TypeError, BufferError)):
            r.data[0] = 1
        p.publish_batch([b"%d" % i for i in range(5)])
        assert [x.seq for x in c.read_batch(3, timeout=0)] == [1, 2, 3]
        assert [x.seq for x in c.read_batch(10, timeout=0)] == [4, 5]
        assert c.read_batch(10, timeout=0) == []
        assert c.poll(timeout=0.05) is None
        with pytest.raises(shmbus.InvalidArgumentError):
            c.read_batch(0)
        with pytest.raises(shmbus.InvalidArgumentError):
            c.poll(timeout=-1)
        with pytest.raises(TypeError):
            c.poll(timeout="1")


def test_timeouts_of_every_numeric_kind(ns, stream):
    """An int of any size, a float, or what converts to one (numpy, Decimal, Fraction) is a
    timeout; beyond a double's range means forever (was RuntimeError 'Unable to cast'),
    numpy.int64 was refused as not a number."""
    import decimal
    import fractions
    import threading
    np = pytest.importorskip("numpy")
    with shmbus.Producer(stream, namespace=ns) as p, \
            shmbus.Consumer(stream, group="g", namespace=ns) as c:
        kinds = [np.int64(0), np.uint64(2**63 + 5), np.float32(0.0), np.float64(1e300),
                 decimal.Decimal("0.01"), fractions.Fraction(1, 100), 10**400, float("inf")]
        for i, t in enumerate(kinds):
            p.publish(b"%d" % i)
            r = c.poll(t)
            assert r is not None and r.seq == i, repr(t)
        assert c.poll(np.int64(0)) is None and c.poll(np.float32(0.01)) is None
        assert c.read_batch(5, timeout=np.int64(0)) == []
        # 10**400 s waits (forever) for the next record instead of failing.
        later = threading.Timer(0.2, lambda: p.publish(b"late"))
        later.start()
        t0 = time.monotonic()
        r = c.poll(10**400)
        later.join()
        assert r is not None and r.bytes() == b"late" and time.monotonic() - t0 >= 0.15
        p.publish(b"huge")
        assert c.poll(fractions.Fraction(10**400)).bytes() == b"huge"  # __float__ overflows
        for bad in [-10**400, np.int64(-1), decimal.Decimal("NaN"), decimal.Decimal("sNaN"),
                    fractions.Fraction(-10**400), float("-inf")]:
            with pytest.raises(shmbus.InvalidArgumentError):
                c.poll(bad)
        for bad in [True, np.bool_(True), b"1", bytearray(b"1"), [1], 1j, np.array([1.0])]:
            with pytest.raises(TypeError):
                c.poll(bad)

        # The asyncio wrapper and stat() check the same way (they had checks of their own).
        import asyncio

        async def aio():
            p.publish(b"a")
            got = (await c.poll_async(np.int64(1))).bytes()
            none = await c.poll_async(np.float32(0.01))
            with pytest.raises(TypeError):
                c.aiter(idle_timeout="1")  # at the call, not at the first await
            return got, none

        got, none = asyncio.run(aio())
        assert got == b"a" and none is None
    assert shmbus.stat(stream, namespace=ns, interval=np.float32(0.01)).interval_s > 0
    for bad in [10**400, float("inf")]:
        with pytest.raises(shmbus.InvalidArgumentError):
            shmbus.stat(stream, namespace=ns, interval=bad)


def test_iteration_forms(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"%d" % i for i in range(10)])
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        assert [r.seq for r in c.iter(max_records=3)] == [0, 1, 2]
        t = time.monotonic()
        assert [r.seq for r in c.iter(idle_timeout=0.2)] == list(range(3, 10))
        assert 0.15 < time.monotonic() - t < 2
        assert isinstance(iter(c), shmbus.ConsumerIterator)  # waits forever: see test_threads.py


def test_copy_mode_for_durable(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"a", b"b"])
    with shmbus.Consumer(stream, group="g", copy=True, namespace=ns) as c:
        recs = list(c.iter(idle_timeout=0))
    assert [bytes(r.data) for r in recs] == [b"a", b"b"] and not recs[0].expired


def test_context_managers_return_self(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        assert isinstance(p, shmbus.Producer) and p.name == stream and p.namespace == ns
    with shmbus.Consumer(stream, namespace=ns) as c:
        assert isinstance(c, shmbus.Consumer) and c.name == stream
    assert p.closed and c.closed


def test_abandoned_claim(ns):
    shmbus.create("s", capacity="64K", abandon_timeout=0.1, namespace=ns)
    with shmbus.Producer("s", namespace=ns) as p, \
            shmbus.Consumer("s", group="g", namespace=ns) as c:
        pid = os.fork()
        if pid == 0:  # dies holding a claim (only a dead producer's claim is abandoned)
            q = shmbus.Producer("s", namespace=ns)
            held = q.claim(8)  # kept: a dropped Claim is aborted (a gap at once, not abandoned)
            os._exit(0 if held is not None else 1)
        os.waitpid(pid, 0)
        p.publish(b"after")
        # the reader waits behind the claim, then finds its owner dead and skips it
        r = c.poll(timeout=2)
        assert r.bytes() == b"after" and c.gaps == 1
    assert shmbus.stat("s", namespace=ns)["abandoned"] == 1


def test_lapped_tailing_reader(ns):
    shmbus.create("s", capacity="4K", namespace=ns)
    with shmbus.Producer("s", namespace=ns) as p:
        quiet = shmbus.Consumer("s", start="earliest", namespace=ns)
        loud = shmbus.Consumer("s", start="earliest", raise_on_lap=True, namespace=ns)
        for i in range(200):  # ~25 KB through a 4K ring: both readers are overrun
            p.publish(b"%100d" % i)
        recs = list(quiet.iter(idle_timeout=0))
        assert quiet.lost > 0 and len(recs) + quiet.lost == 200
        assert quiet.lost_exact is True  # no aborted or abandoned claim was lapped
        assert recs[-1].bytes() == b"%100d" % 199
        with pytest.raises(shmbus.LappedError) as e:
            loud.poll(0)
        assert e.value.lost > 0 and e.value.lost == loud.lost
        assert loud.poll(0).seq == e.value.lost  # resumes at the oldest record left
        quiet.close()
        loud.close()


def test_start_is_for_new_groups_and_seek_rewinds(ns):
    """The README's example (group="analytics", start="earliest") must not re-read from 0
    on every run: start is where a *new* group begins; seek() rewinds explicitly."""
    shmbus.create("s", capacity="64K", namespace=ns)
    with shmbus.Producer("s", namespace=ns) as p:
        for i in range(10):
            p.publish(b"%d" % i)
    with shmbus.Consumer("s", group="analytics", start="earliest", namespace=ns) as c:
        assert [r.seq for r in c.iter(idle_timeout=0, max_records=4)] == [0, 1, 2, 3]
    with shmbus.Consumer("s", group="analytics", start="earliest", namespace=ns) as c:
        assert c.poll(0).seq == 4
        c.seek(1)
        assert c.poll(0).seq == 1
    with shmbus.Consumer("s", group="analytics", start="latest", namespace=ns) as c:
        assert c.poll(0).seq == 2
        c.seek(8)
        c.commit()  # commits the target (it kept the position the seek began from)
    with shmbus.Consumer("s", group="analytics", namespace=ns) as c:
        assert c.poll(0).seq == 8
        c.seek(6)  # back, then close: the target too (it kept the oldest record's)
    with shmbus.Consumer("s", group="analytics", namespace=ns) as c:
        assert c.poll(0).seq == 6


def test_a_group_sought_past_the_newest_record_does_not_hold_producers(ns):
    """A group waiting for a sequence far ahead commits the records it steps over as it
    polls: it held producers at its old position, FullError after a ring's worth (a
    review)."""
    shmbus.create("s", capacity="4K", max_record=64, namespace=ns)
    with shmbus.Producer("s", when_full="fail", namespace=ns) as p, shmbus.Consumer(
        "s", group="g", start="latest", namespace=ns
    ) as c:
        c.seek(1000)
        for _ in range(1000):  # a 4 KiB ring holds ~40 of them
            p.publish(b"x" * 60)
            assert c.poll(0) is None
        p.publish(b"y" * 60)
        rec = c.poll(0)
        assert rec.seq == 1000 and rec.bytes() == b"y" * 60


def test_a_datetime_past_what_nanoseconds_hold_is_after_every_record(ns, stream):
    """A datetime after 2262 overflowed the start's nanoseconds: "before 1970", or (2600)
    a group rewound to the oldest record (a review)."""
    import datetime

    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish(b"old")
    for year in (2262, 2300, 2600, 3000, 9999):
        when = datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc)
        with shmbus.Consumer(stream, group="g%d" % year, start=when, namespace=ns) as c:
            assert c.poll(0) is None
            c.seek(when)
            assert c.poll(0) is None


def test_evicted_group_raises_evicted_error_with_the_exact_loss(ns):
    """Issue 13 point 2: a group evicted while away learns what it lost (it used to jump
    ahead without a word); the stream counts it."""
    shmbus.create("ev", capacity="4K", namespace=ns, consumer_dead_timeout=0.2)
    with shmbus.Producer("ev", namespace=ns) as p:
        for i in range(5):
            p.publish(b"%d" % i)
        with shmbus.Consumer("ev", group="slowg", namespace=ns) as c:
            assert [c.poll(0).seq for _ in range(3)] == [0, 1, 2]
        time.sleep(0.5)  # away past the consumer_dead_timeout
        for i in range(200):
            p.publish(b"%100d" % i)
    assert shmbus.stat("ev", namespace=ns)["evictions"] == 1
    with shmbus.Consumer("ev", group="slowg", namespace=ns) as c:
        with pytest.raises(shmbus.EvictedError) as e:
            c.poll(0)
        assert e.value.from_seq == 3 and e.value.lost == e.value.to_seq - 3 > 0
        assert "slowg" in str(e.value) and e.value.code == "evicted"
        assert c.lost == e.value.lost
        recs = list(c.iter(idle_timeout=0))
        assert recs[0].seq == e.value.to_seq and recs[-1].seq == 204
        assert len(recs) + e.value.lost == 205 - 3
    st = shmbus.stat("ev", namespace=ns)
    assert st["evicted_lost"] == e.value.lost
    assert st["consumers"][0]["evicted"] is False


def test_an_eviction_raised_and_closed_at_once_is_not_raised_again(ns):
    """A review (2026-12-01): a holder whose first read raised EvictedError and that
    closed at once (nothing returned to commit) left the loss to every later holder.
    Raised is told: with auto_commit the close says so, without it commit() does."""
    for auto_commit in (True, False):
        name = "ev%d" % auto_commit
        shmbus.create(name, capacity="4K", namespace=ns, consumer_dead_timeout=0.2)
        with shmbus.Producer(name, namespace=ns) as p:
            for i in range(5):
                p.publish(b"%d" % i)
            with shmbus.Consumer(name, group="g", namespace=ns) as c:
                assert [c.poll(0).seq for _ in range(3)] == [0, 1, 2]
            time.sleep(0.5)  # away past the consumer_dead_timeout
            for i in range(200):
                p.publish(b"%100d" % i)
        with shmbus.Consumer(name, group="g", namespace=ns, auto_commit=auto_commit) as c:
            with pytest.raises(shmbus.EvictedError) as e:
                c.poll(0)
            if not auto_commit:
                c.commit()
        with shmbus.Consumer(name, group="g", namespace=ns) as c:
            assert c.poll(0).seq == e.value.to_seq  # not raised again
        st = shmbus.stat(name, namespace=ns)
        assert st["evicted_lost"] == e.value.lost
        assert st["consumers"][0]["owed_from"] is None


def test_consumer_retention_forgets_a_group(ns):
    shmbus.create("r", capacity="64K", namespace=ns, consumer_retention=1.0)
    assert shmbus.stat("r", namespace=ns)["consumer_retention_ms"] == 1000
    shmbus.create("d", capacity="64K", namespace=ns)
    assert shmbus.stat("d", namespace=ns)["consumer_retention_ms"] == 7 * 24 * 3600 * 1000
    with shmbus.Producer("r", namespace=ns) as p:
        for i in range(3):
            p.publish(b"%d" % i)
    with shmbus.Consumer("r", group="g", namespace=ns) as c:
        assert c.poll(0).seq == 0
    with shmbus.Consumer("r", group="g", start="latest", namespace=ns) as c:
        assert c.poll(0).seq == 1  # kept: start applies to new groups only
    time.sleep(1.5)
    with shmbus.Consumer("r", group="g", start="latest", namespace=ns) as c:
        assert c.poll(0) is None  # forgotten: a new group at latest


def test_start_below_the_oldest_record(ns):
    shmbus.create("s", capacity="4K", namespace=ns)
    with shmbus.Producer("s", namespace=ns) as p:
        for i in range(200):
            p.publish(b"%100d" % i)
    oldest = shmbus.stat("s", namespace=ns)["oldest_seq"]
    with shmbus.Consumer("s", start=0, namespace=ns) as c:  # counted, not raised
        assert c.poll(0).seq >= oldest and c.lost >= oldest
    with shmbus.Consumer("s", start=0, raise_on_gap=True, namespace=ns) as c:
        with pytest.raises(shmbus.GapError) as e:
            c.poll(0)
        assert e.value.from_seq == 0 and e.value.to_seq >= oldest
        assert "no longer in the ring" in str(e.value)
        assert c.poll(0).seq == e.value.to_seq
    with shmbus.Consumer("s", group="newg", start=0, namespace=ns) as c:  # a group: raised
        with pytest.raises(shmbus.GapError):
            c.poll(0)
