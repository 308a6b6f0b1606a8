"""Document pages: a patient's archived PDFs, one PDF, retrying a failed one, and where the
clinic's documents go (a manager's settings)."""

from flask import Blueprint, redirect, render_template, request, url_for

from ..clinic.selectors import settings_get
from ..clinic.services import settings_update
from ..core.auth import LEVEL_MANAGER, current_user, level_required, login_required
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.pdf import pdf_response
from ..patients.selectors import patient_by_uid
from .models import DOC_READY
from .selectors import document_by_uid, documents_of
from .services import document_retry

bp = Blueprint("documents", __name__)
SETTINGS_FIELDS = ("documents_folder", "documents_email")


@bp.get("/patients/<uid>/documents")
@login_required
def index(uid: str):
    """The patient's documents: archived PDFs, those waiting for theirs, and deliveries."""
    patient = patient_by_uid(uid)
    return render_template("documents/index.html", patient=patient,
                           documents=documents_of(patient))


@bp.get("/documents/<uid>.pdf")
@login_required
def pdf(uid: str):
    """The archived PDF, exactly as it was made (404 with the reason until it exists)."""
    document = document_by_uid(uid, with_pdf=True)
    if document.status != DOC_READY:
        raise DomainError("not_ready", "This document's PDF is not made yet: "
                          f"{document.last_error or 'it is queued'}.", status=404)
    return pdf_response(document.pdf, f"{document.kind}-{uid}.pdf")


@bp.post("/documents/<uid>/retry")
@level_required(LEVEL_MANAGER, "retry documents")
def retry(uid: str):
    """Try a failed PDF or delivery again now."""
    document = document_by_uid(uid)
    _, error = commit_or_error(lambda: document_retry(document=document, user=current_user()))
    if error:
        return render_template("errors/error.html", status=409, title="Nothing to retry",
                               message=error.message), 409
    return redirect(url_for("documents.index", uid=document.patient.uid))


def _settings_page(data: dict, error=None, status: int = 200):
    return render_template("documents/settings.html", data=data, error=error), status


@bp.get("/admin/documents")
@level_required(LEVEL_MANAGER, "change where documents go")
def settings():
    """Where finalised documents go: a folder, e-mail, the practice system, merged."""
    row = settings_get()
    return _settings_page({"documents_folder": row.documents_folder or "",
                           "documents_email": row.documents_email or "",
                           "documents_connector": row.documents_connector,
                           "documents_merge_at_discharge": row.documents_merge_at_discharge})


@bp.post("/admin/documents")
@level_required(LEVEL_MANAGER, "change where documents go")
def settings_save():
    """Save where documents go."""
    data = form_data(*SETTINGS_FIELDS)
    for flag in ("documents_connector", "documents_merge_at_discharge"):
        data[flag] = bool(request.form.get(flag))
    _, error = commit_or_error(lambda: settings_update(actor=current_user(), data=data))
    if error:
        return _settings_page(data, error, 422)
    return redirect(url_for("documents.settings"))
