"""Writes for patients: admit (direct or from the practice system), update, link.
Discharge is its own feature (kiosk.discharge)."""

from datetime import date

from sqlalchemy import select

from ..clinic.models import Ward
from ..clinic.selectors import clinic_today, settings_get
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_ORDERS, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.models import new_uid, uid_check_free
from ..core.validate import (
    DAY_MIN,
    INT_MAX,
    choice,
    day,
    decimal_optional,
    text_optional,
    text_required,
)
from ..extensions import db
from .models import ALERTS, PANEL_COLOURS, SEXES, Patient

ERR_DIRECT_OFF = ("Creating patients directly is switched off; admit them in the practice "
                  "system, or ask a manager to allow direct creation.")
ERR_PIMS_TAKEN = "Another patient already has practice-system id {pims_id}."
ERR_OWNER_LINKED = ("{name}'s owner has their own record: change the owner's {what} on the "
                    "owner's page.")
# The patient's copies of its owner's details, kept equal to the owner's record.
OWNER_COPIES = {"owner_name": "name", "owner_phone": "phone"}

# What a patient is given by, the one list (the admission and edit forms, the patient.create
# op); `alerts` holds many values (a form's ticked boxes, an op's list).
PATIENT_FIELDS = ("name", "species", "breed", "sex", "weight_kg", "date_of_birth", "owner_name",
                  "owner_phone", "ward", "cage", "doctor", "colour", "alerts", "alert_note",
                  "pims_id", "file_number")
PATIENT_LISTS = ("alerts",)
# Field → (label, max length) for the plain text fields of a patient.
TEXT_FIELDS = {
    "breed": ("Breed", 80), "owner_name": ("Owner", 120), "owner_phone": ("Owner's phone", 40),
    "cage": ("Cage", 20), "doctor": ("Doctor", 120), "file_number": ("File number", 64),
    "alert_note": ("Alert note", 200),
}


def patient_fields_clean(data: dict, *, partial: bool = False) -> dict:
    """Validate patient fields from a form, an import row or an op; return clean values.

    With `partial`, only the keys present in `data` are checked and returned.
    """
    out: dict = {}
    if not partial or "name" in data:
        out["name"] = text_required(data.get("name"), "name", "Name", 120)
    if not partial or "species" in data:
        out["species"] = text_required(data.get("species"), "species", "Species", 30).lower()
    for key, (label, max_len) in TEXT_FIELDS.items():
        if key in data:
            out[key] = text_optional(data.get(key), key, label, max_len)
    if data.get("sex") not in (None, ""):
        out["sex"] = choice(str(data["sex"]).upper(), "sex", "Sex", SEXES)
    if "weight_kg" in data:
        out["weight_kg"] = decimal_optional(data.get("weight_kg"), "weight_kg", "Weight (kg)",
                                            minimum=None, maximum=None)
        if out["weight_kg"] is not None and not 0 < out["weight_kg"] <= 2000:
            raise DomainError("out_of_range", "Weight must be more than 0 and at most 2000 kg.",
                              field="weight_kg")
    if "date_of_birth" in data:
        out["date_of_birth"] = _date_of_birth(data.get("date_of_birth"))
    if data.get("colour") not in (None, ""):
        out["colour"] = choice(data["colour"], "colour", "Colour", PANEL_COLOURS)
    if "alerts" in data:
        out["alerts"] = _alerts(data.get("alerts"))
    if "ward" in data:
        out["ward"] = ward_resolve(data.get("ward"))
    if "pims_id" in data:
        out["pims_id"] = text_optional(data.get("pims_id"), "pims_id", "Practice-system id", 64)
    return out


def _date_of_birth(value) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        parsed = value
    else:
        parsed = day(value.strip() if isinstance(value, str) else value, "date_of_birth",
                     "Date of birth")
    if parsed < DAY_MIN:
        raise DomainError("out_of_range", f"Date of birth must be after {DAY_MIN.year}.",
                          field="date_of_birth")
    if parsed > clinic_today():
        raise DomainError("bad_date", "Date of birth cannot be in the future.",
                          field="date_of_birth")
    return parsed


def _alerts(value) -> list[str]:
    if value in (None, ""):
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise DomainError("bad_type", "Alerts must be a list.", field="alerts")
    out = []
    for item in items:
        key = str(item).strip().lower()
        if key and key not in out:
            out.append(choice(key, "alerts", "Alert", ALERTS))
    return out


def ward_resolve(value) -> Ward | None:
    """A ward from its id or its name (as imports and ops give it), or None when empty."""
    if value in (None, ""):
        return None
    if isinstance(value, Ward):
        return value
    ward = None
    if isinstance(value, bool) or isinstance(value, int) and not 0 < value <= INT_MAX:
        raise DomainError("unknown_ward", "There is no ward with that number.", field="ward")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()
                                  and len(value.strip()) <= 10):
        number = int(value)
        ward = db.session.get(Ward, number) if number <= INT_MAX else None
    if ward is None and isinstance(value, str):
        ward = db.session.scalar(select(Ward).where(Ward.name == value.strip()))
    if ward is None:
        raise DomainError("unknown_ward", f"There is no ward “{str(value)[:60]}”.",
                          field="ward")
    return ward


def patient_create(*, user, data: dict, origin: str = "direct", uid: str | None = None,
                   device=None, at=None, clinical_fact: bool = False) -> Patient:
    """Admit a patient. Direct creation needs the clinic setting unless it is a clinical
    fact already done at the bedside (an offline tablet), which is never refused."""
    if origin == "direct" and not clinical_fact:
        permission_check(user, LEVEL_ORDERS, "create patients")
        if not settings_get().allow_direct_patient_creation:
            raise DomainError("direct_creation_off", ERR_DIRECT_OFF, status=403)
    fields = patient_fields_clean(data)
    if uid is not None:
        uid_check_free(Patient, uid, field="patient", what="patient")
    _pims_id_free(fields.get("pims_id"), None)
    patient = Patient(uid=uid or new_uid(), origin=origin, admitted_at=at or clock.utcnow(),
                      status="admitted")
    _apply(patient, fields)
    patient.unallocated = not patient.pims_id
    db.session.add(patient)
    audit_record(action="patient.create", entity="patient", entity_uid=patient.uid, user=user,
                 device=device, detail={"origin": origin, "name": patient.name})
    event_record(db.session, "patient.changed", patient=patient.uid)
    # When the patient really came in: a tablet's offline admission syncs later.
    event_record(db.session, "patient.admitted", patient=patient.uid, at=patient.admitted_at)
    return patient


def patient_update(*, patient: Patient, user, data: dict, device=None) -> Patient:
    """Change the fields present in `data`; linking a PIMS id allocates the patient."""
    permission_check(user, LEVEL_ORDERS, "edit patients")
    fields = patient_fields_clean(data, partial=True)
    _owner_copies_check(patient, fields)
    if "pims_id" in fields:
        _pims_id_free(fields["pims_id"], patient.id)
    before = {key: _plain(getattr(patient, key if key != "ward" else "ward_id"))
              for key in fields}
    ward_was = patient.ward_id
    was_unallocated = patient.unallocated
    _apply(patient, fields)
    patient.unallocated = not patient.pims_id
    if was_unallocated and not patient.unallocated:
        # Linked to the practice system's record: what waited for it (charges) may go.
        event_record(db.session, "patient.allocated", patient=patient.uid)
    audit_record(action="patient.update", entity="patient", entity_uid=patient.uid, user=user,
                 device=device, detail={"before": before})
    # A move between wards changes two boards: the one it left must drop its row.
    event_record(db.session, "patient.changed", patient=patient.uid, ward_was=ward_was)
    return patient


def _owner_copies_check(patient: Patient, fields: dict) -> None:
    """A patient with an owner's record shows that owner's name and phone: the owner's
    services change them (for all the owner's patients), a patient edit may not."""
    if patient.owner is None:
        return
    for key, what in OWNER_COPIES.items():
        if key in fields and fields[key] != getattr(patient, key):
            raise DomainError("owner_linked", ERR_OWNER_LINKED.format(
                name=patient.name, what=what), field=key)


def _pims_id_free(pims_id: str | None, own_id: int | None) -> None:
    if not pims_id:
        return
    other = db.session.scalar(select(Patient.id).where(Patient.pims_id == pims_id))
    if other is not None and other != own_id:
        raise DomainError("pims_id_taken", ERR_PIMS_TAKEN.format(pims_id=pims_id),
                          field="pims_id")


def _apply(patient: Patient, fields: dict) -> None:
    for key, value in fields.items():
        if key == "ward":
            patient.ward = value
        else:
            setattr(patient, key, value)


def _plain(value):
    return value if value is None or isinstance(value, int | str | bool | list) else str(value)
