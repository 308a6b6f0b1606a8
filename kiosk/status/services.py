"""Writes of the status feature: incident notes (a manager's) and e-mail subscriptions
(any signed-in staff member asks; only the address's owner confirms)."""

import re

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import choice, text_optional, text_required
from ..extensions import db
from ..owners.services import email_clean
from .models import SEVERITIES, IncidentNote, StatusSubscription
from .notices import confirmation_notice

TITLE_MAX = 120
BODY_MAX = 2000
# A "<" that opens a tag, a comment or a declaration: "<b>", "</p", "<!--", "<?xml".
# A lone "<" in words ("less than <5 minutes") is fine.
MARKUP = re.compile(r"<\s*[/!?]?\s*[A-Za-z!]")
MANAGE = "post incident notes"

ERR_MARKUP = "{label} must be plain text: remove the HTML markup (tags such as a script)."
ERR_RESOLVED = "This note is resolved already."
ERR_TOPICS = "Choose maintenance notices, incident notices, or both."


def _plain(value, field: str, label: str, max_len: int, *, required: bool) -> str | None:
    """Plain text of at most `max_len` characters: markup is refused, not stripped (what
    a manager posts is shown exactly as written, so nothing must need escaping to mean it)."""
    read = text_required if required else text_optional
    text = read(value, field, label, max_len)
    if text and MARKUP.search(text):
        raise DomainError("markup", ERR_MARKUP.format(label=label), field=field)
    return text


def _note_fields(title, body, severity) -> dict:
    return {"title": _plain(title, "title", "The title", TITLE_MAX, required=True),
            "body": _plain(body, "body", "The text", BODY_MAX, required=False) or "",
            "severity": choice(severity or "info", "severity", "The severity", SEVERITIES)}


def incident_post(*, user, title, body, severity) -> IncidentNote:
    """Post an incident note on the status page (notices go to subscribers)."""
    permission_check(user, LEVEL_MANAGER, MANAGE)
    note = IncidentNote(**_note_fields(title, body, severity), posted_at=clock.utcnow(),
                        posted_by=user)
    db.session.add(note)
    db.session.flush()
    audit_record(action="incident.posted", entity="incident_note", entity_uid=note.uid,
                 user=user, detail={"severity": note.severity})
    event_record(db.session, "incident.posted", note=note.uid)
    return note


def incident_update(*, note: IncidentNote, user, title, body, severity) -> IncidentNote:
    """Change an open note's words or severity (no notice: the page shows the change)."""
    permission_check(user, LEVEL_MANAGER, MANAGE)
    if note.resolved_at is not None:
        raise DomainError("resolved", ERR_RESOLVED)
    for name, value in _note_fields(title, body, severity).items():
        setattr(note, name, value)
    note.updated_at = clock.utcnow()
    audit_record(action="incident.updated", entity="incident_note", entity_uid=note.uid,
                 user=user, detail={"severity": note.severity})
    event_record(db.session, "incident.updated", note=note.uid)
    return note


def incident_resolve(*, note: IncidentNote, user) -> IncidentNote:
    """Mark a note resolved (it moves to the page's recent ones; subscribers are told)."""
    permission_check(user, LEVEL_MANAGER, MANAGE)
    if note.resolved_at is not None:
        raise DomainError("resolved", ERR_RESOLVED)
    note.resolved_at = clock.utcnow()
    note.resolved_by = user
    audit_record(action="incident.resolved", entity="incident_note", entity_uid=note.uid,
                 user=user)
    event_record(db.session, "incident.resolved", note=note.uid)
    return note


def _active(row: StatusSubscription) -> bool:
    return row.confirmed_at is not None and row.unsubscribed_at is None


def subscription_request(*, user, email, maintenance: bool, incidents: bool,
                         link_base: str | None) -> StatusSubscription:
    """Ask for notices at `email`: a confirmation e-mail goes to it, and nothing else
    until its link is followed. An address already confirmed keeps its topics until the
    new choice is confirmed the same way, and its links' address for good (a colleague
    cannot change someone's mail, nor point its links at another host). `link_base`: where
    the links start; it takes effect only when its own confirmation link is followed."""
    address = email_clean(email)
    if address is None:
        raise DomainError("required", "The e-mail address is required.", field="email")
    if not (maintenance or incidents):
        raise DomainError("no_topics", ERR_TOPICS, field="topics")
    address = address.lower()
    row = db.session.query(StatusSubscription).filter_by(email=address).one_or_none()
    if row is None:
        row = StatusSubscription(email=address, user=user, created_at=clock.utcnow(),
                                 link_base=link_base)
        db.session.add(row)
    if _active(row):
        link_base = row.link_base
    else:
        row.maintenance, row.incidents = maintenance, incidents
        row.confirmed_at = row.unsubscribed_at = None
    db.session.flush()
    confirmation_notice(subscription=row, maintenance=maintenance, incidents=incidents,
                        link_base=link_base)
    audit_record(action="status_subscription.requested", entity="status_subscription",
                 entity_uid=row.uid, user=user)
    event_record(db.session, "status_notice.queued")
    return row


def subscription_confirm(*, subscription: StatusSubscription, maintenance: bool,
                         incidents: bool, link_base: str | None = None) -> StatusSubscription:
    """The address's owner followed the confirmation link: notices go to it from now on,
    for the topics that link was made for, with links under the address that link was
    made at (an address already confirmed keeps its own)."""
    if link_base and not _active(subscription):
        subscription.link_base = link_base
    subscription.maintenance, subscription.incidents = maintenance, incidents
    subscription.confirmed_at = clock.utcnow()
    subscription.unsubscribed_at = None
    audit_record(action="status_subscription.confirmed", entity="status_subscription",
                 entity_uid=subscription.uid)
    return subscription


def subscription_unsubscribe(*, subscription: StatusSubscription) -> StatusSubscription:
    """Stop every notice to this address (its owner's link, or the staff page)."""
    if subscription.unsubscribed_at is None:
        subscription.unsubscribed_at = clock.utcnow()
        audit_record(action="status_subscription.unsubscribed", entity="status_subscription",
                     entity_uid=subscription.uid)
    return subscription
