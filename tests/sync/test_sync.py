"""The sync endpoint against SYNC.md, example by example."""

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kiosk.core import clock
from kiosk.core.clock import format_iso_z
from kiosk.devices.services import device_provision, device_revoke
from kiosk.extensions import db
from kiosk.patients.models import Patient
from kiosk.sync.models import DeviceEvent, SyncOp
from kiosk.treatments.models import Note, Order, Task, TaskCompletion
from kiosk.treatments.schedule import task_uid
from tests import factories


def now_z(delta: timedelta = timedelta()) -> str:
    return format_iso_z(clock.utcnow() + delta)


class Tablet:
    """A device as the protocol sees it: a token, a counter, a way to post."""

    def __init__(self, client, name="Blue"):
        self.client = client
        self.device, self.token = device_provision(name=name, colour="blue")
        db.session.commit()
        self.id = self.device.public_id
        self.seq = 0

    def op(self, name, args, user, *, at=None, op_id=None, seq=None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        return {"id": op_id or str(uuid.uuid4()), "seq": seq, "name": name, "args": args,
                "at": at or now_z(), "user": user.public_id}

    def post(self, ops, *, token=None, device=None, sent_at=None, outbox=None, raw=None):
        body = raw if raw is not None else json.dumps({
            "device": device or self.id, "sent_at": sent_at or now_z(),
            "outbox": outbox or {"pending": len(ops), "oldest_at": None}, "ops": ops})
        return self.client.post("/api/sync", data=body, content_type="application/json",
                                headers={"Authorization": f"Bearer {token or self.token}"})


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def tasks_of(order) -> list[Task]:
    return db.session.scalars(select(Task).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).all()


@pytest.fixture
def ward(clinic, client):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    return patient, order, Tablet(client)


def test_a_completion_applies_once_and_a_resend_is_a_duplicate(clinic, ward):
    patient, order, tablet = ward
    task = tasks_of(order)[0]
    op = tablet.op("task.complete", {"task": task.uid, "value": "1", "note": "ok"},
                   clinic.user(2))
    first = tablet.post([op])
    assert first.status_code == 200
    body = first.get_json()
    assert body["last_seq"] == 1 and body["server_time"].endswith("Z")
    assert body["results"] == [{"id": op["id"], "seq": 1, "status": "applied",
                                "result": {"task": task.uid}}]
    again = tablet.post([op]).get_json()
    assert again["results"][0]["status"] == "duplicate"
    assert again["results"][0]["original_status"] == "applied"
    assert again["results"][0]["result"] == {"task": task.uid}
    assert count(TaskCompletion) == 1
    db.session.expire_all()
    done = tasks_of(order)[0]
    assert done.status == "done" and done.done_device_id == tablet.device.id
    assert done.done_by_id == clinic.user(2).id and done.note == "ok"
    record = db.session.scalar(select(SyncOp))
    assert (record.op_id, record.seq, record.status, record.device_at) == (
        op["id"], 1, "applied", op["at"])


def test_the_same_action_through_the_sheet_and_through_sync_ends_the_same(clinic, client,
                                                                          login):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, kind="observation", name="Temp",
                                 dose=None, units=None, route=None)
    by_view, by_sync = tasks_of(order)[:2]
    login(clinic.user(2))
    client.post(f"/tasks/{by_view.uid}/complete", data={"value": "38.5", "note": "n"})
    tablet = Tablet(client)
    tablet.post([tablet.op("task.complete", {"task": by_sync.uid, "value": "38.5",
                                             "note": "n"}, clinic.user(2))])
    db.session.expire_all()
    a, b = tasks_of(order)[:2]
    assert (a.status, a.value, a.note, a.done_by_id) == (b.status, b.value, b.note, b.done_by_id)


@pytest.mark.parametrize("case", ["missing", "wrong", "revoked", "other_device"])
def test_bad_tokens_get_401_and_nothing_is_applied(clinic, ward, case):
    patient, order, tablet = ward
    op = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                "text": "x"}, clinic.user(1))
    if case == "missing":
        response = tablet.client.post("/api/sync", json={"device": tablet.id, "ops": [op]})
    elif case == "wrong":
        response = tablet.post([op], token="not-the-token-" * 3)
    elif case == "revoked":
        device_revoke(actor=clinic.user(6), device=tablet.device)
        db.session.commit()
        response = tablet.post([op])
    else:
        other = Tablet(tablet.client, name="Red")
        response = tablet.post([op], token=other.token)
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    assert count(Note) == 0 and count(SyncOp) == 0


def test_a_gap_is_409_with_last_seq_and_recorded(clinic, ward):
    patient, order, tablet = ward
    first = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                   "text": "one"}, clinic.user(1))
    later = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                   "text": "three"}, clinic.user(1), seq=3)
    response = tablet.post([first, later])
    assert response.status_code == 409
    assert response.get_json()["error"] == "sequence_gap"
    assert response.get_json()["last_seq"] == 1
    assert count(Note) == 1  # the op before the gap stays processed
    assert db.session.scalar(select(DeviceEvent.kind)) == "gap"
    later["seq"] = 2  # the device renumbers from last_seq + 1, same id
    assert tablet.post([later]).get_json()["results"][0]["status"] == "applied"
    assert count(Note) == 2


def test_an_id_reused_for_other_content_is_rejected_and_does_not_block(clinic, ward):
    patient, order, tablet = ward
    op = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                "text": "a"}, clinic.user(1))
    tablet.post([op])
    reuse = dict(op, seq=2, args={**op["args"], "text": "b"})
    follow = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                    "text": "c"}, clinic.user(1), seq=3)
    body = tablet.post([reuse, follow]).get_json()
    assert body["results"][0]["status"] == "rejected"
    assert body["results"][0]["error"]["code"] == "id_reused"
    assert body["results"][1]["status"] == "applied" and body["last_seq"] == 3
    assert sorted(n.text for n in db.session.scalars(select(Note))) == ["a", "c"]
    again = tablet.post([op]).get_json()["results"][0]  # the first op's id still answers
    assert again["status"] == "duplicate" and again["original_status"] == "applied"


@pytest.mark.parametrize("name, args, code", [
    ("task.explode", {}, "unknown_op"),
    ("note.add", {"note": "not-a-uuid", "patient": None, "text": "x"}, "bad_args"),
    ("note.add", {"note": str(uuid.uuid4()), "patient": str(uuid.uuid4()), "text": "x"},
     "not_found"),
    ("task.complete", {"task": str(uuid.uuid4())}, "not_found"),
    ("task.complete", "not an object", "bad_args"),
    ("order.create", {"order": str(uuid.uuid4()), "patient": "PATIENT", "name": "X",
                      "kind": "task", "start": "yesterday"}, "bad_args"),
    ("note.add", {"note": str(uuid.uuid4()), "patient": "PATIENT", "text": "x" * 6000},
     "too_long"),
])
def test_bad_ops_are_rejected_with_a_code_and_never_block(clinic, ward, name, args, code):
    patient, order, tablet = ward
    if isinstance(args, dict):
        args = {k: (patient.uid if v == "PATIENT" else v) for k, v in args.items()}
    bad = tablet.op(name, args, clinic.user(5))
    good = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                  "text": "fine"}, clinic.user(1))
    before = (count(Order), count(Task), count(Patient))
    body = tablet.post([bad, good]).get_json()
    assert body["results"][0]["status"] == "rejected"
    assert body["results"][0]["error"]["code"] == code and body["results"][0]["error"]["message"]
    assert body["results"][1]["status"] == "applied" and body["last_seq"] == 2
    assert (count(Order), count(Task), count(Patient)) == before
    assert [n.text for n in db.session.scalars(select(Note))] == ["fine"]


def test_envelope_errors_are_rejected(clinic, ward):
    patient, order, tablet = ward
    ops = [tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                  "text": "x"}, clinic.user(1)) for _ in range(3)]
    ops[0]["at"] = "half past ten"
    ops[1]["user"] = "u_999"
    ops[2]["user"] = clinic.user(1).public_id
    ops[2]["id"] = 12
    body = tablet.post(ops).get_json()
    assert [r["error"]["code"] for r in body["results"]] == ["bad_time", "unknown_user",
                                                              "bad_op"]
    assert body["last_seq"] == 3 and count(Note) == 0


def test_levels_are_enforced_on_ops(clinic, ward):
    patient, order, tablet = ward
    op = tablet.op("order.stop", {"order": order.uid}, clinic.user(3))
    result = tablet.post([op]).get_json()["results"][0]
    assert result["status"] == "rejected" and result["error"]["code"] == "forbidden"
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "active"


@pytest.mark.parametrize("raw, status, error", [
    ("{not json", 400, "bad_json"),
    ("[]", 400, "bad_request"),
    (json.dumps({"device": "DEVICE", "sent_at": "soon", "ops": []}), 400, "bad_request"),
    (json.dumps({"device": "DEVICE", "sent_at": "2026-11-22T10:00:00Z", "ops": {}}), 400,
     "bad_request"),
    (json.dumps({"device": "DEVICE", "sent_at": "2026-11-22T10:00:00Z",
                 "ops": [{"seq": "1"}]}), 400, "bad_request"),
    (json.dumps({"device": "DEVICE", "sent_at": "2026-11-22T10:00:00Z",
                 "ops": [{"seq": 2}, {"seq": 1}]}), 400, "bad_request"),
])
def test_whole_request_errors_apply_nothing(clinic, ward, raw, status, error):
    patient, order, tablet = ward
    response = tablet.post([], raw=raw.replace("DEVICE", tablet.id))
    assert response.status_code == status and response.get_json()["error"] == error
    assert response.get_json()["message"]
    assert count(SyncOp) == 0
    db.session.expire_all()
    assert db.session.get(type(tablet.device), tablet.device.id).last_seq == 0


def test_too_many_or_too_large_is_413(clinic, ward):
    patient, order, tablet = ward
    ops = [tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                  "text": "x"}, clinic.user(1)) for _ in range(501)]
    response = tablet.post(ops)
    assert response.status_code == 413 and response.get_json()["error"] == "too_large"
    huge = tablet.post([], raw=json.dumps({"device": tablet.id, "sent_at": now_z(),
                                           "ops": [], "pad": "x" * (2 * 1024 * 1024)}))
    assert huge.status_code == 413 and huge.is_json
    assert count(Note) == 0


def test_clinical_facts_are_never_refused(clinic, client):
    clinic.settings.allow_direct_patient_creation = False
    db.session.commit()
    patient = factories.patient_make(clinic, pims_id="P1")
    order = factories.order_make(clinic, patient)
    task = tasks_of(order)[0]
    a, b = Tablet(client, "A"), Tablet(client, "B")
    a.post([a.op("task.complete", {"task": task.uid}, clinic.user(2))])
    second = b.post([b.op("task.complete", {"task": task.uid}, clinic.user(3))])
    result = second.get_json()["results"][0]
    assert result["status"] == "conflict" and result["result"]["conflict"] == "already_done"
    assert count(TaskCompletion) == 2
    db.session.expire_all()
    assert tasks_of(order)[0].done_by_id == clinic.user(2).id
    new_uid = str(uuid.uuid4())
    created = a.post([a.op("patient.create", {"patient": new_uid, "name": "Stray",
                                              "species": "feline"}, clinic.user(1))])
    assert created.get_json()["results"][0] == {
        "id": created.get_json()["results"][0]["id"], "seq": 2, "status": "applied",
        "result": {"patient": new_uid, "unallocated": True}}


def test_a_task_computed_offline_beyond_the_horizon_is_created_and_done(clinic, ward):
    patient, order, tablet = ward
    later = order.start_at + timedelta(hours=4 * 20)  # beyond the two days generated
    uid = task_uid(order.uid, later)
    op = tablet.op("task.complete", {"task": uid, "order": order.uid,
                                     "due_at": format_iso_z(later)}, clinic.user(2),
                   at=format_iso_z(clock.utcnow()))
    result = tablet.post([op]).get_json()["results"][0]
    assert result["status"] == "applied"
    wrong = tablet.op("task.complete", {"task": str(uuid.uuid4()), "order": order.uid,
                                        "due_at": format_iso_z(later)}, clinic.user(2))
    assert tablet.post([wrong]).get_json()["results"][0]["error"]["code"] == "bad_args"


def test_a_patient_created_offline_gets_orders_and_tasks(clinic, ward):
    patient, order, tablet = ward
    new, new_order = str(uuid.uuid4()), str(uuid.uuid4())
    start = clock.utcnow().replace(minute=0, second=0, microsecond=0)
    ops = [
        tablet.op("patient.create", {"patient": new, "name": "Ziggy", "species": "ferret",
                                     "ward": "ICU"}, clinic.user(4)),
        tablet.op("order.create", {"order": new_order, "patient": new, "name": "Walk",
                                   "kind": "task", "every_hours": 6,
                                   "start": format_iso_z(start)}, clinic.user(4)),
        tablet.op("task.complete", {"task": task_uid(new_order, start), "order": new_order,
                                    "due_at": format_iso_z(start)}, clinic.user(2)),
    ]
    body = tablet.post(ops).get_json()
    assert [r["status"] for r in body["results"]] == ["applied", "applied", "applied"]
    tasks = tablet.client.get(f"/api/patients/{new}/tasks",
                              headers={"Authorization": f"Bearer {tablet.token}"}).get_json()
    assert tasks[0]["uid"] == task_uid(new_order, start) and tasks[0]["status"] == "done"
    assert tasks[0]["device"] == tablet.id and tasks[0]["done_by"] == clinic.user(2).public_id


def test_skew_is_recorded_and_corrects_the_time(clinic, ward):
    patient, order, tablet = ward
    skewed = timedelta(minutes=-10)  # the tablet's clock is 10 minutes slow
    at = clock.utcnow() + skewed
    op = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                "text": "x"}, clinic.user(1), at=format_iso_z(at))
    tablet.post([op], sent_at=now_z(skewed))
    db.session.expire_all()
    device = db.session.get(type(tablet.device), tablet.device.id)
    assert 9 * 60_000 < device.skew_ms < 11 * 60_000
    assert db.session.scalar(select(DeviceEvent.kind)) == "skew"
    record = db.session.scalar(select(SyncOp))
    assert record.device_at == op["at"]
    assert abs((record.corrected_at - clock.utcnow()).total_seconds()) < 60


def test_a_heartbeat_updates_the_device(clinic, ward):
    patient, order, tablet = ward
    response = tablet.post([], outbox={"pending": 42, "oldest_at": "2026-11-22T08:01:00Z"})
    assert response.get_json() == {"last_seq": 0, "server_time": response.get_json()[
        "server_time"], "results": []}
    info = tablet.client.get(f"/api/devices/{tablet.id}",
                             headers={"Authorization": f"Bearer {tablet.token}"}).get_json()
    assert info["pending"] == 42 and info["last_seq"] == 0 and info["last_seen"]
    other = Tablet(tablet.client, "Red")
    assert tablet.client.get(f"/api/devices/{other.id}", headers={
        "Authorization": f"Bearer {tablet.token}"}).status_code == 403


def test_reads_need_a_caller_and_list_admitted_patients(clinic, ward, login):
    patient, order, tablet = ward
    assert tablet.client.get("/api/patients").status_code == 401
    auth = {"Authorization": f"Bearer {tablet.token}"}
    listed = tablet.client.get("/api/patients", headers=auth).get_json()
    assert [p["uid"] for p in listed] == [patient.uid]
    assert set(listed[0]) >= {"uid", "name", "species", "ward", "status"}
    tasks = tablet.client.get(f"/api/patients/{patient.uid}/tasks", headers=auth).get_json()
    assert set(tasks[0]) >= {"uid", "order", "name", "due_at", "status", "done_at", "done_by",
                             "device"}
    assert tablet.client.get("/api/patients/nope/tasks", headers=auth).status_code == 404
    login(clinic.user(1))
    assert tablet.client.get("/api/patients").status_code == 200


def test_a_database_failure_answers_503_and_keeps_what_was_done(clinic, ward, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from kiosk.sync import ops as registry

    patient, order, tablet = ward
    first = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                   "text": "kept"}, clinic.user(1))
    second = tablet.op("task.complete", {"task": tasks_of(order)[0].uid}, clinic.user(1))
    spec = registry.REGISTRY["task.complete"]

    def busy(args, ctx):
        raise OperationalError("UPDATE tasks", {}, Exception("database is locked"))

    monkeypatch.setitem(registry.REGISTRY, "task.complete",
                        registry.OpSpec(spec.name, busy, spec.patient_of))
    response = tablet.post([first, second])
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert count(Note) == 1
    monkeypatch.setitem(registry.REGISTRY, "task.complete", spec)
    body = tablet.post([first, second]).get_json()
    assert [r["status"] for r in body["results"]] == ["duplicate", "applied"]


@pytest.mark.parametrize("spelling", ["escape", "bytes"])
def test_text_that_is_not_unicode_is_refused_whole(clinic, ward, spelling):
    patient, _order, tablet = ward
    op = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                "text": "HALF"}, clinic.user(2))
    body = json.dumps({"device": tablet.id, "sent_at": now_z(), "ops": [op]})
    raw = body.replace("HALF", "\\ud800") if spelling == "escape" else \
        body.encode().replace(b"HALF", "\ud800".encode("utf-8", "surrogatepass"))
    response = tablet.post([], raw=raw)
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_json"
    assert count(Note) == 0 and count(SyncOp) == 0


def test_control_characters_in_text_are_rejected_and_the_device_moves_on(clinic, ward):
    patient, _order, tablet = ward
    bad = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                 "text": "beep\x07"}, clinic.user(2))
    good = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                  "text": "Two lines\nand a tab\tare fine"}, clinic.user(2))
    body = tablet.post([bad, good]).get_json()
    assert body["results"][0]["status"] == "rejected"
    assert body["results"][0]["error"]["code"] == "bad_text"
    assert body["results"][1]["status"] == "applied" and body["last_seq"] == 2
    assert [n.text for n in db.session.scalars(select(Note))] == [
        "Two lines\nand a tab\tare fine"]


def test_a_replayed_request_from_before_a_renumbering_takes_no_seq(clinic, ward):
    """The op went in as seq 1 after a 409; the old request (seq 2) arriving late must not
    take seq 2, which the tablet gives to its next op."""
    patient, _order, tablet = ward
    first = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                   "text": "a"}, clinic.user(2), seq=2)
    assert tablet.post([first]).status_code == 409
    assert tablet.post([dict(first, seq=1)]).get_json()["last_seq"] == 1
    late = tablet.post([first])
    assert late.status_code == 409 and late.get_json()["last_seq"] == 1
    following = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                       "text": "b"}, clinic.user(2), seq=2)
    assert tablet.post([following]).get_json()["results"][0]["status"] == "applied"
    assert sorted(n.text for n in db.session.scalars(select(Note))) == ["a", "b"]


@pytest.mark.parametrize("kind", ["note", "patient", "order"])
def test_a_uid_already_taken_is_rejected_and_the_device_moves_on(clinic, ward, kind):
    """A new row's uid that another row already has is a refusal of that op alone: never a
    503 the tablet would retry for ever."""
    patient, order, tablet = ward
    taken = {"note": str(uuid.uuid4()), "patient": patient.uid, "order": order.uid}[kind]
    first = tablet.op("note.add", {"note": taken if kind == "note" else str(uuid.uuid4()),
                                   "patient": patient.uid, "text": "first"}, clinic.user(1))
    args = {"note": {"note": taken, "patient": patient.uid, "text": "again"},
            "patient": {"patient": taken, "name": "Bella", "species": "canine"},
            "order": {"order": taken, "patient": patient.uid, "name": "Check", "kind": "task",
                      "every_hours": 4, "start": now_z()}}[kind]
    name = {"note": "note.add", "patient": "patient.create", "order": "order.create"}[kind]
    clash = tablet.op(name, args, clinic.user(4))
    after = tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient.uid,
                                   "text": "after"}, clinic.user(1))
    before = (count(Note), count(Patient), count(Order), count(Task))
    response = tablet.post([first, clash, after])
    assert response.status_code == 200
    body = response.get_json()
    assert [r["status"] for r in body["results"]] == ["applied", "rejected", "applied"]
    assert body["results"][1]["error"]["code"] == "uid_taken"
    assert body["results"][1]["error"]["message"] == f"A {kind} with this uid already exists."
    assert body["last_seq"] == 3
    assert (count(Note), count(Patient), count(Order), count(Task)) == \
        (before[0] + 2, before[1], before[2], before[3])


def test_a_task_of_an_order_that_was_a_conflict_is_a_conflict_too(clinic, ward):
    from kiosk.patients.services import patient_discharge

    patient, _order, tablet = ward
    patient_discharge(patient=patient, user=clinic.user(6), override_reason="Went home")
    db.session.commit()
    new_order = str(uuid.uuid4())
    start = clock.utcnow().replace(minute=0, second=0, microsecond=0)
    body = tablet.post([
        tablet.op("order.create", {"order": new_order, "patient": patient.uid, "name": "Walk",
                                   "kind": "task", "every_hours": 6,
                                   "start": format_iso_z(start)}, clinic.user(4)),
        tablet.op("task.complete", {"task": task_uid(new_order, start), "order": new_order,
                                    "due_at": format_iso_z(start)}, clinic.user(2))]).get_json()
    assert [(r["status"], r["result"]["conflict"]) for r in body["results"]] == [
        ("conflict", "not_admitted"), ("conflict", "after_conflict")]
    assert count(Task) == len(tasks_of(_order))  # no task made for the refused order
