"""Admin pages for managers."""

from flask import Blueprint, render_template

from ..core.auth import LEVEL_MANAGER, level_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@level_required(LEVEL_MANAGER, "manage the clinic")
def index():
    """The admin home page."""
    return render_template("admin/index.html")
