"""Persistence from Python: Persister, replaying consumers, durable publishes, gaps."""

import datetime
import os
import pickle
import time

import pytest

import shmbus
from conftest import run_python

RING = 64 * 1024
PAYLOAD = 100  # a record takes 160 ring bytes: ~400 fill the 64K ring


def payload(i):
    return i.to_bytes(8, "little") * (PAYLOAD // 8) + b"...."


@pytest.fixture
def pstream(ns, tmp_path):
    """A 64K stream "p" and a data directory for its store."""
    shmbus.create("p", capacity=RING, namespace=ns, consumer_dead_timeout=0.2)
    return "p", str(tmp_path / "data")


def stored_without_ring(ns, name, data, count):
    """Persists records 0..count-1 of `name` into `data`, then removes its ring (as a
    reboot would): the stream exists only as its store."""
    with shmbus.Producer(name, namespace=ns) as p:
        with shmbus.Persister(name, data_dir=data, namespace=ns) as per:
            for i in range(count):
                p.publish(payload(i))
            per.flush()
    shmbus.remove(name, force=True, namespace=ns)  # the ring only: the store stays


def wait_until(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def test_round_trip_store_then_live(ns, pstream):
    name, data = pstream
    n = 5000  # ~12 rings
    with shmbus.Producer(name, namespace=ns) as p:
        with shmbus.Persister(name, data_dir=data, namespace=ns, segment_bytes="128K") as per:
            assert per.running and per.stream == name and per.namespace == ns
            assert per.store_dir == os.path.join(data, ns, name) and per.data_dir == data
            for i in range(n):
                p.publish(payload(i), type=i % 7)
            per.flush()
            assert per.stats()["durable_seq"] == n
        assert not per.running
        st = per.stats()  # the final counts, after stop()
        assert st["running"] is False and st["records"] == n and st["lost"] == 0
        assert st["last_error"] is None and st["store"]["kind"] == "file"
        # Published after the persister stopped: in the ring only.
        for i in range(n, n + 50):
            p.publish(payload(i), type=i % 7)
    info = shmbus.stat(name, namespace=ns)
    assert info["persist"]["store_dir"] == os.path.join(data, ns, name)
    assert info["durable_seq"] == n and info["oldest_seq"] > 0  # the ring lost the start

    with shmbus.Consumer(name, start="earliest", namespace=ns) as c:
        assert c.replaying and not c.durable and c.group is None
        got, modes = [], []
        for rec in c.iter(idle_timeout=0.5):
            got.append((rec.seq, rec.type, rec.bytes()))
            modes.append(c.from_store)
        assert c.gaps == 0 and c.last_gap is None and c.lost == 0
    assert got == [(i, i % 7, payload(i)) for i in range(n + 50)]
    assert modes[0] is True and modes[-1] is False  # store, then the live ring
    assert modes == sorted(modes, reverse=True)  # switched once


def test_replaying_consumer_follows_live_records(ns, pstream):
    name, data = pstream
    with shmbus.Persister(name, data_dir=data, namespace=ns), \
            shmbus.Producer(name, namespace=ns) as p:
        for i in range(2000):
            p.publish(payload(i))
        with shmbus.Consumer(name, namespace=ns) as c:  # start=None: the earliest
            assert [r.seq for r in c.read_batch(5000, timeout=1)][:1] == [0]
            for i in range(2000, 2100):
                p.publish(payload(i))
            rest = [r.seq for r in c.iter(idle_timeout=0.5)]
            assert rest[-1] == 2099 and c.next_seq == 2100


def test_start_at_a_sequence_older_than_the_ring(ns, pstream):
    name, data = pstream
    with shmbus.Persister(name, data_dir=data, namespace=ns) as per, \
            shmbus.Producer(name, namespace=ns) as p:
        for i in range(3000):
            p.publish(payload(i))
        per.flush()
    assert shmbus.stat(name, namespace=ns)["oldest_seq"] > 1234
    with shmbus.Consumer(name, start=1234, namespace=ns) as c:
        seqs = [r.seq for r in c.iter(idle_timeout=0.3)]
    assert seqs == list(range(1234, 3000))


def test_start_with_a_datetime(ns, pstream):
    name, data = pstream
    with shmbus.Persister(name, data_dir=data, namespace=ns) as per, \
            shmbus.Producer(name, namespace=ns) as p:
        for i in range(1500):
            p.publish(payload(i))
        time.sleep(0.02)
        start = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(0.02)
        for i in range(1500, 3000):
            p.publish(payload(i))
        per.flush()
    with shmbus.Consumer(name, start=start, namespace=ns) as c:
        recs = [(r.seq, r.timestamp_ns) for r in c.iter(idle_timeout=0.3)]
    assert [s for s, _ in recs] == list(range(1500, 3000))
    assert recs[0][1] >= start.timestamp() * 1e9
    # A naive datetime is local time, as datetime.timestamp() has it.
    naive = datetime.datetime.fromtimestamp(start.timestamp())
    with shmbus.Consumer(name, start=naive, namespace=ns) as c:
        assert c.poll(1).seq == 1500


def test_publish_durable_with_a_sync_persister(ns, pstream):
    name, data = pstream
    with shmbus.Producer(name, namespace=ns) as p:
        with pytest.raises(shmbus.TimeoutError, match="not persisted") as e:
            p.publish_durable(b"early", timeout=0.1)
        assert e.value.seq == 0 and isinstance(e.value, TimeoutError)  # published all the same
        with shmbus.Persister(name, data_dir=data, namespace=ns, durability="sync",
                              flush_interval=60):
            assert shmbus.stat(name, namespace=ns)["persist"]["sync"] is True
            t0 = time.monotonic()
            seqs = [p.publish_durable(payload(i), type=3, timeout=10) for i in range(1, 50)]
            assert seqs == list(range(1, 50))
            assert time.monotonic() - t0 < 5  # sync: not one 60 s flush interval each
            assert shmbus.stat(name, namespace=ns)["durable_seq"] >= 50
            p.wait_durable(0, timeout=0)  # durable already: no wait
            last = p.publish_batch([b"a", b"b", b"c"])
            p.wait_durable(last + 2, timeout=10)
        with pytest.raises(shmbus.TimeoutError, match="is a persister running") as e:
            p.publish_durable(b"late", timeout=0.05)
        assert e.value.seq == last + 3
        with pytest.raises(shmbus.InvalidArgumentError):
            p.wait_durable(-1)
        with pytest.raises(TypeError):
            p.publish_durable(b"x", timeout="1s")
    with pytest.raises(shmbus.ClosedError):
        p.wait_durable(0)


def test_publish_durable_without_a_persister_fails_after_the_grace_not_the_timeout(ns, stream):
    # No persister ever: said after the second a starting one takes to register, not at
    # the timeout (a loop of them took 10 s a record: a review).
    with shmbus.Producer(stream, namespace=ns) as p:
        t0 = time.monotonic()
        with pytest.raises(shmbus.TimeoutError, match="no persister attached within 1 s") as e:
            p.publish_durable(b"x", timeout=60)
        assert e.value.seq == 0
        assert time.monotonic() - t0 < 30
        with pytest.raises(shmbus.TimeoutError, match="not persisted"):
            p.wait_durable(0, timeout=0.2)  # a shorter timeout: at the timeout


def test_stop_flushes(ns, pstream):
    name, data = pstream
    per = shmbus.Persister(name, data_dir=data, namespace=ns, flush_interval=3600)
    with shmbus.Producer(name, namespace=ns) as p:
        for i in range(50):  # far below a quarter of the ring: no early flush
            p.publish(payload(i))
    wait_until(lambda: per.stats()["records"] == 50)
    assert shmbus.stat(name, namespace=ns)["durable_seq"] == 0  # not yet: the interval is 1 h
    per.stop()
    assert shmbus.stat(name, namespace=ns)["durable_seq"] == 50
    per.stop()  # idempotent
    with pytest.raises(shmbus.ClosedError):
        per.flush()
    with pytest.raises(shmbus.ClosedError):  # as Producer's and Consumer's (it entered)
        with per:
            pass
    # The store really holds them: a new persister finds them and starts after them.
    with shmbus.Persister(name, data_dir=data, namespace=ns) as again:
        assert again.stats()["store"]["end_seq"] == 50


def test_flush_makes_durable(ns, pstream):
    name, data = pstream
    with shmbus.Persister(name, data_dir=data, namespace=ns, flush_interval=3600) as per:
        with shmbus.Producer(name, namespace=ns) as p:
            for i in range(10):
                p.publish(payload(i))
        wait_until(lambda: per.stats()["records"] == 10)
        per.flush(timeout=10)
        assert shmbus.stat(name, namespace=ns)["durable_seq"] == 10
        per.flush(timeout=None)


def test_gaps_are_skipped_and_counted_or_raised(ns, pstream):
    # A persister that lets producers go on: records published while it is stopped
    # leave the ring unstored, and its next run records them as a lost range.
    name, data = pstream
    opts = dict(data_dir=data, namespace=ns, hold_producers=False)
    with shmbus.Producer(name, namespace=ns) as p:
        with shmbus.Persister(name, **opts):
            for i in range(1000):
                p.publish(payload(i))
        for i in range(1000, 4000):  # laps the stopped persister's group
            p.publish(payload(i))
        with shmbus.Persister(name, **opts) as per:
            for i in range(4000, 4500):
                p.publish(payload(i))
            per.flush()
            lost = per.stats()["lost"]
    assert lost > 0
    gap_end = 1000 + lost
    with shmbus.Consumer(name, start="earliest", namespace=ns) as c:
        seqs = [r.seq for r in c.iter(idle_timeout=0.3)]
        assert seqs == list(range(1000)) + list(range(gap_end, 4500))
        assert c.gaps == lost and c.last_gap == (1000, gap_end, "not persisted")
    with shmbus.Consumer(name, start="earliest", namespace=ns, raise_on_gap=True) as c:
        # read_batch returns the records before the gap; the next read raises it.
        assert [r.seq for r in c.read_batch(5000, timeout=1)] == list(range(1000))
        with pytest.raises(shmbus.GapError) as e:
            c.read_batch(10, timeout=1)
        assert (e.value.from_seq, e.value.to_seq, e.value.reason) == (1000, gap_end, "not persisted")
        assert e.value.code == "gap" and "1000.." in str(e.value)
        assert c.poll(1).seq == gap_end  # reading goes on after the gap
    with shmbus.Consumer(name, start="earliest", namespace=ns, raise_on_gap=True) as c:
        # iter_batches too: the list before the gap, then the step after raises it
        it = c.iter_batches(5000, idle_timeout=1)
        assert [r.seq for r in next(it)] == list(range(1000))
        with pytest.raises(shmbus.GapError) as e2:
            next(it)
        assert (e2.value.from_seq, e2.value.to_seq) == (1000, gap_end)
        assert [r.seq for b in c.iter_batches(100, idle_timeout=1) for r in b] == list(range(gap_end, 4500))
    again = pickle.loads(pickle.dumps(e.value))
    assert (again.from_seq, again.to_seq, again.reason) == (1000, gap_end, "not persisted")


def test_which_consumers_replay(ns, pstream):
    name, data = pstream
    shmbus.create("plain", capacity=RING, namespace=ns)
    with shmbus.Consumer("plain", namespace=ns) as c:
        assert not c.replaying and not c.from_store and c.last_gap is None
    with shmbus.Persister(name, data_dir=data, namespace=ns):
        with shmbus.Consumer(name, group="g", namespace=ns) as c:
            assert c.durable and not c.replaying  # groups read the ring
        with shmbus.Consumer(name, namespace=ns, start="latest") as c:
            assert c.replaying and c.poll(0) is None and repr(c).find("replaying") > 0


def test_persister_errors(ns, pstream, tmp_path):
    name, data = pstream
    with pytest.raises(shmbus.NotFoundError):
        shmbus.Persister("nope", data_dir=data, namespace=ns)
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Persister(name, data_dir=data, namespace=ns, store="tape")
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Persister(name, data_dir=data, namespace=ns, durability="eventually")
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Persister(name, data_dir=data, namespace=ns, flush_interval=-1)
    with pytest.raises(shmbus.InvalidArgumentError):
        shmbus.Persister(name, data_dir=data, namespace=ns, retention_bytes="lots")
    with pytest.raises(TypeError):
        shmbus.Persister(name, data_dir=data, namespace=ns, retention_age="1h")
    with pytest.raises(TypeError):
        shmbus.Persister(name, data_dir=42, namespace=ns)
    per = shmbus.Persister.start(name, data_dir=tmp_path / "data", namespace=ns)  # PathLike
    assert isinstance(per, shmbus.Persister)
    with pytest.raises(shmbus.BusyError):
        shmbus.Persister(name, data_dir=data, namespace=ns)
    per.stop()
    with pytest.raises(shmbus.ClosedError, match="stopped"):
        per.flush()


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SHMBUS_DATA_DIR", str(tmp_path))
    assert shmbus.resolve_data_dir() == str(tmp_path)
    assert shmbus.resolve_data_dir("/x/y") == "/x/y"
    monkeypatch.delenv("SHMBUS_DATA_DIR")
    monkeypatch.setenv("HOME", "/home/someone")
    assert shmbus.resolve_data_dir() == "/home/someone/.local/share/shmbus"


def test_stat_json_escapes_the_store_path(ns, tmp_path):
    shmbus.create("e", capacity=RING, namespace=ns)
    odd = tmp_path / 'q"uo\\te \u00e9\t'
    with shmbus.Persister("e", data_dir=odd, namespace=ns):
        st = shmbus.stat("e", namespace=ns)
    assert st["persist"]["store_dir"] == os.path.join(str(odd), ns, "e")


def test_stat_plan_with_retention(ns, pstream):
    name, data = pstream
    with shmbus.Persister(name, data_dir=data, namespace=ns, retention_age=3600,
                          retention_bytes="10M"), shmbus.Producer(name, namespace=ns) as p:
        import threading

        stop = threading.Event()

        def pump():
            while not stop.is_set():
                p.publish(b"z" * 100)
                time.sleep(0.0005)

        t = threading.Thread(target=pump)
        t.start()
        try:
            st = shmbus.stat(name, namespace=ns, interval=0.3, stall=2)
        finally:
            stop.set()
            t.join()
    assert st["retention_s"] == 3600.0 and st["stall_s"] == 2.0
    lam, lam_b = st["lambda_records_per_s"], st["lambda_bytes_per_s"]
    assert lam > 0
    # Records of 100 bytes share batch frames: a 16-byte sub-header, half the alignment
    # and their share of a 32-byte frame header per 4 KiB (shmbus/persist/store.h).
    mean = lam_b / lam
    per = 36 if mean > 256 else 20 + 32 * (20 + mean) / 4096
    assert st["projected_store_bytes"] == pytest.approx(min((lam_b + per * lam) * 3600, 10 << 20), rel=1e-3)
    assert st["ring_bytes_for_stall"] == pytest.approx((lam_b + 48 * lam) * 2, rel=1e-3)
    mu = {c["name"]: c["mu_records_per_s"] for c in st["consumers"]}
    assert mu["_persister"] > 0


def test_sigxfsz_warning_with_a_file_size_limit(ns, pstream):
    name, data = pstream
    code = r"""
import resource, signal, sys, warnings, shmbus
ns, name, data = sys.argv[1:4]
assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN  # CPython ignores it at startup
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, resource.RLIM_INFINITY))
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    shmbus.Persister(name, data_dir=data, namespace=ns).stop()
    print(sum("SIGXFSZ" in str(x.message) for x in w))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    shmbus.Persister(name, data_dir=data, namespace=ns).stop()
    print(sum("SIGXFSZ" in str(x.message) for x in w))
"""
    r = run_python(code, ns, name, data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1"]


def test_persister_after_fork(ns, pstream):
    name, data = pstream
    with shmbus.Persister(name, data_dir=data, namespace=ns) as per:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                per.flush()
            except shmbus.ClosedError:
                code = 0 if not per.running else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        with shmbus.Producer(name, namespace=ns) as p:
            p.publish_durable(b"still persisting", timeout=10)
        assert per.running



def test_file_size_limit_holds_producers_and_recovers(ns, pstream):
    # With SIGXFSZ ignored, a write beyond RLIMIT_FSIZE fails (EFBIG): the persister
    # keeps the record, holds the ring, and goes on once the limit is lifted.
    name, data = pstream
    code = r"""
import resource, sys, time, shmbus
ns, name, data = sys.argv[1:4]
resource.setrlimit(resource.RLIMIT_FSIZE, (128 << 10, resource.RLIM_INFINITY))
per = shmbus.Persister(name, data_dir=data, namespace=ns)
sent = 0
with shmbus.Producer(name, namespace=ns, full_timeout=0.5) as p:
    try:
        for i in range(3000):
            p.publish(b"x" * 100); sent += 1
    except shmbus.FullError:
        pass
    st = per.stats()
    print(sent < 3000, st["disk_full_waits"] > 0, st["last_error"] is not None)
    try:
        per.flush(timeout=5)
        print("flushed")
    except shmbus.NoSpaceError as e:
        print("NoSpaceError")
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    # The persister notices the lifted limit at its next retry: wait for room generously
    # (a loaded machine), as a producer that must not fail would.
    with shmbus.Producer(name, namespace=ns, full_timeout=20) as p2:
        for i in range(sent, 3000):
            p2.publish(b"x" * 100)
    p.wait_durable(2999, timeout=20)
per.stop()
print(per.stats()["records"], per.stats()["last_error"])
"""
    r = run_python(code, ns, name, data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["True True True", "NoSpaceError", "3000 None"]


def test_stream_outlives_its_ring(ns, pstream):
    """A reboot empties /dev/shm: the store is the stream's lasting identity."""
    name, data = pstream
    stored_without_ring(ns, name, data, 300)
    # No ring: the Consumer reads the store.
    with shmbus.Consumer(name, data_dir=data, namespace=ns) as c:
        assert c.replaying
        recs = list(c.iter(idle_timeout=0.2))
    assert [r.seq for r in recs] == list(range(300))
    assert recs[123].bytes() == payload(123)
    # Re-created over its store, the ring continues the numbering.
    shmbus.create(name, capacity=RING, namespace=ns, data_dir=data)
    assert shmbus.stat(name, namespace=ns)["next_seq"] == 300
    with shmbus.Producer(name, namespace=ns) as p, \
            shmbus.Persister(name, data_dir=data, namespace=ns) as per:
        assert p.publish(payload(300)) == 300
        per.flush()
    with shmbus.Consumer(name, data_dir=data, namespace=ns) as c:
        assert [r.seq for r in c.iter(idle_timeout=0.2)] == list(range(301))
    # fresh=True over a stream that exists is refused, in Python's spelling.
    with pytest.raises(shmbus.ExistsError, match="fresh=True") as e:
        shmbus.create(name, capacity=RING, namespace=ns, data_dir=data, fresh=True)
    assert "--fresh" not in str(e.value)
    # fresh=True starts over.
    shmbus.remove(name, force=True, namespace=ns)
    shmbus.create(name, capacity=RING, namespace=ns, data_dir=data, fresh=True)
    assert shmbus.stat(name, namespace=ns)["next_seq"] == 0
    assert not os.path.exists(os.path.join(data, ns, name))


def test_stopped_persister_holds_producers_visibly_and_detach_frees_them(ns, tmp_path):
    data = str(tmp_path / "data")
    shmbus.create("g", capacity="4K", namespace=ns)
    with shmbus.Persister("g", data_dir=data, namespace=ns):
        pass  # a clean stop: the stream stays persisted
    with shmbus.Producer("g", namespace=ns, full_timeout=0.2) as p:
        with pytest.raises(shmbus.FullError) as e:
            for i in range(3000):
                p.publish(b"%60d" % i)
        assert "'_persister'" in str(e.value) and "--detach" in str(e.value)
    per = shmbus.Persister("g", data_dir=data, namespace=ns)
    per.stop(detach=True)
    assert shmbus.stat("g", namespace=ns)["consumers"] == []
    with shmbus.Producer("g", namespace=ns, full_timeout=0.2) as p:
        for i in range(3000):
            p.publish(b"%60d" % i)
    # detach_on_stop makes a clean stop end persistence too.
    with shmbus.Persister("g", data_dir=data, namespace=ns, detach_on_stop=True):
        pass
    assert all(c["name"] != "_persister" for c in shmbus.stat("g", namespace=ns)["consumers"])


def test_wait_durable_raises_not_persisted_for_a_lost_record(ns, tmp_path):
    data = str(tmp_path / "data")
    shmbus.create("lg", capacity="4K", namespace=ns, consumer_dead_timeout=0.05)
    with shmbus.Producer("lg", namespace=ns) as p:
        with shmbus.Persister("lg", data_dir=data, namespace=ns, hold_producers=False):
            p.publish_durable(b"x" * 100)
        time.sleep(0.2)  # the stopped persister's group stops holding producers
        lost = p.publish(b"x" * 100)
        for _ in range(200):
            last = p.publish(b"x" * 100)
        with shmbus.Persister("lg", data_dir=data, namespace=ns, hold_producers=False) as per:
            per.flush()
            p.wait_durable(last)
            with pytest.raises(shmbus.NotPersistedError) as e:
                p.wait_durable(lost)
            assert e.value.seq == lost and "not persisted" in str(e.value)


def evict_a_group_of_a_persisted_stream(ns, name, data, group, **persister):
    """`group` reads records 0..2 of 5 and goes away past the consumer_dead_timeout
    (0.2 s); 1995 more (~5 rings) evict and overrun it; a persister stored them all."""
    with shmbus.Persister(name, data_dir=data, namespace=ns, **persister) as per:
        with shmbus.Producer(name, namespace=ns) as p:
            for i in range(5):
                p.publish(payload(i))
            with shmbus.Consumer(name, group=group, namespace=ns) as c:
                assert [c.poll(1).seq for _ in range(3)] == [0, 1, 2]
            time.sleep(0.5)  # away past the consumer_dead_timeout
            for i in range(5, 2000):
                p.publish(payload(i))
        per.flush(timeout=10)


def test_evicted_group_on_a_persisted_stream_reads_the_store(ns, pstream):
    """Issue 13 point 2: on a persisted stream a group evicted while away loses nothing:
    what left the ring comes from the store, in order, then the ring (no EvictedError)."""
    name, data = pstream
    evict_a_group_of_a_persisted_stream(ns, name, data, "slowg")
    assert shmbus.stat(name, namespace=ns)["evictions"] >= 1
    with shmbus.Consumer(name, group="slowg", namespace=ns) as c:
        got = [(r.seq, r.bytes()) for r in c.iter(idle_timeout=0.5)]
        # The ring lost them, the store did not: `lost` counts only what is gone for good.
        assert c.lost == 0
    assert got == [(i, payload(i)) for i in range(3, 2000)]


def test_a_loss_a_batch_held_back_is_told_to_the_next_holder(ns, pstream):
    """A group reading its eviction's records from the store meets a hole there (records
    never stored) after a batch's records: read_batch returns the records and the next
    read raises the EvictedError.  A close before that read leaves the hole owed to the
    group: its next holder is told of it (it was dropped, and the records after it were
    read as if nothing had been missing)."""
    name, data = pstream
    opts = dict(data_dir=data, namespace=ns, hold_producers=False)
    with shmbus.Producer(name, namespace=ns) as p:
        with shmbus.Persister(name, **opts) as per:
            for i in range(5):
                p.publish(payload(i))
            with shmbus.Consumer(name, group="slowg", namespace=ns) as c:
                assert [c.poll(1).seq for _ in range(3)] == [0, 1, 2]
            for i in range(5, 1000):
                p.publish(payload(i))
            per.flush(timeout=10)
        time.sleep(0.5)  # the group away past the consumer_dead_timeout (0.2 s)
        for i in range(1000, 4000):  # laps the stopped persister's group and slowg
            p.publish(payload(i))
        with shmbus.Persister(name, **opts) as per:
            for i in range(4000, 4500):
                p.publish(payload(i))
            per.flush(timeout=10)
            lost = per.stats()["lost"]
    assert lost > 0
    gap_end = 1000 + lost
    with shmbus.Consumer(name, group="slowg", namespace=ns) as c:
        assert [r.seq for r in c.read_batch(5000, timeout=1)] == list(range(3, 1000))
    def owed():
        return {g["name"]: g["owed_from"] for g in shmbus.stat(name, namespace=ns)["consumers"]}["slowg"]

    assert owed() == 1000
    with shmbus.Consumer(name, group="slowg", namespace=ns) as c:
        with pytest.raises(shmbus.EvictedError) as e:
            c.read_batch(5000, timeout=1)
        assert (e.value.from_seq, e.value.lost) == (1000, lost)
        assert [r.seq for r in c.iter(idle_timeout=0.5)] == list(range(gap_end, 4500))
    with shmbus.Consumer(name, group="slowg", namespace=ns) as c:
        assert c.poll(0) is None  # told, and read: nothing owed any more
    assert owed() is None


def test_a_damaged_segment_in_a_batch_from_the_store(ns, pstream):
    """A group reading its eviction's records from the store meets a segment whose header
    is damaged: read_batch returns the records before it (they were dropped with the
    error), the next read raises CorruptError, the next EvictedError counting exactly the
    segment's records, and the records of the intact segments after it still come (they
    were dropped unreported)."""
    name, data = pstream
    evict_a_group_of_a_persisted_stream(ns, name, data, "g", segment_bytes="32K")
    store = os.path.join(data, ns, name)
    segs = sorted(f for f in os.listdir(store) if f.endswith(".seg"))
    assert len(segs) >= 5
    bad_from, bad_to = int(segs[2][:-4]), int(segs[3][:-4])
    with open(os.path.join(store, segs[2]), "r+b") as f:
        f.seek(8)
        f.write(b"\xee")  # the format version
    got, raised = [], []
    with shmbus.Consumer(name, group="g", namespace=ns) as c:
        while True:
            try:
                batch = c.read_batch(100, timeout=0.5)
            except (shmbus.CorruptError, shmbus.EvictedError) as e:
                raised.append(e)
                continue
            if not batch:
                break
            got += [r.seq for r in batch]
    assert [type(e) for e in raised] == [shmbus.CorruptError, shmbus.EvictedError]
    assert segs[2] in str(raised[0])
    assert (raised[1].from_seq, raised[1].lost) == (bad_from, bad_to - bad_from)
    assert got == [i for i in range(3, 2000) if not bad_from <= i < bad_to]


def test_seek_while_reading_from_the_store(ns, pstream):
    """A seek while the group reads from the store leaves the store (it was ignored: the
    next record came from the store as if no seek had been made)."""
    name, data = pstream
    with shmbus.Persister(name, data_dir=data, namespace=ns) as per:
        with shmbus.Producer(name, namespace=ns) as p:
            for i in range(2000):  # ~5 rings: the oldest in the ring is far above 3
                p.publish(payload(i))
        per.flush(timeout=10)
    with shmbus.Consumer(name, group="g", start="latest", namespace=ns) as c:
        c.seek(3)  # below the ring's oldest: from the store
        assert [c.poll(1).seq for _ in range(2)] == [3, 4]
        c.seek(1990)
        r = c.poll(1)
        assert r.seq == 1990


def test_persister_logs_to_stderr_at_the_env_level(ns, pstream):
    """persist/ logs through its own logger to stderr, never stdout (the module leaves
    spdlog's default logger alone), at the level $SPDLOG_LEVEL gives it."""
    name, data = pstream
    code = r"""
import sys, shmbus
ns, name, data = sys.argv[1:4]
shmbus.Persister(name, data_dir=data, namespace=ns).stop(detach=True)
"""
    env = {k: v for k, v in os.environ.items() if k != "SPDLOG_LEVEL"}
    for level, logged in ((None, True), ("off", False), ("shmbus=warn", False), ("other=off", True)):
        if level is None:
            env.pop("SPDLOG_LEVEL", None)
        else:
            env["SPDLOG_LEVEL"] = level
        r = run_python(code, ns, name, data, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "", level
        assert ("detached" in r.stderr) == logged, (level, r.stderr)


def test_errors_speak_python_and_a_store_can_move(ns, pstream, tmp_path):
    """Errors named the CLI's flags (--force, --move-store) where Python has keywords; and
    Python had no way to move a store (store_moved=)."""
    name, data = pstream
    with shmbus.Producer(name, namespace=ns) as p:
        with shmbus.Persister(name, data_dir=data, namespace=ns) as per:
            p.publish(b"kept")
            per.flush()
        with pytest.raises(shmbus.BusyError) as busy:
            shmbus.remove(name, namespace=ns)  # a live producer
        assert "use force=True to remove it anyway" in str(busy.value)
        assert "--force" not in str(busy.value)
    # Only the phrase: a name that holds the flag's text stays as it is (a review).
    shmbus.create("a--force", namespace=ns)
    with shmbus.Producer("a--force", namespace=ns):
        with pytest.raises(shmbus.BusyError) as named:
            shmbus.remove("a--force", namespace=ns)
        assert "stream 'a--force' is in use" in str(named.value), str(named.value)
    other = str(tmp_path / "other")
    with pytest.raises(shmbus.InvalidArgumentError) as moved:
        shmbus.Persister(name, data_dir=other, namespace=ns)
    text = str(moved.value)
    assert "store_moved='move' (moves the store here)" in text, text
    assert "store_moved='new'" in text and "--move-store" not in text, text
    with pytest.raises(shmbus.InvalidArgumentError, match="store_moved must be None, 'move' or 'new'"):
        shmbus.Persister(name, data_dir=other, namespace=ns, store_moved="elsewhere")
    with shmbus.Persister(name, data_dir=other, namespace=ns, store_moved="move") as per:
        assert per.store_dir == os.path.join(other, ns, name)
    assert not os.path.exists(os.path.join(data, ns, name))
    with shmbus.Consumer(name, start="earliest", namespace=ns) as c:
        assert bytes(c.poll(timeout=2.0)) == b"kept"


def test_a_stream_that_exists_only_as_its_store_is_listed_and_described(ns, pstream, monkeypatch):
    """Python's ls() and stat() missed a stream whose ring was gone (a reboot, or a ring
    removed with force) while `shmbus ls` / `stat` showed its store (a walkthrough)."""
    name, data = pstream
    stored_without_ring(ns, name, data, 10)
    assert name not in shmbus.ls(namespace=ns)
    assert shmbus.ls(namespace=ns, stored=True, data_dir=data) == [name]
    assert shmbus.stat(name, namespace=ns, data_dir=data).next_seq == 10  # no env needed
    monkeypatch.setenv("SHMBUS_DATA_DIR", data)
    assert shmbus.ls(namespace=ns, stored=True) == [name]
    st = shmbus.stat(name, namespace=ns)
    assert st["ring"] is False and st.to_dict()["ring"] is False
    assert st.next_seq == 10 and st.durable_seq == 10 and st.oldest_persisted_seq == 0
    assert st.persist.store_dir == os.path.join(data, ns, name) and st.segments == 1
    with pytest.raises(shmbus.NotFoundError):
        shmbus.stat("nothing-here", namespace=ns)
    with shmbus.Consumer(name, start="earliest", namespace=ns) as c:
        assert [bytes(r) for r in c.iter(idle_timeout=0.3)] == [payload(i) for i in range(10)]


def test_remove_with_force_records_unstored_records_as_lost(ns, pstream):
    """remove(force=True) of a persisted stream whose persister had not stored its last
    records: they are recorded as lost in the store, so a stream created over the store
    does not give their numbers to new records (as `shmbus rm --force`).  remove() takes
    no data_dir: the store is the one the header names (not the default data dir)."""
    name, data = pstream
    with shmbus.Producer(name, namespace=ns) as p:
        with shmbus.Persister(name, data_dir=data, namespace=ns) as per:
            p.publish(b"stored")
            per.flush()
        p.publish(b"never stored")
    assert shmbus.stat(name, namespace=ns).durable_seq == 1
    shmbus.remove(name, force=True, namespace=ns)
    shmbus.create(name, capacity=RING, namespace=ns, data_dir=data)
    assert shmbus.stat(name, namespace=ns).next_seq == 2


def test_an_aborted_claim_is_a_gap_that_is_never_raised(ns, pstream):
    """Replaying a persisted stream, the number of an aborted claim is counted in gaps
    with its reason, but raise_on_gap=True does not raise it: nothing was lost."""
    name, data = pstream
    with shmbus.Producer(name, namespace=ns) as p:
        with shmbus.Persister(name, data_dir=data, namespace=ns) as per:
            p.publish(b"a")
            with p.claim(8) as c:
                c.abort()
            p.publish(b"c")
            per.flush()
    with shmbus.Consumer(name, start="earliest", namespace=ns, raise_on_gap=True) as c:
        assert [(r.seq, bytes(r)) for r in c.iter(idle_timeout=0.3)] == [(0, b"a"), (2, b"c")]
        assert c.gaps == 1
        assert c.last_gap == (1, 2, "never published (claims aborted or abandoned)")
