"""Patient pages: the list, direct admission, editing and discharge."""

from flask import Blueprint, redirect, render_template, request, url_for

from ..clinic.selectors import settings_get, wards_list
from ..core.auth import (
    LEVEL_DISCHARGE,
    LEVEL_ORDERS,
    current_user,
    level_required,
    login_required,
    permission_check,
)
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from .models import ALERT_LABELS, PANEL_COLOURS, SEX_LABELS, SPECIES
from .selectors import patient_by_uid, patients_list
from .services import (
    PATIENT_FIELDS,
    PATIENT_LISTS,
    patient_create,
    patient_discharge,
    patient_update,
)

bp = Blueprint("patients", __name__, url_prefix="/patients")


def _form(template_data: dict, *, patient=None, error: DomainError | None = None, status=200):
    return render_template("patients/form.html", data=template_data, patient=patient,
                           error=error, wards=wards_list(), species=SPECIES,
                           sexes=SEX_LABELS, colours=PANEL_COLOURS, alerts=ALERT_LABELS), status


@bp.get("/")
@login_required
def index():
    """Admitted patients by ward, with their sheets; `?unallocated=1` lists unlinked ones."""
    only_unallocated = request.args.get("unallocated") == "1"
    return render_template("patients/index.html",
                           patients=patients_list(unallocated=True if only_unallocated else None),
                           only_unallocated=only_unallocated, settings=settings_get())


@bp.get("/new")
@level_required(LEVEL_ORDERS, "create patients", tablet=True)
def new():
    """The direct admission form (only when the clinic allows direct creation)."""
    if not settings_get().allow_direct_patient_creation:
        raise DomainError("direct_creation_off", "Creating patients directly is switched off; "
                          "ask a manager to allow it.", status=403)
    return _form({"alerts": []})


@bp.post("/new")
@level_required(LEVEL_ORDERS, "create patients")
def create():
    """Admit a patient directly; listed as unallocated until linked to the PIMS record."""
    data = form_data(*PATIENT_FIELDS, lists=PATIENT_LISTS)
    patient, error = commit_or_error(
        lambda: patient_create(user=current_user(), data=data, origin="direct"))
    if error:
        return _form(data, error=error, status=422)
    return redirect(url_for("treatments.sheet", uid=patient.uid))


@bp.get("/<uid>/edit")
@level_required(LEVEL_ORDERS, "edit patients")
def edit(uid: str):
    """The patient's details as a form."""
    patient = patient_by_uid(uid)
    data = {name: getattr(patient, name) for name in PATIENT_FIELDS if name != "ward"}
    data.update(ward=patient.ward_id, alerts=patient.alerts or [])
    return _form(data, patient=patient)


@bp.post("/<uid>/edit")
@level_required(LEVEL_ORDERS, "edit patients")
def update(uid: str):
    """Save the patient's details; nothing changes if any field is wrong."""
    patient = patient_by_uid(uid)
    data = form_data(*PATIENT_FIELDS, lists=PATIENT_LISTS)
    _, error = commit_or_error(
        lambda: patient_update(patient=patient, user=current_user(), data=data))
    if error:
        return _form(data, patient=patient_by_uid(uid), error=error, status=422)
    return redirect(url_for("treatments.sheet", uid=uid))


def _discharge_page(patient, *, error=None, reason="", status=200):
    from ..discharge.selectors import discharge_blockers

    blockers = discharge_blockers(patient) if patient.status == "admitted" else []
    return render_template("patients/discharge.html", patient=patient, blockers=blockers,
                           error=error, reason=reason), status


@bp.get("/<uid>/discharge")
@level_required(LEVEL_DISCHARGE, "discharge patients", tablet=True)
def discharge_page(uid: str):
    """What a discharge checks first, and the button (a manager's override when blocked)."""
    return _discharge_page(patient_by_uid(uid))


@bp.post("/<uid>/discharge")
@login_required
def discharge(uid: str):
    """Discharge the patient after the checks: it leaves every board."""
    patient = patient_by_uid(uid)
    permission_check(current_user(), LEVEL_DISCHARGE, "discharge patients")
    reason = request.form.get("override_reason", "")
    _, error = commit_or_error(lambda: patient_discharge(
        patient=patient, user=current_user(), override_reason=reason or None))
    if error:
        return _discharge_page(patient_by_uid(uid), error=error, reason=reason, status=409)
    return redirect(url_for("patients.index"))
