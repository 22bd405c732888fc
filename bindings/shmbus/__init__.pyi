"""Type stubs for shmbus (the extension module _shmbus and the pure-Python parts)."""

import datetime
import os
import sys
from types import TracebackType
from typing import Any, AsyncIterator, Iterable, Iterator, Literal, Optional, TypedDict, Union

from . import errors as errors
from .errors import (
    AbandonedError as AbandonedError,
    BusyError as BusyError,
    ClosedError as ClosedError,
    CorruptError as CorruptError,
    Error as Error,
    ExistsError as ExistsError,
    FullError as FullError,
    GapError as GapError,
    IncompatibleError as IncompatibleError,
    InvalidArgumentError as InvalidArgumentError,
    IoError as IoError,
    LappedError as LappedError,
    EvictedError as EvictedError,
    NoSpaceError as NoSpaceError,
    NotFoundError as NotFoundError,
    NotPersistedError as NotPersistedError,
    PermissionDeniedError as PermissionDeniedError,
    RecordTooLargeError as RecordTooLargeError,
    TimeoutError as TimeoutError,
)

__version__: str

# Anything exporting a C-contiguous buffer: bytes, bytearray, memoryview, numpy.ndarray,
# array.array, mmap.mmap...
_BufferLike = Union[bytes, bytearray, memoryview, Any]
_Size = Union[int, str]
_Start = Union[None, Literal["earliest", "latest", "committed"], str, int, datetime.datetime]
_Wait = Literal["block", "yield", "spin"]
_NameState = Literal["same", "removed", "replaced"]

def resolve_namespace(namespace: Optional[str] = None) -> str:
    """The namespace a call uses: `namespace`, else $SHMBUS_NAMESPACE, else "default"."""

def parse_size(text: str) -> int:
    """ "4096", "64K", "16M", "1G" (powers of 1024) -> bytes."""

def create(
    name: str,
    capacity: _Size = "1M",
    *,
    exist_ok: bool = False,
    max_record: Optional[_Size] = None,
    mode: int = 0o600,
    namespace: Optional[str] = None,
    abandon_timeout: float = 1.0,
    consumer_dead_timeout: float = 2.0,
    trust_owner: Optional[int] = None,
    data_dir: Union[None, str, os.PathLike[str]] = None,
    fresh: bool = False,
    consumer_retention: Optional[float] = None,
    single_producer: bool = False,
) -> None:
    """Creates a stream: a ring of `capacity` bytes (power of two, from 4K) in /dev/shm.

    max_record: largest payload (None: capacity/8).  exist_ok: accept an existing stream
    of the same capacity that belongs to you (or to the uid trust_owner).  Raises
    ExistsError, PermissionError, InvalidArgumentError, NoSpaceError.
    """

def remove(name: str, *, force: bool = False, namespace: Optional[str] = None) -> None:
    """Removes a stream; BusyError while live processes use it, unless `force`."""

def ls(
    namespace: Optional[str] = None,
    *,
    stored: bool = False,
    data_dir: Union[None, str, os.PathLike[str]] = None,
) -> list[str]:
    """The streams of a namespace (their rings), sorted; ``stored=True`` also lists those
    that exist only as their store in the data dir (stat() gives ``st["ring"]`` False)."""

class _Fields:
    """Mapping-style read access kept from when stat() returned a dict."""

    def __getitem__(self, key: str) -> Any: ...
    def __contains__(self, key: object) -> bool: ...
    def keys(self) -> list[str]: ...
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def to_dict(self) -> dict[str, Any]:
        """The document as a dict, exactly as json.loads of `shmbus stat --json`."""

class ProducerStat(_Fields):
    """A producer registered in the stream (a frozen dataclass)."""

    pid: int
    alive: bool
    start_ns: int
    last_active_ns: int
    records: int
    bytes: int

class ConsumerStat(_Fields):
    """A consumer registered in the stream (a frozen dataclass)."""

    name: str
    durable: bool
    pid: int
    alive: bool
    evicted: bool
    expired: bool
    next_seq: int
    lag: int
    last_active_ns: int
    mu_records_per_s: Optional[float]
    owed_from: Optional[int]

class PersistStat(_Fields):
    """The persistence settings of the stream header (a frozen dataclass)."""

    store_dir: str
    store_kind: str
    hold_producers: bool
    sync: bool
    secure_delete: bool
    flush_interval_ns: int
    retention_age_ns: int
    retention_bytes: int
    segment_bytes: int

class StreamStat(_Fields):
    """What stat() returns: the fields of `shmbus stat --json` (a frozen dataclass)."""

    stream: str
    namespace: str
    layout_version: int
    single_producer: bool
    capacity: int
    max_record: int
    created_ns: int
    next_seq: int
    oldest_seq: int
    tail_pos: int
    records_published: int
    bytes_published: int
    abandoned: int
    aborted: int
    producer_waits: int
    producer_full: int
    tail_lost: int
    evictions: int
    abandon_timeout_ms: int
    consumer_dead_timeout_ms: int
    evicted_lost: int
    consumer_retention_ms: int
    persist: Optional[PersistStat]
    durable_seq: int
    oldest_persisted_seq: int
    deleted_below: int
    persister_beat_ns: int
    store: str  # "file", "pmem", or "" when not persisted
    pmem_granularity: str  # "byte", "cache-line", "page" (Persister.stats()'s names), or ""
    disk_bytes: int
    segments: int
    store_errors: int
    deleted_records: int
    deleted_bytes: int
    retention_s: float
    stall_s: float
    projected_store_bytes: Optional[float]
    ring_bytes_for_stall: Optional[float]
    rho_records_per_s: Optional[float]
    rho_bytes_per_s: Optional[float]
    interval_s: float
    lambda_records_per_s: Optional[float]
    lambda_bytes_per_s: Optional[float]
    producers: list[ProducerStat]
    consumers: list[ConsumerStat]
    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "StreamStat":
        """A StreamStat from the document (json.loads of `shmbus stat --json`)."""

def stat(
    name: str,
    *,
    namespace: Optional[str] = None,
    interval: Optional[float] = None,
    stall: float = 1.0,
    data_dir: Union[None, str, os.PathLike[str]] = None,
) -> StreamStat:
    """A stream's state, with the fields of `shmbus stat --json` (a StreamStat:
    `.to_dict()` is that document; `st["key"]` reads a field as the dict did).

    With `interval` seconds: two snapshots that far apart, and the rates between them
    (lambda, rho, per consumer mu) and the plan (ring_bytes_for_stall for a consumer
    stall of `stall` seconds, projected_store_bytes).
    """

class StoreStats(TypedDict):
    kind: Literal["file", "pmem"]
    granularity: Optional[Literal["byte", "cache-line", "page"]]
    bytes_on_disk: int
    segments: int
    oldest_seq: int
    end_seq: int
    durable_seq: int
    deleted_below: int
    records_appended: int
    bytes_appended: int
    lost_marked: int
    flushes: int
    torn_bytes_dropped: int
    deleted_segments: int
    deleted_records: int
    deleted_bytes: int
    last_delete_ns: int
    last_error: Optional[str]

class PersisterStats(TypedDict):
    running: bool
    records: int
    bytes: int
    lost: int
    durable_seq: int
    disk_full_waits: int
    last_error: Optional[str]
    store: StoreStats

def resolve_data_dir(data_dir: Union[None, str, os.PathLike[str]] = None) -> str:
    """The store root: `data_dir`, else $SHMBUS_DATA_DIR, else ~/.local/share/shmbus, else
    (root without HOME) /var/lib/shmbus."""

class Persister:
    """Persists a stream (ring -> segment files in DATA_DIR/NAMESPACE/STREAM/) on a thread
    of this process, as `shmbus persist` does.  Stops at stop(), at the end of a `with`
    block, or when dropped.  Keep SIGXFSZ ignored (CPython does at startup)."""

    def __init__(
        self,
        stream: str,
        *,
        data_dir: Union[None, str, os.PathLike[str]] = None,
        store: Literal["file", "pmem"] = "file",
        durability: Literal["async", "sync"] = "async",
        flush_interval: float = 0.01,
        retention_age: Optional[float] = None,
        retention_bytes: Optional[_Size] = None,
        segment_bytes: _Size = "64M",
        roll_age: Optional[float] = 3600.0,
        hold_producers: bool = True,
        secure_delete: bool = False,
        namespace: Optional[str] = None,
        detach_on_stop: bool = False,
        store_moved: Optional[Literal["move", "new"]] = None,
    ) -> None: ...
    @staticmethod
    def start(
        stream: str,
        *,
        data_dir: Union[None, str, os.PathLike[str]] = None,
        store: Literal["file", "pmem"] = "file",
        durability: Literal["async", "sync"] = "async",
        flush_interval: float = 0.01,
        retention_age: Optional[float] = None,
        retention_bytes: Optional[_Size] = None,
        segment_bytes: _Size = "64M",
        roll_age: Optional[float] = 3600.0,
        hold_producers: bool = True,
        secure_delete: bool = False,
        namespace: Optional[str] = None,
        detach_on_stop: bool = False,
        store_moved: Optional[Literal["move", "new"]] = None,
    ) -> "Persister":
        """The same as Persister(stream, ...)."""
    def flush(self, timeout: Optional[float] = 30.0) -> None:
        """Returns once everything read from the ring so far is durable (TimeoutError,
        NoSpaceError, IoError; ClosedError once stopped)."""
    def stop(self, detach: Optional[bool] = None) -> None:
        """Makes everything read durable, stops the thread, releases the store.  Idempotent."""
    def stats(self) -> PersisterStats:
        """Counters since start (also after stop())."""
    @property
    def running(self) -> bool: ...
    @property
    def stream(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def data_dir(self) -> str: ...
    @property
    def store_dir(self) -> str: ...
    def __enter__(self) -> "Persister": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Record:
    """A record read from a stream.  Supports the buffer protocol and len()."""

    @property
    def seq(self) -> int:
        """Sequence number: consecutive per stream, from 0."""
    @property
    def timestamp_ns(self) -> int:
        """Publish time, nanoseconds since the Unix epoch."""
    @property
    def type(self) -> int:
        """The 32-bit type tag given to publish()."""
    @property
    def data(self) -> memoryview:
        """The payload, read-only.

        Durable consumers: a zero-copy view into the ring whose content is valid until
        the consumer commits past it (auto_commit: the next poll/read_batch/iteration
        step; always: commit(), close()); then `data`/`bytes()` raise ValueError, and
        views or arrays obtained before may show a later record.  Tailing consumers and
        copy=True: a view of a private copy, valid forever.
        """
    @property
    def expired(self) -> bool:
        """True once the payload can no longer be read (see data)."""
    def bytes(self) -> bytes:
        """A copy of the payload, valid forever."""
    def __bytes__(self) -> bytes:
        """bytes(rec): the same as bytes(), without a buffer export (which pins the record)."""
    def __len__(self) -> int: ...
    if sys.version_info >= (3, 12):  # PEP 688: Python 3.11 has no __buffer__ (the buffer protocol is C-level)
        def __buffer__(self, flags: int) -> memoryview: ...

class Claim:
    """A reserved record to fill in place: `with producer.claim(n) as claim:` gives the
    claim; the block's end commits it (all of it, unless committed or aborted inside),
    or aborts it (a gap) when the block raises.  Commit within the abandon timeout (1 s).
    Indexing the claim (`claim[:4] = ...`, the old `as buf` spelling) is deprecated."""

    @property
    def seq(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def done(self) -> bool:
        """True once committed or aborted."""
    @property
    def data(self) -> memoryview:
        """Writable memoryview of the payload in the ring (ClosedError once done)."""
    def commit(self, size: Optional[int] = None) -> int:
        """Publishes the record (all of it, or its first `size` bytes); returns its
        sequence number (AbandonedError if too late).  The memoryview is released."""
    def abort(self) -> None:
        """Turns the record into a gap that readers skip."""
    def __enter__(self) -> "Claim": ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: Union[int, slice]) -> Any:
        """Deprecated (DeprecationWarning): use claim.data[key]."""
    def __setitem__(self, key: Union[int, slice], value: Any) -> None:
        """Deprecated (DeprecationWarning): use claim.data[key] = value."""
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Producer:
    """Publishes records to an existing stream (any number of producers per stream)."""

    def __init__(
        self,
        name: str,
        *,
        namespace: Optional[str] = None,
        when_full: Literal["wait", "fail"] = "wait",
        full_timeout: Optional[float] = 10.0,
        wait: _Wait = "block",
    ) -> None: ...
    def publish(self, data: _BufferLike, type: int = 0) -> int:
        """Copies one record into the stream; returns its sequence number."""
    def publish_batch(self, payloads: Iterable[_BufferLike], type: int = 0) -> int:
        """Publishes consecutive records in one step; returns the first sequence number."""
    def publish_durable(self, data: _BufferLike, type: int = 0, timeout: Optional[float] = 10.0) -> int:
        """publish() then wait_durable(): the sequence number, once the record is durable.
        TimeoutError (with .seq: the record is published, not yet durable)."""
    def wait_durable(self, seq: int, timeout: Optional[float] = 10.0) -> None:
        """Waits until record `seq` is durable in the stream's store (TimeoutError with .seq)."""
    def claim(self, size: int, type: int = 0) -> Claim:
        """Reserves `size` bytes for zero-copy filling."""
    def close(self) -> None:
        """Aborts open claims and detaches.  Idempotent."""
    @property
    def closed(self) -> bool: ...
    @property
    def name_state(self) -> _NameState:
        """'removed' / 'replaced' once the stream's name no longer means this producer's ring."""
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def max_record(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    def __enter__(self) -> "Producer": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class ConsumerIterator(Iterator[Record]):
    def __iter__(self) -> "ConsumerIterator": ...
    def __next__(self) -> Record: ...

class BatchIterator(Iterator[list[Record]]):
    def __iter__(self) -> "BatchIterator": ...
    def __next__(self) -> list[Record]: ...

class Consumer:
    """Reads every record of a stream: durable (group=...) or tailing (group=None).

    Without a group on a persisted stream it replays: from the store what the ring no
    longer holds, then the live ring.  Gaps are skipped and counted (gaps, last_gap), or
    raised as GapError with raise_on_gap=True.
    """

    def __init__(
        self,
        name: str,
        *,
        group: Optional[str] = None,
        start: _Start = None,
        namespace: Optional[str] = None,
        auto_commit: bool = True,
        copy: bool = False,
        read_only: bool = False,
        wait: _Wait = "block",
        raise_on_lap: bool = False,
        raise_on_gap: bool = False,
        data_dir: Union[None, str, os.PathLike[str]] = None,
    ) -> None: ...
    def poll(self, timeout: Optional[float] = None) -> Optional[Record]:
        """The next record, waiting up to `timeout` seconds (None: forever); None if none came."""
    def read_batch(self, max_records: int = 1000, timeout: Optional[float] = None) -> list[Record]:
        """Waits up to `timeout` for a first record, then takes what is there, up to max_records."""
    def iter(self, idle_timeout: Optional[float] = None, max_records: Optional[int] = None) -> ConsumerIterator:
        """Iterates; stops after `idle_timeout` seconds without a record, `max_records`, or close()."""
    def iter_batches(self, max_batch: int = 1024, idle_timeout: Optional[float] = None, max_records: Optional[int] = None) -> BatchIterator:
        """As iter(), in lists: each step waits for a first record, then takes what is there
        at once, up to max_batch, in one call.  A list's records stay valid until the next step."""
    def __iter__(self) -> ConsumerIterator:
        """iter(): waits forever (until close() from another thread, or Ctrl-C)."""
    async def poll_async(self, timeout: Optional[float] = None) -> Optional[Record]:
        """poll() for asyncio: the wait runs in a worker thread (in slices of 0.1 s), the
        event loop goes on and an idle wait uses no CPU.  A cancelled call's record (if
        its slice took one) is returned by the next poll_async()/aiter() step."""
    def aiter(self, idle_timeout: Optional[float] = None, max_records: Optional[int] = None) -> AsyncIterator[Record]:
        """`async for rec in consumer.aiter()`: iter() for asyncio (see poll_async)."""
    def seek(self, start: _Start) -> None:
        """Moves the consumer (a durable group: its committed position) to `start`."""
    def commit(self) -> None:
        """Durable: marks everything returned so far as consumed (expires those records)."""
    def close(self, commit: bool = True) -> None:
        """Commits (auto_commit; not with commit=False, nor when a ``with`` block raised), expires records, detaches.  Idempotent."""
    @property
    def closed(self) -> bool: ...
    @property
    def name_state(self) -> _NameState:
        """'removed' / 'replaced' once the stream's name no longer means this consumer's ring."""
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def group(self) -> Optional[str]: ...
    @property
    def durable(self) -> bool: ...
    @property
    def auto_commit(self) -> bool: ...
    @property
    def next_seq(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def lost_exact(self) -> bool:
        """Whether lost is exact (false once a lap passed gaps the ring no longer names)."""
    @property
    def gaps(self) -> int:
        """Sequences skipped: abandoned claims, and gaps a replaying consumer skipped."""
    @property
    def last_gap(self) -> Optional[tuple[int, int, str]]:
        """A replaying consumer's last gap: (from_seq, to_seq, reason), or None."""
    @property
    def replaying(self) -> bool:
        """True without a group on a persisted stream (reads the store, then the ring)."""
    @property
    def from_store(self) -> bool:
        """True while a replaying consumer reads the store."""
    def __enter__(self) -> "Consumer": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

__all__: list[str]
