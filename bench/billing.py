"""Billing report benchmark: a shift of 3,000 charges for 60 patients, as a page and a PDF.

Builds a clinic in a fresh SQLite database (a temporary directory), 60 patients (some
unallocated), and 3,000 charges performed over ten hours (one in seven captured offline
on a tablet, a few reversed), stored in one insert; then asks for GET /billing/ and
GET /billing/report.pdf of that shift, signed in at level 4, `--runs` times each, and prints
the median milliseconds, the page's statement count and the PDF's pages.

    python bench/billing.py [--runs 5]

Human-readable lines first; the last line is one JSON object.
"""

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pypdf import PdfReader  # noqa: E402
from sqlalchemy import event  # noqa: E402

from kiosk import create_app  # noqa: E402
from kiosk.billing.models import Charge  # noqa: E402
from kiosk.billing.services import shift_end  # noqa: E402
from kiosk.core import clock  # noqa: E402
from kiosk.core.auth import SESSION_KEY  # noqa: E402
from kiosk.devices.services import device_provision  # noqa: E402
from kiosk.extensions import db  # noqa: E402
from kiosk.staff.sessions import staff_session_start  # noqa: E402
from tests import factories  # noqa: E402

CHARGES, PATIENTS = 3000, 60
HTML_TARGET_MS, PDF_TARGET_MS = 200, 3000


def build(clinic) -> None:
    """The patients, a tablet, 3,000 charges in the last ten hours, and the shift's end."""
    now = clock.utcnow()
    patients = [factories.patient_make(clinic, f"Patient {i:02d}",
                                       **({} if i % 10 == 9 else {"pims_id": f"P-{i}"}))
                for i in range(PATIENTS)]
    device, _ = device_provision(name="Bench", colour="blue")
    db.session.flush()
    rows = []
    for i in range(CHARGES):
        performed = now - timedelta(minutes=600) + timedelta(seconds=12 * i)
        offline = i % 7 == 0
        quantity = Decimal(-1) if i % 97 == 0 else Decimal(1)
        rows.append({
            "uid": str(uuid.uuid4()), "key": f"manual:{uuid.uuid4()}", "cause": "manual",
            "patient_id": patients[i % PATIENTS].id, "item_code": f"MED-{i % 12:02d}",
            "description": f"Medication {i % 12} injection", "quantity": quantity,
            "unit_price": Decimal("12.50"), "total": quantity * Decimal("12.50"),
            "user_id": clinic.user(3).id, "device_id": device.id if offline else None,
            "performed_at": performed,
            "recorded_at": performed + timedelta(minutes=40 if offline else 0),
            "offline": offline, "send_attempts": 0, "send_next_at": now})
    db.session.execute(Charge.__table__.insert(), rows)
    shift_end(user=clinic.user(4), at=now)
    db.session.commit()


def timed(client, url: str, runs: int) -> tuple[list[float], object]:
    """Milliseconds of each request, and the last response."""
    times, response = [], None
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
    return times, response


def main() -> None:
    """Build the shift, time the page and the PDF, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-billing-") as tmp:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db"})
        with app.app_context():
            db.create_all()
            clinic = factories.clinic_make()
            build(clinic)
            user = clinic.user(4)
            key = staff_session_start(user=user, auth="password")
            db.session.commit()
            client = app.test_client()
            with client.session_transaction() as session:
                session["user_id"], session[SESSION_KEY], session["auth"] = (
                    user.id, key, "password")
            client.get("/billing/report.pdf")  # warm: fonts, templates
            statements = []
            event.listen(db.engine, "before_cursor_execute",
                         lambda *_: statements.append(1))
            html_ms, page = timed(client, "/billing/", args.runs)
            per_page = len(statements) // args.runs
            pdf_ms, pdf = timed(client, "/billing/report.pdf", args.runs)
    pages = len(PdfReader(io.BytesIO(pdf.data)).pages)
    figures = {"charges": CHARGES, "patients": PATIENTS,
               "html_ms": round(statistics.median(html_ms)), "html_statements": per_page,
               "html_bytes": len(page.data), "pdf_ms": round(statistics.median(pdf_ms)),
               "pdf_pages": pages, "html_target_ms": HTML_TARGET_MS,
               "pdf_target_ms": PDF_TARGET_MS}
    print(f"billing report, {CHARGES} charges for {PATIENTS} patients")
    print(f"  page: median {figures['html_ms']} ms, {per_page} statements, "
          f"{len(page.data) // 1024} KiB (target {HTML_TARGET_MS} ms)")
    print(f"  PDF:  median {figures['pdf_ms']} ms, {pages} pages (target {PDF_TARGET_MS} ms)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
