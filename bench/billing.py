"""Billing benchmark: the end-of-shift report of a busy week, and what capturing charges
costs the sync apply rate.

    python bench/billing.py [--runs 7] [--pdf-runs 3] [--devices 10] [--ops 200]

1. A clinic of 200 patients and 20,000 charges over a week (two 12-hour shifts a day,
   each closed by an end-of-shift mark; one busy shift holds ~3,000 charges, a tenth of
   them captured offline and arriving after the shift's end), in a fresh SQLite database.
   The report of the busy shift is fetched as a signed-in manager would, through the
   application (HTML page and PDF), `--runs` and `--pdf-runs` times: medians.
2. bench/sync.py's flush (real `kiosk run` servers) twice: every order billable (each
   completion captures a charge) and no order billable. The ratio of their apply rates is
   what capture costs; the two runs are interleaved twice (none, all, none, all) and the
   best of each kept, as this machine is shared.

Human-readable lines first; the last line is one JSON object.
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk import create_app  # noqa: E402
from kiosk.billing.models import Charge, ShiftMark  # noqa: E402
from kiosk.core import clock  # noqa: E402
from kiosk.extensions import db  # noqa: E402
from kiosk.patients.models import Patient  # noqa: E402
from tests import factories  # noqa: E402

PATIENTS, CHARGES, BUSY = 200, 20_000, 3_000
NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # the end of the week's last shift
ITEMS = [("MAR10", "Maropitant 10 mg/ml inj", Decimal("12.50")),
         ("FLU1", "IV fluids per hour", Decimal("8.50")),
         ("BUP", "Buprenorphine 0.3 mg/ml", Decimal("6.40")),
         ("HOSP", "Hospitalisation, per 12 h", Decimal("45.00")),
         ("TEMP", "Temperature check", Decimal("2.00"))]
TARGETS = {"report_html_p50_ms": 200, "report_pdf_p50_s": 3, "capture_overhead_ratio": 1.15}


def week_build(rng: random.Random):
    """The clinic, its patients, 14 shift marks and 20,000 charges: the busy shift's mark
    and a manager."""
    clinic = factories.clinic_make()
    for n in range(PATIENTS):
        db.session.add(Patient(name=f"Patient {n}", species=rng.choice(["canine", "feline"]),
                               ward_id=clinic.ward.id, status="admitted", origin="pims",
                               pims_id=f"P{n:05d}", file_number=f"F{n:05d}",
                               unallocated=n % 40 == 0, admitted_at=NOW - timedelta(days=8)))
    db.session.flush()
    patient_ids = list(db.session.scalars(db.select(Patient.id)))
    start = NOW - timedelta(days=7)
    marks = [ShiftMark(uid=str(uuid.uuid4()), at=start + timedelta(hours=12 * k),
                       user_id=clinic.user(4).id, recorded_at=start + timedelta(hours=12 * k))
             for k in range(1, 15)]
    db.session.add_all(marks)
    db.session.flush()
    busy = marks[9]  # the shift ending at this mark is the busy one
    busy_start = busy.at - timedelta(hours=12)
    users = [clinic.user(level).id for level in (2, 3, 4)]
    rows = []
    for n in range(CHARGES):
        if n < BUSY:
            performed = busy_start + timedelta(seconds=rng.randrange(12 * 3600))
        else:  # the rest of the week, outside the busy shift
            offset = rng.randrange(7 * 24 * 3600 - 12 * 3600)
            performed = start + timedelta(seconds=offset)
            if performed >= busy_start:
                performed += timedelta(hours=12)
        offline = rng.random() < 0.1
        recorded = performed + (timedelta(hours=rng.uniform(0.2, 14)) if offline
                                else timedelta(seconds=rng.uniform(0.1, 5)))
        code, words, price = rng.choice(ITEMS)
        rows.append({"uid": str(uuid.uuid4()), "key": f"bench:{n}", "cause": "task",
                     "patient_id": rng.choice(patient_ids), "item_code": code,
                     "description": words, "quantity": Decimal(1), "unit_price": price,
                     "total": price, "user_id": rng.choice(users), "device_id": None,
                     "performed_at": performed, "recorded_at": recorded, "offline": offline,
                     "sent_at": recorded if rng.random() < 0.8 else None,
                     "send_attempts": 0, "send_next_at": recorded})
    db.session.execute(db.insert(Charge), rows)
    db.session.commit()
    return busy, clinic.user(6)


def signed_in_client(app, user):
    """A test client signed in as `user` (a manager, password sign-in)."""
    from kiosk.core.auth import SESSION_KEY
    from kiosk.staff.sessions import staff_session_start

    client = app.test_client()
    key = staff_session_start(user=user, auth="password")
    db.session.commit()
    with client.session_transaction() as session:
        session["user_id"], session[SESSION_KEY], session["auth"] = user.id, key, "password"
    return client


def timed(fetch, runs: int) -> tuple[list[float], bytes]:
    """Seconds per run of `fetch()` (after one warm run) and the last answer's body."""
    body = fetch()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        body = fetch()
        times.append(time.perf_counter() - began)
    return times, body


def report_bench(args) -> dict:
    """The busy shift's report as HTML and as PDF: medians, and what they hold."""
    rng = random.Random(15)
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-billing-") as tmp:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db"})
        with app.app_context(), clock.frozen(NOW):
            db.create_all()
            busy, manager = week_build(rng)
            shift = busy.uid
            in_shift = db.session.scalar(db.select(db.func.count()).select_from(Charge).where(
                Charge.performed_at >= busy.at - timedelta(hours=12),
                Charge.performed_at < busy.at))
            client = signed_in_client(app, manager)

            def get(path):
                def fetch():
                    answer = client.get(path)
                    assert answer.status_code == 200, (path, answer.status_code)
                    return answer.data
                return fetch

            html_times, html = timed(get(f"/billing/?shift={shift}"), args.runs)
            pdf_times, pdf = timed(get(f"/billing/report.pdf?shift={shift}"), args.pdf_runs)
            from sqlalchemy import event

            statements = []
            listener = lambda *a, **k: statements.append(1)  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            client.get(f"/billing/?shift={shift}")
            event.remove(db.engine, "before_cursor_execute", listener)
    from io import BytesIO

    from pypdf import PdfReader

    pages = len(PdfReader(BytesIO(pdf)).pages)
    html_ms = statistics.median(html_times) * 1000
    pdf_s = statistics.median(pdf_times)
    print(f"report of a 12-hour shift with {in_shift} charges (of {CHARGES} over a week, "
          f"{PATIENTS} patients): HTML p50 {html_ms:.1f} ms ({len(html) // 1024} KiB, "
          f"{len(statements)} queries), PDF p50 {pdf_s:.2f} s ({pages} pages, "
          f"{len(pdf) // 1024} KiB)")
    return {"shift_charges": in_shift, "report_html_p50_ms": round(html_ms, 1),
            "report_html_kib": len(html) // 1024, "report_queries": len(statements),
            "report_pdf_p50_s": round(pdf_s, 3), "report_pdf_pages": pages}


def capture_bench(args) -> dict:
    """bench/sync.py's apply rate with every order billable and with none: the ratio."""
    sys.path.insert(0, str(ROOT / "bench"))
    import sync as sync_bench

    options = argparse.Namespace(devices=args.devices, ops=args.ops, batch=100,
                                 clients=args.devices, gunicorn=0)
    rates: dict[str, list[int]] = {"none": [], "all": []}
    charges: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-billing-sync-") as tmp:
        for n, mode in enumerate(("none", "all", "none", "all")):
            directory = Path(tmp) / f"{mode}-{n}"
            directory.mkdir()
            options.billing = mode
            figures = sync_bench.bench_one(f"sqlite-billing-{mode}",
                                           f"sqlite:///{directory / 'bench.db'}", directory,
                                           options)
            rates[mode].append(figures["apply_ops_s"])
            charges[mode] = figures.get("charges", 0)
    best = {mode: max(values) for mode, values in rates.items()}
    ratio = best["none"] / best["all"]
    print(f"sync apply rate: no order billable {rates['none']} ops/s, every order billable "
          f"{rates['all']} ops/s ({charges.get('all', 0)} charges captured): capture costs "
          f"x{ratio:.3f}")
    return {"apply_ops_s_unbillable": best["none"], "apply_ops_s_billable": best["all"],
            "charges_captured": charges.get("all", 0),
            "capture_overhead_ratio": round(ratio, 3)}


def main() -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pdf-runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--no-sync", action="store_true", help="skip the capture-cost part")
    args = parser.parse_args()
    result = {"bench": "billing", **report_bench(args)}
    if not args.no_sync:
        result.update(capture_bench(args))
    result["targets"] = TARGETS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
