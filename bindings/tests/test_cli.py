"""C++ <-> Python through the `shmbus` CLI (path in $SHMBUS_CLI, set by CTest)."""

import base64
import json
import os
import subprocess
import time

import numpy as np
import pytest

import shmbus

CLI = os.environ.get("SHMBUS_CLI")
pytestmark = pytest.mark.skipif(not CLI, reason="SHMBUS_CLI not set (the shmbus CLI is not built)")


def cli(*args, **kw):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, timeout=60, **kw)


def test_cpp_producer_to_python_consumer(ns, stream):
    with shmbus.Consumer(stream, group="py", namespace=ns) as c:
        lines = "".join(f"line {i}\n" for i in range(1000))
        r = cli("pub", stream, "--namespace", ns, "--type", 5, input=lines.encode())
        assert r.returncode == 0, r.stderr
        r = cli("pub", stream, "--namespace", ns, "--count", 500, "--size", 64)
        assert r.returncode == 0, r.stderr
        recs = [(x.seq, x.type, x.bytes()) for x in c.iter(idle_timeout=1, max_records=1500)]
    assert recs[:1000] == [(i, 5, b"line %d" % i) for i in range(1000)]
    for k, (seq, typ, data) in enumerate(recs[1000:]):
        assert seq == 1000 + k and typ == 0
        assert (np.frombuffer(data, dtype="<u8") == k).all()  # the CLI's synthetic payload
    assert len(recs) == 1500


def test_python_producer_to_cpp_consumer(ns, stream):
    payloads = [b"text %d" % i for i in range(100)] + [bytes(range(256)), b"", b"\xff\xfe"]
    with shmbus.Producer(stream, namespace=ns) as p:
        for i, x in enumerate(payloads):
            p.publish(x, type=i)
        p.publish_batch([b"b1", b"b2"], type=77)
        with p.claim(3, type=78) as claim:
            claim.data[:] = b"clm"
    n = len(payloads) + 3
    r = cli("tail", stream, "--namespace", ns, "--format", "json", "--from", "earliest",
            "--count", n)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(out) == n
    want = [(i, x) for i, x in enumerate(payloads)] + [(77, b"b1"), (77, b"b2"), (78, b"clm")]
    for seq, (rec, (typ, data)) in enumerate(zip(out, want)):
        got = rec["data"].encode() if "data" in rec else base64.b64decode(rec["data_base64"])
        assert (rec["seq"], rec["type"], rec["size"], got) == (seq, typ, len(data), data)


def test_cli_sees_python_streams_and_groups(ns, stream):
    with shmbus.Consumer(stream, group="pygroup", namespace=ns):
        r = cli("ls", "--namespace", ns, "--json")
        assert [x["stream"] for x in json.loads(r.stdout)] == [stream]
        st = json.loads(cli("stat", stream, "--json", "--interval", "0", "--namespace", ns).stdout)
        assert [c["name"] for c in st["consumers"]] == ["pygroup"]
    r = cli("rm", stream, "--namespace", ns)
    assert r.returncode == 0 and shmbus.ls(ns) == []


@pytest.mark.parametrize("store,force", [("file", None), ("pmem", None), ("pmem", "cache_line")])
def test_cli_stat_and_persister_stats_agree_on_the_store(ns, tmp_path, monkeypatch, store, force):
    # One name per granularity (persist::granularity_name): `shmbus stat --json` reads what
    # the persister published in the stream header, Persister.stats() asks the store.
    # PMEM2_FORCE_GRANULARITY=cache_line makes libpmem2 map a non-DAX file as if it were.
    if force:
        monkeypatch.setenv("PMEM2_FORCE_GRANULARITY", force)
    shmbus.create("g", capacity="64K", namespace=ns)
    with shmbus.Persister("g", data_dir=str(tmp_path / "data"), namespace=ns, store=store) as per, \
            shmbus.Producer("g", namespace=ns) as p:
        p.publish(b"x")
        per.flush()
        mine = per.stats()["store"]
        # The persister publishes its store statistics at start and every 100 ms.
        deadline = time.monotonic() + 30
        while True:
            r = cli("stat", "g", "--json", "--namespace", ns)
            assert r.returncode == 0, r.stderr
            st = json.loads(r.stdout)
            if st["segments"] > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert mine["kind"] == store and st["store"] == store and st["persist"]["store_kind"] == store
    if store == "file":
        assert mine["granularity"] is None and st["pmem_granularity"] == ""
    else:
        assert mine["granularity"] in ("byte", "cache-line", "page")
        assert st["pmem_granularity"] == mine["granularity"]
    if force:
        assert mine["granularity"] == "cache-line"


def test_a_new_group_at_earliest_starts_at_the_stores_first_record(ns, tmp_path):
    """A walkthrough (2026-11-30): on a persisted stream a new group at "earliest" began at
    the ring's oldest record, not the store's first (as Kafka's earliest is the log's
    start), in Python and in `tail --group`; and a group at 0 counted the records deleted
    below the watermark as lost.  Both start in the store now; deleted records are said
    to be deleted, not lost."""
    data = str(tmp_path / "data")
    shmbus.create("g", capacity="16K", namespace=ns)
    n = 1000  # ~10 rings of 16K
    with shmbus.Persister("g", data_dir=data, namespace=ns) as per, \
            shmbus.Producer("g", namespace=ns) as p:
        for i in range(n):
            p.publish(b"r%d" % i + b"." * 100)
        per.flush(timeout=10)
        assert shmbus.stat("g", namespace=ns)["oldest_seq"] > 100
        with shmbus.Consumer("g", group="py", start="earliest", namespace=ns) as c:
            assert [r.seq for r in c.iter(idle_timeout=0.5)] == list(range(n))
            assert c.lost == 0
        r = cli("tail", "g", "--namespace", ns, "--group", "cli", "--from", "earliest",
                "--count", 3)
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().split() == ["r0" + "." * 100, "r1" + "." * 100, "r2" + "." * 100]
        assert r.stderr.endswith(b"reading them from the store (nothing lost)\n"), r.stderr
        r = cli("delete", "g", "--before", 50, "--namespace", ns, "--data-dir", data)
        assert r.returncode == 0, r.stderr
        r = cli("tail", "g", "--namespace", ns, "--group", "atzero", "--from", 0, "--count", 1)
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().split() == ["r50" + "." * 100]
        assert b"records 0..49 were deleted (not a loss)" in r.stderr, r.stderr
        assert b"lost" not in r.stderr.replace(b"not a loss", b""), r.stderr
        with shmbus.Consumer("g", group="py0", start=0, namespace=ns) as c:
            assert [r.seq for r in c.iter(idle_timeout=0.5)] == list(range(50, n))
