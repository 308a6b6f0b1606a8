"""HTML to PDF with WeasyPrint, shared by every printable page (devices, anaesthesia …).

WeasyPrint is imported when a PDF is asked for: a server without Pango still runs, and
each PDF link answers 503 saying what is missing. Documents never reach the network and
never read a file outside the application's static folder.
"""

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from flask import current_app, make_response

from .errors import DomainError

if TYPE_CHECKING:
    from weasyprint import Document

ERR_NO_PDF = ("PDFs cannot be made on this server: WeasyPrint needs the Pango library "
              "(Debian: libpango-1.0-0 libpangoft2-1.0-0). Everything else works without it.")


def _weasyprint():
    """WeasyPrint's HTML class and URL fetcher base, or DomainError saying why not."""
    try:  # imported here: a server without Pango still runs, and says why PDFs do not
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except (OSError, ImportError) as exc:  # Pango missing (OSError), or the package
        raise DomainError("pdf_unavailable", ERR_NO_PDF, status=503) from exc
    return HTML, URLFetcher


def static_file_of(url: str, static_folder: str) -> Path | None:
    """The file a `file:` URL names when it lies inside `static_folder`, else None."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    root = Path(static_folder).resolve()
    path = Path(unquote(parts.path)).resolve()  # resolve(): no '..' or symlink climbs out
    return path if path.is_relative_to(root) and path.is_file() else None


def pdf_url_fetcher():
    """A WeasyPrint URL fetcher for this app: data: URIs and the static folder, nothing else.

    A name or a note that reached a template as a URL (were escaping ever to fail) must not
    read the server's files (`file:///etc/…`) or reach any host, the server's own included.
    """
    _, URLFetcher = _weasyprint()  # noqa: N806 (a class)
    static_folder = current_app.static_folder

    class StaticOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data" or (scheme == "file" and static_file_of(url, static_folder)):
                return super().fetch(url, headers)
            raise ValueError(f"PDFs load only data: URIs and the app's static files, "
                             f"not {scheme}: URLs")

    return StaticOnlyFetcher(allowed_protocols=("data", "file"), allow_redirects=False)


def pdf_document(html: str) -> "Document":
    """Lay out one HTML string as a WeasyPrint document, without network or file access."""
    HTML, _ = _weasyprint()  # noqa: N806 (a class)
    return HTML(string=html, base_url=current_app.static_folder,
                url_fetcher=pdf_url_fetcher()).render()


def pdf_response(data: bytes, filename: str):
    """A PDF answered inline under `filename`; kiosk.core.headers keeps it out of caches."""
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
