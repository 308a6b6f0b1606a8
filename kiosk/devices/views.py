"""A wall display signs in with its token from the link a manager gave it.

The link carries the token after '#', so it never reaches the server's logs; the page
posts it once and the display keeps a session of its own (read-only, one board).
"""

import segno
from flask import (
    Blueprint,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup
from sqlalchemy import select

from ..clinic.selectors import wards_list
from ..clinic.templating import clinic_settings, clinic_zone
from ..core import clock
from ..core.auth import (
    LEVEL_MANAGER,
    LEVEL_ORDERS,
    current_display,
    current_user,
    level_required,
    login_required,
    session_device_set,
)
from ..core.clock import to_local
from ..core.errorpages import json_error
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.htmx import render
from ..core.pdf import pdf_response
from ..extensions import csrf, db
from ..patients.models import Patient
from ..patients.selectors import patients_list
from ..whiteboards.selectors import boards_list
from . import printing
from .auth import device_by_credential
from .models import Device
from .palette import PALETTE
from .review import conflict_resolve
from .selectors import (
    assignment_cards,
    confirm_within,
    dashboard_rows,
    dashboard_summary,
    device_by_id,
    device_cards,
    devices_list,
    problem_cards,
)
from .services import (
    ERR_DISPLAY_LINK,
    PAIRING_MINUTES,
    code_display,
    device_add,
    device_assign_ward,
    device_pairing_start,
    device_patient_assign,
    device_patient_unassign,
    device_revoke,
    device_update,
)

bp = Blueprint("devices", __name__)


@bp.get("/display")
def display():
    """The page a display opens: it reads its token from the link and claims it."""
    shown = current_display()
    if shown is not None and shown.board_id is not None:
        return redirect(url_for("boards.show", board_id=shown.board_id))
    return render_template("devices/display.html")


@bp.post("/display/claim")
@csrf.exempt  # the token itself is the credential; there is no session to ride on yet
def display_claim():
    """Exchange a display token for a display session; answer where its board is."""
    body = request.get_json(silent=True)
    token = body.get("token") if isinstance(body, dict) else None
    device = device_by_credential(token, "display")
    if device is None or device.board_id is None:
        db.session.rollback()
        return json_error(401, "bad_display_token", ERR_DISPLAY_LINK)
    session.clear()
    session_device_set(device)
    return jsonify({"board_url": url_for("boards.show", board_id=device.board_id)})


# ---- Managing devices: add and pair, rename, revoke ------------------------------------

def _manage_page(data: dict | None = None, error: DomainError | None = None, status: int = 200):
    return render_template("devices/index.html", devices=devices_list(), boards=boards_list(),
                           palette=PALETTE, data=data or {"kind": "tablet"}, error=error), status


@bp.get("/devices/")
@level_required(LEVEL_MANAGER, "manage devices")
def manage():
    """Every tablet and display: add one (it gets a pairing code), rename, re-pair, revoke."""
    return _manage_page()


def _pairing_response(device: Device, code: str):
    """The page with a device's one-time code and its QR code (shown now, never again)."""
    link = url_for("tablet.pair_page", _external=True) + "#" + code
    qr = Markup(segno.make(link, error="m").svg_inline(  # noqa: S704 (segno's own SVG)
        scale=6, dark="#000", light="#fff", title="Pairing code"))
    html = render_template("devices/pairing.html", device=device, code=code_display(code),
                           link=link, qr=qr, minutes=PAIRING_MINUTES)
    return html, 200, {"Cache-Control": "no-store"}


@bp.post("/devices/")
@level_required(LEVEL_MANAGER, "manage devices")
def add():
    """Add a tablet or display and show its pairing code."""
    data = form_data("name", "colour", "number", "kind", "board")
    result, error = commit_or_error(lambda: device_add(
        actor=current_user(), name=data.get("name"), colour=data.get("colour"),
        number=data.get("number"), kind=data.get("kind") or "tablet",
        board_id=data.get("board")))
    if error:
        return _manage_page(data, error, 422)
    device, code = result
    return _pairing_response(device, code)


@bp.post("/devices/<int:device_id>/pair")
@level_required(LEVEL_MANAGER, "pair devices")
def pair_again(device_id: int):
    """A new pairing code for a device (its old token works until the code is used)."""
    device = device_by_id(device_id)
    code, _ = commit_or_error(lambda: device_pairing_start(actor=current_user(), device=device))
    return _pairing_response(device, code)


@bp.get("/devices/<int:device_id>/edit")
@level_required(LEVEL_MANAGER, "change devices")
def edit(device_id: int):
    """Rename, re-colour or re-number a device (or change a display's board)."""
    device = device_by_id(device_id)
    data = {"name": device.name, "colour": device.colour, "number": device.number,
            "board": device.board_id}
    return render_template("devices/edit.html", device=device, data=data, error=None,
                           palette=PALETTE, boards=boards_list())


@bp.post("/devices/<int:device_id>/edit")
@level_required(LEVEL_MANAGER, "change devices")
def update(device_id: int):
    """Save a device's name, colour and number."""
    device = device_by_id(device_id)
    data = form_data("name", "colour", "number", "board")
    _, error = commit_or_error(lambda: device_update(
        actor=current_user(), device=device, name=data.get("name"), colour=data.get("colour"),
        number=data.get("number"), board_id=data.get("board")))
    if error:
        db.session.refresh(device)
        return render_template("devices/edit.html", device=device, data=data, error=error,
                               palette=PALETTE, boards=boards_list()), 422
    flash(f"{device.label} was saved.")
    return redirect(url_for("devices.manage"))


@bp.post("/devices/<int:device_id>/revoke")
@level_required(LEVEL_MANAGER, "revoke devices")
def revoke(device_id: int):
    """Revoke a device: its token stops at once; its page tells people to ask a manager."""
    device = device_by_id(device_id)
    _, error = commit_or_error(lambda: device_revoke(actor=current_user(), device=device))
    if error:
        return _manage_page(error=error, status=422)
    flash(f"{device.label} was revoked. Pair it again to bring it back.")
    return redirect(url_for("devices.manage"))


# ---- Assignment: which tablet carries which ward and patients --------------------------

def _assignment_context() -> dict:
    return {"cards": assignment_cards(), "wards": wards_list(), "patients": patients_list(),
            "palette": PALETTE}


@bp.get("/devices/assignments")
@login_required
def assignments():
    """Every device as a big colour swatch with the ward and patients it carries."""
    return render_template("devices/assignments.html", error=None, **_assignment_context())


def _assignment_answer(error: DomainError | None):
    """The whole list again (full page, or the list alone for htmx), with any refusal."""
    status = 422 if error else 200
    return render("devices/assignments.html", "devices/_assignment_list.html", status=status,
                  error=error, **_assignment_context())


@bp.post("/devices/<int:device_id>/ward")
@level_required(LEVEL_MANAGER, "assign devices")
def assign_ward(device_id: int):
    """Give a tablet a ward (or none)."""
    device = device_by_id(device_id)
    _, error = commit_or_error(lambda: device_assign_ward(
        actor=current_user(), device=device, ward_id=request.form.get("ward")))
    return _assignment_answer(error)


def _patient_arg() -> Patient:
    uid = request.form.get("patient", "")
    patient = db.session.scalar(select(Patient).where(Patient.uid == uid)) \
        if 0 < len(uid) <= 40 else None
    if patient is None:
        raise DomainError("no_patient", "Choose a patient.", field="patient")
    return patient


@bp.post("/devices/<int:device_id>/patients")
@level_required(LEVEL_MANAGER, "assign devices")
def assign_patient(device_id: int):
    """Give a tablet one more patient."""
    device = device_by_id(device_id)
    _, error = commit_or_error(lambda: device_patient_assign(
        actor=current_user(), device=device, patient=_patient_arg()))
    return _assignment_answer(error)


@bp.post("/devices/<int:device_id>/patients/remove")
@level_required(LEVEL_MANAGER, "assign devices")
def unassign_patient(device_id: int):
    """Take a patient off a tablet."""
    device = device_by_id(device_id)
    _, error = commit_or_error(lambda: device_patient_unassign(
        actor=current_user(), device=device, patient=_patient_arg()))
    return _assignment_answer(error)


@bp.get("/devices/assignments.pdf")
@login_required
def assignments_pdf():
    """The assignment list to print and pin at the charging station."""
    printed = to_local(clock.utcnow(), clinic_zone()).strftime("%a %d %b %Y %H:%M")
    pdf = printing.assignments_pdf(clinic_name=clinic_settings().name, printed_at=printed,
                                   cards=assignment_cards())
    return pdf_response(pdf, "device-assignments.pdf")


@bp.get("/devices/labels.pdf")
@level_required(LEVEL_MANAGER, "print device labels")
def labels_pdf():
    """A sheet of colour labels to stick on the tablets and displays."""
    pdf = printing.labels_pdf(clinic_name=clinic_settings().name, devices=device_cards())
    return pdf_response(pdf, "device-labels.pdf")


# ---- The sync dashboard ---------------------------------------------------------------

@bp.get("/devices/sync")
@level_required(1, "see the sync dashboard")
def dashboard():
    """Has every device synced? Waiting ops, silence, skew, gaps and conflicts per device."""
    now = clock.utcnow()
    rows = dashboard_rows(now=now)
    return render("devices/sync.html", "devices/_sync_table.html", rows=rows,
                  summary=dashboard_summary(rows), now=now,
                  confirm_seconds=int(confirm_within().total_seconds()))


@bp.get("/devices/<int:device_id>/problems")
@level_required(1, "see the sync dashboard")
def problems(device_id: int):
    """A device's conflicts and refused changes: the patient, the task, both sides and
    both people, with the answers each allows (keep, replace, note)."""
    return _problems_page(device_by_id(device_id))


def _problems_page(device: Device, error: DomainError | None = None, status: int = 200):
    return render_template("devices/problems.html", device=device, error=error,
                           cards=problem_cards(device)), status


@bp.post("/devices/<int:device_id>/problems/<int:op_id>/<answer>")
@level_required(LEVEL_ORDERS, "review sync conflicts")
def resolve(device_id: int, op_id: int, answer: str):
    """Keep the server's, replace it with the tablet's, or add the tablet's as a note; the
    change is then marked reviewed."""
    device = device_by_id(device_id)
    card, error = commit_or_error(lambda: conflict_resolve(
        actor=current_user(), device=device, op_id=op_id, answer=answer))
    if error:
        return _problems_page(device, error, error.status if error.status >= 400 else 409)
    flash(RESOLVED[answer].format(what=card.what.lower(),
                                  patient=card.patient.name if card.patient else "the patient"))
    return redirect(url_for("devices.problems", device_id=device.id))


RESOLVED = {"keep": "Kept the server's record; the tablet's {what} is marked reviewed.",
            "replace": "The tablet's entry now stands for {patient}; the server's is kept "
                       "as a duplicate.",
            "note": "The tablet's {what} was added to {patient}'s notes."}


@bp.post("/devices/<int:device_id>/problems/<int:op_id>/dismiss")
@level_required(LEVEL_ORDERS, "dismiss sync problems")
def dismiss(device_id: int, op_id: int):
    """Mark one conflict or refused change as looked at (the same as keeping the server's)."""
    return resolve(device_id, op_id, "keep")
