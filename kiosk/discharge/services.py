"""A discharge: the checks it runs first, a manager's override, and the documents it
queues. It renders no PDF: the documents it queues (its summary, the merged PDF) and
those still queued are rows committed with it, made by the documents worker afterwards,
outside the sync write lock."""

from decimal import Decimal

from flask import render_template

from ..clinic.selectors import settings_get, settings_zone
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_DISCHARGE, LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.events import event_record, fact_record
from ..core.validate import text_optional
from ..documents.selectors import documents_of
from ..documents.services import document_queue
from ..extensions import db
from ..patients.models import Patient
from .selectors import Blocker, discharge_blockers, stay_charges, stay_treatments

ERR_BLOCKED = "{name} cannot be discharged yet: {reasons}"
ERR_OVERRIDE_LEVEL = "override a blocked discharge"
ERR_DISCHARGED = "{name} has already been discharged."


def patient_discharge(*, patient: Patient, user, device=None, at=None,
                      override_reason: str | None = None) -> Patient:
    """Discharge after the checks: nothing for this patient waiting on a device, no
    unfinished sheet or form, no document whose PDF failed; or a manager overrides them
    with a reason (recorded). The patient leaves every board; its summary is queued for
    the documents worker, with the patient's PDFs still queued."""
    permission_check(user, LEVEL_DISCHARGE, "discharge patients")
    if patient.status == "discharged":
        raise DomainError("already_discharged", ERR_DISCHARGED.format(name=patient.name))
    overridden = discharge_check(patient=patient, user=user, device=device, at=at,
                                 override_reason=override_reason)
    patient.status = "discharged"
    patient.discharged_at = at or clock.utcnow()
    patient.discharged_by_id = user.id
    patient.discharge_override = override_reason.strip() if overridden else None
    audit_record(action="patient.discharge", entity="patient", entity_uid=patient.uid,
                 user=user, device=device,
                 detail={"override": patient.discharge_override,
                         "overridden": [b.code for b in overridden]})
    discharge_archive(patient=patient, user=user, device=device, overridden=overridden)
    # What no longer applies once the patient has gone (flow tasks) ends with the discharge.
    fact_record("patient.discharged", patient=patient, at=patient.discharged_at)
    event_record(db.session, "patient.changed", patient=patient.uid)
    event_record(db.session, "patient.discharged", patient=patient.uid,
                 at=patient.discharged_at)
    return patient


def discharge_check(*, patient, user, device=None, at=None,
                    override_reason=None) -> list[Blocker]:
    """DomainError `discharge_blocked` naming every blocker, unless there are none or a
    manager overrides them with a reason; the blockers overridden are returned. `at`: when
    a tablet discharged (a task due after it was not missed, whenever the op arrives)."""
    reason = text_optional(override_reason, "override_reason", "Reason", 500)
    now = clock.utcnow()
    blockers = discharge_blockers(patient, device=device, at=min(at, now) if at else now)
    if not blockers:
        return []
    if not reason:
        raise DomainError("discharge_blocked", ERR_BLOCKED.format(
            name=patient.name, reasons=" ".join(b.message for b in blockers)))
    permission_check(user, LEVEL_MANAGER, ERR_OVERRIDE_LEVEL)
    return blockers


def discharge_archive(*, patient, user, device=None, overridden=()) -> None:
    """Queue the discharge summary PDF (the stay's documents, the treatments given and
    skipped, the charges), then (if the clinic asks) one PDF of everything."""
    charges = stay_charges(patient)
    settings = settings_get()
    html = render_template("discharge/summary.html", patient=patient, clinic=settings,
                           tz=settings_zone(settings),
                           user=user, device=device, overridden=list(overridden),
                           documents=[d for d in documents_of(patient) if d.kind != "merged"],
                           treatments=stay_treatments(patient), charges=charges,
                           charges_total=sum((c.total for c in charges), Decimal(0)))
    document_queue(patient=patient, kind="discharge", source_uid=patient.uid,
                   title="Discharge summary", html=html, user=user, device=device)
    if settings.documents_merge_at_discharge:
        document_queue(patient=patient, kind="merged", source_uid=patient.uid,
                       title="All documents (merged at discharge)", html=None, user=user,
                       device=device)
