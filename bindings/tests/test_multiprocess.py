"""Separate processes: two Python producers, two Python consumers, checksums.

Every record carries (producer id, counter, crc32 of its body).  Each consumer checks
the CRC of every record, that each producer's counters arrive as 0, 1, 2, ... (no loss,
no duplicate, order kept), and reports an order-independent checksum of all records,
which must equal the producers' own.  The ring is small (64K) so that producers wrap it
many times and wait for the consumers.
"""

import json
import subprocess

import shmbus
from conftest import spawn_python

N = 200_000  # records per producer

PRODUCER = r"""
import json, os, struct, sys, zlib, shmbus
ns, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def record(i):
    body = os.urandom(8 + (i * 7 + pid * 13) % 200)
    head = struct.pack("<IQ", pid, i)
    return head + struct.pack("<I", zlib.crc32(head + body)) + body
total = 0
with shmbus.Producer("s", namespace=ns, full_timeout=60) as p:
    i = 0
    while i < n:
        mode = i % 3
        if mode == 0:  # publish
            r = record(i); p.publish(r, type=pid); total ^= zlib.crc32(r); i += 1
        elif mode == 1:  # a batch of up to 10
            batch = [record(j) for j in range(i, min(n, i + 10))]
            p.publish_batch(batch, type=pid)
            for r in batch: total ^= zlib.crc32(r)
            i += len(batch)
        else:  # claim, fill in place
            r = record(i)
            with p.claim(len(r), type=pid) as claim:
                claim.data[:] = r
            total ^= zlib.crc32(r); i += 1
print(json.dumps({"xor": total}), flush=True)
"""

CONSUMER = r"""
import json, struct, sys, zlib, shmbus
ns, group, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
nxt, count, total, bad = {}, 0, 0, []
with shmbus.Consumer("s", group=group, start="earliest", namespace=ns) as c:
    print("ready", flush=True)
    while count < expected:
        batch = c.read_batch(500, timeout=30)
        if not batch:
            bad.append("timeout"); break
        for r in batch:
            d = r.data
            pid, i = struct.unpack_from("<IQ", d)
            (crc,) = struct.unpack_from("<I", d, 12)
            if zlib.crc32(bytes(d[:12]) + bytes(d[16:])) != crc or r.type != pid:
                bad.append(f"crc seq {r.seq}")
            if nxt.get(pid, 0) != i:
                bad.append(f"producer {pid}: got {i}, expected {nxt.get(pid, 0)}")
            nxt[pid] = i + 1
            total ^= zlib.crc32(d)
            count += 1
print(json.dumps({"count": count, "xor": total, "next": nxt, "bad": bad[:5]}), flush=True)
"""


def test_two_producers_two_consumers_no_loss_no_duplicates(ns):
    shmbus.create("s", capacity="64K", namespace=ns)
    consumers = [spawn_python(CONSUMER, ns, f"c{k}", 2 * N, stdout=subprocess.PIPE, text=True)
                 for k in range(2)]
    for c in consumers:  # groups registered before anything is published
        assert c.stdout.readline().strip() == "ready"
    producers = [spawn_python(PRODUCER, ns, k, N, stdout=subprocess.PIPE, text=True)
                 for k in (1, 2)]
    prod = [json.loads(p.communicate(timeout=300)[0]) for p in producers]
    cons = [json.loads(c.communicate(timeout=300)[0]) for c in consumers]
    assert all(p.returncode == 0 for p in producers + consumers)
    expected_xor = prod[0]["xor"] ^ prod[1]["xor"]
    for c in cons:
        assert c["bad"] == []
        assert c["count"] == 2 * N
        assert c["next"] == {"1": N, "2": N}
        assert c["xor"] == expected_xor
    st = shmbus.stat("s", namespace=ns)
    assert st["next_seq"] == 2 * N and st["records_published"] == 2 * N
    assert st["producer_waits"] > 0  # the 64K ring really was a constraint
