"""The billing pages: the report (HTML and PDF), end of shift on the web and from a tablet,
a patient's charges added by hand and reversed; levels, CSRF, and bad input that changes
nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kiosk import create_app
from kiosk.billing.models import Charge, ShiftMark
from kiosk.billing.services import ERR_MARK_OLDER, item_save, shift_end
from kiosk.core import clock
from kiosk.core.clock import format_iso_z
from kiosk.extensions import db
from kiosk.treatments.models import Task
from kiosk.treatments.services import task_complete
from tests import factories


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def catalogue(clinic):
    item_save(user=clinic.user(6), data={"code": "CONS", "description": "Consultation",
                                         "unit_price": "45.00"})
    db.session.commit()


def billed_patient(clinic, name="Bella", **fields):
    patient = factories.patient_make(clinic, name, **fields)
    order = factories.order_make(clinic, patient, name="Maropitant", billable_code="MAR10",
                                 price="12.50")
    task = db.session.scalars(select(Task).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).first()
    return patient, task


def test_the_report_shows_each_patient_their_charges_flags_and_totals(
        clinic, client, login, tablet, frozen_clock):
    bella, done_here = billed_patient(clinic, "Bella", pims_id="P-1", file_number="F1")
    stray, done_offline = billed_patient(clinic, "Stray")  # unallocated: charges held
    bella_uid, offline_uid = bella.uid, done_offline.uid
    task_complete(task=done_here, user=clinic.user(3))
    db.session.commit()
    done_at = clock.utcnow()
    frozen_clock.advance(minutes=5)
    shift_end(user=clinic.user(4), note="Day shift")
    db.session.commit()
    frozen_clock.advance(minutes=20)
    login(clinic.user(4))
    assert tablet.send("task.complete", {"task": offline_uid}, clinic.user(3),
                       at=format_iso_z(done_at))["status"] == "applied"
    page = client.get("/billing/")
    assert page.status_code == 200
    html = page.text
    assert "Bella" in html and "PIMS P-1" in html and "file F1" in html
    assert "Unallocated — charges held" in html
    assert "OFFLINE" in html and "arrived late" in html and "Blue" in html
    assert 'data-total="25.00"' in html and "Day shift" in html
    assert "Not yet sent to the practice system" in html
    assert "held (unallocated patients): 1" in html
    assert "/billing/report.pdf" in html and "/billing/admin/export.csv" in html
    one = client.get(f"/billing/?patient={bella_uid}&shift=current").text
    assert "Bella" in one and "Stray" not in one and "No charges in this period." in one


def test_the_report_pdf_for_the_clinic_and_for_one_patient(clinic, client, login,
                                                          frozen_clock):
    pytest.importorskip("weasyprint")
    bella, task = billed_patient(clinic, "Bella", pims_id="P-1")
    task_complete(task=task, user=clinic.user(3))
    db.session.commit()
    login(clinic.user(4))
    whole = client.get("/billing/report.pdf?shift=current")
    assert whole.status_code == 200 and whole.data.startswith(b"%PDF")
    assert whole.headers["Content-Type"] == "application/pdf"
    one = client.get(f"/billing/report.pdf?shift=current&patient={bella.uid}")
    assert one.status_code == 200 and one.data.startswith(b"%PDF")
    assert f"billing-{bella.uid}.pdf" in one.headers["Content-Disposition"]


@pytest.mark.parametrize("query, field, words", [
    ("from=yesterday", "from", "From: “yesterday” is not a date and time"),
    ("from=2026-11-22&to=2026-11-21", "end", "The period&#39;s end must be after its start."),
    ("shift=not-a-mark", "shift", "There is no end-of-shift mark with that id."),
])
def test_a_bad_period_is_a_clear_error(clinic, client, login, query, field, words):
    login(clinic.user(4))
    response = client.get(f"/billing/?{query}")
    assert response.status_code in (400, 404)
    assert words in response.text


def test_below_level_4_the_pages_are_refused_and_nothing_is_stored(clinic, client, login,
                                                                   frozen_clock):
    catalogue(clinic)
    patient = factories.patient_make(clinic, pims_id="P-1")
    assert client.get("/billing/").status_code == 302  # not signed in: to the sign-in page
    login(clinic.user(3))
    assert client.get("/billing/").status_code == 403
    assert client.get("/billing/report.pdf").status_code == 403
    assert client.get(f"/billing/patients/{patient.uid}").status_code == 403
    response = client.post("/billing/shift-end", data={"note": "x"})
    assert response.status_code == 403 and "You need level 4" in response.text
    assert client.post(f"/billing/patients/{patient.uid}",
                       data={"item_code": "CONS"}).status_code == 403
    assert count(ShiftMark) == 0 and count(Charge) == 0
    login(clinic.user(4))
    assert "Billing</a>" in client.get("/billing/").text
    login(clinic.user(3))
    assert "Billing</a>" not in client.get("/patients/").text


def test_end_of_shift_on_the_web(clinic, client, login, frozen_clock):
    user = login(clinic.user(4))
    response = client.post("/billing/shift-end", data={"note": "Night shift"})
    assert response.status_code == 302
    mark = db.session.scalar(select(ShiftMark))
    assert (mark.at, mark.note, mark.user_id, mark.device_id) == (
        clock.utcnow(), "Night shift", user.id, None)
    page = client.get("/billing/").text
    assert "Ended" in page and "Night shift" in page


def test_an_end_of_shift_not_later_than_the_last_is_refused_and_nothing_stored(
        clinic, client, login, frozen_clock):
    # A tablet marked the end of shift by its clock, a minute ahead of the server's.
    shift_end(user=clinic.user(4), at=clock.utcnow() + timedelta(minutes=1))
    db.session.commit()
    login(clinic.user(4))
    response = client.post("/billing/shift-end", data={"note": "again"})
    assert response.status_code == 422
    assert "a new mark must be later than that" in response.text
    assert ERR_MARK_OLDER.split("{at}")[0] in response.text
    assert count(ShiftMark) == 1
    frozen_clock.advance(minutes=2)
    response = client.post("/billing/shift-end", data={"note": "x" * 201})
    assert response.status_code == 422 and "Note is longer than 200 characters." in response.text
    assert count(ShiftMark) == 1


def test_end_of_shift_from_a_tablet(clinic, tablet, frozen_clock):
    manager, tech = clinic.user(4), clinic.user(3)
    _ = manager.public_id, tech.public_id  # loaded while the session is open
    result = tablet.send("shift.end", {"mark": "6d1b0c52-8a4e-4d0e-9a55-0f6f3e1c2b7a",
                                       "note": "Before the outage"}, manager)
    assert result["status"] == "applied"
    assert result["result"] == {"mark": "6d1b0c52-8a4e-4d0e-9a55-0f6f3e1c2b7a"}
    mark = db.session.scalar(select(ShiftMark))
    assert mark.device_id == tablet.device.id and mark.at == clock.utcnow()
    earlier = format_iso_z(clock.utcnow() - timedelta(minutes=10))
    late = tablet.send("shift.end", {"mark": "0b7c3b6e-07a4-4f57-8d43-2d1c9a4d1f11",
                                     "at": earlier}, manager)
    assert late["status"] == "rejected"
    assert (late["error"]["code"], late["error"]["field"]) == ("mark_too_old", "at")
    assert count(ShiftMark) == 1
    frozen_clock.advance(minutes=5)
    refused = tablet.send("shift.end", {"mark": "a3f9c0d2-1e7b-4c55-9d2e-6b8a0f4e3c21"}, tech)
    assert refused["status"] == "rejected" and refused["error"]["code"] == "forbidden"
    assert count(ShiftMark) == 1


def test_a_charge_added_by_hand_and_reversed(clinic, client, login, frozen_clock):
    catalogue(clinic)
    patient = factories.patient_make(clinic, pims_id="P-1")
    login(clinic.user(4))
    page = client.get(f"/billing/patients/{patient.uid}")
    assert page.status_code == 200 and "No charges yet." in page.text
    response = client.post(f"/billing/patients/{patient.uid}", data={
        "item_code": "CONS", "quantity": "2", "unit_price": "40", "reason": "two visits"})
    assert response.status_code == 302
    charge = db.session.scalar(select(Charge))
    assert (charge.quantity, charge.unit_price, charge.total) == (
        Decimal(2), Decimal("40.00"), Decimal("80.00"))
    response = client.post(f"/billing/charges/{charge.uid}/reverse", data={"reason": ""})
    assert response.status_code == 422 and "Reason is required." in response.text
    assert count(Charge) == 1
    response = client.post(f"/billing/charges/{charge.uid}/reverse",
                           data={"reason": "wrong patient"})
    assert response.status_code == 302
    page = client.get(f"/billing/patients/{patient.uid}").text
    assert "-80.00" in page and "Reversal: Consultation" in page and "reversed" in page
    again = client.post(f"/billing/charges/{charge.uid}/reverse", data={"reason": "twice"})
    assert again.status_code == 422 and "already been reversed" in again.text
    assert count(Charge) == 2


def test_a_resent_charge_form_never_bills_twice(clinic, client, login, frozen_clock):
    catalogue(clinic)
    patient = factories.patient_make(clinic, pims_id="P-1")
    login(clinic.user(4))
    form = {"item_code": "CONS", "charge_uid": "5b0f4f8e-1d6a-4c1e-9b8c-3a7e2d9f0c44"}
    assert client.post(f"/billing/patients/{patient.uid}", data=form).status_code == 302
    # A double click: the second post finds the form saved and says so, charging nothing.
    again = client.post(f"/billing/patients/{patient.uid}", data=form)
    assert again.status_code == 302 and again.location.endswith(f"/billing/patients/{patient.uid}")
    assert count(Charge) == 1


@pytest.mark.parametrize("data, field, message", [
    ({"item_code": "CONS", "unit_price": "twelve"}, "unit_price", "Unit price must be a number."),
    ({"item_code": "CONS", "unit_price": "-1"}, "unit_price", "Unit price must be at least 0."),
    ({"item_code": "CONS", "unit_price": "250000"}, "unit_price",
     "Unit price must be at most 100000."),
    ({"item_code": "CONS", "unit_price": "1.005"}, "unit_price",
     "Unit price has more than two decimals."),
    ({"item_code": "NOPE"}, "item_code", "There is no billing item with the code “NOPE”."),
    ({"item_code": ""}, "item_code", "Item code is required."),
    ({"item_code": "CONS", "quantity": "0"}, "quantity", "Quantity must be at least 0.001."),
])
def test_a_bad_charge_is_a_clear_error_naming_the_field_and_nothing_is_stored(
        clinic, client, login, frozen_clock, data, field, message):
    catalogue(clinic)
    patient = factories.patient_make(clinic, pims_id="P-1")
    login(clinic.user(4))
    response = client.post(f"/billing/patients/{patient.uid}", data=data)
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text and message in response.text
    assert count(Charge) == 0


def test_the_forms_need_their_csrf_token(clinic, tmp_path):
    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/csrf.db"})
    with app.app_context():
        db.create_all()
        user = factories.clinic_make().user(4)
        guarded = app.test_client()
        from kiosk.core.auth import SESSION_KEY
        from kiosk.staff.sessions import staff_session_start

        key = staff_session_start(user=user, auth="password")
        db.session.commit()
        with guarded.session_transaction() as session:
            session["user_id"], session["auth"], session[SESSION_KEY] = user.id, "password", key
        assert guarded.post("/billing/shift-end", data={"note": "x"}).status_code == 400
        assert count(ShiftMark) == 0
        page = guarded.get("/billing/").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert guarded.post("/billing/shift-end", data={"note": "x", "csrf_token": token}
                            ).status_code == 302
        assert count(ShiftMark) == 1
        db.session.remove()
        db.engine.dispose()


def test_the_patients_sheet_links_to_their_charges_for_level_4(clinic, client, login):
    patient = factories.patient_make(clinic, pims_id="P-1")
    login(clinic.user(4))
    assert f"/billing/patients/{patient.uid}" in client.get(f"/patients/{patient.uid}/sheet").text
    login(clinic.user(3))
    assert f"/billing/patients/{patient.uid}" not in client.get(
        f"/patients/{patient.uid}/sheet").text
