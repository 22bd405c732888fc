"""Zero-copy views: where they point, how long they are valid, and that nothing dangles."""

import gc
import warnings

import numpy as np
import pytest

import shmbus


def shm_ranges(ns, stream):
    """Address ranges of this process's mappings of the stream's shared-memory object."""
    path = f"/dev/shm/shmbus.{ns}.{stream}"
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith(path):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                out.append((lo, hi))
    return out


def address(arr):
    return arr.__array_interface__["data"][0]


def inside(addr, ranges):
    return any(lo <= addr < hi for lo, hi in ranges)


def test_claim_buffer_is_the_ring(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        with p.claim(8 * 16, type=1) as claim:
            buf = claim.data
            arr = np.frombuffer(buf, dtype="<f8")
            arr[:] = np.arange(16)           # numpy writes straight into the ring
            assert np.shares_memory(arr, np.frombuffer(buf, dtype="<f8"))
            assert inside(address(arr), shm_ranges(ns, stream))
            assert bytes(buf[8:16]) == np.float64(1).tobytes()
        del arr
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        rec = c.poll(0)
        assert np.array_equal(np.frombuffer(rec.data, dtype="<f8"), np.arange(16))


def test_durable_record_is_a_view_into_the_ring(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([np.full(8, i, dtype="<f8") for i in range(3)])
    with shmbus.Consumer(stream, group="g", auto_commit=False, namespace=ns) as c:
        recs = c.read_batch(3, timeout=0)
        arrays = [np.frombuffer(r.data, dtype="<f8") for r in recs]
        ranges = shm_ranges(ns, stream)
        assert len(ranges) == 1  # the producer closed: the only mapping left is ours
        for r, a in zip(recs, arrays):
            assert inside(address(a), ranges)
            assert np.shares_memory(a, np.frombuffer(r.data, dtype="<f8"))
            assert np.shares_memory(a, np.frombuffer(r, dtype="<f8"))  # the Record itself
            assert (a == r.seq).all()
        # consecutive records sit one after the other in the ring: 64-byte payload + header
        step = address(arrays[1]) - address(arrays[0])
        assert 64 < step <= 128 and address(arrays[2]) - address(arrays[1]) == step
        del arrays


def test_tailing_record_is_a_private_copy(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p, \
            shmbus.Consumer(stream, start="earliest", namespace=ns) as c:
        p.publish(np.arange(4, dtype="<f8"))
        rec = c.poll(1)
        assert not inside(address(np.frombuffer(rec.data, dtype="<f8")), shm_ranges(ns, stream))


def test_durable_view_expires_at_the_next_poll(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p, \
            shmbus.Consumer(stream, group="g", namespace=ns) as c:
        p.publish_batch([b"first", b"second"])
        r1 = c.poll(0)
        held = r1.data  # obtained before: stays readable
        assert not r1.expired
        r2 = c.poll(0)
        assert r1.expired and not r2.expired
        for use in (lambda: r1.data, lambda: r1.bytes(), lambda: memoryview(r1),
                    lambda: np.frombuffer(r1, dtype="u1")):
            with pytest.raises(ValueError, match="expired"):
                use()
        assert bytes(held) == b"first"  # nothing overwrote it yet
        assert r1.seq == 0 and len(r1) == 5  # metadata stays
        c.commit()
        assert r2.expired
        # with auto_commit=False a whole batch stays valid until commit()
    with shmbus.Consumer(stream, group="h", start="earliest", auto_commit=False, namespace=ns) as c:
        a, b = c.read_batch(10, timeout=0)
        c.poll(0)
        assert not a.expired and a.bytes() == b"first"
        c.commit()
        assert a.expired and b.expired


def test_views_keep_the_mapping_alive_after_close(ns):
    shmbus.create("s", capacity="64K", namespace=ns)
    p = shmbus.Producer("s", namespace=ns)
    p.publish(np.arange(4, dtype="<f8"))
    c = shmbus.Consumer("s", group="g", namespace=ns)
    rec = c.poll(0)
    from_view = np.frombuffer(rec.data, dtype="<f8")
    from_record = np.frombuffer(rec, dtype="<f8")
    mv = rec.data[1:3]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        c.close()
    assert any(issubclass(x.category, ResourceWarning) for x in w)
    del rec, c
    gc.collect()
    assert shm_ranges(ns, "s")  # still mapped: arrays point into it
    assert from_view.tolist() == [0, 1, 2, 3] == from_record.tolist()
    assert bytes(mv) == bytes(from_view.data)[1:3]
    # the closed consumer still counts as attached while its views live
    assert [x["alive"] for x in shmbus.stat("s", namespace=ns)["consumers"]] == [True]
    del from_view, from_record, mv
    gc.collect()
    assert [x["alive"] for x in shmbus.stat("s", namespace=ns)["consumers"]] == [False]
    # the group can be opened again now
    with shmbus.Consumer("s", group="g", namespace=ns) as c2:
        assert c2.next_seq == 1
    # Producer: a claim buffer kept by an array survives close() too
    cl = p.claim(16)
    arr = np.frombuffer(cl.data, dtype="u1")
    p.close()
    arr[:] = 7  # writes into the still-mapped ring (an aborted claim): no crash
    del arr, cl
    gc.collect()


def test_leftover_loop_variable_does_not_keep_the_group(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"a", b"b"])
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        for rec in c.iter(idle_timeout=0):
            payload = bytes(rec.data)  # a copy; the view itself is not kept
    assert payload == b"b"
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:  # no BusyError
        assert c.next_seq == 2
    assert rec.expired


def test_bytes_of_a_record_copies_without_keeping_the_group(ns, stream):
    """bytes(rec) went through a buffer export, which pins the record: the group stayed
    held after close() for as long as the loop variable lived (a review)."""
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"a", b"b"])
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:
        for rec in c.iter(idle_timeout=0):
            payload = bytes(rec)
    assert payload == b"b"
    with shmbus.Consumer(stream, group="g", namespace=ns) as c:  # no BusyError
        assert c.next_seq == 2
    assert rec.expired
    with pytest.raises(ValueError, match="expired"):
        bytes(rec)


def test_a_record_keeps_its_consumer_until_it_expires(ns, stream):
    """A record of a consumer nobody else referenced came back expired (the consumer was
    collected, closed and committed past it) and its group skipped it unread (a review).
    The record keeps its consumer now; once it is gone, the consumer closes and commits."""
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"a", b"b"])
    rec = shmbus.Consumer(stream, group="tmp", start="earliest", namespace=ns).poll(0)
    gc.collect()
    assert rec.bytes() == b"a"
    with pytest.raises(shmbus.BusyError):  # still held, by the record's consumer
        shmbus.Consumer(stream, group="tmp", namespace=ns)
    del rec
    gc.collect()
    with shmbus.Consumer(stream, group="tmp", namespace=ns) as c:
        assert c.poll(0).bytes() == b"b"  # record 0 was read, and committed at the close


def test_a_record_kept_where_its_consumer_reaches_it_is_collected(ns, stream):
    """A record stored on its consumer (or in a list there), its view touched, made a
    cycle the garbage collector could not see: the group stayed held (a review)."""
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish_batch([b"a", b"b", b"c"])
    c = shmbus.Consumer(stream, group="cyc", start="earliest", namespace=ns)
    c.last = c.poll(0)
    c.kept = [c.last]
    assert bytes(c.last.data) == b"a"  # the cached memoryview: part of the cycle
    del c
    gc.collect()
    with shmbus.Consumer(stream, group="cyc", namespace=ns) as c2:  # no BusyError
        assert c2.poll(0).bytes() == b"b"


def test_a_collection_that_closes_the_consumer_during_a_poll_leaves_no_live_record(ns, stream):
    """A Record is tracked by the garbage collector, so making one may run a collection,
    and code in it may close the consumer: its records were expired before the new one was
    linked, which then stayed live and held the group (a review).  It is a copy now."""
    with shmbus.Producer(stream, namespace=ns) as p:
        for i in range(20):
            p.publish(b"x%d" % i)
    c = shmbus.Consumer(stream, group="gcc", auto_commit=False, namespace=ns)
    state = {"armed": None}

    def closer(phase, info):
        target = state["armed"]
        if target is not None and phase == "start":
            state["armed"] = None
            target.close(commit=False)

    old = gc.get_threshold()
    gc.callbacks.append(closer)
    got = []
    try:
        gc.set_threshold(1)
        for _ in range(10):
            state["armed"] = c
            try:
                got.append(c.poll(0))
            except shmbus.ClosedError:
                break
            if c.closed:
                break
    finally:
        state["armed"] = None
        gc.callbacks.remove(closer)
        gc.set_threshold(*old)
    assert c.closed
    with shmbus.Consumer(stream, group="gcc", namespace=ns):  # no BusyError: nothing live holds it
        pass
    del got
    gc.collect()


def test_a_record_that_closes_its_consumer_warns_of_nothing(ns, stream):
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish(b"a")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = shmbus.Consumer(stream, group="w", start="earliest", namespace=ns).poll(0)
        assert rec.bytes() == b"a"
        del rec  # closes the consumer: no view or array of its records is alive
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_claim_of_a_collected_producer_is_aborted_and_says_so(ns, stream):
    """(Kept alive by its claim, a producer the claim was stored on was never collected:
    the claim stayed open and readers stalled behind it.  A review.)"""
    cl = shmbus.Producer(stream, namespace=ns).claim(8)
    gc.collect()
    with pytest.raises(shmbus.ClosedError, match="aborted"):
        cl.data[:] = b"abcdefgh"
    class Mine(shmbus.Producer):
        pass

    with Mine(stream, namespace=ns) as p:
        p.c = p.claim(8)  # kept on its producer: closed with it, the claim aborted
    del p
    gc.collect()
    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish(b"after")
    with shmbus.Consumer(stream, start="earliest", namespace=ns) as c:
        assert c.poll(1).bytes() == b"after"  # nothing open in front of it


def test_claim_commits_fewer_bytes_than_claimed(ns, stream):
    """Issue 13 point 9: writing 5 bytes into claim(128) stores 5, not 128 with 123 NULs."""
    with shmbus.Producer(stream, namespace=ns) as p:
        cl = p.claim(128, type=2)
        cl.data[:5] = b"hello"
        with pytest.raises(shmbus.InvalidArgumentError):
            cl.commit(129)
        assert not cl.done
        seq = cl.commit(5)
        assert cl.done and cl.size == 5
        p.publish(b"next")
    with shmbus.Consumer(stream, namespace=ns) as c:
        rec = c.poll(0)
        assert rec.seq == seq and rec.bytes() == b"hello" and rec.type == 2
        assert c.poll(0).bytes() == b"next"
        assert c.gaps == 0


@pytest.mark.parametrize("finish", ["abort", "close", "commit"])
def test_a_commit_size_whose_index_finishes_the_claim_raises(ns, stream, finish):
    """The size's __index__ is user code: one that aborts the claim or closes the producer
    crashed commit() (a review)."""
    p = shmbus.Producer(stream, namespace=ns)
    cl = p.claim(8)

    class Size:
        def __index__(self):
            if finish == "commit":
                cl.commit(2)  # the claim holds 2 bytes now: 4 would be out of range
            else:
                cl.abort() if finish == "abort" else p.close()
            return 4

    with pytest.raises(shmbus.ClosedError):
        cl.commit(Size())
    assert cl.done
    p.close()
    with shmbus.Consumer(stream, start="earliest", namespace=ns) as c:
        assert [len(r.bytes()) for r in c.iter(idle_timeout=0)] == ([2] if finish == "commit" else [])


@pytest.mark.parametrize("finish", ["commit", "abort", "with"])
def test_claim_memoryview_refuses_writes_after_it_is_done(ns, stream, finish):
    with shmbus.Producer(stream, namespace=ns) as p:
        cl = p.claim(16)
        buf = cl.data
        buf[:3] = b"abc"
        if finish == "with":
            with cl as claim:
                assert claim is cl and bytes(claim.data[:3]) == b"abc"
        else:
            getattr(cl, finish)()
        with pytest.raises(ValueError):
            buf[:3] = b"xyz"  # released: no write lands in the ring after the commit
        with pytest.raises(shmbus.ClosedError):
            cl.data
        p.publish(b"next")
    with shmbus.Consumer(stream, namespace=ns) as c:
        if finish != "abort":
            assert c.poll(0).bytes()[:3] == b"abc"
        assert c.poll(0).bytes() == b"next"


def test_a_view_the_user_released_is_made_again(ns, stream):
    """`with rec.data as m:` releases the view; rec.data then raised ValueError for good
    though the record had not expired (a review).  The same for a claim's data."""
    with shmbus.Producer(stream, namespace=ns) as p, shmbus.Consumer(stream, group="g", namespace=ns) as c:
        cl = p.claim(3)
        with cl.data as m:
            m[:] = b"abc"
        cl.data[:] = b"xyz"
        cl.commit()
        rec = c.poll(0)
        with rec.data as m:
            assert bytes(m) == b"xyz"
        assert bytes(rec.data) == b"xyz" and not rec.expired
