"""stat(): a stream's state, rates measured over an interval, and a capacity plan.

The document, its arithmetic and its JSON are the C++ library's (shmbus::stat,
tools/stat/include/shmbus/stat.h: compute_stat, stat_json), the same code that prints
`shmbus stat --json`: this module only checks the arguments, parses the JSON and puts
it into frozen dataclasses (StreamStat, PersistStat, ProducerStat, ConsumerStat) whose
fields are the document's keys.  ``to_dict()`` gives the document back unchanged, and
``st["key"]`` still reads a field (stat() returned the dict itself before), so code
written against the dict keeps working.
"""

import collections.abc
import dataclasses
import json
from typing import Any, Optional

from . import _shmbus
from .errors import InvalidArgumentError


def _seconds(value, what, allow_none):
    if value is None and allow_none:
        return None
    if value is None:
        raise TypeError(f"{what} must be a number of seconds")
    # Every kind of number the other calls take (numpy's, an int of any size, ...).
    seconds = _shmbus._timeout(value, what, False)  # (None is no wait here, not forever)
    if seconds is None:  # an interval or a stall, never forever
        raise InvalidArgumentError(f"{what} must be a finite number of seconds")
    return seconds


class _Fields:
    """Mapping-style read access to a stat dataclass, for code written against the dict:
    ``st["next_seq"]``, ``"persist" in st``, ``st.keys()``, ``st.get(key, default)``,
    ``for key in st``, ``len(st)``, ``st.items()``, ``st.values()``, and
    ``isinstance(st, collections.abc.Mapping)``.  ``json.dumps`` takes only real dicts:
    ``json.dumps(st.to_dict())``."""

    __slots__ = ()

    def __getitem__(self, key):
        if not isinstance(key, str):
            raise TypeError(f"{type(self).__name__} keys are str, not {type(key).__name__}")
        if key in self._extra:
            return self._extra[key]
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key):
        return key in self._keys() or key in self._extra

    def keys(self):
        return list(self._keys()) + list(self._extra)

    def __iter__(self):  # the keys, as iterating the dict gave (sorted(st), list(st))
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def get(self, key, default=None):
        return self[key] if key in self else default

    def items(self):
        return [(k, self[k]) for k in self.keys()]

    def values(self):
        return [self[k] for k in self.keys()]

    def __eq__(self, other):
        # Equal to the same document as a dict too (stat() returned the dict before).
        if isinstance(other, dict):
            return self.to_dict() == other
        if type(other) is type(self):
            return self.to_dict() == other.to_dict()
        return NotImplemented

    __hash__ = None  # holds lists, as the dict did

    @classmethod
    def _keys(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @property
    def _extra(self):
        # Keys of the document this version does not know (a newer C++ side): kept so that
        # to_dict() gives back the whole document.
        return self.__dict__.get("_extra_keys", {})

    def to_dict(self) -> dict:
        """The document as a dict, exactly as json.loads of `shmbus stat --json`."""
        out = {}
        for key in self._keys():
            out[key] = _plain(getattr(self, key))
        out.update(self._extra)
        return out

    @classmethod
    def _from_dict(cls, doc: dict):
        if not isinstance(doc, dict):
            raise TypeError(f"{cls.__name__}: expected an object, got {type(doc).__name__}")
        known = set(cls._keys())
        nested = _NESTED.get(cls, {})
        args = {}
        for key in known:
            value = doc.get(key)
            kind = nested.get(key)
            if kind is not None and value is not None:
                value = [kind._from_dict(v) for v in value] if isinstance(value, list) else kind._from_dict(value)
            args[key] = value
        obj = cls(**args)
        extra = {k: v for k, v in doc.items() if k not in known}
        if extra:
            object.__setattr__(obj, "_extra_keys", extra)
        return obj


def _plain(value):
    if isinstance(value, _Fields):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# Read-only mappings as the dict was (a virtual subclass: the dataclasses keep their slots).
collections.abc.Mapping.register(_Fields)


@dataclasses.dataclass(frozen=True, eq=False)
class ProducerStat(_Fields):
    """A producer registered in the stream."""

    pid: int
    alive: bool
    start_ns: int
    last_active_ns: int
    records: int
    bytes: int


@dataclasses.dataclass(frozen=True, eq=False)
class ConsumerStat(_Fields):
    """A consumer (durable group or tailing reader) registered in the stream."""

    name: str
    durable: bool
    pid: int
    alive: bool
    evicted: bool
    # Nobody held the group for longer than the stream's consumer retention: forgotten,
    # its next holder starts it anew.
    expired: bool
    next_seq: int
    lag: int
    last_active_ns: int
    mu_records_per_s: Optional[float]
    # A durable group's loss not yet told to a holder: the records from this seq up to
    # next_seq left the ring unread; its next holder is told of them.  None: none.
    owed_from: Optional[int]


@dataclasses.dataclass(frozen=True, eq=False)
class PersistStat(_Fields):
    """The persistence settings in the stream header (None when not persisted)."""

    store_dir: str
    store_kind: str
    hold_producers: bool
    sync: bool
    secure_delete: bool
    flush_interval_ns: int
    retention_age_ns: int
    retention_bytes: int
    segment_bytes: int


@dataclasses.dataclass(frozen=True, eq=False)
class StreamStat(_Fields):
    """A stream's state, rates and plan: the fields of `shmbus stat --json` (see stat())."""

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
    store: str
    pmem_granularity: str
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
    def from_dict(cls, doc: dict) -> "StreamStat":
        """A StreamStat from the document (json.loads of `shmbus stat --json`)."""
        return cls._from_dict(doc)


_NESTED: dict[type, dict[str, Any]] = {
    StreamStat: {"persist": PersistStat, "producers": ProducerStat, "consumers": ConsumerStat},
}


def stat(name, *, namespace=None, interval=None, stall=1.0, data_dir=None):
    """Returns a stream's state as a StreamStat: the document of ``shmbus stat --json``
    as frozen dataclasses (``.to_dict()``: the dict ``json.loads`` gives; ``st["key"]``
    reads a field as the dict did).

    Snapshot: stream, namespace, layout_version, single_producer, capacity, max_record, created_ns,
    next_seq, oldest_seq, tail_pos, records_published, bytes_published, abandoned,
    aborted, producer_waits, producer_full, tail_lost, evictions, abandon_timeout_ms,
    consumer_dead_timeout_ms, evicted_lost, consumer_retention_ms; persistence: persist (None, or store_dir, store_kind,
    hold_producers, sync, secure_delete, flush_interval_ns, retention_age_ns, retention_bytes,
    segment_bytes), durable_seq, oldest_persisted_seq, deleted_below, persister_beat_ns,
    store, pmem_granularity, disk_bytes, segments, store_errors, deleted_records, deleted_bytes;
    producers (list of {pid, alive, start_ns, last_active_ns, records, bytes}); consumers
    (list of {name, durable, pid, alive, evicted, expired, next_seq, lag, last_active_ns,
    mu_records_per_s}).  Counters are read racily: a snapshot, not a transaction.

    Rates (None without ``interval``; interval_s is then 0.0): with ``interval`` seconds
    it takes two snapshots that far apart and returns the second with interval_s
    (measured), lambda_records_per_s (growth of next_seq), lambda_bytes_per_s (of
    bytes_published), rho_records_per_s / rho_bytes_per_s (records and bytes deleted
    from the store per second) and, for each consumer present in both snapshots,
    mu_records_per_s (growth of its next_seq).  It blocks for ``interval`` seconds
    (without the GIL; Ctrl-C interrupts it).

    Plan: retention_s (the store's retention age, 0 = none), stall_s (= ``stall``),
    ring_bytes_for_stall (ring bytes that absorb a consumer stall of ``stall`` seconds
    at the measured rate) and projected_store_bytes (store size at the measured rate
    over the retention, capped by retention bytes; None when not persisted or unbounded).

    Floats have the CLI's precision (three decimals).

    A stream that exists only as its store (``ls(stored=True)``; ``data_dir`` as for
    Persister says where): the store's part, with ``st["ring"]`` False and, when its range
    could not be read, ``st["store_range_error"]``.
    """
    interval = _seconds(interval, "interval", allow_none=True)
    stall = _seconds(stall, "stall", allow_none=False)
    # interval 0 (or None), as the CLI's --interval 0: one snapshot, no rates.
    return StreamStat.from_dict(json.loads(_shmbus._stat_json(name, namespace, interval or 0.0, stall, data_dir)))
