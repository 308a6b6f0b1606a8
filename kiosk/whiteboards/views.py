"""Wall whiteboards: the list of boards, a board page, and its grid partial for refreshes."""

from functools import wraps

from flask import (
    Blueprint,
    abort,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..core.auth import current_display, current_tablet, current_user, login_required
from ..core.htmx import render
from ..patients.selectors import patient_by_uid
from .selectors import board_by_id, board_grid, board_has_patient, boards_list

bp = Blueprint("boards", __name__, url_prefix="/boards")


@bp.get("/")
@login_required
def index():
    """Every board, to pick one for a screen."""
    return render_template("whiteboards/index.html", boards=boards_list())


def board_viewer_required(view):
    """Signed-in staff, a paired tablet, or the wall display given this board (read-only)."""

    @wraps(view)
    def wrapped(board_id: int, *args, **kwargs):
        if current_user() is not None or current_tablet() is not None:
            return view(board_id, *args, **kwargs)
        display = current_display()
        if display is not None:
            if display.board_id != board_id:
                abort(403, "This display shows another board.")
            return view(board_id, *args, **kwargs)
        if request.headers.get("HX-Request"):
            abort(401)
        if session.get("display_id"):  # a display whose link was revoked: say so plainly
            return redirect(url_for("devices.display"))
        return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))

    return wrapped


@bp.get("/<int:board_id>")
@board_viewer_required
def show(board_id: int):
    """The board as a page (full screen) or, for htmx, its grid alone."""
    grid = board_grid(board_by_id(board_id))
    return render("whiteboards/page.html", "whiteboards/_grid.html", grid=grid)


@bp.get("/<int:board_id>/rows/<uid>")
@board_viewer_required
def row(board_id: int, uid: str):
    """One patient's row, for a refresh that touches only that patient (empty once gone)."""
    board, patient = board_by_id(board_id), patient_by_uid(uid)
    if not board_has_patient(board, patient):
        response = make_response("", 200)
        response.headers["Vary"] = "HX-Request"
        return response
    grid = board_grid(board, patients=[patient])
    return render("whiteboards/page.html", "whiteboards/_row.html", grid=grid, row=grid.rows[0])
