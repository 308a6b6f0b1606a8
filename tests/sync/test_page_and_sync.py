"""Every op, done through its page and through sync, leaves the same rows.

The page and the op call the same service (one rule, one place): for each op in the
registry the same action is done twice, each time in a fresh database holding the same
clinic, once by a signed-in user posting the page's form and once by a tablet sending the
op, and every table the action can touch is compared. Uids are compared by where they
first appear (the page makes its own, the tablet sends its own); what only a device can
leave is left out: which device did it (`*device_id`, and "on <device>" in a document),
the device's own rows and its op records. A new op without a comparison here fails
`test_every_op_is_compared`.
"""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from kiosk.anaesthesia.services import anaesthesia_start
from kiosk.extensions import db
from kiosk.forms.selectors import form_template_by_uid
from kiosk.forms.services import form_fill, form_start, form_template_create
from kiosk.patients.selectors import patient_by_uid
from kiosk.sync.ops import REGISTRY
from kiosk.treatments.models import Task
from tests import factories

from .conftest import SyncTablet
from .helpers import db_reset

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# What only a device leaves behind: its own rows, its op records, its sign-in, its history.
DEVICE_TABLES = {"devices", "device_events", "device_patients", "sync_ops", "staff_sessions"}
# Salted hashes differ in every database, whatever was done.
SALTED = re.compile(r"hash|verifier|token|salt")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FORM_FIELDS = [{"key": "owner_name", "label": "Owner's name", "type": "text", "required": True},
               {"key": "weight", "label": "Weight (kg)", "type": "number"}]


@dataclass(frozen=True)
class Case:
    """One op: what must exist first, the page's request, the op's args (from setup's dict)."""

    setup: Callable[[object], dict]
    page: Callable[[object, dict], object]  # (client, given) → the response
    args: Callable[[dict], dict]


def new_uid() -> str:
    return str(uuid.uuid4())


# ---- What each op needs first -----------------------------------------------------------

def a_patient(clinic) -> dict:
    return {"patient": factories.patient_make(clinic).uid, "ward": clinic.ward.id}


def an_order(clinic, **fields) -> dict:
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, **fields)
    task = db.session.scalar(select(Task).where(Task.order_id == order.id)
                             .order_by(Task.due_at))
    return {"patient": patient.uid, "order": order.uid, "task": task.uid if task else None}


def a_prn_order(clinic) -> dict:
    return an_order(clinic, every_hours=None, prn=True)


def an_observation(clinic) -> dict:
    return an_order(clinic, name="Temperature", kind="observation", dose=None, units=None,
                    route=None, value_units="°C")


def a_sheet(clinic) -> dict:
    patient = factories.patient_make(clinic)
    sheet = anaesthesia_start(patient=patient, user=clinic.user(5), header={
        "procedure": "Dental", "asa": "II"})
    db.session.commit()
    return {"patient": patient.uid, "sheet": sheet.uid}


def a_template(clinic) -> dict:
    patient = factories.patient_make(clinic)
    template = form_template_create(user=clinic.user(6), name="Consent", fields=FORM_FIELDS)
    db.session.commit()
    return {"patient": patient.uid, "template": template.uid}


def a_form(clinic, *, filled: bool = False) -> dict:
    given = a_template(clinic)
    form = form_start(patient=patient_by_uid(given["patient"]),
                      template=form_template_by_uid(given["template"]), user=clinic.user(5))
    if filled:
        form_fill(form=form, user=clinic.user(5), values=FORM_VALUES)
    db.session.commit()
    return {**given, "form": form.uid}


FORM_VALUES = {"owner_name": "A. Client", "weight": "32.4"}
PATIENT = {"name": "Pip", "species": "feline", "breed": "DSH", "sex": "FS", "weight_kg": "4.2",
           "owner_name": "A. Client", "owner_phone": "0123 456", "cage": "3", "colour": "teal",
           "alert_note": "hisses"}
ORDER = {"name": "Meloxicam", "kind": "medication", "dose": "0.1", "units": "mg/kg",
         "route": "PO", "every_hours": "24", "instructions": "with food"}
VITALS = {"hr": "88", "spo2": "97", "temp": "37.9"}


# ---- The op registry, each op with its page ----------------------------------------------

CASES: dict[str, Case] = {
    "patient.create": Case(
        setup=lambda clinic: {"ward": clinic.ward.id},
        page=lambda client, g: client.post("/patients/new", data={
            **PATIENT, "ward": str(g["ward"]), "alerts": ["bites", "dnr"]}),
        args=lambda g: {"patient": new_uid(), **PATIENT, "ward": g["ward"],
                        "alerts": ["bites", "dnr"]}),
    "order.create": Case(
        setup=a_patient,
        page=lambda client, g: client.post(f"/patients/{g['patient']}/orders/new", data={
            **ORDER, "start": "2026-11-22T12:00"}),
        args=lambda g: {"order": new_uid(), "patient": g["patient"], **ORDER,
                        "every_hours": 24, "start": "2026-11-22T12:00:00Z"}),
    "order.stop": Case(
        setup=an_order,
        page=lambda client, g: client.post(f"/orders/{g['order']}/stop",
                                           data={"reason": "vomiting"}),
        args=lambda g: {"order": g["order"], "reason": "vomiting"}),
    "order.give": Case(
        setup=a_prn_order,
        page=lambda client, g: client.post(f"/orders/{g['order']}/give",
                                           data={"note": "yelping"}),
        args=lambda g: {"order": g["order"], "note": "yelping"}),
    "task.complete": Case(
        setup=an_observation,
        page=lambda client, g: client.post(f"/tasks/{g['task']}/complete",
                                           data={"value": "38.4", "note": "ate well"}),
        args=lambda g: {"task": g["task"], "value": "38.4", "note": "ate well"}),
    "task.skip": Case(
        setup=an_order,
        page=lambda client, g: client.post(f"/tasks/{g['task']}/skip",
                                           data={"reason": "asleep"}),
        args=lambda g: {"task": g["task"], "reason": "asleep"}),
    "note.add": Case(
        setup=a_patient,
        page=lambda client, g: client.post(f"/patients/{g['patient']}/notes",
                                           data={"text": "Ate half her food."}),
        args=lambda g: {"note": new_uid(), "patient": g["patient"],
                        "text": "Ate half her food."}),
    "patient.discharge": Case(
        setup=a_patient,
        page=lambda client, g: client.post(f"/patients/{g['patient']}/discharge"),
        args=lambda g: {"patient": g["patient"]}),
    "anaesthesia.start": Case(
        setup=a_patient,
        page=lambda client, g: client.post(f"/patients/{g['patient']}/anaesthesia", data={
            "procedure": "Castration", "asa": "I", "team": "Dr Okafor"}),
        args=lambda g: {"sheet": new_uid(), "patient": g["patient"], "procedure": "Castration",
                        "asa": "I", "team": "Dr Okafor"}),
    "anaesthesia.record": Case(
        setup=a_sheet,
        page=lambda client, g: client.post(f"/anaesthesia/{g['sheet']}/record",
                                           data={"kind": "vitals", **VITALS}),
        args=lambda g: {"entry": new_uid(), "sheet": g["sheet"], "kind": "vitals",
                        "data": VITALS}),
    "anaesthesia.finalise": Case(
        setup=a_sheet,
        page=lambda client, g: client.post(f"/anaesthesia/{g['sheet']}/finalise"),
        args=lambda g: {"sheet": g["sheet"]}),
    "form.start": Case(
        setup=a_template,
        page=lambda client, g: client.post(f"/patients/{g['patient']}/forms",
                                           data={"template": g["template"]}),
        args=lambda g: {"form": new_uid(), "patient": g["patient"],
                        "template": g["template"]}),
    "form.fill": Case(
        setup=a_form,
        page=lambda client, g: client.post(f"/forms/{g['form']}/fill", data=FORM_VALUES),
        args=lambda g: {"form": g["form"], "values": FORM_VALUES}),
    "form.finalise": Case(
        setup=lambda clinic: a_form(clinic, filled=True),
        # The page saves what changed (nothing here) and then finalises.
        page=lambda client, g: client.post(f"/forms/{g['form']}/fill",
                                           data={**FORM_VALUES, "action": "finalise"}),
        args=lambda g: {"form": g["form"]}),
    "shift.end": Case(
        setup=lambda clinic: {},
        page=lambda client, g: client.post("/billing/shift-end", data={"note": "Night shift"}),
        args=lambda g: {"mark": new_uid(), "note": "Night shift"}),
}


def test_every_op_is_compared():
    """An op added to the registry needs its page and its comparison here."""
    assert set(CASES) == set(REGISTRY)


# ---- The comparison -----------------------------------------------------------------------

def rows() -> dict[str, list]:
    """Every table the actions touch, rows in id order; device-only and salted columns
    left out."""
    db.session.expire_all()
    out = {}
    connection = db.session.connection()
    for table in db.metadata.sorted_tables:
        if table.name in DEVICE_TABLES:
            continue
        columns = [c for c in table.columns
                   if "device_id" not in c.name and not SALTED.search(c.name)]
        found = connection.execute(select(*columns).order_by(*table.primary_key.columns))
        out[table.name] = [{c.name: _plain(v) for c, v in zip(columns, row, strict=True)}
                           for row in found]
    return out


def _plain(value):
    if isinstance(value, bytes | memoryview):
        return f"<{len(bytes(value))} bytes>"  # a PDF: its size (the uids in it are alike)
    return value


def canonical(snapshot) -> str:
    """The snapshot as text, each uid named by the order it first appears in."""
    names: dict[str, str] = {}

    def name(match) -> str:
        return names.setdefault(match.group(0), f"<uid {len(names)}>")

    return UUID.sub(name, repr(snapshot))


def state_after(way: str, name: str, *, client, login, frozen_clock) -> tuple[str, str]:
    """(rows before, rows after) the op `name` done `way`, in a fresh database."""
    case = CASES[name]
    db_reset()
    frozen_clock.set(NOW)
    clinic = factories.clinic_make()
    tablet = SyncTablet(client)
    label = tablet.device.label
    user = login(clinic.user(5))  # both ways alike: a tablet and a signed-in person
    given = case.setup(clinic)
    before = canonical(rows())
    if way == "page":
        response = case.page(client, given)
        assert response.status_code in (200, 302), response.get_data(as_text=True)[:500]
    else:
        result = tablet.send(name, case.args(given), user)
        assert result["status"] == "applied", result
    db.session.remove()
    # A document says which device did it ("… by Level 5 on Blue #1"): only a device can.
    return before, canonical(rows()).replace(f" on {label}<", "<")


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_page_and_the_op_leave_the_same_rows(app, client, login, frozen_clock, name):
    page_before, page_after = state_after("page", name, client=client, login=login,
                                          frozen_clock=frozen_clock)
    sync_before, sync_after = state_after("sync", name, client=client, login=login,
                                          frozen_clock=frozen_clock)
    assert page_before == sync_before, "the two databases started alike"
    assert page_after != page_before, "the page changed something"
    assert sync_after == page_after
