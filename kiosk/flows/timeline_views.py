"""A patient's flow timeline page: what the clinic's flows did and will do for them."""

from flask import Blueprint, render_template

from ..core.auth import LEVEL_COMPLETE_TASK, level_required
from ..messaging.selectors import client_messages_list
from ..patients.selectors import patient_by_uid
from .timeline import timeline_for

bp = Blueprint("flow_timeline", __name__, url_prefix="/flows/patients")


@bp.get("/<uid>")
@level_required(LEVEL_COMPLETE_TASK, "see a patient's flows", tablet=True)
def patient_timeline(uid: str):
    """Every flow run of the patient, newest first, with its steps and what they made,
    and every message to the owner (by a flow or not) with its state (read-only: a
    paired tablet may open it, as it opens the sheet's other pages)."""
    patient = patient_by_uid(uid)
    return render_template("flows/timeline.html", patient=patient, runs=timeline_for(patient),
                           messages=client_messages_list(patient_id=patient.id))
