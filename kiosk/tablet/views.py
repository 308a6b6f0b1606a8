"""Tablet setup, the service worker, the list of pages to keep, and the offline sheet shell.

The setup link carries the device id and token after '#', so they never reach the
server's logs; the page keeps them in localStorage for the outbox (static/js/outbox.js).
"""

from flask import Blueprint, current_app, jsonify, render_template, send_from_directory, url_for

from ..clinic.selectors import wards_list
from ..core.auth import login_required
from ..patients.models import ALERT_LABELS, PANEL_COLOURS, SEX_LABELS, SPECIES
from ..patients.selectors import patients_list
from ..sync.auth import api_caller
from ..treatments.models import ORDER_KINDS, ROUTES
from ..whiteboards.selectors import boards_list

bp = Blueprint("tablet", __name__)

# What every offline page needs besides itself (the vendored files and the tablet's own).
STATIC_FILES = ("css/kiosk.css", "vendor/htmx-2.0.11.min.js", "vendor/socket.io-4.8.4.min.js",
                "js/live.js", "js/board.js", "js/sheet.js", "js/outbox.js",
                "js/offline-sheet.js", "js/tablet-setup.js")


@bp.get("/tablet")
def setup():
    """The page a tablet opens once: it keeps its id and token from the link's '#'."""
    return render_template("tablet/setup.html")


@bp.get("/sw.js")
def service_worker():
    """The service worker, from the root so that its scope is every page."""
    response = send_from_directory(current_app.static_folder, "sw.js",
                                   mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/tablet/offline-pages")
def offline_pages():
    """The URLs a tablet keeps for an outage: boards, admitted patients' sheets, assets."""
    kind, _caller = api_caller()
    if kind is None:
        return jsonify({"error": "unauthorized",
                        "message": "Sign in or use a device token."}), 401
    # Assets first: every page needs them.
    urls = [url_for("static", filename=name) for name in STATIC_FILES]
    urls += [url_for("patients.index"), url_for("boards.index"),
            url_for("tablet.sheet_shell"), url_for("tablet.setup")]
    urls += [url_for("boards.show", board_id=board.id) for board in boards_list()]
    for patient in patients_list():
        urls.append(url_for("treatments.sheet", uid=patient.uid))
    urls.append(url_for("patients.new"))
    response = jsonify({"urls": urls})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/tablet/sheet-shell")
@login_required
def sheet_shell():
    """The sheet's layout with no patient: the tablet fills it for a patient made offline."""
    return render_template("tablet/sheet_shell.html", kinds=ORDER_KINDS, routes=ROUTES,
                           wards=wards_list(), species=SPECIES, sexes=SEX_LABELS,
                           colours=PANEL_COLOURS, alerts=ALERT_LABELS)
