"""Device pages: adding and pairing, the tablet session, the lock screen's staff list,
assignment, printing, the sync dashboard, and what each refusal leaves unchanged."""

import re

import pytest
from sqlalchemy import func, select

from kiosk.clinic.models import Ward
from kiosk.devices.models import Device, DevicePatient
from kiosk.devices.services import device_add, device_assign_ward, device_pair
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.sync.envelope import utcnow_ms
from tests import factories


@pytest.fixture
def paired(clinic):
    """A paired tablet: (device, token)."""
    device, code = device_add(actor=clinic.user(6), name="Ward 1", colour="blue", number=2)
    device, token = device_pair(code=code)
    db.session.commit()
    return device, token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


# ---- Adding and pairing ----------------------------------------------------------------

def test_a_manager_adds_a_tablet_and_sees_a_code_and_a_qr_code(client, clinic, login):
    login(clinic.user(6))
    page = client.get("/devices/").get_data(as_text=True)
    assert "Add a device" in page and 'value="purple"' in page
    response = client.post("/devices/", data={"name": "Ward 1", "colour": "blue",
                                              "number": "2", "kind": "tablet"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    code = re.search(r'id="pairing-code"[^>]*>([A-Z2-9]{4}-[A-Z2-9]{4})<', page).group(1)
    assert "<svg" in page and "Pair Blue #2" in page and "/pair" in page
    answer = client.post("/pair", json={"code": code})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["id"] == "d_1" and body["kind"] == "tablet" and len(body["token"]) > 30
    assert body["token"] not in page  # the token never appears on the manager's page


def test_adding_a_device_with_bad_input_says_why_and_adds_nothing(client, clinic, login):
    login(clinic.user(6))
    response = client.post("/devices/", data={"name": "", "colour": "pink", "kind": "tablet"})
    assert response.status_code == 422
    assert "Name is required." in response.get_data(as_text=True)
    assert count(Device) == 0


def test_device_pages_are_for_managers(client, clinic, login, paired):
    login(clinic.user(5))
    assert client.get("/devices/").status_code == 403
    assert client.post("/devices/", data={"name": "X", "colour": "red"}).status_code == 403
    assert client.post(f"/devices/{paired[0].id}/revoke").status_code == 403
    assert client.post(f"/devices/{paired[0].id}/ward",
                       data={"ward": clinic.ward.id}).status_code == 403
    assert count(Device) == 1 and db.session.get(Device, paired[0].id).revoked_at is None


@pytest.mark.parametrize("code, error", [
    ("ZZZZ-ZZZZ", "wrong_code"), ("nope", "bad_code"), ("", "bad_code")])
def test_a_wrong_code_gets_a_clear_message_and_no_token(client, clinic, code, error):
    device, _ = device_add(actor=clinic.user(6), name="Ward 1", colour="blue")
    db.session.commit()
    answer = client.post("/pair", json={"code": code})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == error and body["message"] and "token" not in body
    assert db.session.get(Device, device.id).token_hash is None
    with client.session_transaction() as session:
        assert "tablet_id" not in session


def test_a_used_code_gets_a_clear_message(client, clinic):
    _device, code = device_add(actor=clinic.user(6), name="Ward 1", colour="blue")
    db.session.commit()
    assert client.post("/pair", json={"code": code}).status_code == 200
    again = client.post("/pair", json={"code": code})
    assert again.status_code == 400 and "used already" in again.get_json()["message"]


def test_pairing_a_display_opens_its_board(client, clinic):
    _device, code = device_add(actor=clinic.user(6), name="Wall", colour="black",
                               kind="display", board_id=clinic.board.id)
    db.session.commit()
    body = client.post("/pair", json={"code": code}).get_json()
    assert body["next"] == f"/boards/{clinic.board.id}"
    assert client.get(body["next"]).status_code == 200  # the display's own session


def test_rename_recolour_and_revoke_from_the_pages(client, clinic, login, paired):
    device, token = paired
    login(clinic.user(6))
    response = client.post(f"/devices/{device.id}/edit",
                           data={"name": "Surgery", "colour": "red", "number": "3"})
    assert response.status_code == 302
    assert db.session.get(Device, device.id).label == "Red #3"
    bad = client.post(f"/devices/{device.id}/edit", data={"name": "", "colour": "red"})
    assert bad.status_code == 422 and db.session.get(Device, device.id).name == "Surgery"
    assert client.post(f"/devices/{device.id}/revoke").status_code == 302
    answer = client.post("/api/sync", json={"device": device.public_id, "sent_at":
                                            "2026-11-22T10:00:00Z", "ops": []},
                         headers=bearer(token))
    assert answer.status_code == 401 and "ask a manager" in answer.get_json()["message"]
    page = client.post(f"/devices/{device.id}/pair").get_data(as_text=True)
    assert "pairing-code" in page


# ---- The tablet session and the lock screen's staff list -------------------------------

def test_a_paired_tablet_reads_pages_without_a_person_signed_in(client, clinic, paired):
    device, token = paired
    patient = factories.patient_make(clinic, "Rex")
    assert client.get(f"/patients/{patient.uid}/sheet").status_code == 302  # not yet
    assert client.post("/tablet/claim", headers=bearer(token)).status_code == 200
    page = client.get(f"/patients/{patient.uid}/sheet").get_data(as_text=True)
    assert 'data-tablet="d_1"' in page and "data-user=" not in page
    # Every action is on the page; the tablet hides what the person who unlocked may not do.
    assert 'data-min-level="4"' in page and "+ Order" in page
    assert client.get(f"/patients/{patient.uid}/orders/new").status_code == 200
    assert client.get(f"/boards/{clinic.board.id}").status_code == 200
    # Writing through a form still needs a person: tablets write through their outbox.
    assert client.post(f"/patients/{patient.uid}/notes", data={"text": "x"}).status_code \
        in (401, 403)
    assert client.get("/admin/").status_code == 302


def test_claim_refuses_a_wrong_or_display_token(client, clinic):
    _d, code = device_add(actor=clinic.user(6), name="Wall", colour="black", kind="display",
                          board_id=clinic.board.id)
    _d, token = device_pair(code=code)
    db.session.commit()
    for headers in (bearer("x" * 40), bearer(token), {}):
        response = client.post("/tablet/claim", headers=headers)
        assert response.status_code == 401 and "ask a manager" in response.get_json()["message"]


def test_the_staff_list_gives_verifiers_to_that_tablet_only(client, clinic, login, paired):
    device, token = paired
    response = client.get(f"/api/devices/{device.public_id}/staff", headers=bearer(token))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["lock_minutes"] == 5 and body["pin_tries"] == 5
    names = {s["name"]: s for s in body["staff"]}
    assert names["Level 3"]["level"] == 3 and names["Level 3"]["id"] == clinic.user(3).public_id
    assert names["Level 3"]["verifier"].startswith("pbkdf2_sha256$")
    assert "pin_hash" not in str(body) and clinic.user(3).pin_hash not in str(body)
    assert client.get("/api/devices/d_99/staff", headers=bearer(token)).status_code == 401
    login(clinic.user(6))  # a signed-in person is not a tablet
    assert client.get(f"/api/devices/{device.public_id}/staff").status_code == 401


def test_five_wrong_pins_on_the_sign_in_page_lock_that_user_out(client, clinic, paired):
    user = clinic.user(2)
    client.post("/tablet/claim", headers=bearer(paired[1]))  # a PIN signs in on tablets only
    for _ in range(5):
        response = client.post("/login/pin", data={"user_id": user.id, "pin": "1234"})
        assert response.status_code == 401
    response = client.post("/login/pin", data={"user_id": user.id, "pin": "2222"})
    assert response.status_code == 401
    assert "Too many wrong PINs or passwords" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "user_id" not in session


def test_signing_out_on_a_tablet_keeps_it_paired(client, clinic, paired, login):
    _device, token = paired
    client.post("/tablet/claim", headers=bearer(token))
    client.post("/login", data={"username": "user3", "password": "password-3"})
    with client.session_transaction() as session:
        assert session["user_id"] == clinic.user(3).id and session["tablet_id"] == 1
        assert session["signed_in_at"] > 0
    client.post("/logout")
    with client.session_transaction() as session:
        assert "user_id" not in session and session["tablet_id"] == 1


# ---- Offline pages follow the assignment -----------------------------------------------

def test_an_assigned_tablet_keeps_only_its_patients_and_its_wards_board(client, clinic,
                                                                         paired):
    device, token = paired
    surgery = Ward(name="Surgery")
    db.session.add(surgery)
    db.session.commit()
    from kiosk.whiteboards.services import board_create

    other_board = board_create(actor=clinic.user(6), name="Surgery board", kind="ward",
                               ward=surgery.id)
    mine = factories.patient_make(clinic, "Rex")
    picked = factories.patient_make(clinic, "Ada", ward=surgery)
    elsewhere = factories.patient_make(clinic, "Milo", ward=surgery)
    everything = client.get("/tablet/offline-pages", headers=bearer(token)).get_json()
    assert not everything["assigned"]
    assert f"/patients/{elsewhere.uid}/sheet" in everything["urls"]
    device_assign_ward(actor=clinic.user(6), device=device, ward_id=clinic.ward.id)
    from kiosk.devices.services import device_patient_assign

    device_patient_assign(actor=clinic.user(6), device=device, patient=picked)
    db.session.commit()
    body = client.get("/tablet/offline-pages", headers=bearer(token)).get_json()
    assert body["assigned"]
    urls = body["urls"]
    assert f"/patients/{mine.uid}/sheet" in urls and f"/patients/{picked.uid}/sheet" in urls
    assert f"/patients/{elsewhere.uid}/sheet" not in urls
    assert f"/boards/{clinic.board.id}" in urls and f"/boards/{other_board.id}" not in urls


# ---- The assignment page and its PDFs --------------------------------------------------

def test_the_assignment_page_shows_devices_and_the_patients_they_carry(client, clinic, login,
                                                                       paired):
    device, _ = paired
    patient = factories.patient_make(clinic, "Rex <b>", cage="C3")
    login(clinic.user(1))
    page = client.get("/devices/assignments").get_data(as_text=True)
    assert "Blue #2" in page and "Not assigned" in page and "Set ward" not in page
    login(clinic.user(6))
    response = client.post(f"/devices/{device.id}/patients", data={"patient": patient.uid},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    fragment = response.get_data(as_text=True)
    assert fragment.startswith("\n<section") or 'id="assignment-list"' in fragment
    assert "Rex &lt;b&gt;" in fragment and "C3" in fragment and "<html" not in fragment
    sheet = client.get(f"/patients/{patient.uid}/sheet").get_data(as_text=True)
    assert "on <span" in sheet and "Blue #2" in sheet
    board = client.get(f"/boards/{clinic.board.id}").get_data(as_text=True)
    assert 'title="Carried by Blue #2"' in board


def test_assigning_a_discharged_patient_is_refused_on_the_page(client, clinic, login, paired):
    device, _ = paired
    patient = factories.patient_make(clinic, "Rex")
    patient_discharge(patient=patient, user=clinic.user(6))
    db.session.commit()
    login(clinic.user(6))
    response = client.post(f"/devices/{device.id}/patients", data={"patient": patient.uid},
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "Rex is discharged" in response.get_data(as_text=True)
    assert count(DevicePatient) == 0


def test_the_assignment_list_and_labels_print_as_pdf(client, clinic, login, paired):
    factories.patient_make(clinic, "Rex")
    login(clinic.user(6))
    for url in ("/devices/assignments.pdf", "/devices/labels.pdf"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.data.startswith(b"%PDF")
    login(clinic.user(3))
    assert client.get("/devices/assignments.pdf").status_code == 200
    assert client.get("/devices/labels.pdf").status_code == 403


# ---- The sync dashboard ----------------------------------------------------------------

def sync(client, device, token, *, pending, client_info=None):
    body = {"device": device.public_id, "sent_at": utcnow_ms(),
            "outbox": {"pending": pending, "oldest_at": "2026-11-22T08:00:00Z"}, "ops": []}
    if client_info is not None:
        body["client"] = client_info
    return client.post("/api/sync", json=body, headers=bearer(token))


def test_the_dashboard_says_at_a_glance_who_still_holds_work(client, clinic, login, paired):
    device, token = paired
    login(clinic.user(1))
    assert "never heard from" in client.get("/devices/sync").get_data(as_text=True)
    assert sync(client, device, token, pending=3,
                client_info={"app_version": "0.1.0", "battery": 0.42, "charging": True}
                ).status_code == 200
    page = client.get("/devices/sync").get_data(as_text=True)
    assert "1 tablet holds unsent changes: Blue #2 (3)" in page and "42%" in page
    assert 'data-state="waiting"' in page and "holds 3 unsent (last heard " in page
    assert sync(client, device, token, pending=0).status_code == 200
    page = client.get("/devices/sync", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "All 1 device synced" in page and "<html" not in page


def test_all_sent_lasts_only_as_long_as_the_tablets_own_report(
        client, clinic, login, paired, frozen_clock):
    """A tablet that said "nothing waits here" at 12:00 may have recorded changes offline
    since: after two minutes without a report the dashboard no longer says it synced."""
    settings_update_zone("Europe/Paris")
    device, token = paired
    assert sync(client, device, token, pending=0).status_code == 200
    login(clinic.user(1))
    page = client.get("/devices/sync").get_data(as_text=True)
    assert "all sent (confirmed 13:00)" in page and "sync-verdict ok" in page
    frozen_clock.advance(seconds=119)
    assert "sync-verdict ok" in client.get("/devices/sync").get_data(as_text=True)
    frozen_clock.advance(seconds=2)  # 12:02:01 in UTC, no report since 12:00
    page = client.get("/devices/sync").get_data(as_text=True)
    assert "sync-verdict ok" not in page and "All 1 device synced" not in page
    assert "not heard since 13:00" in page and 'data-state="silent"' in page
    assert "1 not heard from lately, so it may hold changes: Blue #2" in page
    # Its next report confirms again.
    assert sync(client, device, token, pending=0).status_code == 200
    page = client.get("/devices/sync").get_data(as_text=True)
    assert "all sent (confirmed 13:02)" in page and "sync-verdict ok" in page


def test_one_unconfirmed_tablet_keeps_the_answer_no(client, clinic, login, paired):
    device, token = paired
    other, code = device_add(actor=clinic.user(6), name="Ward 2", colour="green", number=4)
    other, other_token = device_pair(code=code)
    db.session.commit()
    _, code = device_add(actor=clinic.user(6), name="Hall", colour="red", number=9,
                         kind="display", board_id=clinic.board.id)
    device_pair(code=code)  # a paired wall display, never heard from on /api/sync
    db.session.commit()
    assert sync(client, device, token, pending=0).status_code == 200
    login(clinic.user(1))
    page = client.get("/devices/sync").get_data(as_text=True)
    assert "sync-verdict bad" in page and "Not confirmed synced" in page
    assert "never heard from" in page and "all sent (confirmed" in page
    # A wall display keeps no changes: it neither counts nor blocks the answer.
    assert "wall display: keeps no changes" in page
    assert sync(client, other, other_token, pending=0).status_code == 200
    page = client.get("/devices/sync").get_data(as_text=True)
    assert "All 2 devices synced" in page


def test_no_tablet_is_no_green_tick(client, clinic, login):
    login(clinic.user(1))
    page = client.get("/devices/sync").get_data(as_text=True)
    assert "No tablet is paired yet" in page and "✓" not in page


def settings_update_zone(zone: str) -> None:
    from kiosk.clinic.selectors import settings_get

    settings_get().timezone = zone
    db.session.commit()


def test_a_heartbeats_odd_extras_are_ignored_never_refused(client, clinic, paired):
    device, token = paired
    for info in ({"app_version": "x" * 500, "battery": 7, "charging": "yes"}, "junk", 12):
        assert sync(client, device, token, pending=0, client_info=info).status_code == 200
    db.session.expire_all()
    row = db.session.get(Device, device.id)
    assert row.app_version is None and row.battery_pct is None and row.battery_charging is None


def test_the_lock_time_is_a_clinic_setting(client, clinic, login, paired):
    login(clinic.user(6))
    form = {"name": "Test Hospital", "timezone": "UTC", "board_hours_back": 2,
            "board_hours_ahead": 10, "due_grace_minutes": 15, "board_rotate_seconds": 15}
    bad = client.post("/admin/settings", data={**form, "tablet_lock_minutes": "0"})
    assert bad.status_code == 422 and "Tablet lock" in bad.get_data(as_text=True)
    assert clinic.settings.tablet_lock_minutes == 5
    assert client.post("/admin/settings", data={**form, "tablet_lock_minutes": "2"}
                       ).status_code == 302
    body = client.get(f"/api/devices/{paired[0].public_id}/staff",
                      headers=bearer(paired[1])).get_json()
    assert body["lock_minutes"] == 2


def test_a_server_without_pango_says_why_there_is_no_pdf(client, clinic, login, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if it could not load
    login(clinic.user(6))
    response = client.get("/devices/assignments.pdf")
    assert response.status_code == 503
    assert "needs the Pango library" in response.get_data(as_text=True)
    assert client.get("/devices/assignments").status_code == 200  # the page itself works
