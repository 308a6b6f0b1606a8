"""Patient pages: the list, direct admission and editing (discharge: kiosk.discharge)."""

from flask import Blueprint, redirect, render_template, request, url_for

from ..clinic.selectors import settings_get, wards_list
from ..core.auth import (
    LEVEL_ORDERS,
    current_user,
    level_required,
    login_required,
)
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from .models import ALERT_LABELS, PANEL_COLOURS, SEX_LABELS, SPECIES
from .selectors import patient_by_uid, patients_list
from .services import patient_create, patient_update

bp = Blueprint("patients", __name__, url_prefix="/patients")

FIELDS = ("name", "species", "breed", "sex", "weight_kg", "date_of_birth", "owner_name",
          "owner_phone", "ward", "cage", "doctor", "colour", "alert_note", "pims_id",
          "file_number")


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
    data = form_data(*FIELDS, lists=("alerts",))
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
    data = {name: getattr(patient, name) for name in FIELDS if name != "ward"}
    data.update(ward=patient.ward_id, alerts=patient.alerts or [])
    return _form(data, patient=patient)


@bp.post("/<uid>/edit")
@level_required(LEVEL_ORDERS, "edit patients")
def update(uid: str):
    """Save the patient's details; nothing changes if any field is wrong."""
    patient = patient_by_uid(uid)
    data = form_data(*FIELDS, lists=("alerts",))
    _, error = commit_or_error(
        lambda: patient_update(patient=patient, user=current_user(), data=data))
    if error:
        return _form(data, patient=patient_by_uid(uid), error=error, status=422)
    return redirect(url_for("treatments.sheet", uid=uid))
