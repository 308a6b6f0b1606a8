"""The after-outage report, built from real rows: a tablet's offline work arrives through
the sync endpoint (which finds the outage), the documents job archives the PDFs, and each
section says in words what happened and what to do."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import select

from kiosk.core import clock
from kiosk.devices.services import device_provision
from kiosk.documents.worker import documents_work
from kiosk.extensions import db
from kiosk.maintenance.models import Outage
from kiosk.maintenance.report import outage_report, outage_to_review
from kiosk.treatments.models import Task
from kiosk.treatments.services import task_complete
from tests import factories
from tests.support.forms import consent_template, consent_values
from tests.support.tablet import Tablet, now_z

OP_NAME = re.compile(r"\b(task|patient|anaesthesia|form|note|order)\.[a-z_]+\b")
USER_ID = re.compile(r"\bu_\d+\b")


class Ward:
    """What the scenario made: the people, patients, tablets and the outage."""


def tablet_numbered(client, name: str, colour: str, number: int) -> Tablet:
    """A tablet as the protocol sees it, with its colour label ("Red #2")."""
    tablet = Tablet(client, name)
    tablet.device.colour, tablet.device.number = colour, number
    db.session.commit()
    return tablet


def post(tablet: Tablet, ops: list[dict], *, pending: int | None = None) -> dict:
    """Send a batch (reporting what the outbox holds), through the real endpoint."""
    db.session.remove()
    held = len(ops) if pending is None else pending
    response = tablet.post(ops, outbox={"pending": held,
                                        "oldest_at": ops[0]["at"] if ops else None})
    db.session.remove()
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def ago(minutes: float) -> str:
    return now_z(-timedelta(minutes=minutes))


def outage_after_offline_work(clinic, client, frozen_clock) -> Ward:
    """A ward's hour: before the outage a vet gives Biscuit's 11:00 dose on the sheet and
    the green tablet last reports; for 25 minutes the red tablet works offline (the same
    dose again, the next dose, an anaesthesia sheet and a consent form finalised, a patient
    admitted, Luna discharged); at 12:00 it comes back and its batch reveals the outage."""
    w = Ward()
    # Sessions end with every request: keep what the ops need as plain values.
    w.nurse = SimpleNamespace(public_id=clinic.user(3).public_id)
    w.vet = SimpleNamespace(public_id=clinic.user(5).public_id)
    noon = clock.utcnow()
    biscuit = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    luna = factories.patient_make(clinic, "Luna", pims_id="P-2", species="feline")
    order = factories.order_make(clinic, biscuit, now=noon - timedelta(hours=1),
                                 name="Maropitant", billable_code="MAR10", price="12.50")
    tasks = list(db.session.scalars(select(Task).where(Task.order_id == order.id)
                                    .order_by(Task.due_at)))
    w.task_uids = [t.uid for t in tasks]
    template_uid = consent_template(clinic).uid
    biscuit_uid, luna_uid = biscuit.uid, luna.uid
    frozen_clock.set(noon - timedelta(hours=1))
    task_complete(task=tasks[0], user=clinic.user(5), note="given on the sheet")
    db.session.commit()
    w.red = tablet_numbered(client, "Ward tablet", "red", 2)
    w.green = tablet_numbered(client, "Theatre tablet", "green", 1)
    post(w.green, [])  # 11:00: the green tablet's last word before the outage
    frozen_clock.set(noon)
    sheet, form, w.pepper_uid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    r = w.red
    ops = [
        r.op("task.complete", {"task": w.task_uids[0], "note": "ate half"}, w.nurse,
             at=ago(25)),
        r.op("task.complete", {"task": w.task_uids[1]}, w.nurse, at=ago(24)),
        r.op("anaesthesia.start", {"sheet": sheet, "patient": biscuit_uid,
                                   "procedure": "Dental", "asa": "II"}, w.nurse, at=ago(22)),
        r.op("anaesthesia.finalise", {"sheet": sheet}, w.nurse, at=ago(15)),
        r.op("form.start", {"form": form, "patient": biscuit_uid, "template": template_uid,
                            "version": 1}, w.nurse, at=ago(14)),
        r.op("form.fill", {"form": form, "fill": str(uuid.uuid4()),
                           "values": consent_values()}, w.nurse, at=ago(13)),
        r.op("form.finalise", {"form": form}, w.nurse, at=ago(12)),
        r.op("patient.create", {"patient": w.pepper_uid, "name": "Pepper", "species": "canine",
                                "owner_name": "J. Smith"}, w.vet, at=ago(10)),
        r.op("patient.discharge", {"patient": luna_uid}, w.vet, at=ago(8)),
    ]
    answer = post(r, ops)
    assert [x["status"] for x in answer["results"]] == ["conflict"] + ["applied"] * 8
    w.sheet_uid, w.form_uid = sheet, form
    w.outage_id = db.session.scalars(select(Outage)).one().id
    w.start, w.end = noon - timedelta(minutes=25), noon
    return w


def outage_of(w) -> Outage:
    """The scenario's outage, read afresh."""
    db.session.expire_all()
    return db.session.get(Outage, w.outage_id)


def test_a_detected_outage_reports_every_section_from_the_real_rows(app, clinic, client,
                                                                   frozen_clock):
    w = outage_after_offline_work(clinic, client, frozen_clock)
    outage = outage_of(w)
    assert (outage.started_at, outage.ended_at) == (w.start, w.end)
    documents_work()  # the job archives the sheet's, the form's and the discharge's PDFs
    with app.test_request_context():
        report = outage_report(outage_of(w))
    assert report.over and (report.start, report.end) == (w.start, w.end)

    # Tablets: red confirmed after the end that it holds nothing; green not heard since.
    states = {r.device.label: r.state for r in report.devices}
    assert states == {"Red #2": "ok", "Green #1": "silent"}
    assert not report.all_synced

    # The conflict, with both people and both values.
    [card] = report.conflicts
    assert card.patient.name == "Biscuit" and card.task.order.name == "Maropitant"
    assert card.tablet.person == "Level 3" and ("Note", "ate half") in card.tablet.fields
    assert card.server.person == "Level 5" and ("Note", "given on the sheet") in card.server.fields

    # Sheet and form finalised offline, and the discharge: each with its archived PDF.
    assert [(p.what, p.patient.name, p.state) for p in report.papers] == [
        ("Anaesthesia sheet", "Biscuit", "archived"),
        ("Form: Anaesthesia consent", "Biscuit", "archived")]
    assert [p.person for p in report.papers] == ["Level 3", "Level 3"]
    assert all(p.device.label == "Red #2" for p in report.papers)
    [discharge] = report.discharges
    assert (discharge.patient.name, discharge.state, discharge.person) == ("Luna", "archived",
                                                                           "Level 5")
    assert discharge.at == w.end - timedelta(minutes=8)

    # The patient admitted offline, not linked yet.
    assert [p.name for p in report.unlinked] == ["Pepper"]

    # Billing: the offline dose only (the 11:00 one was before the outage), offline, held
    # back from nobody (Biscuit is linked), and the link to exactly this span.
    bill = report.billing
    assert (bill.count, bill.total, bill.offline) == (1, Decimal("12.50"), 1)
    assert report.billing_args == {"from": clock.format_iso_z(w.start),
                                   "to": clock.format_iso_z(w.end + timedelta(seconds=1))}


def test_all_synced_only_once_every_tablet_confirmed_after_the_end(app, clinic, client,
                                                                  frozen_clock):
    w = outage_after_offline_work(clinic, client, frozen_clock)

    def report():
        with app.test_request_context():
            return outage_report(outage_of(w))

    assert not report().all_synced  # green was last heard at 11:00
    frozen_clock.advance(minutes=2)
    post(w.green, [], pending=3)  # back, and it says it holds three changes
    built = report()
    assert not built.all_synced
    assert {r.device.label: r.state for r in built.devices}["Green #1"] == "waiting"
    assert [r.device.label for r in built.summary.waiting] == ["Green #1"]
    post(w.green, [], pending=0)  # it has sent them: it says so itself
    assert report().all_synced
    # A tablet paired later, never heard from: synced no more.
    device_provision(name="Spare", colour="yellow", number=3)
    db.session.commit()
    built = report()
    assert not built.all_synced
    assert [r.device.label for r in built.summary.silent] == ["Yellow #3"]


def test_an_outage_under_way_is_never_all_synced(app, clinic, client, frozen_clock):
    tablet = tablet_numbered(client, "Ward tablet", "red", 1)
    post(tablet, [])
    outage = Outage(cause="detected", started_at=clock.utcnow() - timedelta(minutes=5))
    db.session.add(outage)
    db.session.commit()
    with app.test_request_context():
        report = outage_report(outage)
    assert not report.over and not report.all_synced and report.end == clock.utcnow()


def test_empty_sections_and_the_banners_outage(app, clinic, frozen_clock):
    now = clock.utcnow()
    older = Outage(cause="detected", started_at=now - timedelta(hours=5),
                   ended_at=now - timedelta(hours=4))
    newer = Outage(cause="detected", started_at=now - timedelta(hours=2),
                   ended_at=now - timedelta(hours=1))
    open_one = Outage(cause="detected", started_at=now - timedelta(minutes=10))
    db.session.add_all([older, newer, open_one])
    db.session.commit()
    assert outage_to_review() == newer
    newer.reviewed_at, newer.reviewed_by_id = now, clinic.user(6).id
    db.session.commit()
    assert outage_to_review() == older
    with app.test_request_context():
        report = outage_report(older)
    assert report.devices == [] and report.conflicts == [] and report.papers == []
    assert report.discharges == [] and report.unlinked == [] and report.billing.count == 0
    assert not report.all_synced  # no tablet confirmed anything


def test_the_report_takes_the_same_queries_whatever_the_number_of_rows(app, clinic, client,
                                                                       frozen_clock):
    from sqlalchemy import event

    w = outage_after_offline_work(clinic, client, frozen_clock)
    documents_work()

    def queries() -> int:
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        db.session.expire_all()
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            with app.test_request_context():
                outage_report(outage_of(w))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    few = queries()
    r = w.red
    more = [r.op("patient.create", {"patient": str(uuid.uuid4()), "name": f"Stray {n}",
                                    "species": "feline"}, w.vet, at=ago(5))
            for n in range(5)]
    more += [r.op("task.complete", {"task": uid}, w.nurse, at=ago(4)) for uid in w.task_uids[2:5]]
    post(r, more)
    tablet_numbered(client, "Spare", "blue", 4)
    assert queries() == few <= 25
