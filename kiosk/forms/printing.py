"""A finalised form as an A4 PDF: the clinic's header, the patient, every field with its
value (signatures as images), who signed and who finalised it and when, page numbers."""

from typing import TYPE_CHECKING

from flask import render_template

from ..clinic.selectors import settings_get
from ..core.pdf import pdf_document
from .models import PatientForm
from .selectors import form_view

if TYPE_CHECKING:
    from weasyprint import Document


def form_html(form: PatientForm) -> str:
    """The printable HTML of one form as it stands (autoescaped like every page)."""
    view = form_view(form)
    return render_template("forms/print.html", view=view, form=form, patient=form.patient,
                           clinic=settings_get())


def form_document(form: PatientForm) -> "Document":
    """The laid-out form, for counting pages or writing the PDF."""
    return pdf_document(form_html(form))


def form_pdf(form: PatientForm) -> bytes:
    """The form as PDF bytes."""
    return form_document(form).write_pdf()
