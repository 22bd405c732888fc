"""stat(): a stream's state, rates measured over an interval, and a capacity plan.

The fields and their arithmetic are those of `shmbus stat --json` (tools/cmd_stat.cc);
the rates and the plan are computed here from two StreamInfo snapshots, as the CLI does.
"""

import time

from . import _shmbus
from .errors import InvalidArgumentError

# What one record costs besides its payload (tools/cmd_stat.cc): a 32-byte frame,
# 8-aligned, in the store; a 32-byte header, 32-aligned, in the ring.
_STORE_OVERHEAD = 36.0
_RING_OVERHEAD = 48.0


def _seconds(value, what, allow_none):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds" + (" or None" if allow_none else ""))
    if not value >= 0:
        raise InvalidArgumentError(f"{what} must be >= 0 seconds")
    return float(value)


def stat(name, *, namespace=None, interval=None, stall=1.0):
    """Returns a stream's state as a dict with the fields of ``shmbus stat --json``.

    Snapshot: stream, namespace, layout_version, capacity, max_record, created_ns,
    next_seq, oldest_seq, tail_pos, records_published, bytes_published, abandoned,
    aborted, producer_waits, producer_full, tail_lost, evictions, abandon_timeout_ms,
    consumer_dead_timeout_ms; persistence: persist (None, or store_dir, store_kind,
    hold_producers, sync, flush_interval_ns, retention_age_ns, retention_bytes,
    segment_bytes), durable_seq, oldest_persisted_seq, deleted_below, persister_beat_ns,
    store, pmem_granularity, disk_bytes, segments, deleted_records, deleted_bytes;
    producers (list of {pid, alive, start_ns, last_active_ns, records, bytes}); consumers
    (list of {name, durable, pid, alive, evicted, next_seq, lag, last_active_ns,
    mu_records_per_s}).  Counters are read racily: a snapshot, not a transaction.

    Rates (None without ``interval``; interval_s is then 0.0): with ``interval`` seconds
    it takes two snapshots that far apart and returns the second with interval_s
    (measured), lambda_records_per_s (growth of next_seq), lambda_bytes_per_s (of
    bytes_published), rho_records_per_s / rho_bytes_per_s (records and bytes deleted
    from the store per second) and, for each consumer present in both snapshots,
    mu_records_per_s (growth of its next_seq).  It blocks for ``interval`` seconds.

    Plan: retention_s (the store's retention age, 0 = none), stall_s (= ``stall``),
    ring_bytes_for_stall (ring bytes that absorb a consumer stall of ``stall`` seconds
    at the measured rate) and projected_store_bytes (store size at the measured rate
    over the retention, capped by retention bytes; None when not persisted or unbounded).
    """
    interval = _seconds(interval, "interval", allow_none=True)
    stall = _seconds(stall, "stall", allow_none=False)
    if interval == 0:
        interval = None  # as the CLI's --interval 0: one snapshot, no rates
    if interval is None:
        info = _shmbus._stat(name, namespace)
        rates = None
    else:
        t0 = time.monotonic()
        first = _shmbus._stat(name, namespace)
        time.sleep(interval)
        info = _shmbus._stat(name, namespace)
        rates = _rates(first, info, time.monotonic() - t0)
    _add_rates_and_plan(info, rates, stall)
    return info


def _rates(before, after, dt):
    def per_s(a, b):
        return (b - a) / dt if b >= a else 0.0

    old = {(c["name"], c["durable"]): c for c in before["consumers"]}
    return {
        "interval_s": dt,
        "lambda_records_per_s": per_s(before["next_seq"], after["next_seq"]),
        "lambda_bytes_per_s": per_s(before["bytes_published"], after["bytes_published"]),
        "rho_records_per_s": per_s(before["deleted_records"], after["deleted_records"]),
        "rho_bytes_per_s": per_s(before["deleted_bytes"], after["deleted_bytes"]),
        "mu": [
            None if (c["name"], c["durable"]) not in old
            else per_s(old[(c["name"], c["durable"])]["next_seq"], c["next_seq"])
            for c in after["consumers"]
        ],
    }


def _add_rates_and_plan(info, rates, stall):
    persist = info["persist"]
    retention_s = persist["retention_age_ns"] / 1e9 if persist else 0.0
    projected = ring_for_stall = None
    if rates is not None:
        store_rate = rates["lambda_bytes_per_s"] + rates["lambda_records_per_s"] * _STORE_OVERHEAD
        ring_rate = rates["lambda_bytes_per_s"] + rates["lambda_records_per_s"] * _RING_OVERHEAD
        if persist and (retention_s > 0 or persist["retention_bytes"] > 0):
            projected = store_rate * retention_s if retention_s > 0 else float("inf")
            if persist["retention_bytes"] > 0:
                projected = min(projected, float(persist["retention_bytes"]))
        ring_for_stall = ring_rate * stall
    info["retention_s"] = retention_s
    info["stall_s"] = stall
    info["projected_store_bytes"] = projected
    info["ring_bytes_for_stall"] = ring_for_stall
    for key in ("rho_records_per_s", "rho_bytes_per_s", "lambda_records_per_s", "lambda_bytes_per_s"):
        info[key] = rates[key] if rates else None
    info["interval_s"] = rates["interval_s"] if rates else 0.0
    for i, c in enumerate(info["consumers"]):
        c["mu_records_per_s"] = rates["mu"][i] if rates else None
