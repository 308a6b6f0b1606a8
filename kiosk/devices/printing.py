"""Printable PDFs for devices: the assignment list for the charging station, tablet labels.

Each function renders a Jinja template (autoescaped) and hands it to WeasyPrint once.
Call them inside an application context (a request context for `url_for`).
"""

from typing import TYPE_CHECKING

from flask import current_app, render_template

from ..core.errors import DomainError
from .palette import swatch

if TYPE_CHECKING:
    from weasyprint import Document

LABELS_PER_PAGE = 10  # 2 columns x 5 rows of 90 x 50 mm on A4
ERR_NO_PDF = ("PDFs cannot be made on this server: WeasyPrint needs the Pango library "
              "(Debian: libpango-1.0-0 libpangoft2-1.0-0). Everything else works without it.")

# The templates load nothing, but a stray URL in data must never reach the network.
_OFFLINE_PROTOCOLS = ("file", "data")


def _document(html: str) -> "Document":
    """Lay out one HTML string as a WeasyPrint document, without network access."""
    try:  # imported here: a server without Pango still runs, and says why PDFs do not
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except (OSError, ImportError) as exc:  # Pango missing (OSError), or the package
        raise DomainError("pdf_unavailable", ERR_NO_PDF, status=503) from exc
    fetcher = URLFetcher(allowed_protocols=_OFFLINE_PROTOCOLS)
    return HTML(string=html, base_url=current_app.static_folder,
                url_fetcher=fetcher).render()


def render_assignments_html(*, clinic_name: str, printed_at: str, cards: list[dict]) -> str:
    """The HTML of the device assignment list."""
    return render_template("devices/print_assignments.html", clinic_name=clinic_name,
                           printed_at=printed_at, cards=cards, swatch=swatch)


def assignments_document(*, clinic_name: str, printed_at: str, cards: list[dict]) -> "Document":
    """The laid-out assignment list, for counting pages or writing a PDF."""
    return _document(render_assignments_html(clinic_name=clinic_name,
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
    return _document(render_labels_html(clinic_name=clinic_name, devices=devices))


def labels_pdf(*, clinic_name: str, devices: list[dict]) -> bytes:
    """Stick-on labels, one per device, ten to an A4 sheet."""
    return labels_document(clinic_name=clinic_name, devices=devices).write_pdf()
