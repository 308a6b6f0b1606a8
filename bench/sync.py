"""Sync throughput: 50 tablets back from a shift offline flush 10,000 ops, then resend them.

    .venv/bin/python bench/sync.py [--devices 50] [--ops 200] [--batch 100] [--clients 50]
                                   [--gunicorn THREADS] [--no-postgresql]

Each database (SQLite, then PostgreSQL when reachable) gets a fresh demo clinic
(`kiosk db upgrade`, `kiosk demo`) served by a real process: `kiosk run` (gunicorn, one
gthread worker of KIOSK_THREADS threads) unless --gunicorn N starts gunicorn on wsgi:app.
Every tablet's ops are valid and realistic: new patients (patient.create) with orders
(order.create, client-made uids) and the completions of their tasks (uuid5 task uids with
order and due_at), completions of the demo clinic's open tasks, and notes. `--clients`
threads each flush a group of tablets, in batches of `--batch`, all starting together (a
hospital back from an outage); then every batch is sent again (all duplicates). A 503
(the server's line is full) is resent after its Retry-After, as a tablet does. Meanwhile
a user signs in, opens the boards and completes a task through the sheet once a second.
Reported: HTTP statuses, p95 and max per batch and per request, requests over 5 s, op
outcomes, the slowest sign-in and page write.
PostgreSQL runs in a database made for the bench and dropped after
(KIOSK_BENCH_PG, default postgresql+psycopg://postgres@127.0.0.1:5432/).

Prints the figures; the last line is one JSON object.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import KioskServer  # noqa: E402

PG_SERVER = os.environ.get("KIOSK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/")
NEW_PATIENTS = 6  # per tablet, each with two hourly orders over eight hours
DEMO_COMPLETIONS = 18  # per tablet, distinct open tasks of the demo clinic
RETRIES = 60


def iso(value: datetime) -> str:
    """A UTC timestamp as SYNC.md writes it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def task_uid(order_uid: str, due: datetime) -> str:
    """uuid5(order uid, due time): the uid a tablet gives a task of an order it made."""
    return str(uuid.uuid5(uuid.UUID(order_uid), iso(due)))


# ---- Setting up -------------------------------------------------------------------------

# --billing: which orders charge when a task is done (bench/billing.py compares the two ends).
BILLING_SQL = {"demo": "", "all": "UPDATE orders SET billable_code = 'BENCH', price = 4.20",
               "none": "UPDATE orders SET billable_code = NULL, price = NULL"}


def provision(env: dict, devices: int, billing: str = "demo") -> dict:
    """Tablets (in one process: 50 `kiosk devices add` would take a minute), users, tasks."""
    code = f"""
import json
from sqlalchemy import select, text
from kiosk import create_app
from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.staff.models import User
from kiosk.treatments.models import Task
app = create_app()
with app.app_context():
    if {BILLING_SQL[billing]!r}:
        db.session.execute(text({BILLING_SQL[billing]!r}))
    made = [device_provision(name=f"Tablet {{n}}", colour="blue", number=n)
            for n in range(1, {devices} + 1)]
    db.session.commit()
    users = {{u.username: u.public_id for u in db.session.scalars(select(User))}}
    tasks = [[t.uid, t.order.value_type] for t in db.session.scalars(
        select(Task).where(Task.status == "scheduled").order_by(Task.due_at, Task.id))]
    print(json.dumps({{"devices": [[d.public_id, token] for d, token in made],
                      "vet": users["vet"], "tech": users["tech"], "tasks": tasks}}))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def tablet_ops(index: int, count: int, world: dict, rng: random.Random,
               billable: bool = False) -> list[dict]:
    """A tablet's shift: new patients and orders (billable when asked), their tasks done,
    demo tasks done, notes."""
    now = datetime.now(UTC).replace(microsecond=0)
    hour = now.replace(minute=0, second=0)
    start, end = hour - timedelta(hours=4), hour + timedelta(hours=4)
    vet, tech = world["vet"], world["tech"]
    first, work = [], []
    for p in range(NEW_PATIENTS):
        patient = str(uuid.uuid4())
        first.append(("patient.create", vet, {"patient": patient, "name": f"Walk-in {index}.{p}",
                                             "species": rng.choice(["canine", "feline"]),
                                             "owner_name": "A. Client"}))
        for name in ("Hartmann's", "Check IV catheter"):
            order = str(uuid.uuid4())
            first.append(("order.create", vet, {
                "order": order, "patient": patient, "name": name,
                "kind": "fluid" if name.startswith("H") else "procedure",
                "every_hours": 1, "start": iso(start), "end": iso(end),
                **({"billable": {"code": "BENCH", "price": "4.20"}} if billable else {})}))
            due = start
            while due <= end:
                work.append(("task.complete", tech, {"task": task_uid(order, due),
                                                     "order": order, "due_at": iso(due)}))
                due += timedelta(hours=1)
        work.append(("note.add", tech, {"note": None, "patient": patient,
                                        "text": "Admitted overnight; settled in cage."}))
    mine = world["tasks"][index * DEMO_COMPLETIONS:(index + 1) * DEMO_COMPLETIONS]
    for uid, value_type in mine:
        args = {"task": uid}
        if value_type == "number":
            args["value"] = f"{rng.uniform(37.5, 39.5):.1f}"
        elif value_type == "text":
            args["value"] = rng.choice(["ate all", "ate half"])
        work.append(("task.complete", tech, args))
    patients = [a["patient"] for n, _, a in first if n == "patient.create"]
    while len(first) + len(work) < count:
        work.append(("note.add", tech, {"note": None, "patient": rng.choice(patients),
                                        "text": rng.choice(["Ate well.", "Restless overnight.",
                                                            "Walked, urinated normally."])}))
    rng.shuffle(work)
    ops = []
    for seq, (name, user, args) in enumerate((first + work)[:count], start=1):
        op_id = str(uuid.uuid4())
        if name == "note.add":
            args = {**args, "note": op_id}
        at = now - timedelta(minutes=30) + timedelta(seconds=seq)
        ops.append({"id": op_id, "seq": seq, "name": name, "args": args, "at": iso(at),
                    "user": user})
    return ops


def charges_count(env: dict) -> int:
    """How many charges the server captured."""
    code = """
from sqlalchemy import func, select
from kiosk import create_app
from kiosk.billing.models import Charge
from kiosk.extensions import db
app = create_app()
with app.app_context():
    print(db.session.scalar(select(func.count()).select_from(Charge)))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return int(out.strip().splitlines()[-1])


# ---- Sending ------------------------------------------------------------------------------

SLOW_S = 5.0  # a request slower than this counts as a failure of the bench's target


def flush(base_url: str, tablets: list[tuple[str, str, list[dict]]], batch: int,
          clients: int) -> dict:
    """Send every tablet's ops in batches from `clients` threads, all at once: the figures.

    Every HTTP answer is counted by status; a 503 is resent (as the tablet would after
    Retry-After); any other failure stops that client's tablets and is reported.
    """
    import requests

    groups = [tablets[i::clients] for i in range(clients)]
    batch_ms: list[float] = []  # per batch, resends included
    request_ms: list[float] = []  # per HTTP request
    http: dict[str, int] = {}
    results: dict[str, int] = {}
    lock = threading.Lock()
    failures: list[str] = []
    start = threading.Barrier(len([g for g in groups if g]))

    def post(session, token, body):
        began = time.perf_counter()
        try:
            answer = session.post(f"{base_url}/api/sync", json=body, timeout=300,
                                  headers={"Authorization": f"Bearer {token}"})
            status = str(answer.status_code)
        except requests.RequestException as exc:
            answer, status = None, type(exc).__name__
        with lock:
            request_ms.append((time.perf_counter() - began) * 1000)
            http[status] = http.get(status, 0) + 1
        return answer

    def run(group):
        session = requests.Session()
        start.wait()
        for device, token, ops in group:
            for first in range(0, len(ops), batch):
                chunk = ops[first:first + batch]
                body = {"device": device, "sent_at": iso(datetime.now(UTC)),
                        "outbox": {"pending": len(ops) - first, "oldest_at": chunk[0]["at"]},
                        "ops": chunk}
                began = time.perf_counter()
                for _ in range(RETRIES):
                    answer = post(session, token, body)
                    if answer is None or answer.status_code != 503:
                        break
                    # As a tablet does: come back when the server said (its line was long).
                    time.sleep(min(float(answer.headers.get("Retry-After", 5)), 60))
                took = (time.perf_counter() - began) * 1000
                if answer is None or answer.status_code != 200:
                    with lock:
                        failures.append(f"{device}: " + (
                            f"{answer.status_code} {answer.text[:200]}" if answer is not None
                            else "no answer"))
                    return
                with lock:
                    batch_ms.append(took)
                    for result in answer.json()["results"]:
                        key = result["status"]
                        if key == "rejected":
                            key += ":" + result["error"]["code"]
                        results[key] = results.get(key, 0) + 1

    threads = [threading.Thread(target=run, args=(g,)) for g in groups if g]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - began, "batch_ms": batch_ms,
            "request_ms": request_ms, "http": http, "results": results,
            "failures": failures}


class SignInProbe:
    """Once a second while the tablets flush: sign in and open the boards page, then
    complete a task through the sheet's form (a write of a page, beside the syncs')."""

    def __init__(self, server: KioskServer, tasks: list[str]):
        self.server, self.tasks = server, list(tasks)
        self.took_ms, self.statuses, self.write_ms, self.writes = [], {}, [], {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        base = self.server.base_url
        while not self.stop.wait(1.0):
            began = time.perf_counter()
            session = None
            try:
                session = self.server.signed_in("vet", "vet-demo-1")
                status = str(session.get(f"{base}/boards/", timeout=300).status_code)
            except Exception as exc:  # noqa: BLE001 - a failed sign-in is a figure here
                status = type(exc).__name__
            self.took_ms.append((time.perf_counter() - began) * 1000)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if session is None or not self.tasks:
                continue
            began = time.perf_counter()
            try:
                status = str(session.post(
                    f"{base}/tasks/{self.tasks.pop()}/complete", timeout=300,
                    data={"value": "1", "note": "probe"},
                    headers={"HX-Request": "true"}).status_code)
            except Exception as exc:  # noqa: BLE001 - a failed write is a figure here
                status = type(exc).__name__
            self.write_ms.append((time.perf_counter() - began) * 1000)
            self.writes[status] = self.writes.get(status, 0) + 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    if not values:
        return 0.0
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def summary(run: dict) -> dict:
    """The figures of one flush."""
    return {"p95_batch_ms": round(p95(run["batch_ms"]), 1),
            "max_batch_ms": round(max(run["batch_ms"], default=0), 1),
            "p95_request_ms": round(p95(run["request_ms"]), 1),
            "max_request_ms": round(max(run["request_ms"], default=0), 1),
            "requests_over_5s": sum(ms > SLOW_S * 1000 for ms in run["request_ms"]),
            "http": dict(sorted(run["http"].items())), "failed_tablets": len(run["failures"])}


def bench_one(db: str, url: str, directory: Path, args) -> dict:
    """Set up, flush, replay on one database; the figures."""
    server = KioskServer(directory, name=f"bench-{db}", gunicorn_threads=args.gunicorn,
                         env={"KIOSK_DATABASE_URL": url})
    server.prepare()
    billing = getattr(args, "billing", "demo")
    world = provision(server.env, args.devices, billing)
    rng = random.Random(7)
    tablets = [(device, token, tablet_ops(i, args.ops, world, rng, billing == "all"))
               for i, (device, token) in enumerate(world["devices"])]
    total = sum(len(ops) for _, _, ops in tablets)
    server.start()
    try:
        # Tasks no tablet completes (the tablets take the earliest ones).
        spare = [uid for uid, _ in world["tasks"][len(tablets) * DEMO_COMPLETIONS:]]
        with SignInProbe(server, spare) as probe:
            applied = flush(server.base_url, tablets, args.batch, args.clients)
            replayed = flush(server.base_url, tablets, args.batch, args.clients)
        log = server.log_text()
    finally:
        server.stop()
    charges = charges_count(server.env)
    figures = {"ops": total, "charges": charges, "clients": args.clients,
               "apply_ops_s": round(total / applied["seconds"]),
               "replay_ops_s": round(total / replayed["seconds"]),
               **summary(applied),
               "replay": summary(replayed),
               "sign_in_max_ms": round(max(probe.took_ms, default=0), 1),
               "sign_in": dict(sorted(probe.statuses.items())),
               "page_write_max_ms": round(max(probe.write_ms, default=0), 1),
               "page_writes": dict(sorted(probe.writes.items())),
               "server_errors_logged": log.count("Traceback")}
    print(f"{db}: {total} ops from {len(tablets)} tablets, {args.clients} clients at once, "
          f"batches of {args.batch}, server {server_name(args)}")
    for name, run in (("applied", applied), ("replayed", replayed)):
        shown = summary(run)
        print(f"  {name} {round(total / run['seconds'])} ops/s ({run['seconds']:.1f} s), "
              f"batch p95 {shown['p95_batch_ms']} ms max {shown['max_batch_ms']} ms, "
              f"requests over {SLOW_S:.0f} s: {shown['requests_over_5s']}, "
              f"HTTP {shown['http']}, op outcomes {run['results']}")
        for failure in run["failures"][:5]:
            print(f"  FAILED {failure}")
    print(f"  charges captured: {charges} (orders billable: {billing})")
    print(f"  sign-in + boards page during the flush: max {figures['sign_in_max_ms']} ms, "
          f"{figures['sign_in']}; a task completed through the sheet: max "
          f"{figures['page_write_max_ms']} ms, {figures['page_writes']}")
    return figures


def server_name(args) -> str:
    """How the bench serves: `kiosk run`, or gunicorn started on wsgi:app."""
    return f"gunicorn wsgi:app gthread x{args.gunicorn}" if args.gunicorn else "kiosk run"


def postgresql_bench(args, directory: Path) -> dict | None:
    """The same on a PostgreSQL database made for the bench, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"kiosk_bench_{os.getpid()}"
    admin = create_engine(PG_SERVER + "postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure: no PostgreSQL here
        print(f"postgresql: skipped ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        return None
    try:
        return bench_one("postgresql", PG_SERVER + name, directory / "pg", args)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    """Run the bench and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--gunicorn", type=int, default=0, metavar="THREADS")
    parser.add_argument("--no-postgresql", action="store_true")
    parser.add_argument("--billing", choices=sorted(BILLING_SQL), default="demo",
                        help="which orders charge: the demo's, every one, or none")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-sync-") as tmp:
        directory = Path(tmp)
        (directory / "sqlite").mkdir()
        (directory / "pg").mkdir()
        result = {"bench": "sync", "server": server_name(args), "sqlite": bench_one(
            "sqlite", f"sqlite:///{directory / 'sqlite' / 'bench.db'}", directory / "sqlite",
            args)}
        if not args.no_postgresql:
            result["postgresql"] = postgresql_bench(args, directory)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
