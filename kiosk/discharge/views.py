"""The discharge page: what a discharge checks first, and the button (a manager's
override when something blocks it). Its URLs sit under the patient's."""

from flask import Blueprint, redirect, render_template, request, url_for

from ..core.auth import (
    LEVEL_DISCHARGE,
    current_user,
    level_required,
    login_required,
    permission_check,
)
from ..core.forms import commit_or_error
from ..patients.selectors import patient_by_uid
from .selectors import discharge_blockers
from .services import patient_discharge

bp = Blueprint("discharge", __name__, url_prefix="/patients")


def _page(patient, *, error=None, reason="", status=200):
    blockers = discharge_blockers(patient) if patient.status == "admitted" else []
    return render_template("discharge/page.html", patient=patient, blockers=blockers,
                           error=error, reason=reason), status


@bp.get("/<uid>/discharge")
@level_required(LEVEL_DISCHARGE, "discharge patients", tablet=True)
def page(uid: str):
    """What a discharge checks first, and the button (a manager's override when blocked)."""
    return _page(patient_by_uid(uid))


@bp.post("/<uid>/discharge")
@login_required
def submit(uid: str):
    """Discharge the patient after the checks: it leaves every board."""
    patient = patient_by_uid(uid)
    permission_check(current_user(), LEVEL_DISCHARGE, "discharge patients")
    reason = request.form.get("override_reason", "")
    _, error = commit_or_error(lambda: patient_discharge(
        patient=patient, user=current_user(), override_reason=reason or None))
    if error:
        return _page(patient_by_uid(uid), error=error, reason=reason, status=409)
    return redirect(url_for("patients.index"))
