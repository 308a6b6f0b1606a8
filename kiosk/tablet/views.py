"""Tablets: setup and pairing, the tablet session, the staff list for the lock screen,
the service worker, the list of pages to keep, and the offline sheet shell.

The setup link carries the device id and token after '#', so they never reach the
server's logs; the page keeps them in localStorage for the outbox (static/js/client/device.js).
"""

from functools import cache
from pathlib import Path

from flask import (
    Blueprint,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)

from ..anaesthesia.entries import ASA_CLASSES, EVENTS, PRE, VITALS
from ..anaesthesia.selectors import sheet_uids_of_patients
from ..anaesthesia.services import rules_for_pages
from ..clinic.selectors import settings_get, wards_list
from ..core.auth import current_tablet, login_required, session_device_set
from ..core.errorpages import json_error
from ..core.errors import DomainError
from ..devices.auth import device_from_request
from ..devices.selectors import carried_patients
from ..devices.services import device_pair
from ..extensions import csrf, db
from ..forms.selectors import offline_form_paths
from ..patients.models import ALERT_LABELS, PANEL_COLOURS, SEX_LABELS, SPECIES
from ..patients.selectors import patients_list
from ..staff.levels import level_name
from ..staff.selectors import users_for_tablet
from ..staff.services import LONG_PIN_LEVEL, PIN_LOCKOUT, PIN_LOCKOUT_MAX, PIN_TRIES
from ..staff.throttle import limit_pairing
from ..treatments.models import ORDER_KINDS, ROUTES
from ..whiteboards.selectors import boards_list

bp = Blueprint("tablet", __name__)

# What every offline page needs besides itself (the vendored files and the tablet's own).
# What a tablet keeps of the static files: every script, module, vendored library and style
# sheet (the client's ES modules import each other, so a hand-kept list would miss some).
STATIC_KEPT = ("css", "js", "vendor")
STATIC_SUFFIXES = (".js", ".css")


@cache
def static_files(folder: str) -> tuple[str, ...]:
    """The static files a tablet keeps, relative to the static folder, sorted (read once:
    they change only with a release, and every tablet asks for the list)."""
    root = Path(folder)
    return tuple(sorted(str(path.relative_to(root).as_posix()) for sub in STATIC_KEPT
                  for path in (root / sub).rglob("*") if path.suffix in STATIC_SUFFIXES))


ERR_NOT_A_TABLET = "A valid, unrevoked tablet token is required; ask a manager."


@bp.get("/tablet")
def setup():
    """The page a tablet opens once: it keeps its id and token from the link's '#'."""
    return render_template("tablet/setup.html")


@bp.get("/pair")
def pair_page():
    """Where a new tablet or display types (or scans) the code a manager was shown."""
    return render_template("tablet/pair.html")


@bp.post("/pair")
@limit_pairing  # per address, beside the code's own 40 bits and 10 minutes
@csrf.exempt  # the one-time code is the credential; there is no session yet
def pair():
    """Exchange a pairing code for the device's token; the browser becomes that device."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    pending = body.get("pending") if isinstance(body.get("pending"), int) else 0
    try:
        device, token = device_pair(code=body.get("code"), holding=body.get("holding"),
                                    holding_pending=pending)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return json_error(400, exc.code, exc.message, field=exc.field)
    _session_for(device)
    answer = {"id": device.public_id, "token": token, "kind": device.kind,
              "label": device.label, "name": device.name}
    if device.kind == "display":
        answer["next"] = url_for("boards.show", board_id=device.board_id)
    else:
        answer["next"] = url_for("tablet.setup")
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


def _session_for(device) -> None:
    """This browser is now the device: a tablet session (pages to read) or a display's."""
    if device.kind == "display":
        session.clear()
    else:
        session.pop("display_id", None)
    session_device_set(device)


@bp.post("/tablet/claim")
@csrf.exempt  # the bearer token is the credential
def claim():
    """A tablet whose cookie was lost (or set up by link) takes its tablet session back."""
    device = device_from_request("tablet")
    if device is None:
        db.session.rollback()
        return json_error(401, "unauthorized", ERR_NOT_A_TABLET)
    _session_for(device)
    return jsonify({"id": device.public_id, "label": device.label})


@bp.get("/api/devices/<device_id>/staff")
def staff(device_id: str):
    """What a tablet's lock screen needs to check PINs offline: staff, levels, verifiers."""
    device = device_from_request("tablet")
    if device is None or device.public_id != device_id:
        return json_error(401, "unauthorized", ERR_NOT_A_TABLET)
    # Only the people who work on this tablet's wards: a verifier anywhere else is one
    # more to guess at offline for nothing.
    people = [{"id": u.public_id, "name": u.name, "level": u.level,
               "level_name": level_name(u.level), "verifier": u.pin_verifier}
              for u in users_for_tablet(device)]
    response = jsonify({"lock_minutes": settings_get().tablet_lock_minutes,
                        "pin_tries": PIN_TRIES,
                        "lockout_minutes": int(PIN_LOCKOUT.total_seconds() // 60),
                        "lockout_max_minutes": int(PIN_LOCKOUT_MAX.total_seconds() // 60),
                        "long_pin_level": LONG_PIN_LEVEL,
                        "staff": people})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/sw.js")
def service_worker():
    """The service worker, from the root so that its scope is every page."""
    response = send_from_directory(current_app.static_folder, "sw.js",
                                   mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _keeping_device():
    """The tablet asking for its list: by its token, else by its tablet session."""
    return device_from_request("tablet") or current_tablet()


@bp.get("/tablet/offline-pages")
def offline_pages():
    """The URLs a tablet keeps for an outage: assets, lists, and the sheets (treatment and
    anaesthesia) and boards of what it carries (every admitted patient and every board
    while it carries nothing)."""
    device = _keeping_device()
    if device is None:
        return json_error(401, "unauthorized", "Only a paired tablet keeps pages offline.")
    urls = [url_for("static", filename=name) for name in static_files(current_app.static_folder)]
    urls += [url_for("patients.index"), url_for("boards.index"),
             url_for("tablet.sheet_shell"), url_for("tablet.anaesthesia_shell"),
             url_for("tablet.setup")]
    carried = carried_patients(device)
    boards = boards_list()
    if carried is not None:
        boards = [b for b in boards if b.ward_id is not None and b.ward_id == device.ward_id]
    urls += [url_for("boards.show", board_id=board.id) for board in boards]
    patients = carried if carried is not None else patients_list()
    anaesthesia = sheet_uids_of_patients(patients)
    for patient in patients:
        urls.append(url_for("treatments.sheet", uid=patient.uid))
        urls.append(url_for("anaesthesia.sheets", uid=patient.uid))
        urls += [url_for("anaesthesia.sheet", uid=uid) for uid in anaesthesia[patient.id]]
    urls.append(url_for("patients.new"))
    urls += offline_form_paths(patients, url_for)
    response = jsonify({"urls": urls, "device": device.public_id,
                        "assigned": carried is not None})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/tablet/sheet-shell")
@login_required
def sheet_shell():
    """The sheet's layout with no patient: the tablet fills it for a patient made offline."""
    return render_template("tablet/sheet_shell.html", kinds=ORDER_KINDS, routes=ROUTES,
                           wards=wards_list(), species=SPECIES, sexes=SEX_LABELS,
                           colours=PANEL_COLOURS, alerts=ALERT_LABELS)


@bp.get("/tablet/anaesthesia-shell")
@login_required
def anaesthesia_shell():
    """An anaesthesia sheet's layout with no sheet: the tablet fills it for a sheet it
    started offline (its uid after '#')."""
    return render_template("tablet/anaesthesia_shell.html", vitals=VITALS, pre=PRE,
                           events=EVENTS, asa_classes=ASA_CLASSES, routes=ROUTES,
                           rules=rules_for_pages())
