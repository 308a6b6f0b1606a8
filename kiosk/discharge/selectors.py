"""What stands in the way of discharging a patient, and which patients have something
pending (the automatic pending board): a handful of queries, whatever the count."""

from dataclasses import dataclass

from sqlalchemy import select

from ..anaesthesia.models import SHEET_OPEN, AnaesthesiaSheet
from ..devices.models import Device, SyncOp
from ..documents.models import DOC_FAILED, DOC_READY, Document
from ..extensions import db
from ..patients.models import Patient


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


def discharge_blockers(patient: Patient, *, device=None) -> list[Blocker]:
    """Everything that should be finished before this patient goes home. `device`: the
    tablet sending the discharge (its own earlier ops were applied before it)."""
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
    return out


def pending_by_patient(patients: list[Patient]) -> dict[int, list[str]]:
    """For each of these patients with something unfinished, short labels of what: open
    anaesthesia sheets, forms, documents waiting for their PDF, discharges not synced, and
    discharges a tablet sent that were blocked and not yet reviewed."""
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
    return out
