"""The one interface for messages to clients: record what to send; the sender sends it."""

from sqlalchemy import select

from ..core import clock
from ..core.audit import audit_record
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.models import new_uid
from ..extensions import db
from .models import CHANNELS, MESSAGE_NOT_SENT, MESSAGE_QUEUED, ClientMessage

# "preferred": the owner's own choice, read when the message is recorded.
CHANNEL_CHOICES = (*CHANNELS, "preferred")
ERR_CHANNEL = "Choose how to reach the client: e-mail, SMS, voice, the portal or their preference."
WHY_EMPTY_FIELD = "the merge field {fields} is empty for this patient."


def client_message_queue(*, key: str, patient, channel: str, body: str,
                         subject: str | None = None, form_template=None,
                         source: str | None = None, clinical_ok: bool = False,
                         urgent: bool = False, empty_fields: list[str] | tuple = ()
                         ) -> ClientMessage:
    """Record a message (or a form to fill, `form_template`) for the patient's owner on
    `channel`, once per `key`: asking again with the same key returns the first one.

    `empty_fields`: merge fields the words needed that had no value — such a message is
    recorded as not sent, with why, rather than sent with a gap. `clinical_ok`: an SMS or
    a call may carry these words; `urgent`: they go even in the quiet hours."""
    if channel not in CHANNEL_CHOICES:
        raise DomainError("channel_unknown", ERR_CHANNEL, field="channel")
    existing = db.session.scalar(select(ClientMessage).where(ClientMessage.key == key))
    if existing is not None:
        return existing
    owner = patient.owner
    if channel == "preferred":
        channel = owner.preferred_channel if owner is not None else "email"
    status, detail = MESSAGE_QUEUED, None
    if empty_fields:
        status = MESSAGE_NOT_SENT
        detail = WHY_EMPTY_FIELD.format(fields=", ".join(sorted(empty_fields)))[:300]
    message = ClientMessage(uid=new_uid(), key=key, patient=patient, owner=owner,
                            channel=channel, subject=subject, body=body,
                            form_template=form_template, source=source,
                            clinical_ok=bool(clinical_ok), urgent=bool(urgent), status=status,
                            status_detail=detail, send_next_at=clock.utcnow())
    db.session.add(message)
    audit_record(action="client_message.queue", entity="patient", entity_uid=patient.uid,
                 user=None, device=None, detail={"channel": channel, "source": source,
                                                 "status": status})
    event_record(db.session, "client_message.queued", patient=patient.uid,
                 message=message.uid)
    return message
