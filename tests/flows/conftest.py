"""Shared fixtures of the flows tests: a manager, templates and forms to point steps at,
a valid raw definition to start from, and row counts."""

import copy

import pytest
from sqlalchemy import func, select

from kiosk.extensions import db
from kiosk.flows.models import Flow, FlowTemplate, FlowVersion
from kiosk.flows.services import flow_save, template_save
from kiosk.forms.services import form_template_create
from tests import factories
from tests.support.flows import WEDNESDAY

TASK_STEP = {"category": "task", "type": "staff_task", "item": "Bloods for {{ patient.name }}",
             "responsible": "level:3",
             "due": {"amount": "2", "unit": "hours", "after": "event", "weekend": "keep"},
             "remind": {"amount": "30", "unit": "minutes"}, "completes_flow": "1",
             "cancel_on_discharge": "1"}


@pytest.fixture
def manager(clinic):
    """The clinic's level-6 user."""
    return clinic.user(6)


@pytest.fixture
def count():
    """count(Model): rows stored (the session's cache dropped first)."""

    def rows(model) -> int:
        db.session.expire_all()
        return db.session.scalar(select(func.count()).select_from(model))

    return rows


@pytest.fixture
def flow_counts(count):
    """(flows, versions) stored: what a refused save must leave unchanged."""
    return lambda: (count(Flow), count(FlowVersion))


@pytest.fixture
def raw_definition():
    """raw_definition(**changes): a valid builder definition (patient admitted, one task
    step), as strings like the form sends them; a fresh copy each call."""

    def make(trigger=None, conditions=None, steps=None) -> dict:
        return {"trigger": trigger or {"kind": "patient_admitted"},
                "conditions": conditions if conditions is not None else [
                    {"field": "species", "op": "eq", "value": "canine"}],
                "steps": steps if steps is not None else [copy.deepcopy(TASK_STEP)]}

    return make


@pytest.fixture
def flow_template(manager):
    """flow_template(name, body, subject=None): an enabled template, committed."""

    def make(name="Welcome", body="Hello {{ owner.name }}, {{ patient.name }} is with us.",
             subject=None, enabled=True) -> FlowTemplate:
        template = template_save(user=manager, data={
            "name": name, "body": body, "subject": subject, "enabled": enabled})
        db.session.commit()
        return template

    return make


@pytest.fixture
def form_template(manager):
    """form_template(name): a form in use, committed."""

    def make(name="Consent"):
        template = form_template_create(user=manager, name=name, fields=[
            {"key": "owner_name", "label": "Owner's name", "type": "text"}])
        db.session.commit()
        return template

    return make


@pytest.fixture
def flow_make(manager, raw_definition):
    """flow_make(name, enabled=True, **definition parts): a saved flow, committed."""

    def make(name="Admission bloods", *, enabled=True, **parts) -> Flow:
        flow = flow_save(user=manager, data={"name": name, "enabled": enabled,
                                             "definition": raw_definition(**parts)})
        db.session.commit()
        return flow

    return make


def message_step(template, channel="email", **changes) -> dict:
    """A client_message step sending `template` at once."""
    return {"category": "smartflow", "type": "client_message", "item": template.uid,
            "channel": channel,
            "due": {"amount": "0", "unit": "minutes", "after": "event", "weekend": "keep"},
            **changes}


@pytest.fixture
def message_step_of():
    """message_step_of(template, channel="email"): a step sending that template."""
    return message_step


@pytest.fixture
def start_step_of():
    """start_step_of(flow): a step starting that flow at once."""

    def make(flow) -> dict:
        return {"category": "smartflow", "type": "start_flow", "item": flow.uid,
                "due": {"amount": "0", "unit": "minutes", "after": "event"}}

    return make


@pytest.fixture
def save_refused(manager, flow_counts):
    """save_refused(definition, name=..., flow=None): flow_save's DomainError, asserting
    that nothing was stored (the unit of work rolled back as a view's would)."""
    from kiosk.core.errors import DomainError

    def attempt(definition: dict, *, name="Flow", flow=None) -> DomainError:
        before = flow_counts()
        with pytest.raises(DomainError) as caught:
            flow_save(user=manager, data={"name": name, "definition": definition}, flow=flow)
        db.session.rollback()
        assert flow_counts() == before
        return caught.value

    return attempt


@pytest.fixture
def london(app, frozen_clock):
    """A clinic in London, its vet called as patients name their doctor, the clock held."""
    clinic = factories.clinic_make(timezone="Europe/London")
    clinic.users[5].name = "Ada Lovelace"
    db.session.commit()
    frozen_clock.set(WEDNESDAY)
    return clinic


@pytest.fixture
def guarded_client(tmp_path):
    """(client, manager) of an app with CSRF protection on (tests turn it off), the
    manager signed in with a password."""
    from kiosk import create_app
    from kiosk.core.auth import SESSION_KEY
    from kiosk.staff.sessions import staff_session_start
    from tests import factories

    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/csrf.db"})
    with app.app_context():
        db.create_all()
        manager = factories.clinic_make().user(6)
        client = app.test_client()
        key = staff_session_start(user=manager, auth="password")
        db.session.commit()
        with client.session_transaction() as session:
            session["user_id"], session["auth"], session[SESSION_KEY] = (
                manager.id, "password", key)
        yield client, manager
        db.session.remove()
        db.engine.dispose()
