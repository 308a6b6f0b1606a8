"""What a tablet did offline reaches flows through sync: each fact starts a flow once, and
due dates count from when it happened, not from when the tablet came back."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from kiosk.core.clock import format_iso_z
from kiosk.core.jobs import jobs_run_pending
from kiosk.extensions import db
from kiosk.flows.models import FlowEvent, FlowRun
from kiosk.inbox.models import StaffMessage, StaffTask
from kiosk.treatments.models import Order, Task
from tests.support.flows import AT_ONCE, SENIOR_DOG, WEDNESDAY, flow_make, template_make
from tests.support.tablet import Tablet

OUTAGE_START = WEDNESDAY  # 10:00; the tablet is back at 15:00


def test_an_outages_admissions_start_flows_once_with_their_real_times(app, client, london,
                                                                      frozen_clock):
    flow_make(london, SENIOR_DOG)
    template = template_make()
    flow_make(london, {"trigger": {"kind": "value_recorded", "order": "temp", "above": "39.5"},
                       "conditions": [],
                       "steps": [{"category": "smartflow", "type": "staff_message",
                                  "due": AT_ONCE, "item": template.uid,
                                  "responsible": "level:5"}]}, name="Fever")
    frozen_clock.set(OUTAGE_START + timedelta(hours=5))
    tablet = Tablet(client)
    vet, nurse = london.users[5], london.users[3]
    rex, order = str(uuid.uuid4()), str(uuid.uuid4())
    ops = [
        tablet.op("patient.create", {"patient": rex, "name": "Rex", "species": "canine",
                                     "date_of_birth": "2015-03-01", "ward": "ICU",
                                     "doctor": "Ada Lovelace"}, vet,
                  at=format_iso_z(OUTAGE_START)),
        tablet.op("order.create", {"order": order, "patient": rex, "name": "Temperature",
                                   "kind": "observation", "value_type": "number",
                                   "every_hours": 4, "start": format_iso_z(OUTAGE_START)},
                  vet, at=format_iso_z(OUTAGE_START + timedelta(minutes=5))),
    ]
    answer = tablet.post(ops)
    assert answer.status_code == 200
    assert [r["status"] for r in answer.get_json()["results"]] == ["applied", "applied"], \
        answer.get_json()["results"][1]
    first_task = db.session.scalar(select(Task).join(Order).where(Order.uid == order)
                                   .order_by(Task.due_at))
    done = tablet.op("task.complete", {"task": first_task.uid, "value": "40.2"}, nurse,
                     at=format_iso_z(OUTAGE_START + timedelta(minutes=30)))
    assert tablet.post([done]).status_code == 200
    assert tablet.post(ops + [done]).status_code == 200  # the outbox sent again: a replay
    jobs_run_pending()
    jobs_run_pending()

    [task] = db.session.scalars(select(StaffTask)).all()
    assert task.due_at == OUTAGE_START + timedelta(hours=2)  # from 10:00, not 15:00
    [message] = db.session.scalars(select(StaffMessage)).all()
    assert message.body == "Rex has 40.2"
    assert db.session.scalar(select(func.count(FlowRun.id))) == 2
    runs = {run.event_kind: run.event_at for run in db.session.scalars(select(FlowRun))}
    assert runs == {"patient_admitted": OUTAGE_START,
                    "value_recorded": OUTAGE_START + timedelta(minutes=30)}
    assert db.session.scalar(select(func.count(FlowEvent.id)).where(
        FlowEvent.processed_at.is_(None))) == 0
