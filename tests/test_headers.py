"""Response headers and files at rest: the Content-Security-Policy the pages pass, HSTS in
production, Permissions-Policy, PDFs kept out of shared caches, private SQLite files and
document folders, and a PDF renderer that never fetches a file or a network address."""

import io
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from kiosk import ROOT, create_app
from kiosk.core import pdf as pdf_module
from kiosk.core.errors import DomainError
from kiosk.documents import delivery
from kiosk.documents.selectors import documents_for_source
from kiosk.documents.worker import documents_work
from kiosk.extensions import db
from tests import factories
from tests.support.anaesthesia import long_sheet
from tests.support.forms import consent_template


def _policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    policy = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        if part.strip():
            name, *sources = part.split()
            policy[name] = sources
    return policy


def test_pages_allow_only_their_own_scripts_and_styles(client):
    policy = _policy(client.get("/login"))
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert policy["worker-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    # Signatures are drawn on a canvas and shown back as data: images.
    assert policy["img-src"] == ["'self'", "data:"]


def test_every_kind_of_response_carries_the_headers(clinic, client, login):
    login(clinic.user(6))
    for url in ("/login", "/patients/", "/admin/", "/sw.js", "/static/css/kiosk.css",
                "/no-such-page"):
        response = client.get(url)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"], url
        assert "camera=()" in response.headers["Permissions-Policy"], url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert response.headers["X-Frame-Options"] == "DENY", url
        assert response.headers["Referrer-Policy"] == "same-origin", url


def test_permissions_policy_switches_off_what_no_page_uses(client):
    policy = client.get("/login").headers["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy
    # A QR code is scanned with the tablet's own camera app, never by a page.
    assert not re.search(r"getUserMedia|BarcodeDetector",
                         "".join(p.read_text() for p in (ROOT / "static/js").glob("*.js")))


def test_hsts_only_in_production(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    production = create_app("production", {"SQLALCHEMY_DATABASE_URI": url,
                                           "SECRET_KEY": "x" * 32})
    response = production.test_client().get("/static/css/kiosk.css")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    testing = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    assert "Strict-Transport-Security" not in \
        testing.test_client().get("/static/css/kiosk.css").headers


# Templates served as pages: no inline script or handler, no style attribute (the policy
# refuses them). The print_* templates only ever reach WeasyPrint, which applies no policy.
_INLINE = re.compile(r"\son[a-z]+\s*=|\sstyle\s*=|javascript:|hx-on"
                     r"|<script(?![^>]*\bsrc=)(?![^>]*application/json)", re.IGNORECASE)


def test_served_templates_hold_no_inline_script_handler_or_style():
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        if path.name.startswith("print") or path.name == "addenda_print.html":
            continue
        if path.relative_to(ROOT / "templates").as_posix() == "messaging/email.html":
            continue  # an e-mail's HTML, never served: mail readers need inline styles
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _INLINE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:90]}")
    assert found == []


def test_htmx_is_told_not_to_evaluate_code_or_inject_styles(client):
    page = client.get("/login").get_data(as_text=True)
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', page).group(1)
    assert '"allowEval":false' in config and '"includeIndicatorStyles":false' in config


def test_device_colour_classes_match_the_palette():
    from kiosk.devices.palette import PALETTE, UNKNOWN

    css = (ROOT / "static/css/kiosk.css").read_text()
    for key, swatch in [*PALETTE.items(), ("unknown", UNKNOWN)]:
        rule = re.search(r"\.device-" + key + r"\s*\{([^}]*)\}", css)
        assert rule, key
        body = rule.group(1).replace(" ", "").lower()
        assert f"background:{swatch.background}" in body, key
        assert f"color:{swatch.text}" in body and f"border-color:{swatch.border}" in body, key


# --- PDFs are not kept in a shared tablet's HTTP cache --------------------------------------

def test_every_pdf_answers_no_store(app, clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    sheet = long_sheet(patient, clinic.user(3), hours=1, drugs=1)
    documents_work()
    [document] = documents_for_source(sheet.uid)
    template = consent_template(clinic)
    login(clinic.user(6))
    form_uid = client.post(f"/patients/{patient.uid}/forms",
                           data={"template": template.uid}).headers["Location"].rsplit("/", 1)[-1]
    for url in (f"/documents/{document.uid}.pdf", f"/anaesthesia/{sheet.uid}/sheet.pdf",
                f"/forms/{form_uid}/form.pdf", "/devices/assignments.pdf", "/devices/labels.pdf"):
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "application/pdf", url
        assert response.headers["Cache-Control"] == "no-store", url


# --- Files at rest ---------------------------------------------------------------------------

@pytest.fixture
def open_umask():
    """A permissive umask, as a careless service manager might leave it."""
    old = os.umask(0o000)
    yield
    os.umask(old)


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_sqlite_files_and_instance_folder_are_private(tmp_path, open_umask, monkeypatch):
    instance = tmp_path / "instance"
    app = _app_in(instance, monkeypatch)
    with app.app_context():
        db.create_all()
        with db.engine.connect() as conn:
            conn.execute(text("select 1"))
            assert _mode(instance / "kiosk.db") == 0o600
            assert _mode(instance / "kiosk.db-wal") == 0o600
            assert _mode(instance / "kiosk.db-shm") == 0o600
        db.engine.dispose()
    assert _mode(instance) == 0o700


def _app_in(instance: Path, monkeypatch):
    """An application whose instance folder (and default SQLite file) is `instance`."""
    from flask import Flask

    original = Flask.__init__

    def init(self, *args, **kwargs):
        kwargs["instance_path"] = str(instance)
        original(self, *args, **kwargs)

    monkeypatch.delenv("KIOSK_DATABASE_URL", raising=False)
    monkeypatch.setattr(Flask, "__init__", init)
    app = create_app("default", {"SQLALCHEMY_DATABASE_URI": None, "SECRET_KEY": "k" * 32})
    monkeypatch.setattr(Flask, "__init__", original)
    return app


def test_an_existing_database_file_is_made_private(tmp_path, open_umask, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    (instance / "kiosk.db").touch(mode=0o644)
    _app_in(instance, monkeypatch)
    assert _mode(instance / "kiosk.db") == 0o600 and _mode(instance) == 0o700


def test_patient_document_folders_are_private(app, clinic, tmp_path, open_umask):
    clinic.settings.documents_folder = str(tmp_path)
    db.session.commit()
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-100")
    long_sheet(patient, clinic.user(3), hours=1, drugs=1)
    documents_work()
    [saved] = list(tmp_path.rglob("*.pdf"))
    assert _mode(saved.parent) == 0o700 and _mode(saved) == 0o600
    assert delivery  # the module that writes them


# --- WeasyPrint fetches nothing but its own static files and data: URIs ----------------------

class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (the standard library's name)
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_recorder():
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    _Recorder.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()
    server.server_close()


def test_the_pdf_fetcher_refuses_files_and_the_network(app, http_recorder, tmp_path):
    base, hits = http_recorder
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    with app.test_request_context():
        fetch = pdf_module.pdf_url_fetcher()
        for url in ("file:///etc/passwd", f"file://{secret}", f"{base}/x.png",
                    "https://example.invalid/x.png", "ftp://127.0.0.1/x"):
            with pytest.raises(ValueError):
                fetch(url)
        assert fetch("data:text/plain,hello").read() == b"hello"
        css = fetch((Path(app.static_folder) / "css/kiosk.css").as_uri()).read()
        assert b"{" in css
        with pytest.raises(ValueError):  # no climbing out of the static folder
            fetch((Path(app.static_folder) / "../pyproject.toml").as_uri())
    assert hits == []


def test_a_pdf_naming_a_file_or_a_local_server_fetches_neither(app, http_recorder, tmp_path):
    from pypdf import PdfReader

    base, hits = http_recorder
    leak = tmp_path / "leak.css"
    leak.write_text('p::after { content: "LEAKED-FILE" }')
    html = (f'<img src="file:///etc/passwd"><img src="{base}/hit.png">'
            f'<link rel="stylesheet" href="{base}/hit.css">'
            f'<link rel="stylesheet" href="{leak.as_uri()}"><p>Biscuit</p>')
    with app.test_request_context():
        try:
            document = pdf_module.pdf_document(html)
        except DomainError as exc:  # a server without Pango: nothing to test
            pytest.skip(exc.message)
        pdf = document.write_pdf()
    assert hits == []
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Biscuit" in text and "LEAKED-FILE" not in text
