"""Writes of the client portal: a link opened, a form sent back. No staff member is
involved: the signed link (messaging/links.py) is the client's authority, so each write is
audited with no user and the message it came through."""

from datetime import datetime

from sqlalchemy import update

from ..clinic.selectors import settings_zone
from ..core import clock
from ..core.audit import audit_record
from ..core.errors import DomainError
from ..extensions import db
from ..forms.models import FormVersion, PatientForm
from ..forms.services import form_submit_by_client
from ..messaging.models import ClientMessage
from .signatures import typed_name_clean, typed_signature_png

ERR_RECEIVED = "We received this form on {day}. Thank you: there is nothing more to do."


def portal_open(*, message: ClientMessage, now: datetime | None = None) -> ClientMessage:
    """The client opened the link of `message`: the first time is kept as its opened_at,
    and every opening is audited (no user: the link was the key)."""
    first = message.opened_at is None
    if first:
        message.opened_at = now or clock.utcnow()
    audit_record(action="portal.opened", entity="client_message", entity_uid=message.uid,
                 user=None, detail={"patient": message.patient.uid, "first": first})
    return message


def received_text(form: PatientForm) -> str:
    """"We received this form on …" for a form already sent back (clinic time)."""
    day = clock.to_local(form.finalised_at, settings_zone())
    return ERR_RECEIVED.format(day=f"{day.day} {day:%B %Y} at {day:%H:%M}")


def portal_form_submit(*, message: ClientMessage, values: dict,
                       typed_names: dict | None = None, version: FormVersion | None = None,
                       now: datetime | None = None) -> PatientForm:
    """The client sends the form `message` asked for: a signature not drawn may be a typed
    name (drawn into a PNG here), then forms.services.form_submit_by_client stores it
    finalised (on `version`, the one the client was shown; else the current one), and the
    message is linked to it. Once per message: a second sending (a
    reused link, two taps) is refused with 409 and stores nothing."""
    if message.form_id is not None:
        raise DomainError("already_received", received_text(message.form), status=409)
    template = message.form_template
    pinned = version if version is not None else template.current
    values = dict(values)
    for field in pinned.fields:
        key = field["key"]
        typed = (typed_names or {}).get(key)
        if field["type"] == "signature" and not values.get(key) and typed and typed.strip():
            name = typed_name_clean(typed, key=key, label=field["label"])
            values[key] = typed_signature_png(name)
    owner = message.owner.name if message.owner is not None else message.patient.owner_name
    form = form_submit_by_client(patient=message.patient, template=template, version=pinned,
                                 values=values, owner_name=owner or "",
                                 at=now or clock.utcnow())
    db.session.flush()
    # The check above read the row before this request's work; this one decides between
    # two sendings at once: only the first finds no form linked yet.
    linked = db.session.execute(update(ClientMessage).where(
        ClientMessage.id == message.id, ClientMessage.form_id.is_(None)).values(
        form_id=form.id).execution_options(synchronize_session=False))
    if linked.rowcount != 1:
        db.session.refresh(message)
        raise DomainError("already_received", received_text(message.form), status=409)
    message.form = form
    audit_record(action="portal.form_submitted", entity="client_message",
                 entity_uid=message.uid, user=None,
                 detail={"patient": message.patient.uid, "form": form.uid,
                         "template": template.uid, "version": pinned.number})
    return form
