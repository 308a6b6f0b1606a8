"""Reads for the client portal: what one link may show, and nothing of anyone else's."""

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from ..clinic.selectors import settings_get
from ..core.errors import NotFound
from ..extensions import db
from ..forms.models import PatientForm
from ..messaging.models import (
    MESSAGE_DELIVERED,
    MESSAGE_FAILED,
    MESSAGE_NOT_SENT,
    MESSAGE_SENT,
    ClientMessage,
)

ERR_NO_FORM = "There is no such form for you here. The link may be incomplete."


@dataclass
class PortalView:
    """What the portal page shows a client: their pet, the clinic, the messages and the
    forms asked of them."""

    message: ClientMessage
    clinic_name: str
    messages: list[ClientMessage]

    @property
    def patient(self):
        """The pet the link is about."""
        return self.message.patient

    @property
    def forms(self) -> list[ClientMessage]:
        """The messages that ask for a form, newest first (filled or still to fill)."""
        return [m for m in self.messages if m.form_template_id is not None]


def _visible(message: ClientMessage):
    """The messages one link shows: its patient's, to the same owner (a pet that changed
    hands shows the new owner nothing sent to the old one), that reached the client (sent or
    delivered; a portal message unless refused or failed); and the link's own."""
    reached = or_(ClientMessage.status.in_((MESSAGE_SENT, MESSAGE_DELIVERED)),
                  and_(ClientMessage.channel == "portal",
                       ClientMessage.status.not_in((MESSAGE_FAILED, MESSAGE_NOT_SENT))))
    return select(ClientMessage).where(
        ClientMessage.patient_id == message.patient_id,
        ClientMessage.owner_id.is_not_distinct_from(message.owner_id),
        or_(reached, ClientMessage.id == message.id))


def portal_messages(message: ClientMessage) -> list[ClientMessage]:
    """The messages the link of `message` shows, newest first, with their forms (three
    queries)."""
    return list(db.session.scalars(_visible(message).options(
        selectinload(ClientMessage.form_template),
        selectinload(ClientMessage.form).selectinload(PatientForm.version)).order_by(
        func.coalesce(ClientMessage.sent_at, ClientMessage.created_at).desc(),
        ClientMessage.id.desc())))


def portal_view(message: ClientMessage) -> PortalView:
    """The portal page of the link of `message`."""
    return PortalView(message=message, clinic_name=settings_get().name,
                      messages=portal_messages(message))


def portal_form_message(message: ClientMessage, uid: str | None = None) -> ClientMessage:
    """The message whose form the client fills: the link's own, or (`uid`) another one the
    link shows; NotFound when it asks for no form or the link may not show it."""
    if uid is None:
        target = message
    else:
        target = db.session.scalar(_visible(message).where(ClientMessage.uid == uid)) \
            if isinstance(uid, str) else None
    if target is None or target.form_template_id is None:
        raise NotFound(ERR_NO_FORM)
    return target
