"""Ops recorded from earlier releases' pages are applied as today's page does the same.

tests/sync/recorded holds, per release, the ops its pages queued on an offline tablet and
the database they were made in (README.md there). Each is upgraded to today's schema twice:
in one copy a tablet sends the recorded ops to /api/sync; in the other the same person does
the same actions through today's pages, at the same instants. Every table is compared as in
test_page_and_sync (uids named by where they first appear; device-only rows left out).

The translation registry (kiosk/sync/compat.py) is tested here too: an old shape is applied
and stored as today's, its resend is a duplicate, and an op that is neither is rejected.
"""

import gzip
import json
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from kiosk import create_app
from kiosk.anaesthesia.models import AnaesthesiaSheet
from kiosk.clinic.selectors import settings_get
from kiosk.core import clock
from kiosk.core.auth import SESSION_KEY
from kiosk.core.clock import zone
from kiosk.devices.models import SyncOp
from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.forms.models import PatientForm
from kiosk.forms.selectors import form_values
from kiosk.patients.models import Patient
from kiosk.staff.models import User
from kiosk.staff.sessions import staff_session_start
from kiosk.sync import compat
from kiosk.sync.compat import Translation, op_current
from kiosk.sync.ops import REGISTRY
from kiosk.treatments.models import Order, Task

from .conftest import SyncTablet
from .test_page_and_sync import an_observation, canonical, rows

RECORDED = Path(__file__).parent / "recorded"
PROVISIONED = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # before any recorded op
RELEASES = sorted(path.stem for path in RECORDED.glob("*.json"))


def recording(release: str) -> dict:
    return json.loads((RECORDED / f"{release}.json").read_text())


def test_recordings_cover_every_op_of_their_release_and_are_old_enough():
    """The last release before this one and one from before the IndexedDB outbox."""
    assert {"ec40758", "f5b056c"} <= set(RELEASES)
    for release in RELEASES:
        names = {op["name"] for op in recording(release)["ops"]}
        assert names <= set(REGISTRY), release
        assert {"task.complete", "task.skip", "note.add", "order.stop", "patient.create",
                "order.create", "form.fill", "anaesthesia.record",
                "patient.discharge"} <= names, release


# ---- The release's database, upgraded to today's schema ----------------------------------

def upgraded_app(release: str, directory: Path):
    """An application on a copy of the release's recorded database, upgraded to today."""
    path = directory / f"{release}.db"
    conn = sqlite3.connect(path)
    conn.executescript(gzip.decompress((RECORDED / f"{release}.sql.gz").read_bytes()).decode())
    conn.close()
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
                                 "KIOSK_JOBS_FILE": str(directory / f"{release}-jobs.db")})
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    return app


def at_of(op: dict) -> datetime:
    return datetime.fromisoformat(op["at"].replace("Z", "+00:00"))


def tablet_provision() -> tuple:
    """The old tablet, in both copies alike (its provisioning is audited)."""
    clock.set_source(lambda: PROVISIONED)
    device, token = device_provision(name="Old tablet", colour="blue")
    db.session.commit()
    clock.set_source(None)
    return device.public_id, token, device.label


def by_sync(app, ops: list[dict]) -> str:
    """Send the recorded ops as a tablet of this database, each at its own instant."""
    client = app.test_client()
    with app.app_context():
        device_id, token, label = tablet_provision()
        for seq, op in enumerate(ops, start=1):
            clock.set_source(lambda op=op: at_of(op))
            # As the tablet sends it: the args' keys in their order (not sorted).
            body = json.dumps({"device": device_id, "sent_at": op["at"],
                               "ops": [{**op, "seq": seq}]})
            response = client.post("/api/sync", data=body, content_type="application/json",
                                   headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.get_data(as_text=True)
            (result,) = response.get_json()["results"]
            assert result["status"] == "applied", (op["name"], result)
            db.session.remove()
        clock.set_source(None)
        return canonical(rows()).replace(f" on {label}<", "<")


def by_page(app, ops: list[dict]) -> str:
    """The same actions through today's pages, by the same person at the same instants."""
    client = app.test_client()
    made: dict[str, str] = {}  # a uid the tablet made → the one the page made
    with app.app_context():
        tablet_provision()
        for op in ops:
            clock.set_source(lambda op=op: at_of(op))
            _sign_in(client, op["user"])
            url, data = PAGES[op["name"]]({k: _mapped(v, made) for k, v in op["args"].items()})
            response = client.post(url, data=data)
            assert response.status_code in (200, 302), (op["name"], response.get_data(
                as_text=True)[:800])
            _learn(op, made)
            db.session.remove()
        clock.set_source(None)
        return canonical(rows())


def _sign_in(client, user_ref: str) -> None:
    user = db.session.get(User, int(user_ref[2:]))
    key = staff_session_start(user=user, auth="password")
    db.session.commit()
    with client.session_transaction() as session:
        session["user_id"], session[SESSION_KEY], session["auth"] = user.id, key, "password"


def _mapped(value, made: dict):
    return made.get(value, value) if isinstance(value, str) else value


def _learn(op: dict, made: dict) -> None:
    """The uid the page gave what the op made (later ops name the tablet's)."""
    newest = {"patient.create": (Patient, "patient"), "order.create": (Order, "order"),
              "form.start": (PatientForm, "form"),
              "anaesthesia.start": (AnaesthesiaSheet, "sheet")}
    if op["name"] in newest:
        model, key = newest[op["name"]]
        made[op["args"][key]] = db.session.scalar(select(model.uid).order_by(model.id.desc()))


def _local(value: str) -> str:
    """An op's UTC time as the page's datetime-local field (the clinic's zone)."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when.astimezone(zone(settings_get().timezone)).strftime("%Y-%m-%dT%H:%M:%S")


def _task_page(a: dict):
    if db.session.scalar(select(Task.id).where(Task.uid == a["task"])) is None:
        return f"/orders/{a['order']}/give", _some(a, "value", "note")  # a PRN dose
    return f"/tasks/{a['task']}/complete", _some(a, "value", "note")


def _some(a: dict, *keys) -> dict:
    return {k: a[k] for k in keys if a.get(k) is not None}


def _order_page(a: dict):
    data = _some(a, "name", "kind", "dose", "units", "route", "every_hours", "instructions")
    data["start"] = _local(a["start"])
    return f"/patients/{a['patient']}/orders/new", data


def _form_values(a: dict) -> dict:
    return {k: ("y" if v is True else v) for k, v in a["values"].items() if v is not False}


def _form_finalise(a: dict):
    form = db.session.scalar(select(PatientForm).where(PatientForm.uid == a["form"]))
    standing = {key: entry.value for key, entry in form_values(form).items()}
    return f"/forms/{a['form']}/fill", {**_form_values({"values": standing}),
                                       "action": "finalise"}


PAGES = {
    "task.complete": _task_page,
    "task.skip": lambda a: (f"/tasks/{a['task']}/skip", _some(a, "reason")),
    "note.add": lambda a: (f"/patients/{a['patient']}/notes", _some(a, "text")),
    "order.stop": lambda a: (f"/orders/{a['order']}/stop", _some(a, "reason")),
    "order.create": _order_page,
    "patient.create": lambda a: ("/patients/new", {k: v for k, v in a.items()
                                                   if k != "patient"}),
    "patient.discharge": lambda a: (f"/patients/{a['patient']}/discharge",
                                    _some(a, "override_reason")),
    "form.start": lambda a: (f"/patients/{a['patient']}/forms", _some(a, "template")),
    "form.fill": lambda a: (f"/forms/{a['form']}/fill", _form_values(a)),
    "form.finalise": _form_finalise,
    "anaesthesia.start": lambda a: (f"/patients/{a['patient']}/anaesthesia", _some(
        a, "procedure", "asa", "team", "equipment")),
    "anaesthesia.record": lambda a: (f"/anaesthesia/{a['sheet']}/record",
                                     {"kind": a["kind"], **a["data"]}),
    "anaesthesia.finalise": lambda a: (f"/anaesthesia/{a['sheet']}/finalise", {}),
    "shift.end": lambda a: ("/billing/shift-end", _some(a, "note")),
}


@pytest.mark.parametrize("release", RELEASES)
def test_a_release_s_recorded_ops_leave_what_today_s_pages_leave(release, tmp_path):
    ops = recording(release)["ops"]
    for way in ("sync", "page"):
        (tmp_path / way).mkdir()
    through_sync = by_sync(upgraded_app(release, tmp_path / "sync"), ops)
    through_page = by_page(upgraded_app(release, tmp_path / "page"), ops)
    assert through_sync == through_page


# ---- The translation registry --------------------------------------------------------------

OLD_DONE = Translation(
    name="task.done", until="a page of the test's own making",
    recognise=lambda args: "result" in args,
    translate=lambda args: ("task.complete", {"task": args["task"], "value": args["result"]}))


@pytest.fixture
def old_shape():
    """An old shape registered for one test: task.done {task, result} → task.complete."""
    compat.translation_register(OLD_DONE)
    yield OLD_DONE
    compat.translation_remove(OLD_DONE)


def test_no_shape_has_changed_yet_so_no_translation_is_registered():
    """Every recorded release's ops are today's shapes (the replay above): a translation
    appears here with the release that changes a shape."""
    assert compat.TRANSLATIONS == {}


def test_an_old_shape_is_applied_and_stored_as_today_s_and_its_resend_is_a_duplicate(
        app, clinic, tablet, old_shape):
    task = an_observation(clinic)["task"]
    op = tablet.op("task.done", {"task": task, "result": "38.4"}, clinic.user(3))

    first = _post(tablet, [op])
    again = _post(tablet, [op])
    # Another tablet sending the same op (restored from a copy): compared by its content,
    # today's shape against today's shape, so it is a repeat and not a reused id.
    elsewhere = _post(SyncTablet(tablet.client, name="Green"), [op])

    assert first["status"] == "applied", first
    assert again["status"] == "duplicate" and again["original_status"] == "applied", again
    assert elsewhere["status"] == "duplicate", elsewhere
    (record, repeat) = db.session.scalars(select(SyncOp).order_by(SyncOp.id)).all()
    assert (record.name, record.args) == ("task.complete", {"task": task, "value": "38.4"})
    assert repeat.original_id == record.id
    stored = db.session.scalar(select(Task).where(Task.uid == task))
    assert (stored.status, stored.value) == ("done", "38.4")


def test_an_op_neither_current_nor_a_known_old_shape_is_rejected_with_its_reason(
        app, clinic, tablet, old_shape):
    task = an_observation(clinic)["task"]
    unknown = tablet.op("task.done", {"task": task, "outcome": "38.4"}, clinic.user(3))
    broken = tablet.op("task.done", {"result": "38.4"}, clinic.user(3))  # its translation fails

    answers = [_post(tablet, [unknown]), _post(tablet, [broken])]

    assert [a["status"] for a in answers] == ["rejected", "rejected"], answers
    assert answers[0]["error"]["code"] == "unknown_op"
    assert answers[0]["error"]["message"] == "There is no op called “task.done”."
    assert answers[1]["error"]["code"] == "unknown_op"
    assert db.session.scalar(select(Task.status).where(Task.uid == task)) != "done"


def test_a_current_op_is_left_as_it_came(old_shape):
    op = {"id": str(uuid.uuid4()), "seq": 1, "name": "task.complete",
          "args": {"task": str(uuid.uuid4()), "result": "x"}, "at": "2026-11-22T10:00:00Z",
          "user": "u_1"}
    assert op_current(op) is op
    assert op_current("not an op") == "not an op"
    assert op_current({**op, "name": "task.done", "args": "no"})["name"] == "task.done"


def _post(tablet, ops: list[dict]) -> dict:
    db.session.remove()
    response = tablet.client.post(
        "/api/sync", content_type="application/json",
        headers={"Authorization": f"Bearer {tablet.token}"},
        data=json.dumps({"device": tablet.id, "sent_at": ops[0]["at"], "ops": ops}))
    db.session.remove()
    assert response.status_code == 200, response.get_data(as_text=True)
    (answer,) = response.get_json()["results"]
    return answer
