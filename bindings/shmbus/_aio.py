"""asyncio for Consumer: ``await consumer.poll_async(timeout)`` and
``async for rec in consumer.aiter()``.

Mechanism: the consumer's own blocking wait (a futex wait in the ring, or a store read
when replaying) runs in a worker thread, without the GIL, in bounded slices of
``_SLICE`` seconds.  The event loop awaits the slice's future, so it is never blocked,
and an idle consumer sleeps in the kernel (a few wake-ups a second, no spinning).  The
publish path is not touched: producers wake the futex as they do for a blocking poll(),
and pay nothing extra when nobody waits.  (The stream has no file descriptor the loop
could watch: adding an eventfd would put a syscall on every publish.)

Cancellation: the awaiting task is cancelled at once; the slice in flight cannot be
interrupted, but it ends within ``_SLICE`` seconds.  It stays attached to the consumer
(``_shmbus_slice``) and no second slice is started while one runs (one worker thread per
waiting consumer at most).  Rule: a record taken by such a background slice is never lost
nor reordered, whatever API is used next.  Every consumer operation first joins the slice
in flight (waits for it to end, at most ``_SLICE`` seconds) and takes its outcome:

- poll(), read_batch(), a step of iter()/``for rec in consumer`` or of iter_batches(),
  poll_async(), aiter() return the kept record before anything newer (an error the slice
  met is raised there; a durable consumer's read_batch()/iter_batches() step returns it
  alone);
- seek() drops it (the consumer moves anyway);
- commit() and close() commit only what was delivered to the caller: a durable consumer
  holding a kept record is rewound to it (``seek(kept.seq)``: the group's position becomes
  the kept record, everything before it, all delivered, is consumed), so that the group's
  next reader gets it again.  (With auto_commit=False close() commits nothing anyway.)

close() thus returns only once the slice has let go of the consumer: a group can be
reopened at once.  Nothing is left for asyncio to report as "never retrieved".
"""

import asyncio
import concurrent.futures
import os
import threading
import time

from . import _shmbus
from .errors import ClosedError

_SLICE = 0.1  # seconds: how late a cancelled wait's thread lets go of the consumer

_executor = None
_executor_pid = None
_executor_lock = threading.Lock()


def _pool():
    # One pool for every consumer: a worker per consumer waiting at the same moment;
    # idle workers sleep on the pool's queue.  A fork() child gets a pool of its own (the
    # parent's workers do not exist there: work queued to them would never run).
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=64, thread_name_prefix="shmbus-aio")
            _executor_pid = os.getpid()
        return _executor


_slot_lock = threading.Lock()  # clearing a consumer's _shmbus_slice: one taker per outcome


def _after_fork_in_child():
    # A lock held by a thread of the parent at fork() stays held in the child, where that
    # thread does not exist (a review: a child's first read could hang for ever).
    global _slot_lock, _executor_lock
    _slot_lock = threading.Lock()
    _executor_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

# The C++ methods, before install() wraps them.
_orig = {}
_raw_poll = None  # _orig["poll"], looked up once


def _clear(consumer, fut):
    """Whether this caller cleared the slot holding `fut` (then it owns the outcome: the
    C++ side no longer keeps a close() from committing the slice's record)."""
    with _slot_lock:
        if consumer.__dict__.get("_shmbus_slice") is not fut:
            return False
        consumer._shmbus_slice = None
        consumer._delivered()
        return True


def _closed_with_slice(consumer, fut):
    """A fork() child of a consumer with a slice: the slice's worker thread does not
    exist here and its future may never end (waiting hung: a review), and its lock may be
    held by that thread (so fut.done() is not asked).  The slot is dropped and ClosedError
    raised, as for every call in the child (and for a consumer closed in the parent,
    whose close() took its slice already)."""
    if consumer.closed:
        consumer.__dict__["_shmbus_slice"] = None
        raise ClosedError("consumer is closed (made before fork(), or closed)")


def _outcome(consumer, fut):
    """The outcome of a slice whose slot this caller cleared: its record (or None), or its
    error raised."""
    rec = fut.result()
    if rec is not None and consumer.closed:
        # A fork() child of a consumer that kept a record: the record is the parent's to
        # deliver (its close rewinds to it), not the child's (it got it, and the parent's
        # group delivered it again: a review).
        raise ClosedError("consumer is closed (made before fork(), or closed)")
    return rec


def _join(consumer):
    """Waits for the slice in flight (at most _SLICE s) and takes its outcome: the record
    it kept (None: none), or its error raised.  Thread: any; called first by every
    consumer operation (the iterator's step calls it from C++)."""
    while True:
        fut = consumer.__dict__.get("_shmbus_slice")
        if fut is None:
            return None
        _closed_with_slice(consumer, fut)
        concurrent.futures.wait([fut])
        if _clear(consumer, fut):
            return _outcome(consumer, fut)


def _join_quiet(consumer):
    """_join() for seek/commit/close: the kept record or None; the slice's error (a
    ClosedError, a lap...) is dropped: the operation goes on."""
    try:
        return _join(consumer)
    except Exception:  # noqa: BLE001 - retrieved and dropped on purpose
        return None


def _poll(self, timeout=None):
    # Inline the no-slice case of _join: poll() is called per record.
    if self.__dict__.get("_shmbus_slice") is not None:
        rec = _join(self)
        if rec is not None:
            return rec
    return _raw_poll(self, timeout)


def _read_batch(self, max_records=1000, timeout=None):
    # Checked first, kept record or not (with one, read_batch(0) or ("x") returned it, and
    # numpy's ints took it alone: a review).
    count = _shmbus._count(max_records, "max_records")
    rec = _join(self)
    if rec is None:
        return _orig["read_batch"](self, count, timeout)
    # A durable consumer's batch is the kept record alone: the C++ read_batch commits what
    # was returned before it, which would expire (and commit) the kept record unread.
    if not self.durable and count > 1:
        return [rec] + _orig["read_batch"](self, count - 1, 0)
    return [rec]


def _seek(self, start):
    _join_quiet(self)
    return _orig["seek"](self, start)


def _rewind_to(self, rec):
    # A durable consumer's kept record was taken from the ring but never delivered: move
    # the group back to it (its committed position too: what precedes it was delivered).
    _orig["seek"](self, rec.seq)


def _commit(self):
    rec = _join_quiet(self)
    if rec is not None and self.durable:
        # Back to the kept record, then commit: a commit right after a seek commits its
        # target, so what was delivered before the kept record is consumed and the kept
        # record is not (a seek alone committed nothing: delivered records came again).
        _rewind_to(self, rec)
    return _orig["commit"](self)


def _close(self, commit=True):
    rec = _join_quiet(self)
    if commit and rec is not None and not self.closed and self.durable and self.auto_commit:
        try:
            _rewind_to(self, rec)
        except Exception:  # noqa: BLE001 - the close goes on (the C++ consumer is closed on error)
            pass
    return _orig["close"](self, commit=commit)


def _exit(self, exc_type, exc, tb):
    # An exception in the block: what was returned since the last commit comes again (a
    # generator closed by its caller, GeneratorExit, ended normally, as a break does).
    _close(self, commit=exc_type is None or issubclass(exc_type, GeneratorExit))
    return False


def install(consumer_cls):
    """Wraps the Consumer methods that must join a slice in flight (see the module doc)."""
    global _raw_poll
    for name in ("poll", "read_batch", "seek", "commit", "close", "_slice_poll"):
        _orig[name] = getattr(consumer_cls, name)
    _raw_poll = _orig["poll"]
    for name, fn, doc_from in (("poll", _poll, "poll"), ("read_batch", _read_batch, "read_batch"),
                               ("seek", _seek, "seek"), ("commit", _commit, "commit"),
                               ("close", _close, "close")):
        fn.__doc__ = _orig[doc_from].__doc__
        fn.__name__ = name
        fn.__qualname__ = "Consumer." + name
        setattr(consumer_cls, name, fn)
    consumer_cls.__exit__ = _exit
    consumer_cls._shmbus_slice = None  # the instance's attribute, when set, shadows it
    consumer_cls.poll_async = poll_async
    consumer_cls.aiter = aiter


def _retrieve(af):
    # A cancelled awaiter leaves the asyncio wrapper's outcome unread: read it, so asyncio
    # does not log "Future exception was never retrieved" (the outcome is taken from the
    # concurrent future by whoever clears the slot).
    if not af.cancelled():
        af.exception()


async def _slice(consumer, timeout):
    """One poll of at most `timeout` seconds in a worker thread: a Record or None."""
    while True:
        fut = getattr(consumer, "_shmbus_slice", None)
        if fut is not None:
            _closed_with_slice(consumer, fut)
        if fut is None:
            # _slice_poll: a durable group's record stays uncommitted by a close() (the
            # consumer collected with the slice's record unread) until taken (_clear).
            fut = _pool().submit(_orig["_slice_poll"], consumer, timeout)
            consumer._shmbus_slice = fut
        # shield: a cancelled task leaves the slice running; the next call takes its record.
        # Only the task that clears the slot takes the outcome (two tasks awaiting one
        # consumer must not both get the same record): the other starts a new slice.
        af = asyncio.wrap_future(fut)
        af.add_done_callback(_retrieve)
        try:
            await asyncio.shield(af)
        except asyncio.CancelledError:
            raise
        except BaseException:  # the slice's error: taken by whoever clears the slot below
            pass
        if not _clear(consumer, fut):
            continue
        return _outcome(consumer, fut)


async def poll_async(self, timeout=None):
    """poll_async(timeout=None) -> Record | None

    As poll(), awaited: the next record, waiting up to ``timeout`` seconds (None: until
    one comes; 0: no wait); None when none came.  The event loop runs meanwhile.
    """
    # As every call checks a timeout (an int of any size, numpy numbers, ...): None
    # back for forever.
    timeout = _shmbus._timeout(timeout, "timeout")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = _SLICE if deadline is None else min(_SLICE, max(0.0, deadline - time.monotonic()))
        rec = await _slice(self, left)
        if rec is not None:
            return rec
        if deadline is not None and time.monotonic() >= deadline:
            return None


async def _aiter(consumer, idle_timeout, max_records):
    left = max_records
    while left is None or left > 0:
        if consumer.closed and consumer.__dict__.get("_shmbus_slice") is None:
            return
        try:
            rec = await poll_async(consumer, idle_timeout)
        except ClosedError:
            return  # closed meanwhile: the iteration ends, as iter()'s does
        if rec is None:
            return
        if left is not None:
            left -= 1
        yield rec


def aiter(self, idle_timeout=None, max_records=None):
    """aiter(idle_timeout=None, max_records=None) -> AsyncIterator[Record]

    ``async for rec in consumer.aiter()``: iter() for asyncio.  Stops when no record came
    for ``idle_timeout`` seconds (None: never), after ``max_records`` records, or when the
    consumer is closed.
    """
    if self.closed:
        raise ClosedError("consumer is closed")
    if max_records is not None and (isinstance(max_records, bool) or not isinstance(max_records, int)):
        raise TypeError("max_records must be an int or None")
    if max_records is not None and max_records < 0:
        from .errors import InvalidArgumentError

        raise InvalidArgumentError("max_records must be >= 0")
    # Checked now, not at the first await.
    return _aiter(self, _shmbus._timeout(idle_timeout, "idle_timeout"), max_records)
