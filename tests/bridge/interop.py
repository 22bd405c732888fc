#!/usr/bin/python3
"""interop.py SHMBUS: the Kafka bridge against Debian's Kafka clients (kcat, kafka-python,
confluent-kafka) on `shmbus kafka-mock`: they read what `bridge out` wrote (consumer
groups included) and write what `bridge in` reads.  Exit 0 when every check holds."""
import json
import os
import subprocess
import sys

from confluent_kafka import Consumer as CkConsumer
from confluent_kafka import Producer as CkProducer
from kafka import KafkaConsumer, KafkaProducer

S = sys.argv[1]
env = dict(os.environ, SHMBUS_NAMESPACE="interop-%d" % os.getpid())
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def sh(*args, **kw):
    return subprocess.run([S, *args], env=env, capture_output=True, timeout=120, **kw)


mock = subprocess.Popen([S, "kafka-mock", "--topic", "test_topic", "--topic", "two:2"], env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    brokers = mock.stdout.readline().strip()
    check(brokers.startswith("127.0.0.1:"), "kafka-mock prints the bootstrap list first: " + brokers)
    sh("create", "out", "--capacity", "64K")
    sh("create", "in", "--capacity", "64K")
    values = ["record %d" % i for i in range(20)]
    p = sh("pub", "out", "--type", "3", input="\n".join(values) + "\n", text=True)
    check(p.returncode == 0, "pub")
    r = sh("bridge", "out", "out", "--brokers", brokers, "--topic", "test_topic", "--exit-at-end")
    check(r.returncode == 0, "bridge out --exit-at-end: " + r.stderr.decode())

    k = subprocess.run(["kcat", "-C", "-b", brokers, "-t", "test_topic", "-e", "-q"], capture_output=True,
                       text=True, timeout=60)
    check(k.stdout.splitlines() == values, "kcat -C -e prints the bridged payloads")

    c = KafkaConsumer("test_topic", bootstrap_servers=brokers, group_id="test_group",
                      auto_offset_reset="earliest", consumer_timeout_ms=10000)
    got = [(m.value.decode(), dict(m.headers)) for m in c]
    c.close()
    check([v for v, _ in got] == values, "kafka-python group test_group reads them in order")
    check(all(h.get("shmbus.type") == b"3" and h.get("shmbus.stream", b"").endswith(b"/out") for _, h in got),
          "kafka-python sees the shmbus headers")
    check([int(h["shmbus.seq"]) for _, h in got] == list(range(20)), "shmbus.seq 0..19 once each")

    ck = CkConsumer({"bootstrap.servers": brokers, "group.id": "ck_group", "auto.offset.reset": "earliest"})
    ck.subscribe(["test_topic"])
    ck_got = []
    for _ in range(100):
        m = ck.poll(0.5)
        if m is None or m.error():
            if len(ck_got) >= len(values):
                break
            continue
        ck_got.append(m.value().decode())
    ck.close()
    check(ck_got == values, "confluent-kafka group ck_group reads them in order")

    # The other way: Python producers write, bridge in reads.
    kp = KafkaProducer(bootstrap_servers=brokers)
    kp.send("test_topic", b"Hello, Kafka!")
    kp.flush()
    kp.close()
    cp = CkProducer({"bootstrap.servers": brokers})
    cp.produce("test_topic", b"from confluent", headers=[("shmbus.type", b"5")])
    cp.flush(30)
    del cp
    r = sh("bridge", "in", "test_topic", "--brokers", brokers, "--stream", "in", "--exit-at-end",
           "--group", "bridge_in_group")
    check(r.returncode == 0, "bridge in --exit-at-end: " + r.stderr.decode())
    t = sh("tail", "in", "--format", "json")
    recs = [json.loads(line) for line in t.stdout.decode().splitlines()]
    check([x["data"] for x in recs] == values + ["Hello, Kafka!", "from confluent"],
          "tail prints what kafka-python and confluent-kafka wrote, after the bridged records")
    check([x["type"] for x in recs] == [3] * 20 + [0, 5], "types: shmbus.type header, else --type (0)")

    # Consumer groups across clients: a kafka-python group on a 2-partition topic.
    sh("create", "two", "--capacity", "64K")
    sh("pub", "two", "--type", "1", input="a\nb\nc\n", text=True)
    r = sh("bridge", "out", "two", "--brokers", brokers, "--topic", "two", "--key", "type", "--exit-at-end")
    check(r.returncode == 0, "bridge out --key type: " + r.stderr.decode())
    c = KafkaConsumer("two", bootstrap_servers=brokers, group_id="g2", auto_offset_reset="earliest",
                      consumer_timeout_ms=10000)
    got = [(m.key, m.value) for m in c]
    c.close()
    check(got == [(b"1", b"a"), (b"1", b"b"), (b"1", b"c")], "--key type: key is the type, order kept")
finally:
    mock.terminate()
    rc = mock.wait(timeout=30)
    check(rc == 0, "kafka-mock exits 0 on SIGTERM")
    for s in ("out", "in", "two"):
        sh("rm", s, "--force")

sys.exit(1 if failures else 0)
