"""Direct admission, editing, linking to the practice system, discharge."""

import pytest
from sqlalchemy import func, select

from kiosk.core.errors import DomainError
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.patients.models import Patient
from kiosk.patients.services import patient_create, patient_update
from tests import factories


def patients() -> int:
    return db.session.scalar(select(func.count()).select_from(Patient))


def test_direct_creation_is_unallocated_until_linked(clinic):
    patient = patient_create(user=clinic.user(4), data={"name": "Rex", "species": "Canine",
                                                        "alerts": ["bites", "DNR"]})
    db.session.commit()
    assert patient.unallocated and patient.origin == "direct" and patient.species == "canine"
    assert patient.alerts == ["bites", "dnr"]
    patient_update(patient=patient, user=clinic.user(4), data={"pims_id": "EZ-1"})
    db.session.commit()
    assert not patient.unallocated


def test_direct_creation_refused_when_the_setting_is_off(app):
    clinic = factories.clinic_make(direct_creation=False)
    with pytest.raises(DomainError) as err:
        patient_create(user=clinic.user(6), data={"name": "Rex", "species": "canine"})
    assert err.value.code == "direct_creation_off"
    db.session.rollback()
    assert patients() == 0
    # A bedside fact from an offline tablet is never refused (it stays unallocated).
    patient = patient_create(user=clinic.user(1), data={"name": "Rex", "species": "canine"},
                             clinical_fact=True)
    assert patient.unallocated


@pytest.mark.parametrize("data, field", [
    ({"name": ""}, "name"), ({"species": ""}, "species"), ({"weight_kg": "heavy"}, "weight_kg"),
    ({"weight_kg": "-2"}, "weight_kg"), ({"date_of_birth": "2099-01-01"}, "date_of_birth"),
    ({"date_of_birth": "31/12/2020"}, "date_of_birth"), ({"sex": "X"}, "sex"),
    ({"alerts": ["vegan"]}, "alerts"), ({"ward": "Nowhere"}, "ward"),
    ({"colour": "tartan"}, "colour"),
])
def test_bad_patient_fields_name_the_field_and_store_nothing(clinic, data, field):
    with pytest.raises(DomainError) as err:
        patient_create(user=clinic.user(4), data={"name": "Rex", "species": "canine", **data})
    db.session.rollback()
    assert err.value.field == field
    assert patients() == 0


def test_pims_id_is_unique(clinic):
    factories.patient_make(clinic, name="A", pims_id="P1")
    other = factories.patient_make(clinic, name="B")
    with pytest.raises(DomainError) as err:
        patient_update(patient=other, user=clinic.user(4), data={"pims_id": "P1"})
    db.session.rollback()
    assert err.value.code == "pims_id_taken"
    assert db.session.get(Patient, other.id).pims_id is None


def test_discharge_once(clinic):
    patient = factories.patient_make(clinic)
    with pytest.raises(DomainError) as err:
        patient_discharge(patient=patient, user=clinic.user(3))
    assert err.value.code == "forbidden"
    db.session.rollback()
    patient_discharge(patient=patient, user=clinic.user(4))
    db.session.commit()
    with pytest.raises(DomainError):
        patient_discharge(patient=patient, user=clinic.user(4))
    db.session.rollback()
    assert db.session.get(Patient, patient.id).status == "discharged"


def test_new_patient_form(clinic, client, login):
    login(clinic.user(4))
    assert client.get("/patients/new").status_code == 200
    response = client.post("/patients/new", data={"name": "", "species": "feline",
                                                  "weight_kg": "4.2"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Name is required." in html
    assert 'value="4.2"' in html and patients() == 0
    response = client.post("/patients/new", data={"name": "Tom", "species": "feline",
                                                  "ward": str(clinic.ward.id),
                                                  "alerts": ["isolation"]})
    assert response.status_code == 302
    patient = db.session.scalar(select(Patient))
    assert patient.unallocated and patient.ward_id == clinic.ward.id
    listing = client.get("/patients/?unallocated=1").get_data(as_text=True)
    assert "Tom" in listing and "Unallocated" in listing


def test_new_patient_form_when_switched_off(app, client, login):
    clinic = factories.clinic_make(direct_creation=False)
    login(clinic.user(6))
    response = client.post("/patients/new", data={"name": "Tom", "species": "feline"})
    assert response.status_code == 403 and "switched off" in response.get_data(as_text=True)
    assert patients() == 0


def test_patient_list_escapes_and_discharge_view(clinic, client, login):
    patient = factories.patient_make(clinic, name="<script>x()</script>")
    login(clinic.user(2))
    html = client.get("/patients/").get_data(as_text=True)
    assert "&lt;script&gt;x()&lt;/script&gt;" in html and "<script>x()" not in html
    response = client.post(f"/patients/{patient.uid}/discharge")
    assert response.status_code == 403
    assert db.session.get(Patient, patient.id).status == "admitted"
    login(clinic.user(4))
    assert client.post(f"/patients/{patient.uid}/discharge").status_code == 302
    db.session.expire_all()
    assert db.session.get(Patient, patient.id).status == "discharged"


def test_edit_patient(clinic, client, login):
    patient = factories.patient_make(clinic, weight_kg="10")
    login(clinic.user(4))
    assert client.get(f"/patients/{patient.uid}/edit").status_code == 200
    response = client.post(f"/patients/{patient.uid}/edit",
                           data={"name": "Biscuit", "species": "canine", "weight_kg": "x"})
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(Patient, patient.id).weight_kg == 10
