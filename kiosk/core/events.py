"""Domain events: recorded on the session by services, dispatched only after commit.

A rolled-back change is never broadcast and never starts anything. Work that needs the
database to decide what to do after a commit (whom to poke) is prepared just before the
commit, on the transaction's own connection: after the commit the request has given its
connection back, and asking the pool for another one there is how a crowd of requests
starves itself (docs/deployment.md, "Limits").
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_handlers: dict[str, list[Callable]] = defaultdict(list)
_fact_handlers: dict[str, list[Callable]] = defaultdict(list)
_batch_handlers: list[Callable] = []
_preparers: list[Callable] = []


@dataclass(frozen=True)
class DomainEvent:
    """Something that changed: a name such as 'task.completed' and small data (uids)."""

    name: str
    data: dict = field(default_factory=dict)


def event_record(session: Session, name: str, **data) -> None:
    """Queue an event on the session; it fires after the session commits."""
    session.info.setdefault("pending_events", []).append(DomainEvent(name, data))


def fact_subscribe(name: str, handler: Callable[..., None]) -> None:
    """Call `handler(**objects)` whenever a service records the fact `name`, inside the same
    unit of work: what it writes (a charge) commits or rolls back with the fact itself."""
    if handler not in _fact_handlers[name]:
        _fact_handlers[name].append(handler)


def fact_record(name: str, **objects) -> None:
    """Tell the features above that a fact happened (`task.completed` with the completion…),
    now and in this transaction. Unlike events, a handler's error is the caller's error: a
    fact whose consequence cannot be written is not written either."""
    for handler in _fact_handlers.get(name, ()):
        handler(**objects)


def event_subscribe(name: str, handler: Callable[[DomainEvent], None]) -> None:
    """Call `handler(event)` after every commit that recorded an event called `name` ('*' = all)."""
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def event_subscribe_batch(handler: Callable[[list[DomainEvent]], None]) -> None:
    """Call `handler(events)` once after every commit that recorded any events."""
    if handler not in _batch_handlers:
        _batch_handlers.append(handler)


def event_prepare_batch(prepare: Callable[[Session, list[DomainEvent]], Callable | None]
                        ) -> None:
    """Call `prepare(session, events)` inside the transaction just before it commits (its
    changes flushed, its connection still held); the callable it returns, if any, is called
    after the commit. For side effects that must read the database to know what to do."""
    if prepare not in _preparers:
        _preparers.append(prepare)


def _prepare(session: Session) -> None:
    if session.get_nested_transaction() is not None or not _preparers:
        return  # a savepoint: its events wait for the real commit
    events = session.info.get("pending_events")
    if not events:
        return
    session.flush()  # what the preparers read is what is about to be committed
    ready = []
    for prepare in _preparers:
        try:
            after = prepare(session, list(events))
        except Exception:  # a failed side effect must never undo the change
            log.exception("event preparer %r failed for %d events", prepare, len(events))
            continue
        if after is not None:
            ready.append(after)
    session.info["prepared_after_commit"] = ready


def _dispatch(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released: the events wait for the real commit
    prepared = session.info.pop("prepared_after_commit", [])
    events = session.info.pop("pending_events", [])
    for after in prepared:
        try:
            after()
        except Exception:  # a failed side effect must never undo a committed change
            log.exception("after-commit step %r failed", after)
    if not events:
        return
    for handler in _batch_handlers:
        try:
            handler(events)
        except Exception:  # a failed side effect must never undo a committed change
            log.exception("event handler %r failed for %d events", handler, len(events))
    for evt in events:
        for handler in _handlers.get(evt.name, []) + _handlers.get("*", []):
            try:
                handler(evt)
            except Exception:  # a failed side effect must never undo a committed change
                log.exception("event handler %r failed for %s", handler, evt.name)


def _discard(session: Session, previous_transaction=None) -> None:
    if previous_transaction is not None and previous_transaction.nested:
        return  # a savepoint was undone: whoever opened it drops what it recorded
    session.info.pop("pending_events", None)
    session.info.pop("prepared_after_commit", None)


def events_install(session_class) -> None:
    """Hook preparation to before commit, dispatch to after commit, and discard to rollback,
    for every session of that class."""
    if not event.contains(session_class, "after_commit", _dispatch):
        event.listen(session_class, "before_commit", _prepare)
        event.listen(session_class, "after_commit", _dispatch)
        event.listen(session_class, "after_soft_rollback", _discard)
