"""Reads for the client messages pages: what was sent, what waits and why."""

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..core.models import row_by_uid
from ..extensions import db
from .models import STATUSES, ClientMessage

PAGE_SIZE = 200


def client_messages_list(*, status: str | None = None, patient_id: int | None = None,
                         limit: int = PAGE_SIZE) -> list[ClientMessage]:
    """Messages, newest first, with their patient and owner (one query); `status`: only
    those (unknown: all)."""
    query = (select(ClientMessage)
             .options(joinedload(ClientMessage.patient), joinedload(ClientMessage.owner),
                      joinedload(ClientMessage.form_template))
             .order_by(ClientMessage.created_at.desc(), ClientMessage.id.desc()).limit(limit))
    if status in STATUSES:
        query = query.where(ClientMessage.status == status)
    if patient_id is not None:
        query = query.where(ClientMessage.patient_id == patient_id)
    return list(db.session.scalars(query))


def client_message_by_uid(uid: str) -> ClientMessage:
    """The message with this uid, or NotFound."""
    return row_by_uid(ClientMessage, uid, what="client message")
