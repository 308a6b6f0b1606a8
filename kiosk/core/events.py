"""Domain events: recorded on the session by services, dispatched only after commit.

A rolled-back change is never broadcast and never starts anything.
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_handlers: dict[str, list[Callable]] = defaultdict(list)
_batch_handlers: list[Callable] = []


@dataclass(frozen=True)
class DomainEvent:
    """Something that changed: a name such as 'task.completed' and small data (uids)."""

    name: str
    data: dict = field(default_factory=dict)


def event_record(session: Session, name: str, **data) -> None:
    """Queue an event on the session; it fires after the session commits."""
    session.info.setdefault("pending_events", []).append(DomainEvent(name, data))


def event_subscribe(name: str, handler: Callable[[DomainEvent], None]) -> None:
    """Call `handler(event)` after every commit that recorded an event called `name` ('*' = all)."""
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def event_subscribe_batch(handler: Callable[[list[DomainEvent]], None]) -> None:
    """Call `handler(events)` once after every commit that recorded any events."""
    if handler not in _batch_handlers:
        _batch_handlers.append(handler)


def _dispatch(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released: the events wait for the real commit
    events = session.info.pop("pending_events", [])
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


def events_install(session_class) -> None:
    """Hook dispatch to commit, and discard to rollback, for every session of that class."""
    if not event.contains(session_class, "after_commit", _dispatch):
        event.listen(session_class, "after_commit", _dispatch)
        event.listen(session_class, "after_soft_rollback", _discard)
