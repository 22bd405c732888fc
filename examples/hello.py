#!/usr/bin/python3
"""examples/hello.py: publish three records and read them back with /usr/bin/python3.

    python3 examples/hello.py [NAMESPACE]

(`apt install ./shmbus_*.deb` puts the package on Debian's path; from another prefix,
PYTHONPATH=PREFIX/lib/python3/dist-packages.)"""
import sys

import shmbus

ns = sys.argv[1] if len(sys.argv) > 1 else None
shmbus.create("hello", capacity="1M", exist_ok=True, namespace=ns)
try:
    with shmbus.Producer("hello", namespace=ns) as p:
        for word in (b"one", b"two", b"three"):
            p.publish(word, type=1)
    with shmbus.Consumer("hello", start="earliest", namespace=ns) as c:
        got = [bytes(rec.data) for rec in c.iter(idle_timeout=5.0, max_records=3)]
    print("read", b" ".join(got).decode())
    sys.exit(0 if got == [b"one", b"two", b"three"] else 1)
finally:
    shmbus.remove("hello", namespace=ns)
