"""E-mail notices to staff who subscribed: written as rows, sent by the job queue.

A maintenance event ("maintenance.scheduled" … "maintenance.cancelled") or an incident
posted or resolved becomes, in the transaction that recorded it, one notice row (keyed by
the fact: the same fact twice is one notice) and one delivery row per confirmed subscriber
(unique per notice and subscriber: a retry never makes a second); after the commit a job
sends them. A sender claims a delivery for a lease by moving its `next_at` past it, only if
nobody moved it first, so two senders never send the same one; a failure is tried again
after a growing back-off and marked failed with its reason after MAX_TRIES. With no SMTP
server set, deliveries wait (no try counted) and the sweep looks again every minute.
"""

import logging
from datetime import datetime, timedelta
from html import escape

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import func, literal, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..clinic.selectors import settings_get, settings_zone
from ..core import clock
from ..core.clock import moment_text
from ..core.errors import DomainError
from ..core.jobs import job_enqueue
from ..core.mail import MailError, smtp_session, smtp_settings
from ..core.models import new_uid
from ..extensions import db
from ..flows.capture import insert_ignoring_duplicates
from ..maintenance.models import MaintenanceWindow
from ..messaging.channels import email_build
from ..messaging.links import public_address
from .models import IncidentNote, StatusDelivery, StatusNotice, StatusSubscription

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # longer than one SMTP send may take (its timeout)
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
           timedelta(minutes=30))
MAX_TRIES = len(BACKOFF) + 1
WAIT = timedelta(minutes=1)  # no SMTP server set: look again at the next sweep
BATCH = 100
SEND_JOB = "status.send"
SWEEP_JOB = "status.sweep"
CONFIRM_SALT = "kiosk.status.confirm"
UNSUBSCRIBE_SALT = "kiosk.status.unsubscribe"

WHY_NO_SMTP = "No SMTP server is set up (KIOSK_SMTP_HOST): waiting, not lost."
WHY_NO_ADDRESS = "No address for the e-mail's links: set KIOSK_PUBLIC_URL."
WHY_GAVE_UP = "Gave up after {tries} tries: {reason}"
WHY_DROPPED = "The address was unsubscribed before this notice went."
ERR_LINK = "This link does not work: check that the whole link was copied."


class LinkInvalid(DomainError):
    """A confirmation or unsubscribe link that is garbled, signed otherwise, or names no
    subscription (a 404 page of its own, not the staff error page)."""

    def __init__(self):
        super().__init__("link_invalid", ERR_LINK, status=404)

MAINTENANCE_WORDS = {
    "maintenance.scheduled": ("Planned maintenance: {start}", "Maintenance is planned from "
                              "{start} to about {end}."),
    "maintenance.started": ("Maintenance has started", "Maintenance started; it is expected "
                            "to end about {end}. Tablets keep working offline."),
    "maintenance.ended": ("Maintenance is over", "The maintenance that started {start} is "
                          "over: the server is back."),
    "maintenance.cancelled": ("Planned maintenance cancelled", "The maintenance planned from "
                              "{start} to {end} is cancelled."),
}
INCIDENT_WORDS = {"incident.posted": ("[{severity}] {title}", "{body}"),
                  "incident.resolved": ("Resolved: {title}", "This incident is resolved.")}


# Signed links

def _signer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def confirm_token(subscription: StatusSubscription, data: dict) -> str:
    """The confirmation link's token: the subscription, the topics asked for, and where
    the links of its e-mails are to start once confirmed."""
    payload = {"s": subscription.uid, "m": bool(data.get("m")), "i": bool(data.get("i"))}
    if data.get("b"):
        payload["b"] = data["b"]
    return _signer(CONFIRM_SALT).dumps(payload)


def unsubscribe_token(subscription: StatusSubscription) -> str:
    """The unsubscribe link's token (it carries the subscription's uid only)."""
    return _signer(UNSUBSCRIBE_SALT).dumps(subscription.uid)


def _subscription(uid) -> StatusSubscription:
    row = db.session.scalar(select(StatusSubscription).where(StatusSubscription.uid == uid)) \
        if isinstance(uid, str) else None
    if row is None:
        raise LinkInvalid
    return row


def token_confirm_read(token: str) -> tuple[StatusSubscription, bool, bool, str | None]:
    """The subscription, topics and link base of a confirmation token, or DomainError
    (404)."""
    try:
        data = _signer(CONFIRM_SALT).loads(token)
    except BadData:
        raise LinkInvalid from None
    if not isinstance(data, dict):
        raise LinkInvalid
    base = data.get("b") if isinstance(data.get("b"), str) else None
    return _subscription(data.get("s")), bool(data.get("m")), bool(data.get("i")), base


def token_unsubscribe_read(token: str) -> StatusSubscription:
    """The subscription of an unsubscribe token, or DomainError (404)."""
    try:
        uid = _signer(UNSUBSCRIBE_SALT).loads(token)
    except BadData:
        raise LinkInvalid from None
    return _subscription(uid)


# Notices as rows

def confirmation_notice(*, subscription: StatusSubscription, maintenance: bool,
                        incidents: bool, link_base: str | None) -> StatusNotice:
    """The confirmation e-mail to `subscription`'s address, as a notice of its own; its
    link starts at `link_base`, which the address's later e-mails keep once confirmed."""
    topics = " and ".join(t for t, on in (("maintenance", maintenance),
                                          ("incident", incidents)) if on)
    notice = StatusNotice(key=f"confirm:{new_uid()}", topic="confirm",
                          subject="Confirm your e-mail notices",
                          body=f"Someone at the clinic asked for {topics} notices of the "
                               "server's status to be sent to this address. Nothing is sent "
                               "until you confirm; if you did not ask, ignore this e-mail.",
                          data={"m": maintenance, "i": incidents, "b": link_base},
                          created_at=clock.utcnow())
    db.session.add(notice)
    db.session.flush()
    db.session.add(StatusDelivery(notice_id=notice.id, subscription_id=subscription.id,
                                  next_at=clock.utcnow(), created_at=clock.utcnow()))
    return notice


def _words(session, evt) -> tuple[str, str, str, str] | None:
    """(key, topic, subject, body) of the notice an event makes, or None."""
    if evt.name in MAINTENANCE_WORDS:
        window = session.scalar(select(MaintenanceWindow)
                                .where(MaintenanceWindow.uid == evt.data.get("window")))
        if window is None:
            return None
        tz = settings_zone()
        subject, body = MAINTENANCE_WORDS[evt.name]
        values = {"start": moment_text(window.starts_at, tz),
                  "end": moment_text(window.ends_at, tz)}
        body = body.format(**values) + (f"\n\n{window.message}" if window.message else "")
        return f"{evt.name}:{window.uid}", "maintenance", subject.format(**values), body
    if evt.name in INCIDENT_WORDS:
        note = session.scalar(select(IncidentNote)
                              .where(IncidentNote.uid == evt.data.get("note")))
        if note is None:
            return None
        subject, body = INCIDENT_WORDS[evt.name]
        values = {"severity": note.severity.capitalize(), "title": note.title,
                  "body": note.body or note.title}
        return (f"{evt.name}:{note.uid}", "incidents", subject.format(**values),
                body.format(**values))
    return None


def _write(session, key: str, topic: str, subject: str, body: str, now: datetime) -> int:
    """The notice (once per key) and a delivery to each confirmed subscriber of `topic`;
    how many deliveries were written."""
    connection = session.connection()
    connection.execute(insert_ignoring_duplicates(session, StatusNotice), [{
        "uid": new_uid(), "key": key, "topic": topic, "subject": subject[:200],
        "body": body, "data": {}, "created_at": now}])
    notice_id = connection.scalar(select(StatusNotice.id).where(StatusNotice.key == key))
    wanted = getattr(StatusSubscription, topic)
    chosen = select(literal(notice_id), StatusSubscription.id, literal("pending"),
                    literal(0), literal(now, StatusDelivery.next_at.type),
                    literal(now, StatusDelivery.created_at.type)).where(
        wanted.is_(True), StatusSubscription.confirmed_at.is_not(None),
        StatusSubscription.unsubscribed_at.is_(None))
    statement = insert_ignoring_duplicates(session, StatusDelivery).from_select(
        ["notice_id", "subscription_id", "status", "attempts", "next_at", "created_at"],
        chosen)
    return connection.execute(statement).rowcount or 0


def notices_prepare(session, events):
    """Before a commit: write the notices its events make; after it: queue their sending."""
    now = clock.utcnow()
    queued = any(evt.name == "status_notice.queued" for evt in events)
    for evt in events:
        words = _words(session, evt)
        if words is None:
            continue
        try:
            # A savepoint: a notice that cannot be written never fails the change itself
            # (on PostgreSQL a failed statement would spoil the whole transaction).
            with session.begin_nested():
                queued = _write(session, *words, now) > 0 or queued
        except SQLAlchemyError:
            log.exception("status notice for %s not written", evt.name)
    return (lambda: job_enqueue(SEND_JOB)) if queued else None


# Sending

def _claim(delivery_id: int, seen: datetime, now: datetime) -> datetime | None:
    """Take the delivery for one lease if nobody moved it since we looked (commits); the
    lease's end (the claim's mark) or None."""
    until = max(now, clock.utcnow()) + LEASE
    done = db.session.execute(update(StatusDelivery).where(
        StatusDelivery.id == delivery_id, StatusDelivery.status == "pending",
        StatusDelivery.next_at == seen).values(next_at=until))
    db.session.commit()
    return until if done.rowcount == 1 else None


def _settle(delivery_id: int, until: datetime, **values) -> bool:
    """Write a claimed delivery's outcome if the claim is still ours (commits)."""
    done = db.session.execute(update(StatusDelivery).where(
        StatusDelivery.id == delivery_id, StatusDelivery.status == "pending",
        StatusDelivery.next_at == until).values(**values))
    db.session.commit()
    return done.rowcount == 1


def _link(endpoint: str, base: str | None, **values) -> str | None:
    """An absolute link for an e-mail: under KIOSK_PUBLIC_URL, else under `base` (where
    the subscription was asked for, kept from its confirmation)."""
    public = public_address(endpoint, **values)
    if public or not base:
        return public
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return base.rstrip("/") + path


def _active(delivery: StatusDelivery) -> bool:
    """Whether the address still wants this notice (a confirmation always goes)."""
    sub, topic = delivery.subscription, delivery.notice.topic
    if topic == "confirm":
        return sub.unsubscribed_at is None
    return sub.confirmed_at is not None and sub.unsubscribed_at is None \
        and bool(getattr(sub, topic))


def _message(delivery: StatusDelivery, smtp, clinic: str):
    """The e-mail of one delivery, or None when its links have no address to start at."""
    notice, sub = delivery.notice, delivery.subscription
    status = _link("status.page", sub.link_base)
    if notice.topic == "confirm":
        data = notice.data or {}
        action = _link("status.confirm", data.get("b") or sub.link_base,
                       token=confirm_token(sub, data))
        tail = f"Confirm: {action}"
    else:
        action = _link("status.unsubscribe", sub.link_base, token=unsubscribe_token(sub))
        tail = f"Status page: {status}\nTo stop these e-mails: {action}"
    if action is None:
        return None
    text = f"{notice.body}\n\n{tail}\n"
    html = "".join(f"<p>{escape(part)}</p>" for part in notice.body.split("\n\n") if part)
    html += f'<p><a href="{escape(action)}">' + (
        "Confirm these notices" if notice.topic == "confirm" else "Stop these e-mails") + "</a></p>"
    message = email_build(to=sub.email, subject=notice.subject, text=text, html=html,
                          key=f"{notice.uid}:{sub.uid}", from_address=smtp.from_address,
                          from_name=clinic)
    if notice.topic != "confirm":
        message["List-Unsubscribe"] = f"<{action}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


class _Sender:
    """One SMTP connection for a batch, opened at its first e-mail, opened again after a
    failure that may have closed it."""

    def __init__(self, smtp):
        self.smtp, self._manager, self._session = smtp, None, None

    def send(self, message) -> None:
        if self._session is None:
            self._manager = smtp_session(self.smtp)
            self._session = self._manager.__enter__()
        try:
            self._session.send(message)
        except MailError as exc:
            if not exc.permanent:
                self.close()
            raise

    def close(self) -> None:
        if self._manager is not None:
            manager, self._manager, self._session = self._manager, None, None
            try:
                manager.__exit__(None, None, None)
            except Exception:  # noqa: BLE001, S110 - what went, went; a close may fail
                pass


def _deliver(sender: _Sender | None, delivery: StatusDelivery, until: datetime,
             clinic: str, now: datetime) -> str:
    """Send one claimed delivery and write what became of it; the outcome's name."""
    if not _active(delivery):
        _settle(delivery.id, until, status="dropped", last_error=WHY_DROPPED)
        return "dropped"
    message = _message(delivery, sender.smtp, clinic) if sender else None
    if sender is None or message is None:  # waits, no try counted
        _settle(delivery.id, until, next_at=now + WAIT,
                last_error=WHY_NO_SMTP if sender is None else WHY_NO_ADDRESS)
        return "waiting"
    try:
        sender.send(message)
    except MailError as exc:
        return _failed(delivery, until, str(exc), exc.permanent)
    _settle(delivery.id, until, status="sent", sent_at=clock.utcnow(), last_error=None,
            attempts=delivery.attempts + 1)
    return "sent"


def _failed(delivery: StatusDelivery, until: datetime, reason: str, permanent: bool) -> str:
    tries = delivery.attempts + 1
    if permanent or tries >= MAX_TRIES:
        why = reason if permanent else WHY_GAVE_UP.format(tries=tries, reason=reason)
        _settle(delivery.id, until, status="failed", attempts=tries, last_error=why[:300])
        log.warning("status notice delivery %d failed: %s", delivery.id, why)
        return "failed"
    _settle(delivery.id, until, attempts=tries, last_error=reason[:300],
            next_at=clock.utcnow() + BACKOFF[min(tries, len(BACKOFF)) - 1])
    log.warning("status notice delivery %d not sent (try %d): %s", delivery.id, tries, reason)
    return "retry"


def _smtp_or_none():
    try:
        return smtp_settings(current_app.config)
    except MailError as exc:  # a setting to fix: the deliveries wait for it
        log.warning("status notices wait: %s", exc)
        return None


def deliveries_send_due(*, now: datetime | None = None, limit: int = BATCH) -> dict:
    """Send the due deliveries once each (oldest first); the counts of each outcome.

    A worker's entry point: it commits as it goes (each claim and each outcome), so no
    transaction stays open while the SMTP server answers."""
    now = now or clock.utcnow()
    counts = {"sent": 0, "retry": 0, "failed": 0, "dropped": 0, "waiting": 0, "taken": 0}
    due = db.session.execute(select(StatusDelivery.id, StatusDelivery.next_at).where(
        StatusDelivery.status == "pending", StatusDelivery.next_at <= now)
        .order_by(StatusDelivery.next_at, StatusDelivery.id).limit(limit)).all()
    db.session.commit()
    smtp = _smtp_or_none()
    sender = _Sender(smtp) if smtp is not None else None
    clinic = settings_get().name or "The clinic"
    try:
        for delivery_id, seen in due:
            until = _claim(delivery_id, seen, now)
            if until is None:
                counts["taken"] += 1
                continue
            delivery = db.session.get(StatusDelivery, delivery_id)
            counts[_deliver(sender, delivery, until, clinic, now)] += 1
    finally:
        if sender is not None:
            sender.close()
    return counts


def deliveries_send_all() -> dict:
    """The job: send until nothing more is due now (failures wait for their back-off)."""
    totals: dict[str, int] = {}
    while True:
        counts = deliveries_send_due()
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
        if not (counts["sent"] or counts["retry"] or counts["failed"] or counts["dropped"]):
            return totals


def deliveries_counts() -> dict[str, int]:
    """How many deliveries are in each state (for the manager's page)."""
    rows = db.session.execute(select(StatusDelivery.status, func.count())
                              .group_by(StatusDelivery.status)).all()
    return dict(rows)
