"""Exceptions raised by shmbus.

Every error the library reports is a :class:`shmbus.Error`; the subclass says what went
wrong, and the message (from the C++ library) says what to do about it.  Where a
builtin exception means the same thing, the shmbus class also derives from it, so that
``except FileNotFoundError`` or ``except ValueError`` keep working:

==========================  ===========================  ==================================
shmbus class                also a                       raised when
==========================  ===========================  ==================================
``InvalidArgumentError``    ``ValueError``               a bad name, size, option or start
``RecordTooLargeError``     ``ValueError``               a payload above the stream's
                                                         ``max_record`` (or a batch above
                                                         half the ring)
``NotFoundError``           ``FileNotFoundError``        the stream does not exist
``ExistsError``             ``FileExistsError``          create() of an existing stream
``PermissionDeniedError``   ``PermissionError``          the shm object's mode forbids it
``NoSpaceError``            ``OSError``                  /dev/shm is too small
``IoError``                 ``OSError``                  any other system error
``TimeoutError``            ``builtins.TimeoutError``    a bounded set-up wait ran out
``IncompatibleError``                                    not a shmbus stream, or another
                                                         layout version
``CorruptError``                                         damaged or truncated shared memory
``BusyError``                                            a consumer group held by a live
                                                         process, remove() of a stream in
                                                         use, no free producer/consumer slot
``FullError``                                            no room in the ring in time
``AbandonedError``                                       a claim was declared dead (it was
                                                         not committed within the stream's
                                                         abandon timeout)
``LappedError``                                          a tailing consumer was overrun
                                                         (only with ``raise_on_lap=True``)
``EvictedError``                                         a durable group was evicted while
                                                         away and producers overwrote
                                                         records it had not read (``lost``)
``GapError``                                             records a replaying consumer
                                                         cannot deliver (deleted, never
                                                         persisted, corrupt); only with
                                                         ``raise_on_gap=True``
``NotPersistedError``                                    publish_durable / wait_durable: the
                                                         persister recorded the record as lost
``ClosedError``                                          use of a closed Producer, Consumer
                                                         or finished Claim
==========================  ===========================  ==================================

A poll that times out is not an error: it returns ``None``.  A durability wait that
times out (``Producer.publish_durable``, ``Producer.wait_durable``) raises
``TimeoutError`` with ``seq``: the record, which *was* published.

Each instance carries ``code``: the library's error code as a short string
(``"not found"``, ``"busy"``, ...).  ``shmbus.TimeoutError`` is deliberately left out of
``shmbus.__all__`` so that ``from shmbus import *`` does not shadow the builtin.
"""

import builtins

__all__ = [
    "Error",
    "InvalidArgumentError",
    "RecordTooLargeError",
    "NotFoundError",
    "ExistsError",
    "PermissionDeniedError",
    "NoSpaceError",
    "IoError",
    "TimeoutError",
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


class Error(Exception):
    """Base class of every shmbus error.  ``code`` is the library's error code."""

    code: str = "error"


class InvalidArgumentError(Error, ValueError):
    """A bad stream, namespace or group name, size, mode, timeout or start position."""

    code = "invalid argument"


class RecordTooLargeError(Error, ValueError):
    """A payload larger than the stream's ``max_record``, or a batch larger than half the ring."""

    code = "too large"


class NotFoundError(Error, builtins.FileNotFoundError):
    """The stream (or consumer) does not exist in that namespace."""

    code = "not found"


class ExistsError(Error, builtins.FileExistsError):
    """The stream exists already (and ``exist_ok`` was false, or its capacity differs)."""

    code = "exists"


class PermissionDeniedError(Error, builtins.PermissionError):
    """The shared-memory object's permission bits forbid this access."""

    code = "permission denied"


class NoSpaceError(Error, OSError):
    """/dev/shm has too little free space for the stream."""

    code = "no space"


class IoError(Error, OSError):
    """Any other system error (the message names the call that failed)."""

    code = "I/O error"


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - a subclass of the builtin on purpose
    """A bounded wait ran out: set-up (a creator that never finished the stream), a
    persister's flush, or a durability wait.

    From ``Producer.publish_durable`` and ``Producer.wait_durable``, ``seq`` is the record
    that is not yet durable (published all the same: wait for it again with
    ``wait_durable(seq)``); otherwise ``seq`` is None.
    """

    code = "timeout"
    seq = None


class IncompatibleError(Error):
    """The object is not a shmbus stream, or it has another layout version."""

    code = "incompatible format"


class CorruptError(Error):
    """The stream's shared memory is damaged or truncated (remove it with force=True)."""

    code = "corrupt"


class BusyError(Error):
    """Held by a live process: a consumer group, a stream in use, or all slots taken."""

    code = "busy"


class FullError(Error):
    """No room in the ring: ``when_full="fail"``, or the wait for room timed out."""

    code = "full"


class AbandonedError(Error):
    """The record was declared dead by another process before it was committed.

    A claimed record must be committed within the stream's abandon timeout (1 s by
    default); after that, readers turn it into a gap and skip it.
    """

    code = "abandoned"


class LappedError(Error):
    """A tailing consumer was overrun by producers; ``lost`` records were skipped.

    Raised only by consumers opened with ``raise_on_lap=True``; the next poll resumes at
    the oldest record still in the ring.
    """

    code = "lapped"
    lost: int = 0


class EvictedError(Error):
    """A durable group lost records: ``lost`` of them, sequences ``from_seq`` up to (not
    including) ``to_seq``.

    Raised by the group's next read after it was evicted (its reader was gone longer than
    the stream's ``consumer_dead_timeout``) and producers overwrote records it had not read,
    also when a new process opens the group again.  The next read continues at the oldest
    record still there (``Consumer.lost`` counts them).  On a persisted stream the group
    reads those records from the store instead, and nothing is raised unless the store
    lacks some of them (then ``lost`` says how many).
    """

    code = "evicted"
    lost: int = 0
    from_seq: int = 0
    to_seq: int = 0


class GapError(Error):
    """Records ``from_seq`` up to (not including) ``to_seq`` will never be delivered.

    Raised by a replaying consumer (a Consumer without a group on a persisted stream)
    opened with ``raise_on_gap=True``, when the store and the ring no longer hold those
    records; ``reason`` says why: "deleted" (retention or ``shmbus delete``), "not
    persisted" (they left the ring while no persister stored them), "corrupt in the
    store: ...", or "not in the store".  The consumer has moved past the gap already: the
    next read continues at ``to_seq``.  Without ``raise_on_gap`` gaps are skipped and
    counted in ``Consumer.gaps`` (the last one in ``Consumer.last_gap``).
    """

    code = "gap"

    def __init__(self, from_seq, to_seq, reason):
        super().__init__(from_seq, to_seq, reason)  # args: picklable as GapError(*args)
        self.from_seq = from_seq
        self.to_seq = to_seq
        self.reason = reason

    def __str__(self):
        return f"records {self.from_seq}..{self.to_seq - 1} will not be delivered: {self.reason}"


class NotPersistedError(Error):
    """The record will never be durable: the persister recorded it as lost.

    Raised by ``Producer.publish_durable`` / ``wait_durable`` on a stream persisted with
    ``hold_producers=False`` (``--let-go``) whose persister was away while the ring moved
    past the record.  ``seq`` is the record's sequence number.  A durability
    acknowledgement is never given for such a record.
    """

    code = "not_persisted"
    seq: int = 0


class ClosedError(Error):
    """The Producer, Consumer, Claim or Persister was closed or stopped (or was made
    before ``fork()``)."""

    code = "closed"
