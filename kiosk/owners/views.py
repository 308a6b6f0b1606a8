"""Owner pages for staff: find an owner, see their contact details, consent and patients,
edit them, and opt them out of (or back in to) every message."""

from flask import Blueprint, redirect, render_template, request, url_for

from ..core.auth import LEVEL_COMPLETE_TASK, current_user, level_required
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from .models import CHANNEL_LABELS
from .selectors import owner_by_uid, owner_with_patients, owners_search
from .services import (
    LEVEL_OPT_IN,
    LEVEL_OPT_OUT,
    LEVEL_OWNER_EDIT,
    OWNER_FIELDS,
    owner_opt_in,
    owner_opt_out,
    owner_save,
)

bp = Blueprint("owners", __name__, url_prefix="/owners")

CONSENTS = ("sms_consent", "voice_consent")


def owner_form_data() -> dict:
    """The owner form's fields as posted (an unticked consent box is a no); the patient's
    "Add owner details" form posts the same fields."""
    data = form_data(*(name for name in OWNER_FIELDS if name not in CONSENTS))
    data.update({name: name in request.form for name in CONSENTS})
    return data


def _show(owner, *, error: DomainError | None = None, reason: str = "", status: int = 200):
    return render_template("owners/show.html", owner=owner, channels=CHANNEL_LABELS,
                           error=error, reason=reason, level_opt_out=LEVEL_OPT_OUT,
                           level_opt_in=LEVEL_OPT_IN, level_edit=LEVEL_OWNER_EDIT), status


def _form(owner, data: dict, *, error: DomainError | None = None, status: int = 200):
    return render_template("owners/form.html", owner=owner, patient=None, data=data,
                           error=error, channels=CHANNEL_LABELS,
                           action=url_for("owners.update", uid=owner.uid),
                           back=url_for("owners.show", uid=owner.uid)), status


@bp.get("/")
@level_required(LEVEL_COMPLETE_TASK, "find owners")
def index():
    """Search owners by name, phone or e-mail address."""
    query = request.args.get("q", "")
    return render_template("owners/index.html", query=query, owners=owners_search(query),
                           channels=CHANNEL_LABELS)


@bp.get("/<uid>")
@level_required(LEVEL_COMPLETE_TASK, "see owners' details")
def show(uid: str):
    """The owner's contact details, preferred channel, consent, opt-out and patients."""
    return _show(owner_with_patients(uid))


@bp.get("/<uid>/edit")
@level_required(LEVEL_OWNER_EDIT, "enter owners' contact details")
def edit(uid: str):
    """The owner's details as a form."""
    owner = owner_by_uid(uid)
    return _form(owner, {name: getattr(owner, name) for name in OWNER_FIELDS})


@bp.post("/<uid>/edit")
@level_required(LEVEL_OWNER_EDIT, "enter owners' contact details")
def update(uid: str):
    """Save the owner's details; nothing changes if any field is wrong."""
    owner = owner_by_uid(uid)
    data = owner_form_data()
    _, error = commit_or_error(lambda: owner_save(
        owner=owner, user=current_user(), name=data.get("name"), email=data.get("email"),
        phone=data.get("phone"), preferred_channel=data.get("preferred_channel"),
        sms_consent=data["sms_consent"], voice_consent=data["voice_consent"]))
    if error:
        return _form(owner_by_uid(uid), data, error=error, status=422)
    return redirect(url_for("owners.show", uid=uid), code=303)


@bp.post("/<uid>/opt-out")
@level_required(LEVEL_OPT_OUT, "opt owners out of messages")
def opt_out(uid: str):
    """Opt the owner out of every message, with the reason staff give."""
    owner = owner_by_uid(uid)
    reason = request.form.get("reason", "")
    _, error = commit_or_error(lambda: owner_opt_out(owner=owner, via=reason,
                                                     user=current_user()))
    if error:
        return _show(owner_with_patients(uid), error=error, reason=reason, status=422)
    return redirect(url_for("owners.show", uid=uid), code=303)


@bp.post("/<uid>/opt-in")
@level_required(LEVEL_OPT_IN, "opt owners back in to messages")
def opt_in(uid: str):
    """Opt the owner back in to messages, with the reason staff give."""
    owner = owner_by_uid(uid)
    reason = request.form.get("reason", "")
    _, error = commit_or_error(lambda: owner_opt_in(owner=owner, via=reason,
                                                    user=current_user()))
    if error:
        return _show(owner_with_patients(uid), error=error, reason=reason, status=422)
    return redirect(url_for("owners.show", uid=uid), code=303)
