"""Sending messages to clients: the message rows are the queue.

A sender claims a batch of due messages at once (status "sending", a claim token and a
lease in `send_next_at`), in one statement that only takes rows still due, so two senders
(threads, processes) never take the same message. It decides each one with the safety
rules (held, not sent, or go), then sends the ones that go in parallel — the provider's
and the SMTP server's answers are waited for by a pool of threads that hold no database
connection — and records each outcome as it comes, only if the claim is still its own.

A sender that dies mid-send leaves its messages "sending"; once the lease is over the
next sender takes them again and sends them with the same key (the provider's
Idempotency-Key, the e-mail's Message-ID), so a provider that honours the key sends them
once. A failure is retried with a growing back-off, then recorded as failed with the
reason; a refusal (a bad number) fails at once. Nothing is dropped without a reason.
"""

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import joinedload

from ..clinic.selectors import settings_get
from ..core import clock
from ..core.audit import AuditEntry, audit_record, audit_row
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.mail import MailError, smtp_session, smtp_settings
from ..extensions import db
from .channels import ChannelError, email_build, provider_settings, sms_send, voice_call
from .links import portal_link, public_address
from .models import (
    MESSAGE_FAILED,
    MESSAGE_HELD,
    MESSAGE_NOT_SENT,
    MESSAGE_QUEUED,
    MESSAGE_SENDING,
    MESSAGE_SENT,
    SENT_STATUSES,
    WAITING,
    ClientMessage,
)
from .safety import LIMIT_WINDOW, LIMITED, Verdict, message_verdict
from .texts import message_texts

log = logging.getLogger(__name__)

# Longer than any one send may take (the SMTP and provider timeouts), so a live sender
# never loses its claim.
LEASE = timedelta(minutes=3)
BATCH = 64
SENDERS = 16  # answers waited for at once: a provider answering in 50 ms → ~300 a second
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
           timedelta(minutes=30), timedelta(hours=2))
MAX_TRIES = len(BACKOFF) + 1
WHY_NO_SMTP = "No SMTP server is set up (KIOSK_SMTP_HOST)."
WHY_NO_PROVIDER = "No SMS or voice provider is set up (KIOSK_SMS_URL)."
WHY_GAVE_UP = "Gave up after {tries} tries: {reason}"
WHY_UNCERTAIN = ("The sender stopped while handing this e-mail to the SMTP server, so it may "
                 "or may not have gone; it is not sent again by itself (never twice). Check "
                 "with the owner, then Send now if it did not arrive.")
WHY_OWNER_CHANGED = ("The patient's owner changed after this message was recorded; it was "
                     "not sent to the former owner.")
WHY_CLAIM_LOST = "Another sender took this message over; it sends it."
ERR_NOT_WAITING = ("This message is {status}: only a held, queued or failed one can be sent "
                   "again.")


@dataclass(frozen=True)
class _Job:
    """One message to send: everything a sending thread needs, no database object."""

    message_id: int
    key: str
    channel: str
    address: str
    payload: object  # an EmailMessage, or the words of an SMS or a call
    callback: str | None
    patient_uid: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class _Outcome:
    message_id: int
    sent: bool
    provider_id: str | None = None
    reason: str = ""
    permanent: bool = False
    address: str | None = None
    taken: bool = False  # the claim was no longer ours: nothing sent, nothing to write


def backoff_after(tries: int) -> timedelta:
    """How long to wait before the next try after `tries` failed ones."""
    return BACKOFF[min(max(tries, 1), len(BACKOFF)) - 1]


def _lease() -> timedelta:
    """How long a claim holds (KIOSK_MESSAGE_LEASE_S, else LEASE): longer than a send."""
    seconds = current_app.config.get("KIOSK_MESSAGE_LEASE_S")
    return timedelta(seconds=float(seconds)) if seconds else LEASE


def _claim(now: datetime, limit: int) -> str | None:
    """Take up to `limit` due messages for one lease (commits); the claim token or None.

    The due rows are read first (on PostgreSQL locked, skipping rows another sender is
    claiming now), then claimed only where still due: a row another sender took between
    the two is left to it. (One UPDATE … WHERE id IN (SELECT … LIMIT) may claim more than
    the limit on PostgreSQL, whose planner can run the subquery again.)"""
    token = str(uuid.uuid4())
    due = list(db.session.scalars(
        select(ClientMessage.id).where(ClientMessage.status.in_(WAITING),
                                       ClientMessage.send_next_at <= now)
        .order_by(ClientMessage.send_next_at, ClientMessage.id).limit(limit)
        .with_for_update(skip_locked=True)))
    if not due:
        db.session.commit()
        return None
    taken = db.session.execute(
        update(ClientMessage)
        .where(ClientMessage.id.in_(due), ClientMessage.status.in_(WAITING),
               ClientMessage.send_next_at <= now)
        .values(status=MESSAGE_SENDING, claim=token,
                send_next_at=max(now, clock.utcnow()) + _lease())
        .execution_options(synchronize_session=False))
    db.session.commit()
    return token if taken.rowcount else None


def _claimed(token: str) -> list[ClientMessage]:
    return list(db.session.scalars(
        select(ClientMessage).where(ClientMessage.claim == token)
        .options(joinedload(ClientMessage.patient), joinedload(ClientMessage.owner),
                 joinedload(ClientMessage.form_template))
        .order_by(ClientMessage.id)))


def _sent_recent(owner_ids: set[int], now: datetime) -> dict[int, list[datetime]]:
    """When each owner was sent messages on the limited channels in the last 24 hours."""
    if not owner_ids:
        return {}
    rows = db.session.execute(
        select(ClientMessage.owner_id, ClientMessage.sent_at)
        .where(ClientMessage.owner_id.in_(owner_ids), ClientMessage.channel.in_(LIMITED),
               ClientMessage.status.in_(SENT_STATUSES),
               ClientMessage.sent_at > now - LIMIT_WINDOW)
        .order_by(ClientMessage.sent_at)).all()
    out: dict[int, list[datetime]] = {}
    for owner_id, sent_at in rows:
        out.setdefault(owner_id, []).append(sent_at)
    return out


def _settle(message: ClientMessage, token: str, status: str, reason: str, *,
            next_at: datetime | None = None, action: str) -> None:
    """Move a claimed message to `status` (audited, an event for the pages)."""
    db.session.execute(update(ClientMessage).where(
        ClientMessage.id == message.id, ClientMessage.claim == token)
        .values(status=status, status_detail=reason[:300] or None, claim=None,
                send_next_at=next_at, send_started_at=None)
        .execution_options(synchronize_session=False))
    audit_record(action=f"client_message.{action}", entity="patient",
                 entity_uid=message.patient.uid, user=None, device=None,
                 detail={"message": message.uid, "channel": message.channel,
                         "reason": reason[:300]})
    event_record(db.session, "client_message.changed", patient=message.patient.uid,
                 message=message.uid)


def _decide(messages: list[ClientMessage], token: str, now: datetime) -> list[tuple]:
    """Apply the safety rules to the claimed messages: hold or refuse those that may not
    go now (recorded), return (message, address) for those that go."""
    settings = settings_get()
    for message in messages:
        # Recorded before the owner's details were (an admission, then the owner's page):
        # the patient's owner now is the one to write to.
        if message.owner is None and message.patient.owner is not None:
            message.owner = message.patient.owner
    going = []
    for message in messages:
        if message.owner_id is not None and message.patient.owner_id != message.owner_id:
            _settle(message, token, MESSAGE_NOT_SENT, WHY_OWNER_CHANGED, action="not_sent")
            continue
        going.append(message)
    messages = going
    recent = _sent_recent({m.owner_id for m in messages if m.owner_id}, now)
    going = []
    for message in messages:
        if message.send_started_at is not None and message.channel == "email":
            _settle(message, token, MESSAGE_FAILED, WHY_UNCERTAIN, action="failed")
            continue
        if message.channel == "portal":  # posted: the portal shows it from now on
            going.append((message, "portal"))
            continue
        verdict: Verdict = message_verdict(message, settings=settings, now=now,
                                           sent_recent=recent.get(message.owner_id, []))
        if verdict.action == "refuse":
            _settle(message, token, MESSAGE_NOT_SENT, verdict.reason, action="not_sent")
        elif verdict.action == "hold":
            _settle(message, token, MESSAGE_HELD, verdict.reason, next_at=verdict.until,
                    action="held")
        else:
            if message.channel in LIMITED:
                recent.setdefault(message.owner_id, []).append(now)
            going.append((message, verdict.address))
    db.session.commit()
    return going


def _job(message: ClientMessage, address: str, *, clinic: str, callback: str | None,
         smtp) -> _Job:
    """One message's words for its channel (may raise: the caller records why)."""
    texts = message_texts(message, clinic=clinic, link=portal_link(message))
    if message.channel == "email":
        if smtp is None:
            raise ChannelError(WHY_NO_SMTP, permanent=False)
        payload = email_build(to=address, subject=texts.subject, text=texts.text,
                              html=texts.html, key=message.uid,
                              from_address=smtp.from_address, from_name=clinic)
    else:
        payload = texts.sms if message.channel == "sms" else texts.voice
    return _Job(message.id, message.uid, message.channel, address, payload, callback,
                patient_uid=message.patient.uid, attempts=message.send_attempts)


def _jobs(going: list[tuple], clinic: str, token: str, now: datetime
          ) -> tuple[list[_Job], int]:
    """What the threads send: the words built here, in the app context. A message whose
    words or settings fail is written down at once with why (tried again after its
    back-off), so no claimed message is left without an outcome. The jobs, and how many
    could not be prepared."""
    jobs, failed = [], 0
    callback = public_address("messaging_callbacks.status")
    smtp = _settings(smtp_settings)
    for message, address in going:
        if message.channel == "portal":
            continue
        try:
            if message.channel == "email" and isinstance(smtp, Exception):
                raise smtp
            jobs.append(_job(message, address, clinic=clinic, callback=callback, smtp=smtp))
        except Exception as exc:  # noqa: BLE001 - a setting or a text: recorded, never stuck
            reason = str(exc) if isinstance(exc, DomainError | ChannelError | MailError) else (
                f"The message could not be prepared: {type(exc).__name__}.")
            job = _Job(message.id, message.uid, message.channel, address, None, None,
                       patient_uid=message.patient.uid, attempts=message.send_attempts)
            with db.engine.begin() as connection:
                outcome_write(connection, job, _Outcome(message.id, False, reason=reason),
                              token, now)
            failed += 1
    return jobs, failed


def _settings(read):
    """A channel's settings, or the error that reading them raised (told per message)."""
    return _settings_of(read, current_app.config)


def _settings_of(read, config):
    try:
        return read(config)
    except (ChannelError, MailError) as exc:
        return exc


class _Senders:
    """The channels' settings, and one SMTP session per sending thread (opened when its
    first e-mail goes, closed when the batch ends)."""

    def __init__(self, config, *, engine=None, token: str | None = None,
                 now: datetime | None = None):
        # Without an engine nothing is written (a sender that dies after sending).
        self.engine, self.token, self.now = engine, token, now
        self.smtp = None if isinstance(smtp := _settings_of(smtp_settings, config),
                                       Exception) else smtp
        self.provider = _settings_of(provider_settings, config)
        self._local = threading.local()
        self._open: list = []
        self._lock = threading.Lock()

    def send(self, job: _Job) -> tuple[_Outcome, str]:
        """Send one message and write its outcome at once (the sooner it is written, the
        fewer a crash leaves unknown); the outcome and what was written. Never raises."""
        outcome = replace(self._send(job), address=job.address)
        if outcome.taken or self.engine is None:
            return outcome, "taken"
        try:
            with self.engine.begin() as connection:
                return outcome, outcome_write(connection, job, outcome, self.token,
                                              self.now or clock.utcnow())
        except Exception:  # noqa: BLE001 - the lease runs out and the message is taken again
            log.exception("client message %s: its outcome could not be written", job.key)
            return outcome, "taken"

    def _send(self, job: _Job) -> _Outcome:
        try:
            if job.channel == "email":
                return self._email(job)
            if self.provider is None or isinstance(self.provider, Exception):
                why = str(self.provider) if self.provider is not None else WHY_NO_PROVIDER
                return _Outcome(job.message_id, False, reason=why, permanent=False)
            send = sms_send if job.channel == "sms" else voice_call
            words = {"body": job.payload} if job.channel == "sms" else {"text": job.payload}
            receipt = send(self.provider, to=job.address, key=job.key,
                           status_callback=job.callback, **words)
            return _Outcome(job.message_id, True, provider_id=receipt.provider_id)
        except (ChannelError, MailError) as exc:
            return _Outcome(job.message_id, False, reason=str(exc), permanent=exc.permanent)
        except Exception as exc:  # noqa: BLE001 - a sender's own fault is retried, not lost
            log.exception("client message %s: unexpected failure", job.key)
            return _Outcome(job.message_id, False, reason=f"Sending failed: "
                            f"{type(exc).__name__}.")

    def _email(self, job: _Job) -> _Outcome:
        if self.smtp is None:
            return _Outcome(job.message_id, False, reason=WHY_NO_SMTP)
        if not self._begin(job):
            return _Outcome(job.message_id, False, reason=WHY_CLAIM_LOST, taken=True)
        session = getattr(self._local, "session", None)
        if session is None:
            manager = smtp_session(self.smtp)
            session = manager.__enter__()
            self._local.session = session
            with self._lock:
                self._open.append(manager)
        try:
            session.send(job.payload)
        except MailError as exc:
            if not exc.permanent:  # the connection may be gone: the next one opens anew
                self._local.session = None
            raise
        return _Outcome(job.message_id, True)

    def _begin(self, job: _Job) -> bool:
        """Write down (committed) that this e-mail is being handed over, if the claim is
        still ours: a sender that dies from here on leaves it marked, never resent."""
        if self.engine is None:
            return True
        with self.engine.begin() as connection:
            done = connection.execute(update(ClientMessage).where(
                ClientMessage.id == job.message_id, ClientMessage.claim == self.token)
                .values(send_started_at=clock.utcnow_exact()))
        return done.rowcount == 1

    def close(self) -> None:
        """End every SMTP session of the batch."""
        for manager in self._open:
            try:
                manager.__exit__(None, None, None)
            except Exception:  # noqa: BLE001, S110 - the messages went; a close may fail
                pass
        self._open.clear()


def outcome_write(connection, job: _Job, outcome: _Outcome, token: str, now: datetime
                  ) -> str:
    """Write what became of a claimed message, if the claim is still `token`'s: sent,
    queued again after its back-off, or failed (a refusal, or too many tries); audited.
    "sent", "failed" or "taken" (another sender has it now: nothing written)."""
    mine = (ClientMessage.id == job.message_id) & (ClientMessage.claim == token)
    tries = job.attempts + 1
    if outcome.sent:
        values = {"status": MESSAGE_SENT, "status_detail": None, "send_next_at": None,
                  "provider_id": outcome.provider_id, "sent_at": clock.utcnow(),
                  "to_address": outcome.address}
        action, reason, result = "sent", "", "sent"
    elif outcome.permanent or tries >= MAX_TRIES:
        reason = outcome.reason if outcome.permanent else WHY_GAVE_UP.format(
            tries=tries, reason=outcome.reason)
        values = {"status": MESSAGE_FAILED, "status_detail": reason[:300], "send_next_at": None}
        action, result = "failed", "failed"
    else:  # tried again after its back-off, from when the answer failed to come
        values = {"status": MESSAGE_QUEUED, "status_detail": outcome.reason[:300],
                  "send_next_at": max(now, clock.utcnow()) + backoff_after(tries)}
        action, reason, result = None, outcome.reason, "failed"
    done = connection.execute(update(ClientMessage).where(mine).values(
        claim=None, send_started_at=None, send_attempts=tries, **values))
    if done.rowcount != 1:
        return "taken"
    if action is None:
        log.warning("client message %s not sent (try %d): %s", job.key, tries, reason)
    else:
        detail = {"message": job.key, "channel": job.channel}
        if reason:
            detail["reason"] = reason[:300]
        connection.execute(insert(AuditEntry), [audit_row(
            action=f"client_message.{action}", entity="patient", entity_uid=job.patient_uid,
            detail=detail)])
    return result


def _post(going: list[tuple], token: str, now: datetime) -> int:
    """Portal messages are posted by being recorded: sent now."""
    posted = 0
    for message, _address in going:
        if message.channel == "portal":
            job = _Job(message.id, message.uid, "portal", "portal", None, None,
                       patient_uid=message.patient.uid, attempts=message.send_attempts)
            with db.engine.begin() as connection:
                outcome_write(connection, job, _Outcome(message.id, True, address="portal"),
                              token, now)
            posted += 1
    return posted


def messages_send_due(*, now: datetime | None = None, limit: int = BATCH) -> dict:
    """Send one batch of due messages; the counts (sent, failed, held, not_sent, taken).

    A worker's entry point: it commits as it goes, and no transaction stays open while a
    provider or SMTP server answers."""
    now = now or clock.utcnow()
    counts = {"sent": 0, "failed": 0, "held": 0, "not_sent": 0, "taken": 0}
    token = _claim(now, limit)
    if token is None:
        return counts
    messages = _claimed(token)
    going = _decide(messages, token, now)
    counts["not_sent"] = sum(m.status == MESSAGE_NOT_SENT for m in messages)
    counts["held"] = sum(m.status == MESSAGE_HELD for m in messages)
    counts["failed"] = sum(m.status == MESSAGE_FAILED for m in messages)
    counts["sent"] += _post(going, token, now)
    jobs, unprepared = _jobs(going, settings_get().name or "The clinic", token, now)
    counts["failed"] += unprepared
    db.session.commit()  # no transaction open while the answers come
    senders = _Senders(current_app.config, engine=db.engine, token=token, now=now)
    workers = int(current_app.config.get("KIOSK_MESSAGE_SENDERS") or SENDERS)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs) or 1)),
                                thread_name_prefix="kiosk-send") as pool:
            for future in as_completed([pool.submit(senders.send, job) for job in jobs]):
                counts[future.result()[1]] += 1
    finally:
        senders.close()
    return counts


def messages_send_all() -> dict:
    """Send until nothing is due (a failure waits for its back-off); the totals."""
    totals = {"sent": 0, "failed": 0, "held": 0, "not_sent": 0, "taken": 0}
    while True:
        counts = messages_send_due()
        for name, value in counts.items():
            totals[name] += value
        if not any(counts.values()):
            return totals


def messages_waiting_counts() -> dict[str, int]:
    """What waits: queued or sending, held, and failed (for a manager's page)."""
    rows = db.session.execute(select(ClientMessage.status, func.count())
                              .group_by(ClientMessage.status)).all()
    return {status: count for status, count in rows}


def message_send_now(*, message: ClientMessage, user) -> ClientMessage:
    """A manager sends a held or failed message again now (the rules still apply: quiet
    hours and the daily limit hold it again unless it is urgent)."""
    permission_check(user, LEVEL_MANAGER, "send client messages again")
    if message.status not in (MESSAGE_HELD, MESSAGE_FAILED, MESSAGE_QUEUED):
        raise DomainError("not_waiting", ERR_NOT_WAITING.format(status=message.status_label))
    message.status = MESSAGE_QUEUED
    message.send_next_at = clock.utcnow()
    message.status_detail = None
    message.send_started_at = None
    if message.send_attempts >= MAX_TRIES:
        message.send_attempts = 0
    audit_record(action="client_message.send_now", entity="patient",
                 entity_uid=message.patient.uid, user=user,
                 detail={"message": message.uid})
    event_record(db.session, "client_message.queued", patient=message.patient.uid,
                 message=message.uid)
    return message

