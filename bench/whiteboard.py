"""Whiteboard benchmark: render time and query count of a busy ward board.

Builds a clinic in a fresh SQLite database (a temporary directory) through the real
services: one ward of 200 admitted patients with about 5,000 tasks inside the board's
window, and a second ward of 20 patients with the same orders. Each board is rendered
through the application (the test client, signed in) and timed; the number of SQL
statements per render is counted and must not grow with the number of patients.

    python bench/whiteboard.py [--patients 200] [--small 20] [--runs 50] [--warmup 5]
                               [--profile]

Human-readable lines first; the last line is one JSON object.
"""

import argparse
import cProfile
import io
import json
import pstats
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk import create_app  # noqa: E402
from kiosk.clinic.models import ClinicSettings, Ward  # noqa: E402
from kiosk.core.auth import SESSION_KEY  # noqa: E402
from kiosk.core.clock import hour_floor, utcnow, zone  # noqa: E402
from kiosk.core.upkeep import database_analyze  # noqa: E402
from kiosk.extensions import db  # noqa: E402
from kiosk.patients.services import patient_create  # noqa: E402
from kiosk.staff.models import User  # noqa: E402
from kiosk.staff.services import user_create  # noqa: E402
from kiosk.staff.sessions import staff_session_start  # noqa: E402
from kiosk.treatments.models import TASK_OPEN, Task  # noqa: E402
from kiosk.treatments.services import order_create, task_complete, task_skip  # noqa: E402
from kiosk.whiteboards.models import Board  # noqa: E402

# Every patient gets these orders: about 25 tasks in the board's 13 hour columns
# (13 + 6.5 + 3.25 + 2.2 + 0.5 ≈ 25.5).
ORDERS = [
    ("Hartmann's", "fluid", {"rate_ml_h": "45", "route": "IV", "every_hours": 1}),
    ("Heart rate", "observation", {"every_hours": 2, "value_units": "bpm"}),
    ("Temperature", "observation", {"every_hours": 4, "value_units": "°C"}),
    ("Methadone", "medication", {"dose": "0.2", "units": "mg/kg", "route": "IV",
                                 "every_hours": 6}),
    ("Maropitant", "medication", {"dose": "1", "units": "mg/kg", "route": "SC",
                                  "every_hours": 24}),
]
SPECIES = ["canine", "feline", "rabbit", "ferret"]
ALERTS = [[], [], [], ["bites"], ["caution"], ["dnr"], ["isolation", "allergies"]]
COLOURS = ["none", "none", "red", "blue", "green", "purple"]


def clinic_build(*, big: int, small: int, seed: int = 11) -> dict:
    """Settings, a vet and a tech, and two wards with their boards; returns the board ids."""
    rng = random.Random(seed)
    now = utcnow()
    settings = ClinicSettings(name="Bench Hospital", timezone="UTC",
                              board_hours_back=2, board_hours_ahead=10)
    db.session.add(settings)
    vet = user_create(name="Dr Bench", level=5, pin="555555")
    tech = user_create(name="Bench Tech", level=3, pin="3333")
    boards = {}
    counter = 0
    for ward_name, count in (("Big ward", big), ("Small ward", small)):
        ward = Ward(name=ward_name, code=ward_name[:3].upper())
        db.session.add(ward)
        db.session.flush()
        board = Board(name=f"{ward_name} board", kind="ward", ward_id=ward.id)
        db.session.add(board)
        db.session.flush()
        boards[count] = board.id
        start = hour_floor(now, zone("UTC")) - timedelta(hours=24)
        for i in range(count):
            counter += 1
            patient = patient_create(user=vet, origin="pims", at=now - timedelta(hours=26),
                                     data={"name": f"Patient {counter}",
                                           "species": rng.choice(SPECIES),
                                           "ward": ward, "cage": f"{ward_name[0]}{i + 1}",
                                           "weight_kg": f"{rng.uniform(1, 60):.1f}",
                                           "alerts": rng.choice(ALERTS),
                                           "colour": rng.choice(COLOURS),
                                           "doctor": vet.name,
                                           "pims_id": f"B-{counter}"})
            for name, kind, extra in ORDERS:
                order_create(user=vet, patient=patient, now=now,
                             data={"name": name, "kind": kind, "start": start, **extra})
        db.session.flush()
    history_fill(rng, now, tech)
    db.session.commit()
    return boards


def history_fill(rng: random.Random, now, tech) -> None:
    """Most past tasks done (values for observations), a few skipped, some left overdue."""
    past = db.session.scalars(select(Task).where(Task.status == TASK_OPEN,
                                                 Task.due_at < now - timedelta(minutes=20)))
    for task in list(past):
        roll = rng.random()
        if roll < 0.8:
            value = str(rng.randint(60, 140)) if task.order.value_type == "number" else None
            task_complete(task=task, user=tech, now=now,
                          at=task.due_at + timedelta(minutes=rng.randint(0, 20)), value=value)
        elif roll < 0.85:
            task_skip(task=task, user=tech, reason="Patient sleeping", at=task.due_at)


def tasks_in_window(board_id: int) -> int:
    """How many tasks fall in the board's hour columns right now."""
    board = db.session.get(Board, board_id)
    settings = db.session.scalar(select(ClinicSettings))
    first = hour_floor(utcnow(), zone(settings.timezone)) - timedelta(
        hours=settings.board_hours_back)
    end = first + timedelta(hours=settings.board_hours_back + settings.board_hours_ahead + 1)
    from kiosk.patients.models import Patient

    return db.session.scalar(
        select(func.count(Task.id)).join(Patient, Patient.id == Task.patient_id)
        .where(Patient.ward_id == board.ward_id, Patient.status == "admitted",
               Task.due_at >= first, Task.due_at < end))


class QueryCounter:
    """Counts SQL statements sent through an engine while switched on."""

    def __init__(self, engine):
        self.count = 0
        self.on = False
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args, **kwargs):
        if self.on:
            self.count += 1


def board_measure(client, counter: QueryCounter, board_id: int, *, runs: int,
                  warmup: int) -> dict:
    """Render the board `warmup` + `runs` times; times in ms and statements per render."""
    url = f"/boards/{board_id}"
    for _ in range(warmup):
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    times = []
    queries = set()
    for _ in range(runs):
        counter.count, counter.on = 0, True
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        counter.on = False
        assert response.status_code == 200, response.status_code
        queries.add(counter.count)
    times.sort()
    return {"p50": statistics.median(times),
            "p95": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
            "queries": max(queries), "query_counts": sorted(queries),
            "bytes": len(response.data), "rows": response.data.count(b'class="board-row"')}


def profile_render(client, board_id: int, runs: int = 10) -> str:
    """The top of a cProfile of `runs` renders, by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        client.get(f"/boards/{board_id}")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
    return out.getvalue()


def main() -> int:
    """Build, measure, print; the last line is the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of renders")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        app = create_app("default", {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "SECRET_KEY": "bench-only-secret",
            # Two users are hashed while building; their strength does not matter here.
            "KIOSK_PASSWORD_HASH": "pbkdf2:sha256:1000",
        })
        logging_quiet()
        with app.app_context():
            db.create_all()
            started = time.perf_counter()
            boards = clinic_build(big=args.patients, small=args.small)
            database_analyze()  # as the hourly upkeep of a running clinic does
            build_s = time.perf_counter() - started
            in_window = tasks_in_window(boards[args.patients])
            total = db.session.scalar(select(func.count(Task.id)))
            tech_id = db.session.scalar(select(func.max(Task.done_by_id)))
            # Sign-ins are kept on the server: start one for the cookie to name.
            session_key = staff_session_start(user=db.session.get(User, tech_id),
                                              auth="password")
            db.session.commit()
            counter = QueryCounter(db.engine)
            db.session.remove()
        print(f"built {args.patients} + {args.small} patients, {total} tasks "
              f"({in_window} in the big board's window) in {build_s:.1f} s")

        client = app.test_client()
        with client.session_transaction() as session:
            session["user_id"] = tech_id
            session[SESSION_KEY] = session_key
            session["auth"] = "password"
        results = {}
        for size in (args.small, args.patients):
            result = board_measure(client, counter, boards[size], runs=args.runs,
                                   warmup=args.warmup)
            results[size] = result
            print(f"{size:>4} patients: p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, "
                  f"{result['queries']} queries per render {result['query_counts']}, "
                  f"{result['rows']} rows, {result['bytes'] / 1024:.0f} KiB")
        big, small = results[args.patients], results[args.small]
        print("queries equal at both sizes: " + ("yes" if big["queries"] == small["queries"]
                                               else "NO"))
        print(f"p50 under 50 ms at {args.patients} patients: "
              + ("yes" if big["p50"] < 50 else "NO"))
        if args.profile:
            print(profile_render(client, boards[args.patients]))
        app_engine_dispose(app)

    print(json.dumps({"bench": "whiteboard", "patients": args.patients,
                      "tasks_in_window": in_window, "p50_ms": round(big["p50"], 1),
                      "p95_ms": round(big["p95"], 1), "queries": big["queries"],
                      "queries_20": small["queries"], "p50_ms_20": round(small["p50"], 1)},
                     separators=(",", ":")))
    return 0


def logging_quiet() -> None:
    """Keep the figures readable: only warnings from the application's loggers."""
    import logging

    logging.getLogger().setLevel(logging.WARNING)


def app_engine_dispose(app) -> None:
    """Close the pooled connections before the temporary directory goes."""
    with app.app_context():
        db.engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
