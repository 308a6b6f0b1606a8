"""A wall display signs in with its token from the link a manager gave it.

The link carries the token after '#', so it never reaches the server's logs; the page
posts it once and the display keeps a session of its own (read-only, one board).
"""

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for

from ..core.auth import current_display
from ..extensions import csrf, db
from .services import ERR_DISPLAY_LINK, device_by_token

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
    device = device_by_token(token)
    if device is None or device.kind != "display" or device.board_id is None:
        db.session.rollback()
        return jsonify({"error": "bad_display_token", "message": ERR_DISPLAY_LINK}), 401
    session.clear()
    session.permanent = True
    session["display_id"] = device.id
    return jsonify({"board_url": url_for("boards.show", board_id=device.board_id)})
