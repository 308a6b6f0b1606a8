"""Wall whiteboards: the list of boards, a board page, and its grid partial for refreshes."""

from flask import Blueprint, render_template

from ..core.auth import login_required
from ..core.htmx import render
from ..patients.selectors import patient_by_uid
from .selectors import board_by_id, board_grid, boards_list

bp = Blueprint("boards", __name__, url_prefix="/boards")


@bp.get("/")
@login_required
def index():
    """Every board, to pick one for a screen."""
    return render_template("whiteboards/index.html", boards=boards_list())


@bp.get("/<int:board_id>")
@login_required
def show(board_id: int):
    """The board as a page (full screen) or, for htmx, its grid alone."""
    grid = board_grid(board_by_id(board_id))
    return render("whiteboards/page.html", "whiteboards/_grid.html", grid=grid)


@bp.get("/<int:board_id>/rows/<uid>")
@login_required
def row(board_id: int, uid: str):
    """One patient's row, for a refresh that touches only that patient."""
    grid = board_grid(board_by_id(board_id), patients=[patient_by_uid(uid)])
    return render("whiteboards/page.html", "whiteboards/_row.html", grid=grid, row=grid.rows[0])
