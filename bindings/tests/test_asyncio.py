"""asyncio: await consumer.poll_async(timeout) and async for rec in consumer.aiter().

The waits run in a worker thread (shmbus/_aio.py): the event loop keeps running, an idle
wait costs no CPU, and a cancelled wait loses no record and leaves the consumer usable."""

import asyncio
import os
import resource
import signal
import sys
import threading
import time

import pytest

import shmbus
from shmbus import _aio

from conftest import spawn_python

N = 300

# Publishes N records (payload = seq as text) once a line arrives on stdin, a few at a
# time with pauses, so that the consumer waits in between.
PRODUCER = r"""
import sys, time
import shmbus
name, ns, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with shmbus.Producer(name, namespace=ns) as p:
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(n):
        p.publish(str(i).encode(), type=1)
        if i % 10 == 9:
            time.sleep(0.01)
"""


class Ticker:
    """A task that counts event-loop turns of `period` seconds: it only runs if the loop
    is free."""

    def __init__(self, period=0.01):
        self.ticks = 0
        self.task = asyncio.get_running_loop().create_task(self._run(period))

    async def _run(self, period):
        while True:
            await asyncio.sleep(period)
            self.ticks += 1

    async def stop(self):
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def test_records_from_another_process_in_order_while_the_loop_runs(ns, stream):
    import subprocess

    proc = spawn_python(PRODUCER, stream, ns, N, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"

        async def main():
            got = []
            with shmbus.Consumer(stream, group="g", namespace=ns) as c:
                ticker = Ticker()
                reader = asyncio.get_running_loop().create_task(_read(c, got))
                # Nothing published yet: the reader waits, and the loop goes on.
                await asyncio.sleep(0.5)
                idle_ticks = ticker.ticks
                assert not reader.done() and got == []
                proc.stdin.write("go\n")
                proc.stdin.flush()
                await asyncio.wait_for(reader, timeout=60)
                await ticker.stop()
            return got, idle_ticks, ticker.ticks

        async def _read(c, got):
            async for rec in c.aiter():
                got.append((rec.seq, rec.type, rec.bytes()))
                if len(got) == N:
                    return

        got, idle_ticks, ticks = asyncio.run(main())
        assert got == [(i, 1, str(i).encode()) for i in range(N)]
        assert idle_ticks >= 5, idle_ticks  # ~50 on an idle machine
        assert ticks > idle_ticks
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0


def test_poll_async_from_another_process_and_timeout(ns, stream):
    import subprocess

    proc = spawn_python(PRODUCER, stream, ns, 3, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"

        async def main():
            with shmbus.Consumer(stream, namespace=ns, start="earliest") as c:
                assert await c.poll_async(0) is None
                assert await c.poll_async(0.2) is None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                seqs = []
                for _ in range(3):
                    rec = await c.poll_async(60)
                    seqs.append(rec.seq)
                assert await c.poll_async(0.05) is None
                return seqs

        assert asyncio.run(main()) == [0, 1, 2]
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0


def test_an_idle_wait_uses_no_cpu(ns, stream):
    async def main():
        with shmbus.Consumer(stream, group="g", namespace=ns) as c:
            await c.poll_async(0)  # the worker thread exists before the measurement
            cpu0, t0 = time.process_time(), time.monotonic()
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            assert await c.poll_async(1.0) is None
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            return time.process_time() - cpu0, time.monotonic() - t0, \
                (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)

    cpu, wall, rusage = asyncio.run(main())
    assert wall >= 0.95
    assert cpu < 0.2, cpu  # a spinning wait would use ~1 s
    assert rusage < 0.2, rusage


def test_cancelling_loses_nothing_and_leaks_no_thread(ns, stream):
    """Each round: a poll_async task is cancelled while it waits, then a record is
    published at once (the cancelled slice may take it); the next poll_async returns
    it.  Every record arrives once, in order, and one worker thread does it all."""
    threads_before = threading.active_count()

    async def main():
        got = []
        with shmbus.Producer(stream, namespace=ns) as p, \
                shmbus.Consumer(stream, group="g", namespace=ns) as c:
            for i in range(20):
                task = asyncio.get_running_loop().create_task(c.poll_async())
                await asyncio.sleep(0.02)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                p.publish(str(i).encode())
                rec = await c.poll_async(30)
                got.append((rec.seq, rec.bytes()))
            assert threading.active_count() <= threads_before + 1
            # after the last cancellation the consumer still reads synchronously
            p.publish(b"sync")
            rec = await c.poll_async(30)
            assert rec.bytes() == b"sync"
            assert c.poll(0) is None
        return got

    got = asyncio.run(main())
    assert got == [(i, str(i).encode()) for i in range(20)]


def test_aiter_ends_when_the_consumer_closes_and_limits(ns, stream):
    async def main():
        with shmbus.Producer(stream, namespace=ns) as p:
            for i in range(5):
                p.publish(bytes([i]))
        c = shmbus.Consumer(stream, group="g", namespace=ns)
        assert [r.seq async for r in c.aiter(max_records=3)] == [0, 1, 2]
        assert [r.seq async for r in c.aiter(idle_timeout=0.1)] == [3, 4]
        seen = []

        async def forever():
            async for rec in c.aiter():
                seen.append(rec.seq)

        task = asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0.3)
        c.close()
        await asyncio.wait_for(task, timeout=10)  # ends: no exception, no hang
        with pytest.raises(shmbus.ClosedError):
            c.aiter()
        with pytest.raises(shmbus.ClosedError):
            await c.poll_async(0)
        return seen

    assert asyncio.run(main()) == []


def test_bad_arguments(ns, stream):
    async def main():
        with shmbus.Consumer(stream, namespace=ns) as c:
            with pytest.raises(TypeError):
                await c.poll_async("1")
            with pytest.raises(shmbus.InvalidArgumentError):
                await c.poll_async(-1)
            with pytest.raises(shmbus.InvalidArgumentError):
                c.aiter(max_records=-1)

    asyncio.run(main())


def test_poll_async_in_a_fork_child_after_the_parent_used_it(ns, stream):
    """The worker pool is per process: a child forked after the parent awaited (its pool
    has a worker) still gets its records."""
    import os

    async def read_one():
        with shmbus.Consumer(stream, namespace=ns, start="earliest") as c:
            return await c.poll_async(30)

    with shmbus.Producer(stream, namespace=ns) as p:
        p.publish(b"x")
    assert asyncio.run(read_one()).bytes() == b"x"  # the parent's pool now has a worker
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            rec = asyncio.run(asyncio.wait_for(read_one(), timeout=30))
            code = 0 if rec is not None and rec.bytes() == b"x" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# ---- a record taken by a cancelled wait's slice (the slice runs on, <= 0.1 s) ----------


async def _cancel_a_wait(c):
    """Starts a poll_async() and cancels it 5 ms later; returns its slice's future (None:
    none left), which may still run."""
    task = asyncio.get_running_loop().create_task(c.poll_async(None))
    await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return c.__dict__.get("_shmbus_slice")


async def _keep_one(c, p, payload, rounds=50):
    """Cancels a poll_async() and publishes `payload` while its worker slice still runs,
    until that slice takes it (a loaded machine may end a slice before the publish: the
    record is then read and the round repeated).  Returns the records read meanwhile."""
    extra = []
    for _ in range(rounds):
        fut = await _cancel_a_wait(c)
        if fut is None or fut.done():
            continue  # the slice ended already: no record can be kept this round
        p.publish(payload)
        deadline = time.monotonic() + 30
        while not fut.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if fut.result() is not None:
            return extra
        extra.append(await c.poll_async(30))  # taken by the ring instead: retry
    pytest.fail("no slice took the record")


@pytest.mark.parametrize("api", ["close", "with", "commit", "collected", "collected_after_a_commit",
                                 "subclass_collected", "slotted_subclass_collected"])
def test_a_record_kept_by_a_cancelled_wait_is_not_lost_by_close_or_commit(ns, stream, api):
    """The cancelled slice took A: close() (or commit() then close with auto_commit=False,
    or the collector closing a consumer dropped with A unread: it committed A) must not
    commit past A, which nobody received: the group's next reader gets A, B."""
    import gc
    import weakref

    class Mine(shmbus.Consumer):
        pass

    class Slotted(shmbus.Consumer):
        __slots__ = ()

    async def main():
        with shmbus.Producer(stream, namespace=ns) as p:
            cls = {"subclass_collected": Mine, "slotted_subclass_collected": Slotted}.get(api, shmbus.Consumer)
            c = cls(stream, group="g", namespace=ns, start="earliest",
                    auto_commit=(api != "commit"))
            extra = await _keep_one(c, p, b"A")
            assert extra == []
            p.publish(b"B")
            if api == "close":
                c.close()
            elif api == "with":
                with c:
                    pass
            elif api in ("collected", "collected_after_a_commit", "subclass_collected",
                         "slotted_subclass_collected"):
                if api == "collected_after_a_commit":
                    # The C++ commit, as another thread's commit() that found no slice and
                    # then covered the slice's record: the close must still go back to A
                    # (it rewound only with something uncommitted: a review).
                    _aio._orig["commit"](c)
                ref = weakref.ref(c)
                del c
                # Closed by the collector, as it commits (a subclass's consumer in this
                # cycle was never collected: its __dict__ was traversed twice).  Once the
                # loop has run what the slice's end scheduled (a callback still queued
                # holds the consumer: under load CI met it right after the slice ended).
                for _ in range(100):
                    gc.collect()
                    if ref() is None:
                        break
                    await asyncio.sleep(0.01)
                assert ref() is None
            else:
                c.commit()
                c.close()
        with shmbus.Consumer(stream, group="g", namespace=ns) as g:
            out = []
            while (r := g.poll(0.5)) is not None:
                out.append(r.bytes())
            return out

    assert asyncio.run(main()) == [b"A", b"B"]


def test_a_fork_child_does_not_get_the_parents_kept_record(ns, stream):
    """A record a cancelled slice kept is the parent's: a fork() child's read raises
    ClosedError (it returned the record, which the parent's group delivered again: a
    review), and the parent's close leaves it to the group's next reader."""
    import os

    async def main():
        with shmbus.Producer(stream, namespace=ns) as p:
            c = shmbus.Consumer(stream, group="g", namespace=ns, start="earliest")
            assert await _keep_one(c, p, b"A") == []
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    c.poll(0)
                    code = 1
                except shmbus.ClosedError:
                    code = 0
                except BaseException:  # noqa: BLE001 - the child reports by its exit code
                    code = 2
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
            c.close()
        with shmbus.Consumer(stream, group="g", namespace=ns) as g:
            r = g.poll(0.5)
            return None if r is None else r.bytes()

    assert asyncio.run(main()) == b"A"


def test_a_fork_child_of_a_consumer_whose_slice_runs_does_not_hang(ns, stream):
    """fork() while a cancelled wait's slice still runs: the child's reads and close()
    raise ClosedError / return at once (they waited for a slice whose thread is not in
    the child: for ever, a review)."""
    import os

    async def main():
        c = shmbus.Consumer(stream, group="g", namespace=ns, start="earliest")
        fut = await _cancel_a_wait(c)
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                signal.alarm(10)  # a hang fails the test, not the run
                if fut is None or fut.done():
                    code = 0  # the slice ended before the fork: nothing to test this time
                else:
                    try:
                        c.poll(0)
                        code = 1
                    except shmbus.ClosedError:
                        c.close()
                        code = 0
            except BaseException:  # noqa: BLE001 - the child reports by its exit code
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        c.close()
        return status

    status = asyncio.run(main())
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_read_batch_checks_its_count_before_returning_a_kept_record(ns, stream):
    """With a kept record, read_batch(0) and read_batch("x") returned it, and a numpy int
    count took it alone (a review): the count is checked first, and read as any int."""
    np = pytest.importorskip("numpy")

    async def main():
        with shmbus.Producer(stream, namespace=ns) as p:
            c = shmbus.Consumer(stream, namespace=ns, start="earliest")  # tailing: a batch may grow
            assert await _keep_one(c, p, b"A") == []
            p.publish(b"B")
            p.publish(b"C")
            with pytest.raises(shmbus.InvalidArgumentError, match="max_records must be >= 1"):
                c.read_batch(0)
            with pytest.raises(TypeError, match="max_records must be an int"):
                c.read_batch("x")
            got = [r.bytes() for r in c.read_batch(np.int64(10), 0)]
            c.close()
            return got

    assert asyncio.run(main()) == [b"A", b"B", b"C"]


def test_commit_with_a_kept_record_commits_what_was_delivered_before_it(ns, stream):
    """commit() while a cancelled slice keeps A: R1..R3, delivered before A, are consumed
    (committed), A is not: the group's next reader starts at A (a survey: commit() only
    moved the consumer back to A and committed nothing, so R1..R3 came again)."""
    async def main():
        with shmbus.Producer(stream, namespace=ns) as p:
            c = shmbus.Consumer(stream, group="g", namespace=ns, start="earliest", auto_commit=False)
            for v in (b"R1", b"R2", b"R3"):
                p.publish(v)
            got = [(await c.poll_async(5)).bytes() for _ in range(3)]
            assert got == [b"R1", b"R2", b"R3"]
            extra = await _keep_one(c, p, b"A")
            c.commit()
            c.close()  # auto_commit=False: commits nothing more
        with shmbus.Consumer(stream, group="g", namespace=ns) as g:
            out = []
            while (r := g.poll(0.5)) is not None:
                out.append(r.bytes())
            return extra, out

    extra, out = asyncio.run(main())
    assert out == [b"A"], (extra, out)


@pytest.mark.parametrize("group", [None, "g"])
@pytest.mark.parametrize("api", ["poll", "read_batch", "iter", "for", "iter_batches", "poll_async", "aiter"])
def test_any_read_after_a_cancelled_wait_returns_the_kept_record_first(ns, stream, group, api):
    async def main():
        with shmbus.Producer(stream, namespace=ns) as p, \
                shmbus.Consumer(stream, group=group, namespace=ns, start="earliest") as c:
            # made before the slice: its step joins the slice too
            it = c.iter(idle_timeout=5) if api == "for" else None
            await _keep_one(c, p, b"A")
            p.publish(b"B")
            if api == "poll":
                got = [c.poll(5).bytes(), c.poll(5).bytes()]
            elif api == "read_batch":
                got = [r.bytes() for r in c.read_batch(10, 5)]
                for _ in range(3):  # bounded: old code never gets the second record
                    if len(got) >= 2:
                        break
                    got += [r.bytes() for r in c.read_batch(10, 5)]
            elif api == "iter":
                got = [r.bytes() for r in c.iter(idle_timeout=5, max_records=2)]
            elif api == "for":
                got = [next(it).bytes()]
                got.append(next(it, None))  # old code: None after 5 s (A was B, B is gone)
                got[1] = got[1] and got[1].bytes()
            elif api == "iter_batches":  # a group's kept record comes alone, then B
                got = [r.bytes() for b in c.iter_batches(10, idle_timeout=5, max_records=2)
                       for r in b]
            elif api == "poll_async":
                got = [(await c.poll_async(5)).bytes(), (await c.poll_async(5)).bytes()]
            else:
                got = [r.bytes() async for r in c.aiter(idle_timeout=5, max_records=2)]
            assert c.poll(0) is None
            return got

    assert asyncio.run(main()) == [b"A", b"B"]


def test_seek_drops_the_kept_record(ns, stream):
    async def main():
        with shmbus.Producer(stream, namespace=ns) as p, \
                shmbus.Consumer(stream, group="g", namespace=ns, start="earliest") as c:
            await _keep_one(c, p, b"A")
            p.publish(b"B")
            c.seek("earliest")
            return [c.poll(5).bytes(), c.poll(5).bytes()]

    assert asyncio.run(main()) == [b"A", b"B"]


def test_close_waits_for_the_cancelled_wait_and_leaves_no_unretrieved_error(ns, stream):
    """close() after a timed-out wait_for(poll_async) returns once the worker slice let go:
    the group reopens at once (no BusyError naming our own pid), and asyncio logs no
    'Future exception was never retrieved'."""
    import gc

    errors = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        for i in range(5):
            c = shmbus.Consumer(stream, group="g", namespace=ns)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.poll_async(None), 0.002 * (i + 1))
            c.close()
            shmbus.Consumer(stream, group="g", namespace=ns).close()
        # a close() while a task awaits: the task gets ClosedError, retrieved
        c = shmbus.Consumer(stream, group="g", namespace=ns)
        task = asyncio.get_running_loop().create_task(c.poll_async(None))
        await asyncio.sleep(0.01)
        task.cancel()
        c.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
        gc.collect()

    asyncio.run(main())
    gc.collect()
    assert errors == []
