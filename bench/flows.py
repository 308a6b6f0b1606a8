"""Smart Flows runtime: an outage's worth of events against 50 enabled flows, and the time
from an admission to its staff task.

    python bench/flows.py [--events 5000] [--flows 50] [--latency-samples 200]
                          [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/]

1. Capture. A ward tablet back from a 12-hour outage syncs its outbox through the real
   endpoint (POST /api/sync in batches of 500 ops, Flask's test client, one device): patients
   admitted offline, their orders, temperatures recorded, forms finalised, discharges, every
   op with its `at` in the past, making exactly --events FlowEvents. The same ops go into a
   second fresh database holding the same flows switched off: the ratio of the two sync
   times is what writing the FlowEvents costs the sync.
2. Evaluation: `flow_events_evaluate()` over the waiting events (events/s, runs, steps).
3. Steps: `flow_steps_run_due()` carries out the steps due now (staff tasks, staff messages,
   notes, client messages queued; later ones wait for their time): steps/s.
4. Latency, on a third fresh database with the same flows: the job queue's consumer runs in
   this process as `kiosk run` runs it (two worker threads, SQLite queue); patients are
   admitted one commit at a time, and a watcher thread polls for each one's staff task.

SQLite in a temporary folder; with --database-url (a PostgreSQL server) the same again on
databases made there for the bench and dropped after. The real clock throughout.
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
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from kiosk import create_app  # noqa: E402
from kiosk.core import clock  # noqa: E402
from kiosk.devices.services import device_provision  # noqa: E402
from kiosk.extensions import db  # noqa: E402
from kiosk.flows.engine import flow_events_evaluate, flow_steps_run_due  # noqa: E402
from kiosk.flows.models import Flow, FlowEvent, FlowRun, FlowStep  # noqa: E402
from kiosk.flows.services import flow_save, template_save  # noqa: E402
from kiosk.forms.services import form_template_create  # noqa: E402
from kiosk.inbox.models import StaffMessage, StaffTask  # noqa: E402
from kiosk.messaging.models import ClientMessage  # noqa: E402
from kiosk.patients.services import patient_create  # noqa: E402
from kiosk.sync.envelope import MAX_OPS  # noqa: E402
from tests import factories  # noqa: E402

TARGET_EVENTS_PER_S = 1000
OUTAGE = timedelta(hours=12)
# Of the outage's events: admissions, orders, values recorded, forms, discharges.
MIX = {"patient_admitted": 0.20, "order_created": 0.30, "form_finalised": 0.05,
       "patient_discharged": 0.05}  # the rest: value_recorded
TEMP_EVERY_H = 2
SPECIES = [("canine", 50), ("feline", 38), ("rabbit", 12)]
BREEDS = {"canine": [("Labrador Retriever", 30, 38), ("Border Collie", 15, 22),
                     ("French Bulldog", 9, 14), ("Great Dane", 50, 70), ("Cockapoo", 7, 12),
                     ("German Shepherd", 28, 42)],
          "feline": [("Domestic Shorthair", 3, 6), ("Maine Coon", 5, 9), ("Siamese", 3, 5)],
          "rabbit": [("Netherland Dwarf", 1, 2), ("Lop", 2, 4)]}
ORDERS = [("Temperature", "observation"), ("Hartmann's", "fluid"), ("Methadone", "medication"),
          ("Meloxicam", "medication"), ("Check wound", "procedure"), ("Walk", "task")]


def iso(value: datetime) -> str:
    """A UTC timestamp as SYNC.md writes it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- The clinic and its flows -------------------------------------------------------------

@dataclass
class World:
    """What one database holds before the outage: the clinic, its templates and forms."""

    clinic: factories.Clinic
    templates: dict[str, str] = field(default_factory=dict)  # key -> FlowTemplate uid
    forms: dict[str, str] = field(default_factory=dict)  # key -> FormTemplate uid
    device: tuple[str, str] | None = None  # public id, token


TEMPLATES = {
    "welcome": ("Welcome", "Admitted", "We are looking after {{ patient.name }} on "
                "{{ patient.ward }}; {{ patient.doctor }} is the vet in charge."),
    "fever": ("Fever", "{{ patient.name }}: temperature {{ event.value }}",
              "{{ patient.name }} ({{ patient.species }}, {{ patient.age }}) recorded "
              "{{ event.value }} at {{ event.time }}."),
    "note": ("Admission note", None, "Admitted {{ event.date }}; flow {{ flow.name }}."),
    "call": ("Discharge call", None, "How is {{ patient.name }} doing since going home? "
             "Call {{ clinic.name }} with any question."),
    "survey": ("Survey", "Your visit", "Tell us how {{ patient.name }}'s stay went."),
    "alert": ("Alert", "{{ patient.name }} needs a look", "{{ event.kind }} at {{ event.time }}"),
}
FORMS = {
    "pain": ("Pain score", [{"key": "score", "label": "Pain score (0-10)", "type": "number",
                             "required": True},
                            {"key": "comment", "label": "Comment", "type": "text"}]),
    "checklist": ("Admission checklist", [
        {"key": "temperament", "label": "Temperament", "type": "choice", "required": True,
         "options": ["Calm", "Nervous", "Aggressive"]}]),
    "unused": ("Dental chart", [{"key": "teeth", "label": "Teeth", "type": "text"}]),
}


def world_build() -> World:
    """Clinic, users, ward, message templates, forms and a tablet (committed)."""
    clinic = factories.clinic_make(timezone="Europe/London", direct_creation=True)
    manager = clinic.user(6)
    world = World(clinic=clinic)
    for key, (name, subject, body) in TEMPLATES.items():
        world.templates[key] = template_save(user=manager, data={
            "name": name, "subject": subject, "body": body}).uid
    for key, (name, fields) in FORMS.items():
        world.forms[key] = form_template_create(user=manager, name=name, fields=fields).uid
    device, token = device_provision(name="Ward tablet", colour="blue")
    db.session.commit()
    world.device = (device.public_id, token)
    return world


def _due(amount=0, unit="minutes", after="event", weekend="keep") -> dict:
    return {"amount": str(amount), "unit": unit, "after": after, "weekend": weekend}


def task(item, responsible="level:3", *, due=None, remind=None, completes=False,
         cancel=True) -> dict:
    """A staff_task step."""
    return {"category": "task", "type": "staff_task", "item": item, "responsible": responsible,
            "due": due or _due(1, "hours"), "remind": remind, "completes_flow": completes,
            "cancel_on_discharge": cancel}


def smart(kind, item, *, responsible=None, channel=None, due=None, cancel=False) -> dict:
    """A smartflow step (message, note, client message, form, start a flow)."""
    step = {"category": "smartflow", "type": kind, "item": item, "due": due or _due(),
            "cancel_on_discharge": cancel}
    if responsible:
        step["responsible"] = responsible
    if channel:
        step["channel"] = channel
    return step


def cond(name, op, value) -> dict:
    """A condition."""
    return {"field": name, "op": op, "value": str(value)}


def catalogue(world: World, follow_up: str | None) -> list[tuple[str, dict, list, list]]:
    """50 flows of mixed triggers: (name, trigger, conditions, steps). A handful match
    most events, a few match some, most match none (species, breeds, orders the clinic
    does not see today), as a real clinic's list does."""
    t, f = world.templates, world.forms
    adm = {"kind": "patient_admitted"}
    started = [smart("start_flow", follow_up)] if follow_up else []

    def order(text):
        return {"kind": "order_created", "order": text}

    def value(text, above=None, below=None):
        return {"kind": "value_recorded", "order": text, "above": above, "below": below}

    def form(key):
        return {"kind": "form_finalised", "form": f[key] if key else None}

    dis = {"kind": "patient_discharged"}
    fever_task = task("Recheck temperature of {{ patient.name }}", due=_due(30))
    return [
        ("Follow-up call", {"kind": "flow_started"}, [],
         [task("Follow-up call about {{ patient.name }}", "level:2", due=_due(1, "days"))]),
        ("Senior dog bloods", adm, [cond("species", "eq", "canine"), cond("age_years", "ge", 7)],
         [task("Senior bloods for {{ patient.name }}", "doctor",
               due=_due(2, "hours", "admitted", "monday"),
               remind={"amount": "1", "unit": "hours"}, completes=True),
          smart("client_message", t["welcome"], channel="email"), *started]),
        ("Senior cat thyroid", adm, [cond("species", "eq", "feline"), cond("age_years", "ge", 10)],
         [task("T4 for {{ patient.name }}", "doctor", due=_due(4, "hours"))]),
        ("Rabbit gut watch", adm, [cond("species", "eq", "rabbit")],
         [task("Gut sounds: {{ patient.name }}", due=_due(1, "hours")),
          task("Weigh {{ patient.name }}", "level:2", due=_due(1, "days"))]),
        ("Giant breed lifting plan", adm, [cond("weight_kg", "gt", 45)],
         [task("Lifting plan for {{ patient.name }}", due=_due(30))]),
        ("Puppy vaccinations", adm, [cond("species", "eq", "canine"), cond("age_years", "lt", 1)],
         [task("Check vaccinations", "level:2")]),
        ("Kitten vaccinations", adm, [cond("species", "eq", "feline"), cond("age_years", "lt", 1)],
         [task("Check vaccinations", "level:2")]),
        ("Labrador weight plan", adm, [cond("breed", "contains", "labrador"),
                                       cond("weight_kg", "gt", 36)],
         [smart("patient_note", t["note"])]),
        ("Ferret adrenal check", adm, [cond("species", "eq", "ferret")], [task("Adrenal panel")]),
        ("Avian heat lamp", adm, [cond("species", "eq", "avian")], [task("Heat lamp on")]),
        ("Reptile vivarium", adm, [cond("species", "eq", "reptile")], [task("Vivarium at 30°C")]),
        ("Old entire dog", adm, [cond("sex", "eq", "M"), cond("species", "eq", "canine"),
                                 cond("age_years", "ge", 12)],
         [smart("patient_note", t["note"]), task("Prostate check", "doctor")]),
        ("Equine colic watch", adm, [cond("species", "eq", "equine")], [task("Colic watch")]),
        ("Isolation ward admission", adm, [cond("ward", "eq", "Isolation")],
         [task("Barrier nursing set up"), smart("staff_message", t["alert"],
                                                responsible="level:5")]),
        ("Brachycephalic airway", adm, [cond("breed", "contains", "bulldog")],
         [task("Airway watch for {{ patient.name }}", due=_due(15)),
          smart("staff_message", t["alert"], responsible="doctor")]),
        ("Geriatric cat welcome", adm,
         [cond("species", "eq", "feline"), cond("age_years", "ge", 15)],
         [smart("client_message", t["welcome"], channel="sms")]),
        ("Locum's patients", adm, [cond("doctor", "eq", "Dr Nobody")], [task("Handover")]),
        ("IV catheter check", order("hartmann"), [],
         [task("Check IV catheter site", due=_due(4, "hours"))]),
        ("Cat opioid sedation score", order("methadone"), [cond("species", "eq", "feline")],
         [task("Sedation score 30 min after methadone", due=_due(30))]),
        ("Transfusion watch", order("transfusion"), [], [task("Transfusion obs")]),
        ("Chemotherapy handling", order("vincristine"), [], [task("Chemo precautions")]),
        ("Insulin glucose curve", order("insulin"), [], [task("Glucose curve")]),
        ("NSAID in cats", order("meloxicam"), [cond("species", "eq", "feline")],
         [smart("staff_message", t["alert"], responsible="doctor")]),
        ("Oxygen therapy", order("oxygen"), [], [task("Check O2 flow")]),
        ("Rabbit on treatment: weigh", order(None), [cond("species", "eq", "rabbit")],
         [task("Weigh {{ patient.name }} before treatment", "level:2", due=_due(2, "hours"))]),
        ("Feeding tube care", order("tube"), [], [task("Flush feeding tube")]),
        ("Senior procedure", order(None), [cond("order_kind", "eq", "procedure"),
                                           cond("age_years", "ge", 10)],
         [smart("staff_message", t["alert"], responsible="level:5")]),
        ("Fever", value("temp", above="39.5"), [],
         [smart("staff_message", t["fever"], responsible="level:5"), fever_task]),
        ("Hypothermia", value("temp", below="37.5"), [],
         [task("Warm {{ patient.name }}: {{ event.value }}", due=_due(15))]),
        ("Cat hyperthermia", value("temp", above="40"), [cond("species", "eq", "feline")],
         [task("Cool {{ patient.name }}", "doctor", due=_due(10))]),
        ("Glucose high", value("glucose", above="15"), [], [task("Insulin review")]),
        ("Glucose low", value("glucose", below="3"), [], [task("Dextrose bolus")]),
        ("Tachycardia", value("heart", above="180"), [], [task("ECG")]),
        ("Tachypnoea", value("resp", above="40"), [], [task("Chest check")]),
        ("Pain score high", value("pain", above="3"), [], [task("Analgesia review")]),
        ("Lactate high", value("lactate", above="4"), [], [task("Perfusion check")]),
        ("Senior fever", value("temp", above="39.2"), [cond("age_years", "ge", 10)],
         [smart("staff_message", t["fever"], responsible="doctor")]),
        ("Severe pain on the form", form("pain"), [cond("form_field:score", "gt", 5)],
         [task("Review analgesia for {{ patient.name }}", "doctor", due=_due(15))]),
        ("Any form finalised: note", form(None), [], [smart("patient_note", t["note"])]),
        ("Aggressive patient", form("checklist"), [cond("form_field:temperament", "eq",
                                                        "Aggressive")],
         [task("Handling plan for {{ patient.name }}", due=_due(10))]),
        ("Pain free: plan discharge", form("pain"), [cond("form_field:score", "le", 1)],
         [task("Plan discharge", "doctor", due=_due(1, "days"))]),
        ("Rabbit pain form", form("pain"), [cond("species", "eq", "rabbit")],
         [task("Rabbit grimace scale")]),
        ("Dental chart done", form("unused"), [], [task("Dental follow-up")]),
        ("Pain score 9+", form(None), [cond("form_field:score", "ge", 9)],
         [smart("staff_message", t["alert"], responsible="level:5")]),
        ("Discharge call", dis, [],
         [smart("client_message", t["call"], channel="sms", due=_due(2, "days", "discharged")),
          task("Post-discharge call", "level:2", due=_due(2, "days", "discharged", "monday"),
               cancel=False)]),
        ("Discharge survey", dis, [],
         [smart("client_message", t["survey"], channel="email", due=_due(7, "days"))]),
        ("Senior recheck", dis, [cond("age_years", "ge", 10)],
         [task("Book recheck for {{ patient.name }}", "level:2",
               due=_due(1, "weeks", "discharged"), cancel=False)]),
        ("Rabbit home care form", dis, [cond("species", "eq", "rabbit")],
         [smart("send_form", f["checklist"], channel="email")]),
        ("Horse box booking", dis, [cond("species", "eq", "equine")], [task("Horse box")]),
        ("Giant breed discharge", dis, [cond("weight_kg", "gt", 60)],
         [task("Lifting help at discharge", cancel=False)]),
    ]


def flows_build(world: World, count: int) -> int:
    """`count` enabled flows saved through flow_save (the builder's own checks), cycling
    the catalogue with numbered names past 50; committed. How many enabled."""
    manager = world.clinic.user(6)
    first = catalogue(world, None)[0]
    follow_up = flow_save(user=manager, data={"name": first[0], "enabled": True, "definition": {
        "trigger": first[1], "conditions": first[2], "steps": first[3]}})
    db.session.flush()
    entries = catalogue(world, follow_up.uid)[1:]
    for n in range(count - 1):
        name, trigger, conditions, steps = entries[n % len(entries)]
        if n >= len(entries):
            name = f"{name} ({n // len(entries) + 1})"
        flow_save(user=manager, data={"name": name, "enabled": True, "definition": {
            "trigger": trigger, "conditions": conditions, "steps": steps}})
    db.session.commit()
    return db.session.scalar(select(func.count(Flow.id)).where(Flow.enabled))


def flows_switch_off() -> None:
    """Every flow off (the capture baseline: the same flows, none enabled)."""
    for flow in db.session.scalars(select(Flow)):
        flow.enabled = False
    db.session.commit()


# ---- The outage's ops ------------------------------------------------------------------

def _weighted(rng: random.Random, pairs):
    return rng.choices([p for p, _ in pairs], [w for _, w in pairs])[0]


def _patient_args(rng: random.Random, n: int, now: datetime) -> dict:
    species = _weighted(rng, SPECIES)
    breed, low, high = rng.choice(BREEDS[species])
    born = now.date() - timedelta(days=rng.randrange(60, 16 * 365))
    return {"patient": str(uuid.uuid4()), "name": f"Outage {n}", "species": species,
            "breed": breed, "sex": rng.choice(["M", "MN", "F", "FS"]),
            "weight_kg": f"{rng.uniform(low, high):.1f}", "date_of_birth": born.isoformat(),
            "owner_name": f"Owner {n}", "owner_phone": f"07700 9{n:05d}", "ward": "ICU",
            "cage": str(n % 40 + 1), "doctor": "Dr Level 5"}


def counts_for(events: int) -> dict[str, int]:
    """How many events of each kind make `events` in all."""
    out = {kind: max(1, round(events * share)) for kind, share in MIX.items()}
    out["value_recorded"] = events - sum(out.values())
    if out["value_recorded"] < 1:
        raise SystemExit("--events is too small for the mix (at least 20)")
    return out


def outage_ops(world: World, events: int, rng: random.Random, now: datetime) -> list[dict]:
    """The tablet's outbox after the outage, in time order, making exactly `events`
    FlowEvents: admissions, orders (a temperature chart first for each patient), values
    recorded on the temperature tasks, forms started, filled and finalised, discharges."""
    want = counts_for(events)
    vet, manager = world.clinic.user(5).public_id, world.clinic.user(6).public_id
    start = now - OUTAGE
    work: list[tuple[datetime, str, str, dict]] = []
    patients = []
    for n in range(want["patient_admitted"]):
        admitted = start + timedelta(seconds=rng.randrange(4 * 3600))
        args = _patient_args(rng, n, now)
        patients.append((args["patient"], admitted))
        work.append((admitted, "patient.create", vet, args))
    temperature_tasks = []
    for n in range(want["order_created"]):
        patient, admitted = patients[n % len(patients)]
        name, kind = ORDERS[(n // len(patients)) % len(ORDERS)]
        at = admitted + timedelta(minutes=5 + n // len(patients))
        order_start = at.replace(minute=0, second=0) + timedelta(hours=1)
        order = str(uuid.uuid4())
        args = {"order": order, "patient": patient, "name": name, "kind": kind,
                "every_hours": TEMP_EVERY_H if name == "Temperature" else 8,
                "start": iso(order_start)}
        if name == "Temperature":
            args.update(value_type="number", value_units="°C")
            due = order_start
            while due <= now - timedelta(minutes=45):  # done before the discharges
                temperature_tasks.append((order, due))
                due += timedelta(hours=TEMP_EVERY_H)
        work.append((at, "order.create", vet, args))
    if len(temperature_tasks) < want["value_recorded"]:
        raise SystemExit("not enough temperature tasks in the outage for the values asked")
    for order, due in rng.sample(temperature_tasks, want["value_recorded"]):
        task_uid = str(uuid.uuid5(uuid.UUID(order), iso(due)))
        work.append((due + timedelta(minutes=rng.randrange(1, 10)), "task.complete", vet,
                     {"task": task_uid, "order": order, "due_at": iso(due),
                      "value": f"{rng.gauss(38.6, 0.7):.1f}"}))
    for n in range(want["form_finalised"]):
        patient, admitted = patients[n % len(patients)]
        form, key = str(uuid.uuid4()), ("pain", "checklist")[n % 2]
        values = ({"score": str(rng.randrange(11)), "comment": "Guarding the abdomen"}
                  if key == "pain" else
                  {"temperament": rng.choice(["Calm", "Nervous", "Aggressive"])})
        at = admitted + timedelta(minutes=30 + n // len(patients))
        work.append((at, "form.start", vet, {"form": form, "patient": patient,
                                             "template": world.forms[key]}))
        work.append((at + timedelta(minutes=5), "form.fill", vet,
                     {"form": form, "values": values, "fill": str(uuid.uuid4())}))
        work.append((at + timedelta(minutes=10), "form.finalise", vet, {"form": form}))
    for n, (patient, _) in enumerate(patients[-want["patient_discharged"]:]):
        work.append((now - timedelta(minutes=30) + timedelta(seconds=n), "patient.discharge",
                     manager, {"patient": patient, "override_reason": "Home after the outage"}))
    work.sort(key=lambda item: item[0])
    return [{"id": str(uuid.uuid4()), "seq": seq, "name": name, "args": args, "at": iso(at),
             "user": user} for seq, (at, name, user, args) in enumerate(work, start=1)]


class Tablet:
    """The ward tablet of one database, posting to POST /api/sync as SYNC.md has it."""

    def __init__(self, app, world: World):
        self.app, self.client = app, app.test_client()
        self.device, self.token = world.device
        self.outcomes: dict[str, int] = {}
        self.took = 0.0
        self.batches: list[float] = []  # seconds per batch

    def send(self, ops: list[dict], pending: int) -> None:
        """Post one batch (at most MAX_OPS ops); its time and outcomes are added up."""
        body = json.dumps({"device": self.device, "sent_at": iso(clock.utcnow()),
                           "ops": ops, "outbox": {"pending": pending,
                                                  "oldest_at": ops[0]["at"]}})
        with self.app.app_context():
            began = time.perf_counter()
            answer = self.client.post("/api/sync", data=body, content_type="application/json",
                                      headers={"Authorization": f"Bearer {self.token}"})
            self.batches.append(time.perf_counter() - began)
            self.took += self.batches[-1]
        if answer.status_code != 200:
            raise SystemExit(f"sync refused: {answer.status_code} {answer.get_data(True)[:300]}")
        for result in answer.get_json()["results"]:
            key = result["status"]
            if key == "rejected":
                key += ":" + result["error"]["code"]
            self.outcomes[key] = self.outcomes.get(key, 0) + 1


class CaptureTimer:
    """The time spent in flows' capture before each commit (writing the FlowEvents), by
    wrapping the preparer flows registered with core.events (for this bench only)."""

    def __init__(self):
        from kiosk.core import events
        from kiosk.flows import jobs

        self.events, self.original, self.seconds = events, jobs._capture, 0.0
        self.active = False

    def __enter__(self):
        def timed(session, pending):
            began = time.perf_counter()
            try:
                return self.original(session, pending)
            finally:
                if self.active:
                    self.seconds += time.perf_counter() - began

        self.timed = timed
        preparers = self.events._preparers
        preparers[preparers.index(self.original)] = timed
        return self

    def __exit__(self, *exc):
        preparers = self.events._preparers
        preparers[preparers.index(self.timed)] = self.original


# ---- Databases ------------------------------------------------------------------------------

class Databases:
    """Fresh databases for the bench: SQLite files in a temporary folder, or databases
    made on a PostgreSQL server (dropped when the bench ends)."""

    def __init__(self, folder: Path, server: str | None):
        self.folder, self.server, self.made = folder, server, []

    @property
    def name(self) -> str:
        """"sqlite" or "postgresql"."""
        return "postgresql" if self.server else "sqlite"

    def app(self, label: str):
        """An application on a new, empty database called `label` (its schema made)."""
        if self.server:
            from sqlalchemy import create_engine, text

            name = f"kiosk_bench_flows_{label}_{int(time.time())}"
            admin = create_engine(self.server + "postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            self.made.append(name)
            url = self.server + name
        else:
            url = f"sqlite:///{self.folder / f'{label}.db'}"
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url,
                                     "KIOSK_JOBS_FILE": str(self.folder / f"{label}-jobs.db")})
        with app.app_context():
            db.create_all()
        return app

    def drop(self) -> None:
        """Drop the PostgreSQL databases made (nothing to do for SQLite files)."""
        if not self.made:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(self.server + "postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def count(model, *where) -> int:
    """Rows of `model` (matching `where`)."""
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# ---- The phases -------------------------------------------------------------------------------

def capture_phase(dbs: Databases, args, now: datetime) -> tuple[object, dict]:
    """The outage synced into a database with the flows on and one with them off (the
    same ops, batch by batch in turn, which of the two goes first alternating, so a
    machine's slow moment falls on both); the first application (its events waiting)
    and the figures."""
    tablets, ops = {}, None
    figures: dict = {}
    for label in ("on", "off"):
        app = dbs.app(f"capture_{label}")
        with app.app_context():
            world = world_build()
            figures["flows"] = flows_build(world, args.flows)
            if label == "off":
                flows_switch_off()
            # The same outage (the same seed) in both: only the uids differ.
            ops = outage_ops(world, args.events, random.Random(11), now)
            tablets[label] = (Tablet(app, world), ops)
    with CaptureTimer() as timer:
        for n, first in enumerate(range(0, len(ops), MAX_OPS)):
            for label in (("on", "off") if n % 2 == 0 else ("off", "on")):
                tablet, mine = tablets[label]
                timer.active = label == "on"
                tablet.send(mine[first:first + MAX_OPS], len(mine) - first)
    took = {label: tablet.took for label, (tablet, _) in tablets.items()}
    app = tablets["on"][0].app
    with app.app_context():
        events = count(FlowEvent)
    for label, (tablet, _) in tablets.items():
        print(f"  sync of {len(ops)} ops in batches of {MAX_OPS} (flows {label}): "
              f"{tablet.took:.2f} s, {len(ops) / tablet.took:.0f} ops/s, outcomes "
              f"{tablet.outcomes}")
    # Batch against batch, the median: one slow moment of a shared machine moves a total.
    ratio = statistics.median(on / off for on, off in zip(
        tablets["on"][0].batches, tablets["off"][0].batches, strict=True))
    direct = took["on"] / (took["on"] - timer.seconds)
    print(f"  capture: {events} FlowEvents written; with {figures['flows']} flows on the "
          f"sync took x{ratio:.3f} (median of the batches; totals {took['on']:.2f} s "
          f"against {took['off']:.2f} s); the capture before each commit itself took "
          f"{timer.seconds * 1000:.0f} ms, {timer.seconds / took['on']:.1%} of the sync "
          f"(x{direct:.3f})")
    figures.update(events=events, ops=len(ops), sync_outcomes=tablets["on"][0].outcomes,
                   capture_overhead_ratio=round(ratio, 3),
                   capture_overhead_ratio_direct=round(direct, 3),
                   sync_on_s=round(took["on"], 3), sync_off_s=round(took["off"], 3),
                   capture_s=round(timer.seconds, 3))
    return app, figures


def evaluate_phase(app, args) -> dict:
    """flow_events_evaluate() over the outage's waiting events, then flow_steps_run_due()."""
    with app.app_context():
        waiting = count(FlowEvent, FlowEvent.processed_at.is_(None))
        evaluated, evaluate_s, profile = timed(flow_events_evaluate, args.profile)
        runs, steps = count(FlowRun), count(FlowStep)
        errors = count(FlowEvent, FlowEvent.error.is_not(None))
        print(f"  evaluate: {evaluated} of {waiting} events in {evaluate_s:.2f} s = "
              f"{evaluated / evaluate_s:.0f} events/s; {runs} runs, {steps} steps, "
              f"{errors} events with an error")
        if profile:
            print(profile)
        done, steps_s, profile = timed(flow_steps_run_due, args.profile)
        carried = done["done"] + done["failed"]
        made = {"staff_tasks": count(StaffTask), "staff_messages": count(StaffMessage),
                "client_messages": count(ClientMessage)}
        later = count(FlowStep, FlowStep.status == "pending")
        print(f"  steps: {carried} carried out in {steps_s:.2f} s = "
              f"{carried / steps_s:.0f} steps/s ({done['failed']} failed, {later} wait for "
              f"their time); made {made}")
        if profile:
            print(profile)
    return {"evaluated": evaluated, "evaluate_s": round(evaluate_s, 3),
            "events_per_s": round(evaluated / evaluate_s), "runs": runs, "steps": steps,
            "event_errors": errors, "steps_run": carried, "steps_failed": done["failed"],
            "steps_s": round(steps_s, 3),
            "steps_per_s": round(carried / steps_s) if steps_s else 0,
            "steps_later": later, **made}


def timed(fn, profile: bool):
    """fn()'s answer, its seconds, and (with `profile`) its cProfile hot spots as text."""
    profiler = cProfile.Profile() if profile else None
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    answer = fn()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - began
    if not profiler:
        return answer, seconds, ""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(20)
    return answer, seconds, out.getvalue()


class Watcher:
    """A thread of its own that polls the database for the staff task of each admitted
    patient it was told of, noting when it first saw it."""

    POLL_S = 0.005

    def __init__(self, app):
        self.app, self.lock, self.stop = app, threading.Lock(), threading.Event()
        self.waiting: dict[int, float] = {}
        self.seen_ms: list[float] = []
        self.thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)

    def expect(self, patient_id: int, since: float) -> None:
        """Look for this patient's task, timing from `since` (perf_counter)."""
        with self.lock:
            self.waiting[patient_id] = since

    def _run(self):
        with self.app.app_context():
            while not self.stop.is_set():
                with self.lock:
                    ids = list(self.waiting)
                if ids:
                    found = set(db.session.scalars(select(StaffTask.patient_id).where(
                        StaffTask.patient_id.in_(ids))))
                    db.session.rollback()  # a fresh snapshot next time
                    seen = time.perf_counter()
                    with self.lock:
                        for patient_id in found:
                            self.seen_ms.append((seen - self.waiting.pop(patient_id)) * 1000)
                time.sleep(self.POLL_S)
            db.session.remove()

    def left(self) -> int:
        """How many patients still have no task seen."""
        with self.lock:
            return len(self.waiting)


def consumer_begin(app):
    """The consumer `kiosk run` starts (core.jobs.consumer_start: the same class, two worker
    threads, the SQLite queue's polling, the periodic jobs queued at start), kept in hand
    so the bench can stop it before its database goes."""
    from kiosk.core.jobs import (
        IN_PROCESS_WORKERS,
        SHUTDOWN_S,
        _consumer,
        _periodic_now,
        _QuietConsumer,
    )

    consumer = _consumer(app, IN_PROCESS_WORKERS, _QuietConsumer, shutdown_timeout=SHUTDOWN_S)
    consumer.start()
    _periodic_now(app)
    return consumer


def admissions(world: World, watcher: Watcher, args) -> None:
    """Admit --latency-samples senior dogs one commit at a time, a little apart; each one's
    clock starts as its commit begins (the capture before the commit included)."""
    rng = random.Random(5)
    born = (clock.utcnow().date() - timedelta(days=9 * 365)).isoformat()
    for n in range(args.latency_samples):
        patient = patient_create(user=world.clinic.user(6), origin="direct", data={
            "name": f"Latency {n}", "species": "canine", "ward": world.clinic.ward,
            "cage": "1", "date_of_birth": born, "doctor": "Dr Level 5",
            "breed": "Border Collie", "weight_kg": "20"})
        db.session.flush()
        watcher.expect(patient.id, time.perf_counter())
        db.session.commit()
        time.sleep(rng.uniform(0.5, 1.5) * args.latency_gap_ms / 1000)
    deadline = time.monotonic() + 30
    while watcher.left() and time.monotonic() < deadline:
        time.sleep(0.05)


def latency_phase(dbs: Databases, args) -> dict:
    """Admit patients one commit at a time with the consumer running; commit → task seen."""
    app = dbs.app("latency")
    with app.app_context():
        world = world_build()
        flows_build(world, args.flows)
        consumer = consumer_begin(app)
        time.sleep(1.5)  # the sweeps queued at start run first, as after a server's start
        watcher = Watcher(app)
        watcher.thread.start()
        try:
            admissions(world, watcher, args)
        finally:
            watcher.stop.set()
            watcher.thread.join()
            consumer.stop(graceful=True)
        db.session.remove()
    samples = sorted(watcher.seen_ms)
    missing = args.latency_samples - len(samples)
    p50 = statistics.median(samples) if samples else 0.0
    p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else p50
    worst = samples[-1] if samples else 0.0
    print(f"  latency (commit → staff task visible), {len(samples)} admissions "
          f"~{args.latency_gap_ms} ms apart, consumer in process: p50 {p50:.0f} ms, "
          f"p95 {p95:.0f} ms, max {worst:.0f} ms" + (f", {missing} never seen" if missing
                                                     else ""))
    return {"latency_samples": len(samples), "latency_missing": missing,
            "p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "max_ms": round(worst, 1)}


def bench_one(server: str | None, args, folder: Path) -> dict:
    """All four parts on one kind of database; the figures."""
    dbs = Databases(folder, server)
    print(f"{dbs.name}: {args.flows} enabled flows, an outage of {args.events} events "
          "through one device's sync")
    try:
        now = clock.utcnow().replace(microsecond=0)
        app, figures = capture_phase(dbs, args, now)
        figures.update(evaluate_phase(app, args))
        figures.update(latency_phase(dbs, args) if args.latency_samples
                       else {"p50_ms": None, "p95_ms": None})
    finally:
        dbs.drop()
    verdict = "meets" if figures["events_per_s"] >= TARGET_EVENTS_PER_S else "misses"
    print(f"  {figures['events_per_s']} events/s evaluated: {verdict} the target of "
          f"{TARGET_EVENTS_PER_S}")
    return {"database": dbs.name, "path": "POST /api/sync (test client, one device)",
            **figures}


def main() -> None:
    """Run the bench and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--flows", type=int, default=50)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--latency-gap-ms", type=int, default=100,
                        help="mean time between two admissions of the latency part")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (…/ with a trailing slash): the bench runs "
                             "there too, in databases it makes and drops")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the evaluation and print its hot spots")
    args = parser.parse_args()
    if args.flows < 2:
        parser.error("--flows: at least 2")
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-flows-") as tmp:
        (Path(tmp) / "sqlite").mkdir()
        result = {"bench": "flows", **bench_one(None, args, Path(tmp) / "sqlite")}
        if args.database_url:
            server = args.database_url if args.database_url.endswith("/") \
                else args.database_url + "/"
            (Path(tmp) / "pg").mkdir()
            result["postgresql"] = bench_one(server, args, Path(tmp) / "pg")
    result["target_events_per_s"] = TARGET_EVENTS_PER_S
    print(json.dumps(result))


if __name__ == "__main__":
    main()
