"""Reads for the status page, the manager's incident notes and the subscriptions page."""

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..core.models import row_by_uid
from ..extensions import db
from .models import IncidentNote, StatusDelivery, StatusNotice, StatusSubscription

RECENT = 10


def notes_open() -> list[IncidentNote]:
    """Incident notes not yet resolved, newest first."""
    return list(db.session.scalars(
        select(IncidentNote).where(IncidentNote.resolved_at.is_(None))
        .order_by(IncidentNote.posted_at.desc(), IncidentNote.id.desc())))


def notes_resolved(*, limit: int = RECENT) -> list[IncidentNote]:
    """The latest resolved notes, newest resolution first."""
    return list(db.session.scalars(select(IncidentNote)
                                   .where(IncidentNote.resolved_at.is_not(None))
                                   .order_by(IncidentNote.resolved_at.desc()).limit(limit)))


def note_by_uid(uid: str) -> IncidentNote:
    """The note with this uid, or NotFound."""
    return row_by_uid(IncidentNote, uid, what="incident note")


def subscriptions_of(user) -> list[StatusSubscription]:
    """The addresses `user` asked notices for."""
    return list(db.session.scalars(select(StatusSubscription)
                                   .where(StatusSubscription.user_id == user.id)
                                   .order_by(StatusSubscription.email)))


def deliveries_failed(*, limit: int = 50) -> list[StatusDelivery]:
    """Deliveries that failed for good, latest first, with their notice and address."""
    return list(db.session.scalars(
        select(StatusDelivery).where(StatusDelivery.status == "failed")
        .options(joinedload(StatusDelivery.notice), joinedload(StatusDelivery.subscription))
        .order_by(StatusDelivery.id.desc()).limit(limit)))


def deliveries_waiting(*, limit: int = 50) -> list[StatusDelivery]:
    """Deliveries still to go that were tried or are waiting for a setting."""
    return list(db.session.scalars(
        select(StatusDelivery).where(StatusDelivery.status == "pending",
                                     StatusDelivery.last_error.is_not(None))
        .options(joinedload(StatusDelivery.notice), joinedload(StatusDelivery.subscription))
        .order_by(StatusDelivery.id.desc()).limit(limit)))


def notices_recent(*, limit: int = RECENT) -> list[StatusNotice]:
    """The latest notices to subscribers (not confirmations)."""
    return list(db.session.scalars(select(StatusNotice).where(StatusNotice.topic != "confirm")
                                   .order_by(StatusNotice.id.desc()).limit(limit)))
