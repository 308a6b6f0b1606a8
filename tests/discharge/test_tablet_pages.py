"""A tablet whose person unlocked it with a PIN (on the tablet alone: the server has no
sign-in for them) opens Discharge and Edit patient without being sent to sign in: the
discharge goes through its outbox as that person, the edit is confirmed with their PIN."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kiosk.core.audit import AuditEntry
from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.patients.models import Patient
from kiosk.staff.models import User
from kiosk.staff.services import ERR_BAD_PIN
from tests import factories


@pytest.fixture
def tablet(client, clinic):
    """This test client is a paired tablet (its tablet session, nobody signed in)."""
    device, token = device_provision(name="Ward tablet", colour="blue", number=2)
    db.session.commit()
    assert client.post("/tablet/claim",
                       headers={"Authorization": f"Bearer {token}"}).status_code == 200
    return device


@pytest.fixture
def patient(clinic):
    return factories.patient_make(clinic, name="Biscuit", weight_kg="12.5")


def edit_form(patient, **fields) -> dict:
    data = {"name": patient.name, "species": patient.species, "cage": patient.cage or "",
            "weight_kg": "13.1", "colour": "none"}
    data.update(fields)
    return data


def snapshot(patient_id: int) -> tuple:
    db.session.expire_all()
    row = db.session.get(Patient, patient_id)
    return (row.weight_kg, row.name, db.session.scalar(
        select(func.count(AuditEntry.id)).where(AuditEntry.action == "patient.update")))


def test_the_discharge_page_posts_through_the_tablets_outbox(client, tablet, patient):
    page = client.get(f"/patients/{patient.uid}/discharge").get_data(as_text=True)
    assert 'data-outbox="patient.discharge"' in page
    assert "js/sheet.js" in page  # the outbox's form handler, as on the sheet
    assert 'id="discharge" data-live-topic="sheet"' in page
    assert f'data-live-rooms=\'["sheet:{patient.uid}"]\'' in page


def test_edit_patient_opens_on_a_tablet_without_signing_in(client, tablet, patient, clinic):
    response = client.get(f"/patients/{patient.uid}/edit")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Saved from this tablet by" in page and 'name="pin"' in page
    # Only people who may edit patients are offered.
    assert f'<option value="{clinic.user(5).id}">Level 5</option>' in page
    assert f'<option value="{clinic.user(3).id}">' not in page


def test_a_tablet_edit_is_saved_as_the_person_whose_pin_confirms_it(
        client, tablet, patient, clinic):
    response = client.post(f"/patients/{patient.uid}/edit", data=edit_form(
        patient, saved_by=str(clinic.user(5).id), pin="555555"))
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/patients/{patient.uid}/sheet")
    assert snapshot(patient.id)[0] == Decimal("13.1")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "patient.update"))
    assert (entry.user_id, entry.device_id) == (clinic.user(5).id, tablet.id)


def test_a_wrong_pin_saves_nothing_and_counts(client, tablet, patient, clinic):
    before = snapshot(patient.id)
    response = client.post(f"/patients/{patient.uid}/edit", data=edit_form(
        patient, saved_by=str(clinic.user(5).id), pin="111111"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert ERR_BAD_PIN in page
    assert 'value="13.1"' in page  # what was typed is kept
    assert snapshot(patient.id) == before
    assert db.session.get(User, clinic.user(5).id).sign_in_failures == 1


def test_a_pin_of_someone_below_level_4_saves_nothing(client, tablet, patient, clinic):
    before = snapshot(patient.id)
    response = client.post(f"/patients/{patient.uid}/edit", data=edit_form(
        patient, saved_by=str(clinic.user(3).id), pin="3333"))
    assert response.status_code == 403
    assert "You need level 4 to edit patients" in response.get_data(as_text=True)
    assert snapshot(patient.id) == before


def test_a_desktop_still_needs_a_sign_in(client, clinic, patient):
    assert client.get(f"/patients/{patient.uid}/edit").status_code == 302
    response = client.post(f"/patients/{patient.uid}/edit", data=edit_form(
        patient, saved_by=str(clinic.user(5).id), pin="555555"))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert snapshot(patient.id)[0] == Decimal("12.5")
