"""stat(): a stream's state, rates measured over an interval, and a capacity plan.

The document, its arithmetic and its JSON are the C++ library's (shmbus::stat,
tools/stat/include/shmbus/stat.h: compute_stat, stat_json), the same code that prints
`shmbus stat --json`: this module only checks the arguments and
parses the JSON, so the fields are those of the CLI by construction.
"""

import json

from . import _shmbus
from .errors import InvalidArgumentError


def _seconds(value, what, allow_none):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds" + (" or None" if allow_none else ""))
    if not value >= 0:
        raise InvalidArgumentError(f"{what} must be >= 0 seconds")
    return float(value)


def stat(name, *, namespace=None, interval=None, stall=1.0):
    """Returns a stream's state as a dict: ``json.loads`` of ``shmbus stat --json``.

    Snapshot: stream, namespace, layout_version, capacity, max_record, created_ns,
    next_seq, oldest_seq, tail_pos, records_published, bytes_published, abandoned,
    aborted, producer_waits, producer_full, tail_lost, evictions, abandon_timeout_ms,
    consumer_dead_timeout_ms, evicted_lost, consumer_retention_ms; persistence: persist (None, or store_dir, store_kind,
    hold_producers, sync, flush_interval_ns, retention_age_ns, retention_bytes,
    segment_bytes), durable_seq, oldest_persisted_seq, deleted_below, persister_beat_ns,
    store, pmem_granularity, disk_bytes, segments, store_errors, deleted_records, deleted_bytes;
    producers (list of {pid, alive, start_ns, last_active_ns, records, bytes}); consumers
    (list of {name, durable, pid, alive, evicted, next_seq, lag, last_active_ns,
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
    """
    interval = _seconds(interval, "interval", allow_none=True)
    stall = _seconds(stall, "stall", allow_none=False)
    # interval 0 (or None), as the CLI's --interval 0: one snapshot, no rates.
    return json.loads(_shmbus._stat_json(name, namespace, interval or 0.0, stall))
