"""POST /api/sync under garbage: never a 500, a clear JSON answer, nothing changed by refusals.

Bodies come from hypothesis: random bytes (not UTF-8), random JSON, deeply nested junk,
strings up to 1 MiB, and requests that look right but carry wrong types in every field
(seq as text, floats, negatives, booleans; timestamps that are not timestamps; unknown op
names; args of the wrong shape). After each one the server must answer 2xx/4xx JSON; the
domain tables must change by exactly what the ops answered applied/conflict did; and a
valid op must still apply.
"""

import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kiosk.devices.models import SyncOp
from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.sync.ops import REGISTRY

from .. import factories
from .helpers import domain_counts, iso, now_utc, stable_uid, sync_post, task_uid_for

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])
ANSWERED = {200, 400, 401, 409, 413}


@dataclass(frozen=True)
class Next:
    """A seq placeholder: the device's last_seq + `step` when the request is sent."""

    step: int


@dataclass
class Target:
    """What a valid op can name."""

    device: str
    device_row: int
    token: str
    patient: str
    tasks: list[str]
    user: str
    vet: str = ""  # a level-5 user, whose orders get as far as their arguments' checks


@pytest.fixture
def target(app, clinic):
    """A clinic with one patient, an hourly order and a provisioned tablet."""
    patient = factories.patient_make(clinic, pims_id="P-1")
    start = now_utc().replace(minute=0, second=0) - timedelta(hours=3)
    order = factories.order_make(clinic, patient, every_hours=1, start=start,
                                 end=start + timedelta(hours=6))
    device, token = device_provision(name="Fuzz", colour="red")
    db.session.commit()
    tasks = [task_uid_for(order.uid, start + timedelta(hours=h)) for h in range(7)]
    return Target(device=device.public_id, device_row=device.id, token=token,
                  patient=patient.uid, tasks=tasks, user=clinic.user(3).public_id,
                  vet=clinic.user(5).public_id)


# ---- Strategies -------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


@st.composite
def huge_text(draw):
    """A string of up to 1 MiB (built, not drawn character by character)."""
    size = draw(st.sampled_from([0, 1, 61, 65, 501, 5_001, 100_000, 1_048_576]))
    return draw(st.sampled_from(["x", "é", "\u0000", "🐕", "\ud800"])) * size


@st.composite
def nested(draw):
    """Lists or objects nested hundreds to a hundred thousand deep."""
    depth = draw(st.sampled_from([50, 500, 900, 990, 1_000, 1_100, 5_000, 100_000]))
    if draw(st.booleans()):
        return {"__raw__": "[" * depth + "]" * depth}
    value = None
    for _ in range(min(depth, 990)):
        value = {"a": value} if draw(st.booleans()) else [value]
    return value


junk = st.one_of(json_values, huge_text(), nested())
timestamps = st.one_of(
    st.just("valid"), st.just("valid"),
    st.sampled_from(["", "now", "2026-13-45T99:99:99Z", "2026-11-22T10:15:03",
                     "0001-01-01T00:00:00Z",
                     "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00",
                     "0001-01-01T00:00:00+14:00", "1970-01-01T00:00:00Z",
                     "2000-01-01T00:00:00Z", "2026-11-22T10:15:03ZZ", "+002026-11-22T10:15:03Z",
                     "2026-11-22T10:15:03.123456789Z", "2026-11-22 10:15:03+00:00",
                     # the ends of the calendar, offsets past them, leap seconds, huge years
                     "9999-12-31T23:00:00Z", "9999-12-31T23:59:59+23:59",
                     "0001-01-01T00:00:00-23:59", "0001-01-01", "9999-12-31",
                     "2026-12-31T23:59:60Z", "2016-12-31T23:59:60+00:00",
                     "+10000-01-01T00:00:00Z", "99999-01-01T00:00:00Z",
                     "-0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "2200-01-01T00:00:00Z"]),
    junk)
huge_ints = st.sampled_from([10**30, -10**30, 2**63, 2**63 - 1, -2**63, 2**64, 2**31,
                             2**31 - 1, -1, 0])
seqs = st.one_of(st.builds(Next, st.integers(1, 3)), st.builds(Next, st.just(1)),
                 st.sampled_from([0, -1, 1.0, 1.5, "1", True, False, None, 2**31, 2**63, 2**64,
                                  -2**63, 10**30, [], {}]))
NAMES = sorted(REGISTRY)  # every op, a new one too
ARG_KEYS = ["task", "value", "note", "order", "due_at", "reason", "patient", "text", "name",
            "species", "kind", "every_hours", "times", "start", "end", "prn", "billable",
            "weight_kg", "alerts", "ward", "sex", "colour", "pims_id", "dose", "date_of_birth",
            "version", "at", "sheet", "form", "template", "entry", "values", "data", "price",
            "volume_ml", "rate_ml_h", "asa", "confirmed", "fill"]


@st.composite
def ops(draw, target: Target):
    """An op whose every field may be right, wrong in type, or absurd."""
    name = draw(st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), junk))
    args = {}
    good = {"task": st.sampled_from(target.tasks), "patient": st.just(target.patient),
            "note": st.uuids().map(str), "order": st.uuids().map(str),
            "text": st.just("fuzzed note"), "reason": st.just("asleep"),
            "value": st.just("38.2"), "name": st.just("Fuzz"), "species": st.just("canine"),
            "kind": st.just("task"), "start": st.just(iso(now_utc() - timedelta(hours=1))),
            "version": st.just(1), "at": st.just("valid"), "every_hours": st.just(4)}
    for key in draw(st.lists(st.sampled_from(ARG_KEYS), max_size=6, unique=True)):
        options = [junk, timestamps, huge_ints] + ([good[key], good[key]] if key in good
                                                   else [])
        args[key] = draw(st.one_of(*options))
    op = {"id": draw(st.one_of(st.uuids().map(str), st.uuids().map(str), junk)),
          "seq": draw(seqs),
          "name": name,
          "args": draw(st.one_of(st.just(args), st.just(args), junk)),
          "at": draw(timestamps),
          "user": draw(st.one_of(st.just(target.user), st.just(target.vet),
                                 st.sampled_from(["u_0", "u_1", "u_99999999999999999", "u_-1",
                                                  "u_", "d_1", "u_1e3", "u_١"]), junk))}
    if draw(st.integers(0, 9)) == 0:  # a field missing altogether
        op.pop(draw(st.sampled_from(sorted(op))))
    return op


@st.composite
def bodies(draw, target: Target):
    """A request body: bytes, or a JSON object built from right and wrong parts."""
    kind = draw(st.sampled_from(["bytes", "json", "envelope", "envelope", "envelope"]))
    if kind == "bytes":
        latin = b'{"device": "' + target.device.encode() + b'", "x": "\xff"}'
        return draw(st.one_of(st.binary(max_size=300),
                              st.binary(max_size=50).map(lambda b: b"\xff\xfe\xc3(" + b),
                              st.just(latin)))
    if kind == "json":
        return draw(junk)
    body = {"device": draw(st.one_of(st.just(target.device), st.just(target.device),
                                     st.just(target.device), junk)),
            "sent_at": draw(timestamps),
            "outbox": draw(st.one_of(st.fixed_dictionaries({
                "pending": st.one_of(st.integers(0, 10), st.integers(-2**70, 2**70), junk),
                "oldest_at": timestamps}), junk)),
            "ops": draw(st.one_of(st.lists(ops(target), max_size=5),
                                  st.lists(ops(target), max_size=5), junk))}
    if draw(st.integers(0, 9)) == 0:
        body.pop(draw(st.sampled_from(sorted(body))))
    return body


def materialise(body, last_seq: int) -> bytes:
    """The bytes to send: placeholders resolved, timestamps filled in, raw nesting spliced."""
    if isinstance(body, bytes):
        return body
    now = iso(now_utc())
    raws = []

    def fill(value):
        if isinstance(value, Next):
            return last_seq + value.step
        if value == "valid":
            return now
        if isinstance(value, dict):
            if set(value) == {"__raw__"}:
                raws.append(value["__raw__"])
                return f"__RAW_{len(raws) - 1}__"
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    text = json.dumps(fill(body), ensure_ascii=False)
    for index, raw in enumerate(raws):
        text = text.replace(f'"__RAW_{index}__"', raw)
    return text.encode("utf-8", errors="surrogatepass")


# ---- What the answer must have done -----------------------------------------------------

def expected_change(records: list[SyncOp]) -> dict[str, int]:
    """Rows the ops answered applied/conflict add (each change also writes one audit row)."""
    change = dict.fromkeys(("patients", "orders", "notes", "completions", "audit"), 0)
    for record in records:
        result = record.result or {}
        effective = record.status == "applied" or (
            record.status == "conflict" and record.name == "task.complete" and "task" in result)
        if not effective:
            continue
        change["audit"] += 1
        if record.name == "note.add":
            change["notes"] += 1
        elif record.name == "task.complete":
            change["completions"] += 1
        elif record.name == "patient.create":
            change["patients"] += 1
        elif record.name == "order.create":
            change["orders"] += 1
    return change


def new_records(after_id: int) -> list[SyncOp]:
    """Op records written since `after_id`."""
    db.session.expire_all()
    return list(db.session.scalars(select(SyncOp).where(SyncOp.id > after_id)
                                   .order_by(SyncOp.id)))


def last_record_id() -> int:
    """The newest op record's id (0 when none)."""
    return db.session.scalar(select(db.func.max(SyncOp.id))) or 0


def check_answer(status: int, answer, raw: bytes) -> None:
    """A 2xx/4xx JSON answer in the shape SYNC.md gives."""
    assert status in ANSWERED, (status, answer, raw[:300])
    assert isinstance(answer, dict), (status, raw[:300])
    if status == 200:
        assert isinstance(answer.get("last_seq"), int)
        assert isinstance(answer.get("results"), list)
        for result in answer["results"]:
            assert result["status"] in ("applied", "conflict", "rejected", "duplicate")
            if result["status"] == "rejected":
                assert result["error"]["code"] and result["error"]["message"]
                if result["error"]["code"] == "out_of_range":  # a range names what is out
                    assert result["error"].get("field"), result
    else:
        assert isinstance(answer.get("error"), str) and answer.get("message")
        if status == 409:
            assert answer["error"] == "sequence_gap" and isinstance(answer["last_seq"], int)


def send_checked(client, target: Target, body) -> None:
    """Send one body and check the answer and what changed."""
    db.session.remove()
    last_seq = db.session.get(type_device(), target.device_row).last_seq
    before, mark = domain_counts(), last_record_id()
    raw = materialise(body, last_seq)
    status, answer = sync_post(client, target.token, None, raw=raw)
    check_answer(status, answer, raw)
    records = new_records(mark)
    after = domain_counts()
    change = expected_change(records)
    for table, delta in change.items():
        assert after[table] - before[table] == delta, (table, before, after, records)
    order_tasks = sum((r.result or {}).get("tasks", 0) for r in records
                      if r.name == "order.create" and r.status == "applied")
    assert order_tasks <= after["tasks"] - before["tasks"] <= order_tasks + \
        sum(r.name == "task.complete" for r in records)
    if status == 200:  # the answer names exactly the ops it processed
        fresh = [r for r in records if r.status != "duplicate" or r.original_id is not None]
        assert len(fresh) <= len(answer["results"])


def type_device():
    """The Device model (imported late: the fixture owns the app)."""
    from kiosk.devices.models import Device

    return Device


def valid_note_applies(client, target: Target) -> None:
    """After the garbage, an ordinary op still applies."""
    db.session.remove()
    last_seq = db.session.get(type_device(), target.device_row).last_seq
    uid = stable_uid("after-fuzz", last_seq)
    op = {"id": uid, "seq": last_seq + 1, "name": "note.add", "at": iso(now_utc()),
          "user": target.user, "args": {"note": uid, "patient": target.patient, "text": "fine"}}
    status, answer = sync_post(client, target.token, {
        "device": target.device, "sent_at": iso(now_utc()), "ops": [op]})
    assert status == 200, answer
    assert answer["results"][0]["status"] == "applied", answer


@SETTINGS
@given(data=st.data())
def test_garbage_never_breaks_the_sync_endpoint(client, target, data):
    """Random bodies: a JSON 2xx/4xx answer, nothing changed by what was refused."""
    body = data.draw(bodies(target), label="body")
    send_checked(client, target, body)
    valid_note_applies(client, target)


@pytest.mark.parametrize("raw", [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100k"),
    pytest.param(b'{"device": "d_1", "ops": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
                 id="nested-ops-5k"),
])
def test_deeply_nested_json_is_a_400(client, target, raw):
    """JSON nested deeper than the parser's recursion limit is bad JSON, not a crash."""
    status, answer = sync_post(client, target.token, None, raw=raw)
    assert status == 400, status
    assert answer["error"] == "bad_json"
    valid_note_applies(client, target)


@pytest.mark.parametrize("sent_at, at", [
    ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
    ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"),
    ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),  # a tablet whose clock battery died
    ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z"),
])
def test_a_device_clock_far_off_is_recorded_not_a_crash(client, target, sent_at, at):
    """Any parseable sent_at and at: the op is answered (applied or rejected), never a 500."""
    uid = stable_uid("clock", sent_at, at)
    status, answer = sync_post(client, target.token, {
        "device": target.device, "sent_at": sent_at,
        "ops": [{"id": uid, "seq": 1, "name": "note.add", "at": at, "user": target.user,
                 "args": {"note": uid, "patient": target.patient, "text": "clock"}}]})
    assert status == 200, (status, answer)
    assert answer["results"][0]["status"] in ("applied", "rejected")
    valid_note_applies(client, target)


@pytest.mark.parametrize("pending", [2**31, 2**63, -1, "12"])
def test_an_absurd_outbox_count_is_ignored(client, target, pending):
    """outbox.pending outside what the column holds is ignored, not a 500."""
    status, answer = sync_post(client, target.token, {
        "device": target.device, "sent_at": iso(now_utc()),
        "outbox": {"pending": pending, "oldest_at": iso(now_utc())}, "ops": []})
    assert status == 200, (status, answer)
    valid_note_applies(client, target)


def test_nul_characters_are_answered_not_a_crash(client, target):
    """NUL in an op id or a note (PostgreSQL text refuses it): answered per op, never a 500."""
    ops = [{"id": "\x00" + stable_uid("nul", 1)[1:], "seq": 1, "name": "note.add",
            "at": iso(now_utc()), "user": target.user,
            "args": {"note": stable_uid("nul", 1), "patient": target.patient, "text": "a"}},
           {"id": stable_uid("nul", 2), "seq": 2, "name": "note.add", "at": iso(now_utc()),
            "user": target.user,
            "args": {"note": stable_uid("nul", 2), "patient": target.patient, "text": "a\x00b"}}]
    status, answer = sync_post(client, target.token, {
        "device": target.device, "sent_at": iso(now_utc()), "ops": ops})
    assert status == 200, (status, answer)
    assert {r["status"] for r in answer["results"]} <= {"applied", "rejected"}
    valid_note_applies(client, target)


# ---- Dates at the ends of the calendar and integers past any column ----------------------

def _send_one(client, target: Target, name: str, args: dict, at: str | None = None,
              user: str | None = None):
    """One op on its own: (status, its result, the domain counts before, after)."""
    db.session.remove()
    last_seq = db.session.get(type_device(), target.device_row).last_seq
    uid = stable_uid("extreme", name, json.dumps(args, sort_keys=True, default=str), last_seq)
    before = domain_counts()
    status, answer = sync_post(client, target.token, {
        "device": target.device, "sent_at": iso(now_utc()),
        "ops": [{"id": uid, "seq": last_seq + 1, "name": name, "at": at or iso(now_utc()),
                 "user": user or target.user, "args": args}]})
    assert status == 200, (status, answer)
    return answer["results"][0], before, domain_counts()


def _order_args(target: Target, **fields) -> dict:
    return {"order": str(uuid.uuid4()), "patient": target.patient, "name": "Fluids",
            "kind": "task", **fields}


@pytest.mark.parametrize("fields, field", [
    ({"start": "9999-12-31T23:00:00Z"}, "start"),
    ({"start": "9999-12-31T23:59:59-14:00"}, "start"),
    ({"start": "0001-01-01T00:00:00Z"}, "start"),
    ({"start": "0001-01-01T00:00:00+14:00"}, "start"),
    ({"start": "+10000-01-01T00:00:00Z"}, "start"),
    ({"start": "2026-12-31T23:59:60Z"}, "start"),
    ({"start": "now", "end": "9999-12-31T23:59:59Z"}, "end"),
    ({"start": "now", "end": "0001-01-01T00:00:00Z"}, "end"),
    ({"start": "now", "every_hours": 10**30}, "every_hours"),
    ({"start": "now", "every_hours": 2**63}, "every_hours"),
    ({"start": "now", "every_hours": -1}, "every_hours"),
    ({"start": "now", "price": 10**30}, "price"),
    ({"start": "now", "dose": 10**30}, "dose"),
    ({"start": "now", "billable": {"code": "X", "price": 2**63}}, "price"),
])
def test_an_order_at_the_ends_of_the_calendar_is_rejected_naming_the_field(
        clinic, client, target, fields, field):
    """order.create with absurd dates or numbers: `rejected` naming the field, nothing made."""
    fields = {k: iso(now_utc()) if v == "now" else v for k, v in fields.items()}
    result, before, after = _send_one(client, target, "order.create",
                                      _order_args(target, **fields),
                                      user=clinic.user(5).public_id)
    assert result["status"] == "rejected", result
    assert result["error"]["field"] == field, result
    assert after == before
    valid_note_applies(client, target)


@pytest.mark.parametrize("version", [10**30, 2**63, 2**31, -1, 0])
def test_a_form_version_past_any_column_is_rejected_naming_it(app, clinic, client, target,
                                                               version):
    """form.start with a version no column holds: `rejected` (field version), nothing made."""
    from kiosk.forms.models import PatientForm

    from ..support.forms import consent_template

    template = consent_template(clinic)
    db.session.commit()
    forms_before = db.session.scalar(select(db.func.count()).select_from(PatientForm))
    result, before, after = _send_one(client, target, "form.start", {
        "form": str(uuid.uuid4()), "patient": target.patient, "template": template.uid,
        "version": version})
    assert result["status"] == "rejected", result
    assert result["error"]["field"] == "version", result
    assert after == before
    assert db.session.scalar(select(db.func.count()).select_from(PatientForm)) == forms_before
    valid_note_applies(client, target)


def test_completing_a_task_of_an_order_from_year_one_is_answered(app, clinic, client, target):
    """An order stored before the bounds (start 0001-01-01): its task completes, no 500."""
    from kiosk.treatments.models import Order, Task

    order = db.session.scalars(select(Order)).first()
    old_start = datetime(1, 1, 1, tzinfo=UTC)
    order.start_at = old_start
    task = Task(uid=task_uid_for(order.uid, old_start), order=order, patient=order.patient,
                due_at=old_start, status="open")
    db.session.add(task)
    db.session.commit()
    result, before, after = _send_one(client, target, "task.complete", {"task": task.uid})
    assert result["status"] == "applied", result
    assert after["completions"] == before["completions"] + 1
    valid_note_applies(client, target)


@pytest.mark.parametrize("due_at", ["9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z",
                                    "2026-12-31T23:59:60Z", "+10000-01-01T00:00:00Z"])
def test_a_task_due_at_the_ends_of_the_calendar_is_rejected_naming_due_at(
        app, client, target, due_at):
    """A completion naming a due time far outside its order: `rejected` (due_at), no task."""
    from kiosk.treatments.models import Order

    order = db.session.scalars(select(Order)).first()
    parsed = None
    with contextlib.suppress(ValueError):
        parsed = datetime.fromisoformat(due_at.replace("Z", "+00:00"))
    task = task_uid_for(order.uid, parsed) if parsed else str(uuid.uuid4())
    result, before, after = _send_one(client, target, "task.complete", {
        "task": task, "order": order.uid, "due_at": due_at})
    assert result["status"] == "rejected", result
    assert result["error"]["field"] == "due_at", result
    assert after == before


def test_anaesthesia_times_at_the_ends_of_the_calendar_are_answered(app, clinic, client,
                                                                     target):
    """anaesthesia.record with `at` in year 1 or 9999: answered, never a 500."""
    sheet = str(uuid.uuid4())
    result, _, _ = _send_one(client, target, "anaesthesia.start",
                             {"sheet": sheet, "patient": target.patient})
    assert result["status"] == "applied", result
    for at in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00"):
        result, before, after = _send_one(client, target, "anaesthesia.record", {
            "sheet": sheet, "entry": str(uuid.uuid4()), "kind": "note",
            "data": {"text": "x"}, "at": at})
        assert result["status"] in ("applied", "rejected"), result
        if result["status"] == "rejected":
            assert result["error"]["field"] == "at" and after == before, result
    valid_note_applies(client, target)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "+10000-01-01", "2026-02-30"])
def test_a_sheet_day_at_the_ends_of_the_calendar_is_a_400(app, clinic, client, login, target,
                                                           day):
    """/patients/<uid>/sheet?day= far off: a clear 400, not a 500."""
    login(clinic.user(3))
    response = client.get(f"/patients/{target.patient}/sheet?day={day}")
    assert response.status_code == 400, response.status_code


EXTREMES = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:00:00Z",
            "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-12-31T23:59:60Z",
            "+10000-01-01T00:00:00Z", "0001-01-01", "9999-12-31", 10**30, -10**30, 2**63,
            2**63 - 1, 2**31, -1, 0, 1e308]


@pytest.fixture
def full_target(app, clinic, target):
    """The target, plus a form template and a started anaesthesia sheet to aim ops at."""
    from kiosk.anaesthesia.services import anaesthesia_start
    from kiosk.forms.services import form_start
    from kiosk.patients.models import Patient
    from kiosk.treatments.models import Order
    from kiosk.treatments.services import order_create

    from ..support.forms import consent_template

    patient = db.session.scalars(select(Patient)).one()
    sheet = anaesthesia_start(patient=patient, user=clinic.user(5))
    template = consent_template(clinic)
    form = form_start(patient=patient, template=template, user=clinic.user(5))
    order = db.session.scalars(select(Order)).first()
    prn = order_create(user=clinic.user(5), patient=patient, data={
        "name": "Buprenorphine", "kind": "medication", "prn": True})
    db.session.commit()
    return {"target": target, "template": template.uid, "sheet": sheet.uid, "form": form.uid,
            "order": order.uid, "prn": prn.uid}


def _base_args(name: str, full: dict, now: str) -> dict:
    """Arguments that apply as they are; the test spoils one of them."""
    target = full["target"]
    new = str(uuid.uuid4())
    return {
        "order.create": {"order": new, "patient": target.patient, "name": "Fluids",
                         "kind": "task", "start": now, "every_hours": 4, "dose": "1"},
        "task.complete": {"task": target.tasks[-1], "order": full["order"], "due_at": now,
                          "value": "1"},
        "task.skip": {"task": target.tasks[-2], "reason": "asleep"},
        "note.add": {"note": new, "patient": target.patient, "text": "fine"},
        "patient.create": {"patient": new, "name": "Rex", "species": "canine",
                           "date_of_birth": "2020-01-01", "weight_kg": "12"},
        "order.stop": {"order": full["order"], "reason": "done"},
        "order.give": {"order": full["prn"], "task": str(uuid.uuid5(uuid.UUID(full["prn"]), now)),
                       "due_at": now, "note": "sore"},
        "form.start": {"form": new, "patient": target.patient, "template": full["template"],
                       "version": 1},
        "anaesthesia.record": {"sheet": full["sheet"], "entry": new, "kind": "note",
                               "data": {"text": "x"}, "at": now},
        "anaesthesia.start": {"sheet": new, "patient": target.patient, "asa": "II",
                              "procedure": "Spay"},
        "form.fill": {"form": full["form"], "values": {"weight": "12",
                                                       "procedure_date": "2026-11-22"}},
        "form.finalise": {"form": full["form"]},
        "anaesthesia.finalise": {"sheet": full["sheet"]},
        "patient.discharge": {"patient": target.patient, "override_reason": "fine"},
        "shift.end": {"mark": new, "note": "handover"},
    }[name]


@SETTINGS
@given(data=st.data())
def test_every_ops_dates_and_integers_at_the_extremes_are_answered(client, full_target,
                                                                    data):
    """Each op with one argument set to a date at the ends of the calendar or an integer
    past any column: never a 500; a refusal names the field and changes nothing."""
    target = full_target["target"]
    name = data.draw(st.sampled_from(NAMES), label="op")
    args = _base_args(name, full_target, iso(now_utc()))
    key = data.draw(st.sampled_from(sorted({*args, "start", "end", "due_at", "at", "version",
                                            "every_hours", "dose", "price", "volume_ml",
                                            "date_of_birth", "weight_kg"})), label="field")
    value = data.draw(st.sampled_from(EXTREMES), label="value")
    if name == "form.fill" and data.draw(st.booleans(), label="inside values"):
        key = data.draw(st.sampled_from(["weight", "procedure_date"]), label="value key")
        args["values"] = {key: value}  # a form's own number and date fields
    else:
        args[key] = value
    result, before, after = _send_one(client, target, name, args, user=target.vet)
    if result["status"] == "rejected":
        assert after == before, (result, before, after)
        if result["error"]["code"] in ("out_of_range", "bad_args", "bad_time", "bad_date",
                                       "not_a_number"):
            assert result["error"].get("field") == key or key not in args, result
    valid_note_applies(client, target)


@pytest.mark.parametrize("fields, field", [
    ({"ward": 10**30}, "ward"),
    ({"ward": 2**63}, "ward"),
    ({"ward": "9" * 5000}, "ward"),
    ({"ward": -1}, "ward"),
    ({"date_of_birth": "0001-01-01"}, "date_of_birth"),
    ({"date_of_birth": "9999-12-31"}, "date_of_birth"),
    ({"date_of_birth": "+10000-01-01"}, "date_of_birth"),
    ({"weight_kg": 10**30}, "weight_kg"),
])
def test_a_patient_with_absurd_numbers_or_dates_is_rejected_naming_the_field(
        clinic, client, target, fields, field):
    """patient.create with a ward id past any column or a birth in year 1: `rejected`."""
    result, before, after = _send_one(client, target, "patient.create", {
        "patient": str(uuid.uuid4()), "name": "Rex", "species": "canine", **fields},
        user=target.vet)
    assert result["status"] == "rejected", result
    assert result["error"]["field"] == field, result
    assert after == before
    valid_note_applies(client, target)
