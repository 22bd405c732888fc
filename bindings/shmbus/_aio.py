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
(``_shmbus_slice``): if it took a record, the next poll_async()/aiter() step returns
that record first, so no record is lost and the order is kept, and no second slice is
started while one runs (one worker thread per waiting consumer at most).
"""

import asyncio
import concurrent.futures
import os
import threading
import time

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


async def _slice(consumer, timeout):
    """One poll of at most `timeout` seconds in a worker thread: a Record or None."""
    while True:
        fut = getattr(consumer, "_shmbus_slice", None)
        if fut is None:
            fut = _pool().submit(consumer.poll, timeout)
            consumer._shmbus_slice = fut
        # shield: a cancelled task leaves the slice running; the next call takes its record.
        # Only the task that clears the slot takes the outcome (two tasks awaiting one
        # consumer must not both get the same record): the other starts a new slice.
        try:
            await asyncio.shield(asyncio.wrap_future(fut))
        except asyncio.CancelledError:
            raise
        except BaseException:  # the slice's error: taken by whoever clears the slot below
            pass
        if getattr(consumer, "_shmbus_slice", None) is not fut:
            continue
        consumer._shmbus_slice = None
        return fut.result()


async def poll_async(self, timeout=None):
    """poll_async(timeout=None) -> Record | None

    As poll(), awaited: the next record, waiting up to ``timeout`` seconds (None: until
    one comes; 0: no wait); None when none came.  The event loop runs meanwhile.
    """
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError("timeout must be a number of seconds or None")
        if not timeout >= 0:
            from .errors import InvalidArgumentError

            raise InvalidArgumentError("timeout must be >= 0 seconds")
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
        if consumer.closed and getattr(consumer, "_shmbus_slice", None) is None:
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
    return _aiter(self, idle_timeout, max_records)
