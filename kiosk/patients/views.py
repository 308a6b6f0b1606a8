"""Patient pages: the list, direct admission and editing (discharge: kiosk.discharge)."""

from flask import Blueprint, redirect, render_template, request, url_for

from ..clinic.selectors import settings_get, wards_list
from ..core.auth import (
    LEVEL_FORMS,
    LEVEL_ORDERS,
    current_tablet,
    current_user,
    level_required,
    login_required,
)
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..extensions import db
from ..owners.models import CHANNEL_LABELS
from ..owners.services import owner_add_to_patient
from ..owners.views import owner_form_data
from ..staff.selectors import users_for_tablet
from ..staff.services import user_authenticate_pin
from ..staff.throttle import limit_sign_in
from .models import ALERT_LABELS, PANEL_COLOURS, SEX_LABELS, SPECIES
from .selectors import patient_by_uid, patients_list
from .services import PATIENT_FIELDS, PATIENT_LISTS, patient_create, patient_update

bp = Blueprint("patients", __name__, url_prefix="/patients")


def _form(template_data: dict, *, patient=None, error: DomainError | None = None, status=200):
    return render_template("patients/form.html", data=template_data, patient=patient,
                           error=error, wards=wards_list(), species=SPECIES,
                           sexes=SEX_LABELS, colours=PANEL_COLOURS, alerts=ALERT_LABELS,
                           savers=_tablet_savers() if patient is not None else None), status


def _tablet_savers():
    """On a tablet nobody signed in to on the server (its person unlocked it with a PIN,
    on the tablet alone), who may save the edit with their PIN; None elsewhere."""
    tablet = current_tablet()
    if tablet is None or current_user() is not None:
        return None
    return [u for u in users_for_tablet(tablet) if u.level >= LEVEL_ORDERS]


def _editor():
    """Who saves an edit: the signed-in person, else on a tablet the person who confirms
    it with their PIN (the one rule for PINs: staff.services.user_authenticate_pin, with
    its lockouts; a wrong PIN is counted, so it is committed). (user, None) or
    (None, DomainError)."""
    user = current_user()
    if user is not None:
        return user, None
    raw_id = request.form.get("saved_by", "")
    try:
        user = user_authenticate_pin(user_id=int(raw_id) if raw_id.isdigit() else None,
                                     pin=request.form.get("pin", ""), device=current_tablet())
    except DomainError as exc:
        db.session.commit()  # the count of wrong PINs
        return None, exc
    db.session.commit()  # the count of wrong tries starts over
    return user, None


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
@level_required(LEVEL_ORDERS, "edit patients", tablet=True)
def edit(uid: str):
    """The patient's details as a form."""
    patient = patient_by_uid(uid)
    data = {name: getattr(patient, name) for name in PATIENT_FIELDS if name != "ward"}
    data.update(ward=patient.ward_id, alerts=patient.alerts or [])
    return _form(data, patient=patient)


@bp.post("/<uid>/edit")
@limit_sign_in  # a tablet's edit is confirmed with a PIN: the sign-in forms' budget
@level_required(LEVEL_ORDERS, "edit patients", tablet=True)
def update(uid: str):
    """Save the patient's details; nothing changes if any field is wrong (or, on a tablet
    nobody signed in to on the server, if the PIN confirming it is wrong)."""
    patient = patient_by_uid(uid)
    data = form_data(*PATIENT_FIELDS, lists=PATIENT_LISTS)
    user, error = _editor()
    if error:
        return _form(data, patient=patient_by_uid(uid), error=error, status=422)
    _, error = commit_or_error(
        lambda: patient_update(patient=patient, user=user, data=data,
                               device=current_tablet()))
    if error:
        return _form(data, patient=patient_by_uid(uid), error=error, status=422)
    return redirect(url_for("treatments.sheet", uid=uid))


def _owner_form(patient, data: dict, *, error: DomainError | None = None, status: int = 200):
    return render_template("owners/form.html", owner=None, patient=patient, data=data,
                           error=error, channels=CHANNEL_LABELS,
                           action=url_for("patients.owner_add", uid=patient.uid),
                           back=url_for("treatments.sheet", uid=patient.uid)), status


@bp.get("/<uid>/owner/new")
@level_required(LEVEL_FORMS, "enter owners' contact details")
def owner_new(uid: str):
    """The "Add owner details" form of a patient with no owner's record, started from the
    name and phone the patient shows."""
    patient = patient_by_uid(uid)
    if patient.owner is not None:
        return redirect(url_for("owners.show", uid=patient.owner.uid))
    return _owner_form(patient, {"name": patient.owner_name, "phone": patient.owner_phone,
                                 "preferred_channel": "email"})


@bp.post("/<uid>/owner/new")
@level_required(LEVEL_FORMS, "enter owners' contact details")
def owner_add(uid: str):
    """Create the patient's owner and link them; nothing is stored if any field is wrong."""
    patient = patient_by_uid(uid)
    data = owner_form_data()
    owner, error = commit_or_error(lambda: owner_add_to_patient(
        patient=patient, user=current_user(), name=data.get("name"), email=data.get("email"),
        phone=data.get("phone"), preferred_channel=data.get("preferred_channel"),
        sms_consent=data["sms_consent"], voice_consent=data["voice_consent"]))
    if error:
        return _owner_form(patient_by_uid(uid), data, error=error, status=422)
    return redirect(url_for("owners.show", uid=owner.uid), code=303)
