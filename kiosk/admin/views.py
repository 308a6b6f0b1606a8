"""Admin pages for managers (level 6): settings, staff, wards and whiteboards."""

from zoneinfo import available_timezones

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from ..clinic.models import Ward
from ..clinic.selectors import settings_get, ward_by_id, wards_list
from ..clinic.services import SETTING_NUMBERS, SETTING_TIMES, settings_update
from ..core.audit import audit_recent
from ..core.auth import LEVEL_MANAGER, SESSION_KEY, current_user, level_required
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..devices.selectors import device_by_id, displays_list
from ..devices.services import device_revoke, display_create
from ..patients.selectors import admitted_counts_by_ward, patient_by_uid, patients_list
from ..staff.levels import level_choices
from ..staff.models import User
from ..staff.selectors import user_by_id, users_list
from ..staff.services import (
    pin_is_weak,
    user_create,
    user_is_locked,
    user_set_password,
    user_set_pin,
    user_unlock,
    user_update,
)
from ..whiteboards.models import BOARD_KINDS
from ..whiteboards.selectors import board_by_id, board_patients, boards_list
from ..whiteboards.services import (
    board_create,
    board_delete,
    board_member_add,
    board_member_remove,
    board_update,
)
from ..whiteboards.wards import ward_create, ward_delete, ward_update

bp = Blueprint("admin", __name__, url_prefix="/admin")

SETTINGS_FIELDS = ("name", "timezone", *SETTING_NUMBERS, *SETTING_TIMES)
KIND_LABELS = {"ward": "Ward board (shows a ward's admitted patients)",
               "list": "List board (patients put on it by hand)",
               "pending": "Pending board (automatic: unfinished sheets, forms, PDFs, "
                          "discharges not synced; a ward limits it to that ward)"}


@bp.get("/")
@level_required(LEVEL_MANAGER, "manage the clinic")
def index():
    """The admin home page: a link to each admin page and what it is for."""
    return render_template("admin/index.html")


# Settings

def _settings_page(data: dict, error: DomainError | None = None, status: int = 200):
    return render_template("admin/settings.html", data=data, error=error,
                           zones=sorted(available_timezones())), status


@bp.get("/settings")
@level_required(LEVEL_MANAGER, "change the clinic's settings")
def settings():
    """The clinic's settings as a form (defaults until first saved)."""
    row = settings_get()
    data = {name: getattr(row, name) for name in SETTINGS_FIELDS}
    data["allow_direct_patient_creation"] = row.allow_direct_patient_creation
    return _settings_page(data)


@bp.post("/settings")
@level_required(LEVEL_MANAGER, "change the clinic's settings")
def settings_save():
    """Save the settings; nothing changes if any field is wrong."""
    data = form_data(*SETTINGS_FIELDS)
    data["allow_direct_patient_creation"] = "allow_direct_patient_creation" in request.form
    _, error = commit_or_error(lambda: settings_update(actor=current_user(), data=data))
    if error:
        return _settings_page(data, error, 422)
    flash("Settings saved.")
    return redirect(url_for("admin.settings"))


# Staff

@bp.get("/staff")
@level_required(LEVEL_MANAGER, "manage staff")
def staff():
    """Every staff member: level, wards, whether active or locked out, how they sign in,
    and whose PIN should be reset (an old, weaker verifier)."""
    users = users_list()
    return render_template("admin/staff.html", users=users,
                           locked={u.id for u in users if user_is_locked(u)},
                           weak={u.id for u in users if pin_is_weak(u)})


def _staff_new_page(data: dict, error: DomainError | None = None, status: int = 200):
    return render_template("admin/staff_new.html", data=data, error=error,
                           levels=level_choices(),
                           wards=wards_list()), status


@bp.get("/staff/new")
@level_required(LEVEL_MANAGER, "manage staff")
def staff_new():
    """The form to add a staff member (on every ward unless told otherwise)."""
    return _staff_new_page({"level": 1, "wards": [str(w.id) for w in wards_list()]})


@bp.post("/staff/new")
@level_required(LEVEL_MANAGER, "manage staff")
def staff_create():
    """Add a staff member with a PIN and/or a username and password."""
    data = form_data("name", "level", "pin", "username", "password", lists=("wards",))
    user, error = commit_or_error(lambda: user_create(
        actor=current_user(), name=data.get("name"), level=data.get("level"),
        pin=data.get("pin"), username=data.get("username"), password=data.get("password"),
        wards=data["wards"]))
    if error:
        data.pop("password", None)
        return _staff_new_page(data, error, 422)
    flash(f"{user.name} added.")
    return redirect(url_for("admin.staff"))


def _staff_edit_page(user: User, data: dict | None = None, error: DomainError | None = None,
                     status: int = 200):
    data = data or {"name": user.name, "level": user.level, "active": user.active,
                    "username": user.username, "wards": [str(w.id) for w in user.wards]}
    return render_template("admin/staff_edit.html", user=user, data=data, error=error,
                           levels=level_choices(), me=current_user(), wards=wards_list(),
                           locked=user_is_locked(user), weak=pin_is_weak(user)), status


@bp.get("/staff/<int:user_id>")
@level_required(LEVEL_MANAGER, "manage staff")
def staff_edit(user_id: int):
    """A staff member's details, PIN and password forms."""
    return _staff_edit_page(user_by_id(user_id))


@bp.post("/staff/<int:user_id>")
@level_required(LEVEL_MANAGER, "manage staff")
def staff_update(user_id: int):
    """Save name, level and active; the last active manager cannot be removed."""
    user = user_by_id(user_id)
    data = form_data("name", "level", lists=("wards",))
    data["active"] = "active" in request.form
    # A form without the ward boxes (an older page) leaves the wards as they are.
    wards = data["wards"] if "wards_shown" in request.form else None
    _, error = commit_or_error(lambda: user_update(
        user=user, actor=current_user(), name=data.get("name"), level=data.get("level"),
        active=data["active"], wards=wards))
    if error:
        data["username"] = user.username
        return _staff_edit_page(user, data, error, 422)
    flash(f"{user.name} saved.")
    return redirect(url_for("admin.staff"))


@bp.post("/staff/<int:user_id>/pin")
@level_required(LEVEL_MANAGER, "manage staff")
def staff_pin(user_id: int):
    """Reset a staff member's PIN."""
    user = user_by_id(user_id)
    pin = request.form.get("pin", "")
    _, error = commit_or_error(lambda: user_set_pin(
        user=user, actor=current_user(), pin=pin, keep_sign_in=session.get(SESSION_KEY)))
    if error:
        return _staff_edit_page(user, error=error, status=422)
    flash(f"New PIN set for {user.name}.")
    return redirect(url_for("admin.staff_edit", user_id=user.id))


@bp.post("/staff/<int:user_id>/unlock")
@level_required(LEVEL_MANAGER, "unlock staff")
def staff_unlock(user_id: int):
    """Let a staff member locked out by wrong passwords or PINs sign in again now."""
    user = user_by_id(user_id)
    commit_or_error(lambda: user_unlock(user=user, actor=current_user()))
    flash(f"{user.name} can sign in again.")
    back = request.form.get("back") == "edit"
    return redirect(url_for("admin.staff_edit", user_id=user.id) if back
                    else url_for("admin.staff"))


@bp.post("/staff/<int:user_id>/password")
@level_required(LEVEL_MANAGER, "manage staff")
def staff_password(user_id: int):
    """Set a staff member's username and password."""
    user = user_by_id(user_id)
    data = form_data("username", "password")
    _, error = commit_or_error(lambda: user_set_password(
        user=user, actor=current_user(), username=data.get("username"),
        password=data.get("password"), keep_sign_in=session.get(SESSION_KEY)))
    if error:
        shown = {"name": user.name, "level": user.level, "active": user.active,
                 "username": data.get("username")}
        return _staff_edit_page(user, shown, error, 422)
    flash(f"New password set for {user.name}.")
    return redirect(url_for("admin.staff_edit", user_id=user.id))


# Wards

def _wards_page(data: dict | None = None, error: DomainError | None = None, status: int = 200):
    return render_template("admin/wards.html", wards=wards_list(),
                           admitted=admitted_counts_by_ward(), data=data or {},
                           error=error), status


@bp.get("/wards")
@level_required(LEVEL_MANAGER, "manage wards")
def wards():
    """Every ward with its admitted patients, and the form to add one."""
    return _wards_page()


@bp.post("/wards")
@level_required(LEVEL_MANAGER, "manage wards")
def ward_add():
    """Add a ward (and its board)."""
    data = form_data("name", "code")
    ward, error = commit_or_error(lambda: ward_create(
        actor=current_user(), name=data.get("name"), code=data.get("code")))
    if error:
        return _wards_page(data, error, 422)
    flash(f"Ward {ward.name} added, with its board.")
    return redirect(url_for("admin.wards"))


def _ward_edit_page(ward: Ward, data: dict | None = None, error: DomainError | None = None,
                    status: int = 200):
    data = data or {"name": ward.name, "code": ward.code}
    return render_template("admin/ward_edit.html", ward=ward, data=data, error=error,
                           admitted=admitted_counts_by_ward().get(ward.id, 0)), status


@bp.get("/wards/<int:ward_id>")
@level_required(LEVEL_MANAGER, "manage wards")
def ward_edit(ward_id: int):
    """Rename or delete a ward."""
    return _ward_edit_page(ward_by_id(ward_id))


@bp.post("/wards/<int:ward_id>")
@level_required(LEVEL_MANAGER, "manage wards")
def ward_save(ward_id: int):
    """Rename a ward; names stay unique."""
    ward = ward_by_id(ward_id)
    data = form_data("name", "code")
    _, error = commit_or_error(lambda: ward_update(
        ward=ward, actor=current_user(), name=data.get("name"), code=data.get("code")))
    if error:
        return _ward_edit_page(ward_by_id(ward_id), data, error, 422)
    flash("Ward saved.")
    return redirect(url_for("admin.wards"))


@bp.post("/wards/<int:ward_id>/delete")
@level_required(LEVEL_MANAGER, "manage wards")
def ward_remove(ward_id: int):
    """Delete a ward that has no admitted patients."""
    ward = ward_by_id(ward_id)
    name = ward.name
    _, error = commit_or_error(lambda: ward_delete(ward=ward, actor=current_user()))
    if error:
        return _ward_edit_page(ward_by_id(ward_id), error=error, status=422)
    flash(f"Ward {name} deleted.")
    return redirect(url_for("admin.wards"))


# Whiteboards

def _boards_page(data: dict | None = None, error: DomainError | None = None, status: int = 200):
    return render_template("admin/boards.html", boards=boards_list(), wards=wards_list(),
                           kinds=[(k, KIND_LABELS[k]) for k in BOARD_KINDS],
                           data=data or {"kind": "list"}, error=error), status


@bp.get("/boards")
@level_required(LEVEL_MANAGER, "manage whiteboards")
def boards():
    """Every board in screen order, and the form to add one."""
    return _boards_page()


@bp.post("/boards")
@level_required(LEVEL_MANAGER, "manage whiteboards")
def board_add():
    """Add a ward board or a hand-made list board."""
    data = form_data("name", "kind", "ward", "position", "filter")
    board, error = commit_or_error(lambda: board_create(
        actor=current_user(), name=data.get("name"), kind=data.get("kind"),
        ward=data.get("ward"), position=data.get("position"), filter=data.get("filter")))
    if error:
        return _boards_page(data, error, 422)
    flash(f"Board {board.name} added.")
    return redirect(url_for("admin.board_edit", board_id=board.id))


def _board_edit_page(board_id: int, data: dict | None = None, error: DomainError | None = None,
                     status: int = 200):
    board = board_by_id(board_id)
    members = board_patients(board) if board.kind == "list" else []
    on_board = {p.id for p in members}
    candidates = [p for p in patients_list() if p.id not in on_board]
    data = data or {"name": board.name, "position": board.position}
    return render_template("admin/board_edit.html", board=board, members=members,
                           candidates=candidates, data=data, error=error), status


@bp.get("/boards/<int:board_id>")
@level_required(LEVEL_MANAGER, "manage whiteboards")
def board_edit(board_id: int):
    """Rename, reorder or delete a board; for list boards, its patients."""
    return _board_edit_page(board_id)


@bp.post("/boards/<int:board_id>")
@level_required(LEVEL_MANAGER, "manage whiteboards")
def board_save(board_id: int):
    """Rename a board and set its position."""
    board = board_by_id(board_id)
    data = form_data("name", "position")
    _, error = commit_or_error(lambda: board_update(
        board=board, actor=current_user(), name=data.get("name"),
        position=data.get("position")))
    if error:
        return _board_edit_page(board_id, data, error, 422)
    flash("Board saved.")
    return redirect(url_for("admin.boards"))


@bp.post("/boards/<int:board_id>/delete")
@level_required(LEVEL_MANAGER, "manage whiteboards")
def board_remove(board_id: int):
    """Delete a board (the patients on it are untouched)."""
    board = board_by_id(board_id)
    name = board.name
    _, error = commit_or_error(lambda: board_delete(board=board, actor=current_user()))
    if error:
        return _board_edit_page(board_id, error=error, status=422)
    flash(f"Board {name} deleted.")
    return redirect(url_for("admin.boards"))


@bp.post("/boards/<int:board_id>/members")
@level_required(LEVEL_MANAGER, "manage whiteboards")
def board_member_new(board_id: int):
    """Put an admitted patient on a list board."""
    board = board_by_id(board_id)
    uid = request.form.get("patient", "").strip()
    patient = patient_by_uid(uid) if uid else None
    _, error = commit_or_error(
        lambda: board_member_add(board=board, actor=current_user(), patient=patient))
    if error:
        return _board_edit_page(board_id, error=error, status=422)
    flash(f"{patient.name} added to {board.name}.")
    return redirect(url_for("admin.board_edit", board_id=board_id))


@bp.post("/boards/<int:board_id>/members/<uid>/delete")
@level_required(LEVEL_MANAGER, "manage whiteboards")
def board_member_delete(board_id: int, uid: str):
    """Take a patient off a list board."""
    board = board_by_id(board_id)
    patient = patient_by_uid(uid)
    _, error = commit_or_error(
        lambda: board_member_remove(board=board, actor=current_user(), patient=patient))
    if error:
        return _board_edit_page(board_id, error=error, status=422)
    flash(f"{patient.name} taken off {board.name}.")
    return redirect(url_for("admin.board_edit", board_id=board_id))


@bp.get("/audit")
@level_required(LEVEL_MANAGER, "read the audit log")
def audit():
    """The newest changes, or those about one entity (`?uid=`)."""
    uid = (request.args.get("uid") or "").strip()[:64] or None
    return render_template("admin/audit.html", entries=audit_recent(entity_uid=uid), uid=uid)


def _displays_page(data: dict | None = None, error: DomainError | None = None,
                   status: int = 200, created=None):
    return render_template("admin/displays.html", displays=displays_list(),
                           boards=boards_list(), data=data or {}, error=error,
                           created=created), status


@bp.get("/displays")
@level_required(LEVEL_MANAGER, "manage wall displays")
def displays():
    """Wall displays: which board each shows; add one (its link is shown once) or revoke."""
    return _displays_page()


@bp.post("/displays")
@level_required(LEVEL_MANAGER, "manage wall displays")
def display_add():
    """Add a display for a board and show its link, once."""
    data = form_data("name", "board")
    result, error = commit_or_error(lambda: display_create(
        actor=current_user(), name=data.get("name"), board_id=data.get("board")))
    if error:
        return _displays_page(data, error, 422)
    device, token = result
    link = url_for("devices.display", _external=True) + "#" + token
    response = render_template("admin/display_created.html", device=device, link=link)
    return response, 200, {"Cache-Control": "no-store"}


@bp.post("/displays/<int:device_id>/revoke")
@level_required(LEVEL_MANAGER, "manage wall displays")
def display_revoke(device_id: int):
    """Revoke a display: it is disconnected and its link stops working."""
    device = device_by_id(device_id)
    name = device.name
    _, error = commit_or_error(lambda: device_revoke(actor=current_user(), device=device))
    if error:
        return _displays_page(error=error, status=422)
    flash(f"{name} was revoked and disconnected.")
    return redirect(url_for("admin.displays"))
