"""The treatment sheet pages: status codes and the HTML that matters."""

from sqlalchemy import func, select

from kiosk.extensions import db
from kiosk.treatments.models import Order, Task, TaskCompletion
from tests import factories

HX = {"HX-Request": "true"}


def first_task(order) -> Task:
    return db.session.scalars(select(Task).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).first()


def test_sheet_needs_sign_in(clinic, client):
    patient = factories.patient_make(clinic)
    response = client.get(f"/patients/{patient.uid}/sheet")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_sheet_shows_orders_tasks_and_escapes_names(frozen_clock, clinic, client, login):
    """(At noon: an order made at 23:59:58 has its first task on a day the sheet read at
    00:00:01 does not show; tests/treatments/test_midnight.py covers that.)"""
    patient = factories.patient_make(clinic, name="<script>alert(1)</script>")
    order = factories.order_make(clinic, patient, name="<b>Methadone</b>")
    login(clinic.user(1))
    response = client.get(f"/patients/{patient.uid}/sheet")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Methadone&lt;/b&gt;" in html
    assert first_task(order).uid in html
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_gets_the_grid_partial_only(clinic, client, login):
    patient = factories.patient_make(clinic)
    factories.order_make(clinic, patient)
    login(clinic.user(1))
    html = client.get(f"/patients/{patient.uid}/sheet", headers=HX).get_data(as_text=True)
    assert html.lstrip().startswith('<section id="sheet-grid"')
    assert "<html" not in html


def test_unknown_uid_is_a_404_page(clinic, client, login):
    login(clinic.user(1))
    response = client.get("/patients/not-a-uid/sheet")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)
    assert client.get("/tasks/nope").status_code == 404


def test_complete_through_the_sheet_returns_the_grid(clinic, client, login):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, kind="observation", name="Temperature",
                                 dose=None, units=None, route=None)
    task = first_task(order)
    login(clinic.user(2))
    dialog = client.get(f"/tasks/{task.uid}", headers=HX).get_data(as_text=True)
    assert 'name="value"' in dialog
    response = client.post(f"/tasks/{task.uid}/complete", data={"value": "38.6", "note": "ok"},
                           headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#sheet-grid"
    assert "38.6" in response.get_data(as_text=True)
    db.session.expire_all()
    assert first_task(order).status == "done" and first_task(order).value == "38.6"


def test_bad_value_shows_the_error_in_the_dialog_and_stores_nothing(clinic, client, login):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, kind="observation", name="HR",
                                 dose=None, units=None, route=None)
    task = first_task(order)
    login(clinic.user(2))
    response = client.post(f"/tasks/{task.uid}/complete", data={"value": "fast"}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Value must be a number." in html and 'value="fast"' in html
    db.session.expire_all()
    assert first_task(order).status == "scheduled"
    assert db.session.scalar(select(func.count()).select_from(TaskCompletion)) == 0


def test_complete_without_javascript_redirects_back(clinic, client, login):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    login(clinic.user(1))
    response = client.post(f"/tasks/{first_task(order).uid}/complete", data={})
    assert response.status_code == 200  # the sheet page itself
    assert "<html" in response.get_data(as_text=True)


def test_skip_requires_a_reason(clinic, client, login):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    task = first_task(order)
    login(clinic.user(1))
    response = client.post(f"/tasks/{task.uid}/skip", data={"reason": ""}, headers=HX)
    assert response.status_code == 422 and "Reason is required." in response.get_data(True)
    db.session.expire_all()
    assert first_task(order).status == "scheduled"
    response = client.post(f"/tasks/{task.uid}/skip", data={"reason": "asleep"}, headers=HX)
    assert response.status_code == 200
    db.session.expire_all()
    assert first_task(order).status == "skipped"


def test_orders_need_level_4(clinic, client, login):
    patient = factories.patient_make(clinic)
    login(clinic.user(3))
    response = client.post(f"/patients/{patient.uid}/orders/new",
                           data={"name": "Meloxicam", "kind": "medication"})
    assert response.status_code == 403
    assert "You need level 4 to create orders (you are level 3)." in response.get_data(True)
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_order_form_shows_which_field_and_why(clinic, client, login):
    patient = factories.patient_make(clinic)
    login(clinic.user(4))
    response = client.post(f"/patients/{patient.uid}/orders/new",
                           data={"name": "Meloxicam", "kind": "medication", "dose": "lots",
                                 "every_hours": "12"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Dose must be a number." in html and 'value="lots"' in html
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_create_and_stop_an_order(clinic, client, login):
    patient = factories.patient_make(clinic)
    login(clinic.user(4))
    response = client.post(f"/patients/{patient.uid}/orders/new",
                           data={"name": "Walk", "kind": "task", "times": "08:00, 18:00"})
    assert response.status_code == 302
    order = db.session.scalar(select(Order))
    assert order.times == ["08:00", "18:00"]
    response = client.post(f"/orders/{order.uid}/stop", data={"reason": "discharged soon"},
                           headers=HX)
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "stopped"


def test_notes(clinic, client, login):
    patient = factories.patient_make(clinic)
    login(clinic.user(1))
    response = client.post(f"/patients/{patient.uid}/notes", data={"text": "<i>ate</i>"})
    assert response.status_code == 302
    html = client.get(f"/patients/{patient.uid}/sheet").get_data(as_text=True)
    assert "&lt;i&gt;ate&lt;/i&gt;" in html
    response = client.post(f"/patients/{patient.uid}/notes", data={"text": " "})
    assert response.status_code == 422 and "Note is required." in response.get_data(True)


def test_give_a_prn_dose_from_the_sheet(clinic, client, login):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient, every_hours=None, prn=True)
    login(clinic.user(3))
    assert "Give now" in client.get(f"/patients/{patient.uid}/sheet").get_data(True)
    response = client.post(f"/orders/{order.uid}/give", data={"note": "yelping"}, headers=HX)
    assert response.status_code == 200
    db.session.expire_all()
    assert first_task(order).status == "done" and first_task(order).note == "yelping"


def test_time_given_is_read_on_the_clinic_clock_and_checked(clinic, client, login):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    task = first_task(order)
    login(clinic.user(2))
    future = client.post(f"/tasks/{task.uid}/complete", data={"at": "2099-01-01T10:00"},
                         headers=HX)
    assert future.status_code == 422 and "The time given is in the future." in future.get_data(
        as_text=True)
    garbled = client.post(f"/tasks/{task.uid}/complete", data={"at": "half past"}, headers=HX)
    assert garbled.status_code == 422 and "Enter a date and time" in garbled.get_data(True)
    db.session.expire_all()
    assert first_task(order).status == "scheduled"
    assert db.session.scalar(select(func.count()).select_from(TaskCompletion)) == 0
