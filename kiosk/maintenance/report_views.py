"""The after-outage report's pages: the list of outages, one outage's report (a page, the
part that refreshes itself live, a print view and a PDF), and a manager's "reviewed"."""

from flask import Blueprint, flash, redirect, render_template, url_for

from ..billing.services import LEVEL_BILLING
from ..clinic.templating import clinic_settings
from ..core.auth import LEVEL_MANAGER, current_user, level_required
from ..core.forms import commit_or_error
from ..core.htmx import render
from ..core.pdf import pdf_document, pdf_response
from .report import outage_by_uid, outage_report, outages_list
from .review import outage_review

bp = Blueprint("outages", __name__, url_prefix="/outages")
# Nurses (level 3) and up read the report; marking it reviewed is a manager's, like the
# billing settings.
LEVEL_REPORT = 3


def _report_of(uid: str):
    """The report of the outage `uid` for the signed-in person (billing from its level)."""
    user = current_user()
    return outage_report(outage_by_uid(uid), billing=user.level >= LEVEL_BILLING)


def _context(report, error=None, *, printing: bool = False) -> dict:
    """What the report's templates need; paper gets no buttons."""
    manager = not printing and current_user().level >= LEVEL_MANAGER
    return {"report": report, "error": error, "can_review": manager, "can_retry": manager,
            "can_bill": report.billing is not None}


@bp.get("/")
@level_required(LEVEL_REPORT, "see the outage reports")
def index():
    """Every outage, newest first: its cause, its span, and whether it was reviewed."""
    return render_template("maintenance/report_list.html", outages=outages_list())


@bp.get("/<uid>")
@level_required(LEVEL_REPORT, "see the outage reports")
def show(uid: str):
    """One outage's report: what to check now the server is back, each line with its
    action; it updates itself as tablets sync and PDFs are archived."""
    return render("maintenance/report.html", "maintenance/_outage_report.html",
                  **_context(_report_of(uid)))


@bp.get("/<uid>/part")
@level_required(LEVEL_REPORT, "see the outage reports")
def part(uid: str):
    """The report's body alone: what the page's live refresh swaps in."""
    return render("maintenance/_outage_report.html", "maintenance/_outage_report.html",
                  **_context(_report_of(uid)))


@bp.get("/<uid>/print")
@level_required(LEVEL_REPORT, "print the outage reports")
def print_view(uid: str):
    """The report to print: no navigation, no buttons, a page per section."""
    return render_template("maintenance/report_print.html", clinic_name=clinic_settings().name,
                           **_context(_report_of(uid), printing=True))


@bp.get("/<uid>.pdf")
@level_required(LEVEL_REPORT, "print the outage reports")
def pdf(uid: str):
    """The same print view as a PDF (WeasyPrint)."""
    report = _report_of(uid)
    html = render_template("maintenance/report_print.html", clinic_name=clinic_settings().name,
                           pdf=True, **_context(report, printing=True))
    return pdf_response(pdf_document(html).write_pdf(), f"outage-{report.outage.uid}.pdf")


@bp.post("/<uid>/review")
@level_required(LEVEL_MANAGER, "mark an outage reviewed")
def review(uid: str):
    """Mark the outage reviewed: the report stays, the staff pages' banner goes."""
    outage = outage_by_uid(uid)
    _, error = commit_or_error(lambda: outage_review(outage=outage, user=current_user()))
    if error:
        return render_template("maintenance/report.html",
                               **_context(_report_of(uid), error)), error.status
    flash("The outage is marked reviewed.")
    return redirect(url_for("outages.show", uid=uid))
