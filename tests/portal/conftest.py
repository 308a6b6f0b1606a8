"""Shared fixtures of the client portal tests: a clinic with its clock held, a dog with its
owner, an intake form, and messages sent to the owner as the senders leave them."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kiosk.core import clock
from kiosk.core.audit import AuditEntry
from kiosk.documents.models import Document
from kiosk.extensions import db
from kiosk.forms.models import FormEntry, PatientForm
from kiosk.forms.services import form_template_create
from kiosk.messaging.links import portal_token
from kiosk.messaging.models import MESSAGE_SENT, ClientMessage
from kiosk.messaging.services import client_message_queue
from kiosk.owners.models import Owner
from tests import factories
from tests.support.forms import png_data_url

INTAKE_FIELDS = [
    {"key": "about", "label": "Before the visit", "type": "heading"},
    {"key": "eating", "label": "How is Rex eating?", "type": "text", "required": True},
    {"key": "weight", "label": "Weight at home (kg)", "type": "number"},
    {"key": "last_meal", "label": "Date of the last meal", "type": "date"},
    {"key": "vomiting", "label": "Any vomiting?", "type": "choice", "required": True,
     "options": ["No", "Once", "More than once"]},
    {"key": "agree", "label": "I agree to the treatment plan", "type": "checkbox",
     "required": True},
    {"key": "signature", "label": "Your signature", "type": "signature", "required": True},
]
OWNER_NAME = "Alex Owner"


@pytest.fixture
def held(app, frozen_clock):
    """The clinic's clock held still (see tests/conftest.py)."""
    return frozen_clock


@pytest.fixture
def clinic(app, held):
    """The small test clinic ("Test Hospital"), with the clock held."""
    return factories.clinic_make()


@pytest.fixture
def owner(clinic):
    """Rex's owner."""
    person = Owner(name=OWNER_NAME, email="alex@example.org", preferred_channel="email")
    db.session.add(person)
    db.session.commit()
    return person


@pytest.fixture
def rex(clinic, owner):
    """A dog with its owner and its vet."""
    patient = factories.patient_make(clinic, "Rex", owner_name=OWNER_NAME,
                                     doctor="Dr Ada Lovelace")
    patient.owner_id = owner.id
    db.session.commit()
    return patient


@pytest.fixture
def intake(clinic):
    """The intake form, published (version 1)."""
    template = form_template_create(user=clinic.user(6), name="Intake questions",
                                    fields=INTAKE_FIELDS)
    db.session.commit()
    return template


@pytest.fixture
def send(owner):
    """send(patient, key=…, **fields): a message queued through client_message_queue, then
    left as the e-mail sender leaves one it handed over (status sent, owner, sent_at)."""

    def make(patient, key="intake", *, channel="email", body="Please fill in the form.",
             subject="Before Rex's visit", form_template=None, status=MESSAGE_SENT,
             to=owner, ago=timedelta(0)) -> ClientMessage:
        message = client_message_queue(key=key, patient=patient, channel=channel, body=body,
                                       subject=subject, form_template=form_template,
                                       source="flow:Intake")
        message.status = status
        message.owner_id = to.id if to is not None else None
        message.sent_at = clock.utcnow() - ago if status in ("sent", "delivered") else None
        message.to_address = to.email if to is not None else None
        db.session.commit()
        return message

    return make


@pytest.fixture
def asked(rex, intake, send):
    """The e-mail asking Rex's owner to fill in the intake form, and its portal token."""
    message = send(rex, form_template=intake)
    return message, portal_token(message)


def count(model, *where) -> int:
    """Rows stored (the session's cache dropped first)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def stored() -> tuple:
    """What a refused form must leave unchanged: forms, entries, documents, audit rows."""
    return (count(PatientForm), count(FormEntry), count(Document),
            count(AuditEntry, AuditEntry.action.in_(("portal.form_submitted",
                                                     "form.client_submit"))))


def filled(**changes) -> dict:
    """The intake form's posted fields, every one filled (a drawn signature)."""
    data = {"version": "1", "eating": "Well, twice a day", "weight": "31.5",
            "last_meal": "2026-11-21", "vomiting": "No", "agree": "1",
            "signature": png_data_url(120, 40), "signature-typed": ""}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}
