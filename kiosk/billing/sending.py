"""Sending charges to the practice system through the webhook connector.

The charge rows are the queue: a charge with no `sent_at` is still to send, from its
`send_next_at` on. A sender claims one charge by moving `send_next_at` past a lease, in a
statement that only succeeds if nobody moved it first, so two workers (threads, processes)
never send the same charge at once, and one that dies mid-send leaves it to the next once
the lease is over. A failure is retried with a growing back-off, for ever: a charge is
never dropped. The charges of an unallocated patient are held (not sent) until the patient
is linked to the practice system; nothing marks them, so linking releases them.
"""

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.events import event_record
from ..extensions import db
from ..patients.models import Patient
from .connectors import WEBHOOK_TIMEOUT_S, ConnectorError, WebhookConnector, charge_payload
from .models import Charge
from .selectors import connector_settings

log = logging.getLogger(__name__)
# Longer than a webhook call may take (its timeout), so a live sender never loses its claim.
LEASE = timedelta(minutes=2)
BACKOFF = (timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=2),
           timedelta(minutes=10), timedelta(minutes=30))  # then every 30 minutes


def backoff_after(attempts: int) -> timedelta:
    """How long to wait before the next try after `attempts` failed ones."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def webhook_connector() -> WebhookConnector | None:
    """The connector charges go through now: the webhook, unless none is set or sending
    is paused (then None, and charges wait in their rows)."""
    row = connector_settings()
    if row is None or row.kind != "webhook" or row.paused or not row.webhook_url:
        return None
    timeout = float(current_app.config.get("KIOSK_BILLING_WEBHOOK_TIMEOUT")
                    or WEBHOOK_TIMEOUT_S)
    return WebhookConnector(row.webhook_url, timeout_s=timeout)


def _due(now: datetime, limit: int) -> list[tuple[int, datetime]]:
    """Unsent charges due by `now` whose patient is linked to the practice system, oldest
    first, with the `send_next_at` each was seen with (what a claim compares)."""
    return list(db.session.execute(
        select(Charge.id, Charge.send_next_at).join(Patient, Patient.id == Charge.patient_id)
        .where(Charge.sent_at.is_(None), Charge.send_next_at <= now,
               Patient.unallocated.is_(False))
        .order_by(Charge.id).limit(limit)).all())


def _claim(charge_id: int, seen: datetime, now: datetime) -> bool:
    """Take the charge for one lease if nobody took it since we looked (commits)."""
    # The lease runs from the claim: a long batch must not hand out leases already over.
    done = db.session.execute(update(Charge).where(
        Charge.id == charge_id, Charge.send_next_at == seen, Charge.sent_at.is_(None))
        .values(send_next_at=max(now, clock.utcnow()) + LEASE))
    db.session.commit()
    return done.rowcount == 1


def _prepared(charge_id: int) -> tuple[str, dict, int]:
    """The charge's idempotency key, JSON payload and failed tries so far; the read ends
    its transaction, so no database lock is held while the practice system answers."""
    charge = db.session.scalar(select(Charge).where(Charge.id == charge_id).options(
        joinedload(Charge.patient), joinedload(Charge.user), joinedload(Charge.device),
        joinedload(Charge.reverses)))
    prepared = (charge.uid, charge_payload(charge), charge.send_attempts)
    db.session.commit()
    return prepared


def _send_one(connector: WebhookConnector, charge_id: int, now: datetime) -> str:
    key, payload, attempts = _prepared(charge_id)
    try:
        connector.post(key, payload)
    except Exception as exc:  # noqa: BLE001 - every failure is retried, never dropped
        reason = str(exc) if isinstance(exc, ConnectorError) else (
            f"Sending failed: {type(exc).__name__}.")
        return _failed(charge_id, key, attempts + 1, reason, now)
    db.session.execute(update(Charge).where(Charge.id == charge_id, Charge.sent_at.is_(None))
                       .values(sent_at=clock.utcnow(), send_error=None))
    db.session.commit()
    return "sent"


def _failed(charge_id: int, key: str, attempts: int, reason: str, now: datetime) -> str:
    # From when the answer failed to come (a timeout took its seconds), not the batch start.
    next_at = max(now, clock.utcnow()) + backoff_after(attempts)
    db.session.execute(update(Charge).where(Charge.id == charge_id, Charge.sent_at.is_(None))
                       .values(send_attempts=attempts, send_error=reason[:500],
                               send_next_at=next_at))
    db.session.commit()
    log.warning("charge %s not sent (try %d), next try at %s: %s", key, attempts,
                next_at.isoformat(), reason)
    return "failed"


def charges_send_due(*, now: datetime | None = None, limit: int = 100) -> dict:
    """Send every due charge once (oldest first) through the webhook unless sending is
    paused or not set up; how many were sent, failed, or taken by another sender.

    A worker's entry point: it commits as it goes (each claim and each outcome), so no
    transaction stays open while the practice system answers."""
    counts = {"sent": 0, "failed": 0, "taken": 0}
    if webhook_connector() is None:
        db.session.commit()
        return counts
    now = now or clock.utcnow()
    due = _due(now, limit)
    db.session.commit()
    for charge_id, seen in due:
        # Read again for each charge: a pause (or a new address) takes effect at once.
        connector = webhook_connector()
        if connector is None:
            break
        if not _claim(charge_id, seen, now):
            counts["taken"] += 1
            continue
        counts[_send_one(connector, charge_id, now)] += 1
    db.session.commit()
    return counts


def charges_send_now(*, user, now: datetime | None = None) -> int:
    """Make every failing charge due now (a manager fixed the practice system); how many.

    A charge in the middle of a try may be sent once more by this: harmless, the practice
    system drops a repeat by its idempotency key."""
    permission_check(user, LEVEL_MANAGER, "send failing charges again")
    now = now or clock.utcnow()
    done = db.session.execute(update(Charge).where(
        Charge.sent_at.is_(None), Charge.send_attempts >= 1, Charge.send_next_at > now)
        .values(send_next_at=now))
    audit_record(action="billing.send_now", entity="billing_connector", entity_uid=None,
                 user=user, detail={"charges": done.rowcount})
    event_record(db.session, "billing.send_requested")
    return done.rowcount


def sending_counts() -> dict[str, int]:
    """What waits for the practice system: unsent charges, those held (the patient is
    unallocated), and those failing (tried at least once)."""
    unallocated = Patient.unallocated.is_(True)
    row = db.session.execute(
        select(func.count(),
               func.count().filter(unallocated),
               func.count().filter(Charge.send_attempts >= 1))
        .select_from(Charge).join(Patient, Patient.id == Charge.patient_id)
        .where(Charge.sent_at.is_(None))).one()
    return {"unsent": row[0], "held": row[1], "failing": row[2]}


def charges_failing(limit: int = 200) -> list[Charge]:
    """Unsent charges that failed at least once, oldest first, with their patient: what a
    manager looks at when the practice system is not taking charges."""
    return list(db.session.scalars(
        select(Charge).options(joinedload(Charge.patient))
        .where(Charge.sent_at.is_(None), Charge.send_attempts >= 1)
        .order_by(Charge.id).limit(limit)))


def patients_held(limit: int = 200) -> list[tuple]:
    """Unallocated patients with charges held (admitted or already gone home): each with
    the count and total held, oldest first — what a manager links to release."""
    return list(db.session.execute(
        select(Patient, func.count(Charge.id), func.sum(Charge.total))
        .join(Charge, Charge.patient_id == Patient.id)
        .where(Patient.unallocated.is_(True), Charge.sent_at.is_(None))
        .group_by(Patient.id).order_by(func.min(Charge.recorded_at)).limit(limit)).all())
