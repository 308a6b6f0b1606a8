"""Document benchmark: the PDF of a 4-hour anaesthesia sheet.

Builds a clinic in a fresh SQLite database (a temporary directory) through the real
services and a sheet with vitals every 5 minutes for 4 hours (48 rows), 20 drug entries,
every timed event and the chart; renders its PDF (WeasyPrint, the same function the
page's PDF link calls) `--runs` times and prints the median seconds and pages per second.

The 3-page form of the issue is not measured yet: forms are not built. Its figure is
printed as null.

    python bench/documents.py [--runs 7]

Human-readable lines first; the last line is one JSON object.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk import create_app  # noqa: E402
from kiosk.anaesthesia.printing import anaesthesia_document  # noqa: E402
from kiosk.anaesthesia.selectors import sheet_view  # noqa: E402
from kiosk.extensions import db  # noqa: E402
from tests import factories  # noqa: E402
from tests.anaesthesia.builders import long_sheet  # noqa: E402

TARGET_S = 1.5


def main() -> None:
    """Build the sheet, render it `--runs` times, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-documents-") as tmp:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db"})
        with app.app_context():
            db.create_all()
            clinic = factories.clinic_make()
            patient = factories.patient_make(clinic, "Biscuit", owner_name="A. Client")
            sheet = long_sheet(patient, clinic.user(3))
            with app.test_request_context():
                view = sheet_view(sheet)
                anaesthesia_document(view).write_pdf()  # warm: fonts, templates
                times, pages, size = [], 0, 0
                for _ in range(args.runs):
                    began = time.perf_counter()
                    document = anaesthesia_document(sheet_view(sheet))
                    pdf = document.write_pdf()
                    times.append(time.perf_counter() - began)
                    pages, size = len(document.pages), len(pdf)
    p50 = statistics.median(times)
    print(f"anaesthesia sheet: {len(view.vitals)} vitals rows, {len(view.drugs)} drugs, "
          f"{len(view.events)} events, {pages} pages, {size // 1024} KiB")
    print(f"  p50 {p50:.3f} s (min {min(times):.3f}, max {max(times):.3f}) over {args.runs} "
          f"runs; {pages / p50:.1f} pages/s; target under {TARGET_S} s")
    print("form: not built yet (no figure)")
    print(json.dumps({"bench": "documents", "anaesthesia_p50_s": round(p50, 3),
                      "anaesthesia_pages": pages,
                      "anaesthesia_pages_per_s": round(pages / p50, 1),
                      "form_p50_s": None, "runs": args.runs}))


if __name__ == "__main__":
    main()
