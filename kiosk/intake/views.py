"""PIMS import pages: upload a practice-system export; all of it is imported or none."""

from flask import Blueprint, current_app, render_template, request

from ..core.auth import LEVEL_ORDERS, current_user, level_required
from ..core.errors import DomainError
from ..core.forms import commit_or_error
from .parsing import size_text
from .services import COLUMNS, IMPORT_MAX_ROWS, patients_import

bp = Blueprint("intake", __name__, url_prefix="/intake")

ERR_NO_FILE = "Choose a .csv or .json file to import."
# A refused file lists at most this many problems on the page (the count says how many).
ERRORS_SHOWN = 200


def _page(*, summary=None, error: DomainError | None = None, filename: str | None = None,
          status: int = 200):
    max_size = size_text(current_app.config["KIOSK_IMPORT_MAX_BYTES"])
    return render_template("intake/index.html", summary=summary, error=error,
                           filename=filename, columns=COLUMNS, max_rows=IMPORT_MAX_ROWS,
                           max_size=max_size, errors_shown=ERRORS_SHOWN), status


@bp.get("/")
@level_required(LEVEL_ORDERS, "import patients")
def index():
    """The upload form, the columns it reads and the all-or-nothing rule."""
    return _page()


@bp.post("/")
@level_required(LEVEL_ORDERS, "import patients")
def upload():
    """Import the uploaded file and show what it did, or every problem (nothing stored)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(error=DomainError("no_file", ERR_NO_FILE, field="file"), status=422)
    # One byte past the limit is enough for the service to refuse an oversized file.
    content = upload.stream.read(current_app.config["KIOSK_IMPORT_MAX_BYTES"] + 1)
    summary, error = commit_or_error(lambda: patients_import(
        user=current_user(), content=content, filename=upload.filename))
    if error:
        return _page(error=error, filename=upload.filename, status=422)
    return _page(summary=summary, filename=upload.filename)
