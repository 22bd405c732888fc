"""Handles made before fork() are closed in the child and leave the parent's alone."""

import os

import pytest

import shmbus


def test_handles_are_closed_in_a_fork_child_and_the_parent_is_untouched(ns, stream):
    p = shmbus.Producer(stream, namespace=ns)
    c = shmbus.Consumer(stream, group="g", namespace=ns)
    p.publish(b"before")
    claim = p.claim(4)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            # claim.data too: a view of the parent's claim would put the child's bytes
            # into the record the parent commits (a review).
            for call in (lambda: p.publish(b"x"), lambda: c.poll(0), lambda: claim.data,
                         lambda: claim.commit()):
                try:
                    call()
                    code |= 1
                except shmbus.ClosedError as e:
                    if "fork" not in str(e) and "committed or aborted" not in str(e):
                        code |= 2
            assert p.closed and c.closed
            # new handles in the child work
            with shmbus.Producer(stream, namespace=ns) as p2:
                p2.publish(b"from child")
            del p, c, claim  # must not detach the parent's producer/consumer
            import gc
            gc.collect()
        except BaseException:
            code |= 4
        os.write(w, bytes([code]))
        os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 1) == b"\0" and status == 0
    os.close(r)
    st = shmbus.stat(stream, namespace=ns)
    assert [x["pid"] for x in st["producers"] if x["alive"]] == [os.getpid()]
    assert [x["alive"] for x in st["consumers"]] == [True]
    claim.data[:] = b"clm!"
    assert claim.commit() == 1  # the parent's claim survived the child's exit
    got = [x.bytes() for x in c.iter(idle_timeout=0)]
    assert got == [b"before", b"clm!", b"from child"]
    p.close()
    c.close()


def test_multiprocessing_spawn_round_trip(ns, stream):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        seqs = pool.starmap(_publish_some, [(ns, stream, k) for k in range(2)])
    assert sorted(s for lst in seqs for s in lst) == list(range(200))
    with shmbus.Consumer(stream, start="earliest", namespace=ns) as c:
        assert len(list(c.iter(idle_timeout=0))) == 200


def _publish_some(ns, stream, k):
    with shmbus.Producer(stream, namespace=ns) as p:
        return [p.publish(b"%d" % k) for _ in range(100)]
