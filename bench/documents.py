"""Document benchmark: the PDFs of a 4-hour anaesthesia sheet and of a 3-page form.

Builds a clinic in a fresh SQLite database (a temporary directory) through the real
services and a sheet with vitals every 5 minutes for 4 hours (48 rows), 20 drug entries,
every timed event and the chart; renders its PDF (WeasyPrint, the same function the
page's PDF link calls) `--runs` times and prints the median seconds and pages per second.

Then a form of 60 fields in 5 headed sections (text, number, date, choice, tick boxes)
and two drawn signatures, every field filled and the form finalised (tests/support/
forms.py), rendered the same way (the function the form's PDF link calls): about three
A4 pages.

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
from kiosk.forms.printing import form_document  # noqa: E402
from tests import factories  # noqa: E402
from tests.support.anaesthesia import long_sheet  # noqa: E402
from tests.support.forms import long_form  # noqa: E402

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
                form = long_form(clinic, patient)
                form_times, form_pages, form_size = _render(lambda: form_document(form),
                                                            args.runs)
                fields = form.version.fields
                headings = sum(f["type"] == "heading" for f in fields)
    p50 = statistics.median(times)
    print(f"anaesthesia sheet: {len(view.vitals)} vitals rows, {len(view.drugs)} drugs, "
          f"{len(view.events)} events, {pages} pages, {size // 1024} KiB")
    print(f"  p50 {p50:.3f} s (min {min(times):.3f}, max {max(times):.3f}) over {args.runs} "
          f"runs; {pages / p50:.1f} pages/s; target under {TARGET_S} s")
    form_p50 = statistics.median(form_times)
    print(f"form: {len(fields) - headings} fields (2 of them signatures) in {headings} "
          f"sections, {form_pages} pages, "
          f"{form_size // 1024} KiB")
    print(f"  p50 {form_p50:.3f} s (min {min(form_times):.3f}, max {max(form_times):.3f}) "
          f"over {args.runs} runs; {form_pages / form_p50:.1f} pages/s")
    print(json.dumps({"bench": "documents", "anaesthesia_p50_s": round(p50, 3),
                      "anaesthesia_pages": pages,
                      "anaesthesia_pages_per_s": round(pages / p50, 1),
                      "form_p50_s": round(form_p50, 3), "form_pages": form_pages,
                      "form_pages_per_s": round(form_pages / form_p50, 1),
                      "runs": args.runs}))


def _render(make, runs: int) -> tuple[list[float], int, int]:
    """Lay out and write a PDF once to warm up, then `runs` times: (seconds, pages, bytes)."""
    make().write_pdf()
    times, pages, size = [], 0, 0
    for _ in range(runs):
        began = time.perf_counter()
        document = make()
        pdf = document.write_pdf()
        times.append(time.perf_counter() - began)
        pages, size = len(document.pages), len(pdf)
    return times, pages, size


if __name__ == "__main__":
    main()
