"""The anaesthesia sheet as an A4 PDF: the clinic's header, the patient, every entry by
time, the chart, who finalised it, page numbers."""

from typing import TYPE_CHECKING

from flask import render_template

from ..clinic.selectors import settings_get
from ..core.pdf import pdf_document
from .entries import EVENTS, PRE, VITALS
from .selectors import SheetView

if TYPE_CHECKING:
    from weasyprint import Document


def anaesthesia_html(view: SheetView) -> str:
    """The printable HTML of one sheet (autoescaped like every page)."""
    return render_template("anaesthesia/print.html", view=view, patient=view.sheet.patient,
                           clinic=settings_get(), vitals=VITALS, pre=PRE, events=EVENTS)


def addenda_html(view: SheetView, addenda: list) -> str:
    """The printable HTML of addenda to a finalised sheet, archived apart from it."""
    addenda = sorted(addenda, key=lambda e: (e.at, e.recorded_at))  # by time, as on the sheet
    return render_template("anaesthesia/addenda_print.html", view=view, addenda=addenda,
                           patient=view.sheet.patient, clinic=settings_get(), vitals=VITALS,
                           pre=PRE, events=EVENTS)


def anaesthesia_document(view: SheetView) -> "Document":
    """The laid-out sheet, for counting pages or writing the PDF."""
    return pdf_document(anaesthesia_html(view))


def anaesthesia_pdf(view: SheetView) -> bytes:
    """The sheet as PDF bytes."""
    return anaesthesia_document(view).write_pdf()
