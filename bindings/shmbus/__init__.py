"""shmbus: a shared-memory stream bus for Python.

Streams live in POSIX shared memory (/dev/shm); any number of producers and consumers in
any processes (C++ or Python) attach to them by name::

    import shmbus

    shmbus.create("ticks", capacity="64M", exist_ok=True)
    with shmbus.Producer("ticks") as p:
        seq = p.publish(b"payload", type=7)
    with shmbus.Consumer("ticks", group="analytics", start="earliest") as c:
        for rec in c.iter(idle_timeout=1.0):
            print(rec.seq, rec.type, bytes(rec.data))

asyncio: ``await consumer.poll_async(timeout)`` and ``async for rec in consumer.aiter()``
wait without blocking the event loop (see shmbus/_aio.py).

Persistence: ``shmbus.Persister("ticks", data_dir=...)`` stores a stream's records in
segment files (as ``shmbus persist`` does); a Consumer without a group then replays
from the store what the ring no longer holds, and ``Producer.publish_durable`` waits
until a record is durable.

Every name lives in a namespace: the ``namespace`` argument of each call, else the
SHMBUS_NAMESPACE environment variable, else "default" (see :func:`resolve_namespace`).
Errors are :class:`shmbus.Error` subclasses (see :mod:`shmbus.errors`).  See README.md
next to the sources for the full guide.
"""

from . import errors
from ._shmbus import (
    BatchIterator,
    Claim,
    Consumer,
    ConsumerIterator,
    Persister,
    Producer,
    Record,
    __version__,
    create,
    ls,
    parse_size,
    remove,
    resolve_data_dir,
    resolve_namespace,
)
from . import _aio
from ._stat import ConsumerStat, PersistStat, ProducerStat, StreamStat, stat
from .errors import (
    AbandonedError,
    BusyError,
    ClosedError,
    CorruptError,
    Error,
    ExistsError,
    IncompatibleError,
    InvalidArgumentError,
    IoError,
    LappedError,
    EvictedError,
    NoSpaceError,
    NotFoundError,
    PermissionDeniedError,
    RecordTooLargeError,
    TimeoutError,  # noqa: A004 - a subclass of the builtin; not in __all__
    FullError,
    GapError,
    NotPersistedError,
)

for _obj in (BatchIterator, Claim, Consumer, ConsumerIterator, Persister, Producer):
    _obj.__module__ = "shmbus"
del _obj

# asyncio (shmbus/_aio.py): awaited polls that run the consumer's wait in a worker thread.
# poll/read_batch/seek/commit/close first join a slice a cancelled poll_async() left.
_aio.install(Consumer)

__all__ = [
    "__version__",
    "create",
    "remove",
    "ls",
    "stat",
    "StreamStat",
    "PersistStat",
    "ProducerStat",
    "ConsumerStat",
    "resolve_namespace",
    "parse_size",
    "resolve_data_dir",
    "Persister",
    "Producer",
    "Claim",
    "Consumer",
    "ConsumerIterator",
    "BatchIterator",
    "Record",
    "errors",
    "Error",
    "InvalidArgumentError",
    "RecordTooLargeError",
    "NotFoundError",
    "ExistsError",
    "PermissionDeniedError",
    "NoSpaceError",
    "IoError",
    "IncompatibleError",
    "CorruptError",
    "BusyError",
    "FullError",
    "AbandonedError",
    "LappedError",
    "EvictedError",
    "GapError",
    "NotPersistedError",
    "ClosedError",
]
