"""Printable PDFs for devices: the assignment list for the charging station, tablet labels.

Each function renders a Jinja template (autoescaped) and hands it to WeasyPrint once.
Call them inside an application context (a request context for `url_for`).
"""

from typing import TYPE_CHECKING

from flask import render_template

from ..core.pdf import pdf_document
from .palette import swatch

if TYPE_CHECKING:
    from weasyprint import Document

LABELS_PER_PAGE = 10  # 2 columns x 5 rows of 90 x 50 mm on A4


def render_assignments_html(*, clinic_name: str, printed_at: str, cards: list[dict]) -> str:
    """The HTML of the device assignment list."""
    return render_template("devices/print_assignments.html", clinic_name=clinic_name,
                           printed_at=printed_at, cards=cards, swatch=swatch)


def assignments_document(*, clinic_name: str, printed_at: str, cards: list[dict]) -> "Document":
    """The laid-out assignment list, for counting pages or writing a PDF."""
    return pdf_document(render_assignments_html(clinic_name=clinic_name,
                                             printed_at=printed_at, cards=cards))


def assignments_pdf(*, clinic_name: str, printed_at: str, cards: list[dict]) -> bytes:
    """The assignment list as an A4 PDF to pin at the charging station."""
    return assignments_document(clinic_name=clinic_name, printed_at=printed_at,
                                cards=cards).write_pdf()


def render_labels_html(*, clinic_name: str, devices: list[dict]) -> str:
    """The HTML of the sheet(s) of tablet labels."""
    return render_template("devices/print_labels.html", clinic_name=clinic_name,
                           devices=devices, per_page=LABELS_PER_PAGE, swatch=swatch)


def labels_document(*, clinic_name: str, devices: list[dict]) -> "Document":
    """The laid-out label sheets, for counting pages or writing a PDF."""
    return pdf_document(render_labels_html(clinic_name=clinic_name, devices=devices))


def labels_pdf(*, clinic_name: str, devices: list[dict]) -> bytes:
    """Stick-on labels, one per device, ten to an A4 sheet."""
    return labels_document(clinic_name=clinic_name, devices=devices).write_pdf()
