"""The billing report as an A4 PDF: a table per patient (each patient on a new page in the
whole clinic's), offline charges flagged in words, totals. Lean markup: a shift of a busy
clinic holds thousands of lines."""

from flask import render_template

from ..clinic.selectors import settings_get
from ..core import clock
from ..core.pdf import pdf_document
from .selectors import Report


def billing_report_html(report: Report, *, patient=None, when, qty) -> str:
    """The printable HTML of a report (autoescaped like every page)."""
    return render_template("billing/report_print.html", report=report, patient=patient,
                           clinic=settings_get(), when=when, qty=qty,
                           printed_at=clock.utcnow())


def billing_report_pdf(report: Report, *, patient=None, when, qty) -> bytes:
    """The report as PDF bytes."""
    return pdf_document(billing_report_html(report, patient=patient, when=when,
                                            qty=qty)).write_pdf()
