"""The one interface for messages to clients: record what to send; channels send it."""

from sqlalchemy import select

from ..core.audit import audit_record
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.models import new_uid
from ..extensions import db
from .models import CHANNELS, ClientMessage

ERR_CHANNEL = "Choose how to reach the client: e-mail, SMS, voice or the portal."


def client_message_queue(*, key: str, patient, channel: str, body: str,
                         subject: str | None = None, form_template=None,
                         source: str | None = None) -> ClientMessage:
    """Record a message (or a form to fill, `form_template`) for the patient's owner on
    `channel`, once per `key`: asking again with the same key returns the first one."""
    if channel not in CHANNELS:
        raise DomainError("channel_unknown", ERR_CHANNEL, field="channel")
    existing = db.session.scalar(select(ClientMessage).where(ClientMessage.key == key))
    if existing is not None:
        return existing
    message = ClientMessage(uid=new_uid(), key=key, patient=patient, channel=channel,
                            subject=subject, body=body, form_template=form_template, source=source)
    db.session.add(message)
    audit_record(action="client_message.queue", entity="patient", entity_uid=patient.uid,
                 user=None, device=None, detail={"channel": channel, "source": source})
    event_record(db.session, "client_message.queued", patient=patient.uid,
                 message=message.uid)
    return message
