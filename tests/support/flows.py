"""Flows for tests: a flow made from a definition as the builder checks it, templates,
admissions, and the senior-dog flow of the issue's example."""

from datetime import UTC, datetime

from sqlalchemy import select

from kiosk.extensions import db
from kiosk.flows.definition import definition_clean
from kiosk.flows.models import Flow, FlowTemplate, FlowVersion
from kiosk.inbox.models import StaffTask
from kiosk.patients.services import patient_create

# A Wednesday, 10:00 in London (winter: UTC).
WEDNESDAY = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def flow_make(clinic, definition: dict, *, name="Senior bloods", enabled=True) -> Flow:
    """A flow whose one version is `definition` (checked as the builder checks it)."""
    clean = definition_clean(definition)
    flow = Flow(name=name, enabled=enabled, trigger_kind=clean["trigger"]["kind"],
                created_by_id=clinic.users[6].id)
    version = FlowVersion(flow=flow, number=1, name=name, definition=clean,
                          published_by_id=clinic.users[6].id)
    db.session.add_all([flow, version])
    db.session.flush()
    flow.current_version_id = version.id
    db.session.commit()
    return flow


def task_step(**overrides) -> dict:
    step = {"category": "task", "type": "staff_task", "item": "Bloods for {{ patient.name }}",
            "responsible": "doctor",
            "due": {"amount": "2", "unit": "hours", "after": "admitted", "weekend": "monday"},
            "remind": {"amount": "1", "unit": "hours"}, "cancel_on_discharge": True}
    step.update(overrides)
    return step


AT_ONCE = {"amount": "0", "unit": "minutes", "after": "event", "weekend": "keep"}

SENIOR_DOG = {"trigger": {"kind": "patient_admitted"},
              "conditions": [{"field": "species", "op": "eq", "value": "canine"},
                             {"field": "age_years", "op": "ge", "value": "7"}],
              "steps": [task_step()]}


def admit(clinic, name="Rex", *, born="2015-03-01", species="canine", at=None, **fields):
    patient = patient_create(user=clinic.users[6], at=at, data={
        "name": name, "species": species, "ward": clinic.ward, "cage": "1",
        "date_of_birth": born, "doctor": "Dr Ada Lovelace", **fields}, origin="direct")
    db.session.commit()
    return patient


def tasks() -> list[StaffTask]:
    """Every staff task, oldest first."""
    return list(db.session.scalars(select(StaffTask).order_by(StaffTask.id)))


def template_make(name="Fever", body="{{ patient.name }} has {{ event.value }}", subject=None):
    template = FlowTemplate(name=name, body=body, subject=subject or name)
    db.session.add(template)
    db.session.commit()
    return template
