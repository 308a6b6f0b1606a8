"""HTML to PDF with WeasyPrint, shared by every printable page (devices, anaesthesia …).

WeasyPrint is imported when a PDF is asked for: a server without Pango still runs, and
each PDF link answers 503 saying what is missing. Documents never reach the network.
"""

from typing import TYPE_CHECKING

from flask import current_app

from .errors import DomainError

if TYPE_CHECKING:
    from weasyprint import Document

ERR_NO_PDF = ("PDFs cannot be made on this server: WeasyPrint needs the Pango library "
              "(Debian: libpango-1.0-0 libpangoft2-1.0-0). Everything else works without it.")

# The templates load nothing, but a stray URL in data must never reach the network.
_OFFLINE_PROTOCOLS = ("file", "data")


def pdf_document(html: str) -> "Document":
    """Lay out one HTML string as a WeasyPrint document, without network access."""
    try:  # imported here: a server without Pango still runs, and says why PDFs do not
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except (OSError, ImportError) as exc:  # Pango missing (OSError), or the package
        raise DomainError("pdf_unavailable", ERR_NO_PDF, status=503) from exc
    fetcher = URLFetcher(allowed_protocols=_OFFLINE_PROTOCOLS)
    return HTML(string=html, base_url=current_app.static_folder,
                url_fetcher=fetcher).render()
