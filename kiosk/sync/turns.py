"""Whose turn it is to write: sync batches queue per process, and a device's own
requests one after the other (its row locked)."""

import math
import random
import threading
import time
from collections import deque
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import lazyload

from ..extensions import db

# How long a sync request waits in line for its turn to write before it is told to come
# back (503 with Retry-After): a tablet's request never hangs, and its outbox keeps the ops.
TURN_WAIT_S = 3.0
# Where the application keeps its WriteTurns (configure_database sets it).
TURNS_EXTENSION = "kiosk.write_turns"


class WriteTurns:
    """At most `slots` sync batches write at once in this process; the others wait in
    arrival order (first come, first served: no tablet is overtaken for ever), each for
    at most a given time. Also keeps how long a turn takes, to say when to come back."""

    def __init__(self, slots: int):
        self.slots = slots
        self._busy = 0
        self._queue: deque[threading.Lock] = deque()
        self._lock = threading.Lock()
        self._turn_s = 0.2  # a moving average of how long a turn is held

    def acquire(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a turn; whether it came."""
        with self._lock:
            if self._busy < self.slots and not self._queue:
                self._busy += 1
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._queue.append(waiter)
        if waiter.acquire(timeout=max(0.0, timeout)):
            return True  # release() handed its turn over
        with self._lock:
            try:
                self._queue.remove(waiter)
                return False
            except ValueError:
                return True  # handed over just as the wait ran out: the turn is ours

    def release(self, held_s: float) -> None:
        """End a turn (held for `held_s` seconds): the next in line takes it at once."""
        with self._lock:
            self._turn_s = 0.8 * self._turn_s + 0.2 * held_s
            if self._queue:
                self._queue.popleft().release()
            else:
                self._busy -= 1

    def waiting(self) -> int:
        """How many requests are in line for a turn."""
        with self._lock:
            return len(self._queue)

    def retry_after(self) -> int:
        """Seconds after which a request sent away now will likely find the line short:
        the line's length in turns, spread out (the tablets sent away together must not
        all come back together), at least 1 and at most 60."""
        with self._lock:
            ahead = (len(self._queue) + self._busy) * self._turn_s / self.slots
        return max(1, min(60, math.ceil(ahead * random.uniform(0.75, 1.5))))  # noqa: S311


@contextmanager
def write_turn(timeout: float | None = None):
    """Wait for this request's turn to write a sync batch, holding no connection meanwhile;
    yields whether the turn came within `timeout` (TURN_WAIT_S unless told) — if not, the
    caller answers busy.

    The turns are counted per process (configure_database sizes them): one on SQLite, which
    has one writer anyway (a request waiting in SQLite's busy handler sleeps up to 100 ms
    at a time while the database may sit idle, so one unlucky tablet could wait seconds
    behind the others); two on PostgreSQL (the work is mostly Python, one core per
    process), so a crowd of tablets back from an outage leaves connections for sign-in and
    pages. The caller must not hold
    a pooled connection while it waits here: the requests ahead of it need them to finish.
    """
    turns = current_app.extensions.get(TURNS_EXTENSION)
    if turns is None:  # an application configured without them (a bare script)
        yield True
        return
    if not turns.acquire(TURN_WAIT_S if timeout is None else timeout):
        yield False
        return
    began = time.monotonic()
    try:
        yield True
    finally:
        turns.release(time.monotonic() - began)


def busy_retry_after() -> int:
    """Retry-After (seconds) for a sync request that did not get its turn in time."""
    turns = current_app.extensions.get(TURNS_EXTENSION)
    return turns.retry_after() if turns is not None else 5


def device_lock(device_id: int):
    """The device (by id), its row locked for this transaction: two requests of one
    device are processed one after the other, never interleaved.

    PostgreSQL locks the row. SQLite has one writer: the transaction takes the write lock
    at once (BEGIN IMMEDIATE), so concurrent syncs queue on the busy timeout instead of
    failing when a read snapshot turns out stale at their first write.
    """
    from ..devices.models import Device

    connection = db.session.connection()
    if connection.dialect.name == "sqlite" and \
            not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    return db.session.scalar(select(Device).where(Device.id == device_id)
                             .options(lazyload(Device.board)).with_for_update(of=Device)
                             .execution_options(populate_existing=True))
