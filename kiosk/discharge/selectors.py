"""What stands in the way of discharging a patient, and which patients have something
pending (the automatic pending board): a handful of queries, whatever the count."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..anaesthesia.models import SHEET_OPEN, AnaesthesiaSheet
from ..billing.models import Charge
from ..billing.selectors import sending_configured, unsent_by_patient
from ..clinic.selectors import settings_get, settings_zone
from ..core import clock
from ..core.clock import to_local
from ..devices.models import Device, SyncOp
from ..documents.models import DOC_FAILED, DOC_READY, Document
from ..extensions import db
from ..patients.models import Patient
from ..treatments.models import TASK_DONE, TASK_OPEN, TASK_SKIPPED, Order, Task

# An overdue order names at most this many of its due times (then "and N more").
DUE_TIMES_NAMED = 6
# A charge not sent this long after it was captured should be in the practice system by now.
CHARGE_IN_FLIGHT = timedelta(minutes=2)


@dataclass(frozen=True)
class Blocker:
    """One reason not to discharge yet: a stable code and a sentence for staff."""

    code: str
    message: str


def _waiting_devices(uids: list[str], *, discharges: bool = False) -> dict[str, list[Device]]:
    """Active devices whose last heartbeat said they hold ops for these patients (or, with
    `discharges`, a discharge of them), by patient uid."""
    out: dict[str, list[Device]] = {}
    wanted = set(uids)
    for device in db.session.scalars(select(Device).where(
            Device.revoked_at.is_(None), Device.outbox_pending > 0).order_by(Device.id)):
        held = device.outbox_discharges if discharges else device.outbox_patients
        for uid in set(held or []) & wanted:
            out.setdefault(uid, []).append(device)
    return out


def _open_forms(patient_ids: list[int]) -> dict[int, list[str]]:
    """Forms started and not finalised, by patient (their titles)."""
    from ..forms.selectors import open_forms_by_patient

    return open_forms_by_patient(patient_ids)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _charge_blockers(patient: Patient, at: datetime) -> list[Blocker]:
    """Charges not yet in the practice system: held ones (the patient is not linked to a
    practice-system record) always block; others only when sending is configured and they
    should be there by now (sent and failed, or waiting longer than a send takes), as a
    clinic exporting by hand has no "sent" to wait for, and a charge captured a moment ago
    (in the same sync as the discharge) is on its way."""
    rows = db.session.execute(select(Charge.total, Charge.recorded_at, Charge.send_attempts)
                              .where(Charge.patient_id == patient.id,
                                     Charge.sent_at.is_(None))).all()
    if patient.unallocated:
        totals = [total for total, _, _ in rows]
    elif sending_configured():
        totals = [total for total, recorded_at, attempts in rows
                  if attempts or recorded_at < at - CHARGE_IN_FLIGHT]
    else:
        return []
    if not totals:
        return []
    what = f"{_plural(len(totals), 'charge')} (total {sum(totals, Decimal(0)):.2f})"
    if patient.unallocated:
        return [Blocker("charges_held", f"{what} {'is' if len(totals) == 1 else 'are'} held "
                        f"until {patient.name} is linked to the practice system record.")]
    return [Blocker("charges_unsent", f"{what} for {patient.name} "
                    f"{'has' if len(totals) == 1 else 'have'} not reached the practice "
                    "system yet (see Billing settings: sending may be paused or failing).")]


def _overdue_blockers(patient: Patient, at: datetime) -> list[Blocker]:
    """Open tasks of the patient's active billable orders (a code and a price: a charge
    would be missed, a dose not given) overdue at `at` as the boards say overdue (past the
    clinic's due grace window), one blocker per order naming each due time in the clinic's
    zone."""
    settings = settings_get()
    late = at - timedelta(minutes=settings.due_grace_minutes)
    rows = db.session.execute(
        select(Order.id, Order.name, Task.due_at)
        .join(Task, Task.order_id == Order.id)
        .where(Order.patient_id == patient.id, Order.status == "active",
               Order.billable_code.is_not(None), Order.price.is_not(None),
               Task.patient_id == patient.id, Task.status == TASK_OPEN, Task.due_at < late)
        .order_by(Order.name, Order.id, Task.due_at)).all()
    by_order: dict[int, tuple[str, list[datetime]]] = {}
    for order_id, name, due_at in rows:
        by_order.setdefault(order_id, (name, []))[1].append(due_at)
    tz = settings_zone(settings)
    out = []
    for name, due in by_order.values():
        times = ", ".join(f"{to_local(d, tz):%a %d %b %H:%M}" for d in due[:DUE_TIMES_NAMED])
        if len(due) > DUE_TIMES_NAMED:
            times += f" and {len(due) - DUE_TIMES_NAMED} more"
        out.append(Blocker("task_overdue_billable", f"{name} (billable) is overdue, not "
                           f"done or skipped: due {times}."))
    return out


def discharge_blockers(patient: Patient, *, device=None, at: datetime | None = None
                       ) -> list[Blocker]:
    """Everything that should be finished before this patient goes home. `device`: the
    tablet sending the discharge (its own earlier ops were applied before it); `at`: when
    the discharge happened (a tablet's may be earlier than now), tasks due before it are
    overdue."""
    out = []
    for other in _waiting_devices([patient.uid]).get(patient.uid, []):
        if device is not None and other.id == device.id:
            continue
        out.append(Blocker("device_waiting", f"{other.label} still holds "
                           f"{other.outbox_pending} unsent change(s) for {patient.name}: "
                           "bring it online so they sync."))
    sheets = db.session.scalars(select(AnaesthesiaSheet).where(
        AnaesthesiaSheet.patient_id == patient.id, AnaesthesiaSheet.status == SHEET_OPEN,
        AnaesthesiaSheet.merged_into_id.is_(None))).all()
    for sheet in sheets:
        out.append(Blocker("sheet_open", "The anaesthesia sheet started "
                           f"{sheet.started_at:%Y-%m-%d %H:%M} UTC is not finalised."))
    for title in _open_forms([patient.id]).get(patient.id, []):
        out.append(Blocker("form_open", f"The form “{title}” is not finalised."))
    # A PDF still queued does not hold the discharge: the worker makes it after the commit.
    for document in db.session.scalars(select(Document).where(
            Document.patient_id == patient.id, Document.status == DOC_FAILED)):
        out.append(Blocker("document_failed", f"The PDF of “{document.title}” could not "
                           f"be made ({document.last_error}); a manager can retry it."))
    at = at or clock.utcnow()
    out.extend(_overdue_blockers(patient, at))
    out.extend(_charge_blockers(patient, at))
    return out


def stay_treatments(patient: Patient) -> list[Task]:
    """The tasks done or skipped during the stay, in time order, each with its order and
    who did it (one query): what the discharge summary lists as treatments given."""
    return list(db.session.scalars(
        select(Task).options(joinedload(Task.order), joinedload(Task.done_by))
        .where(Task.patient_id == patient.id, Task.status.in_((TASK_DONE, TASK_SKIPPED)))
        .order_by(Task.done_at, Task.id)))


def stay_charges(patient: Patient) -> list[Charge]:
    """Every charge of the patient, reversals included, in the order performed, each with
    who and which device (one query)."""
    return list(db.session.scalars(
        select(Charge).options(joinedload(Charge.user), joinedload(Charge.device))
        .where(Charge.patient_id == patient.id)
        .order_by(Charge.performed_at, Charge.id)))


def pending_by_patient(patients: list[Patient]) -> dict[int, list[str]]:
    """For each of these patients with something unfinished, short labels of what: open
    anaesthesia sheets, forms, documents waiting for their PDF, discharges not synced,
    discharges a tablet sent that were blocked and not yet reviewed, and charges held
    because the patient is not linked to the practice system."""
    if not patients:
        return {}
    ids = [p.id for p in patients]
    by_uid = {p.uid: p.id for p in patients}
    out: dict[int, list[str]] = {}
    for patient_id in db.session.scalars(select(AnaesthesiaSheet.patient_id).where(
            AnaesthesiaSheet.patient_id.in_(ids), AnaesthesiaSheet.status == SHEET_OPEN,
            AnaesthesiaSheet.merged_into_id.is_(None)).distinct()):
        out.setdefault(patient_id, []).append("anaesthesia open")
    for patient_id, titles in _open_forms(ids).items():
        out.setdefault(patient_id, []).append(f"{len(titles)} form(s) open")
    for patient_id in db.session.scalars(select(Document.patient_id).where(
            Document.patient_id.in_(ids), Document.status != DOC_READY).distinct()):
        out.setdefault(patient_id, []).append("PDF waiting")
    for uid, devices in _waiting_devices(list(by_uid), discharges=True).items():
        labels = ", ".join(d.label for d in devices)
        out.setdefault(by_uid[uid], []).append(f"discharge waiting on {labels}")
    # A discharge sent from a tablet and blocked on sync: shown until someone reviews it.
    for uid in db.session.scalars(select(SyncOp.patient_uid).where(
            SyncOp.patient_uid.in_(list(by_uid)), SyncOp.name == "patient.discharge",
            SyncOp.status == "conflict", SyncOp.dismissed_at.is_(None)).distinct()):
        out.setdefault(by_uid[uid], []).append("discharge blocked, not reviewed")
    for patient_id, counts in unsent_by_patient(ids).items():
        if counts["held"]:
            out.setdefault(patient_id, []).append(
                f"unallocated — {_plural(counts['held'], 'charge')} held")
    return out
