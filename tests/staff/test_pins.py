"""The PINs tablets can check offline: 6 digits for levels 5–6 (one rule for every way a PIN
or a level is set), verifiers with more rounds, and only the people of a tablet's wards."""

import json

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from kiosk.cli import main
from kiosk.clinic.models import Ward
from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError
from kiosk.devices.models import DevicePatient
from kiosk.devices.services import device_add, device_pair
from kiosk.extensions import db
from kiosk.staff.models import User
from kiosk.staff.services import (
    pin_verifier_make,
    user_authenticate_pin,
    user_create,
    user_set_pin,
    user_update,
)
from tests import factories


def count_users() -> int:
    return db.session.scalar(select(func.count(User.id)))


# ---- 6 digits for level 5 and up -----------------------------------------------------------

@pytest.mark.parametrize("level", [5, 6])
def test_a_level_5_or_6_user_with_a_4_digit_pin_is_refused(clinic, level):
    before = count_users()
    with pytest.raises(DomainError) as refused:
        user_create(name="New vet", level=level, pin="1234")
    db.session.rollback()
    assert refused.value.field == "pin" and "6 digits" in refused.value.message
    assert count_users() == before
    assert user_create(name="New vet", level=level, pin="123456").pin_length == 6


def test_the_admin_form_refuses_a_short_pin_for_level_5(client, clinic, login):
    login(clinic.user(6))
    before = count_users()
    response = client.post("/admin/staff/new", data={"name": "New vet", "level": "5",
                                                     "pin": "12345"})
    assert response.status_code == 422 and "6 digits" in response.get_data(as_text=True)
    assert count_users() == before


def test_the_command_line_refuses_a_short_pin_for_level_6(runner, clinic):
    before = count_users()
    result = runner.invoke(main, ["users", "add", "--name", "Boss", "--level", "6",
                                  "--pin", "1234"])
    assert result.exit_code != 0 and "6 digits" in result.output
    assert count_users() == before


def test_a_new_pin_for_a_level_6_user_needs_6_digits(clinic):
    manager = clinic.user(6)
    verifier = manager.pin_verifier
    with pytest.raises(DomainError) as refused:
        user_set_pin(user=manager, actor=manager, pin="4321")
    db.session.rollback()
    assert refused.value.field == "pin" and "6 digits" in refused.value.message
    assert manager.pin_verifier == verifier
    assert not db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "user.set_pin"))


def test_raising_a_4_digit_user_to_level_5_is_refused_until_a_new_pin(clinic):
    tech, manager = clinic.user(4), clinic.user(6)
    with pytest.raises(DomainError) as refused:
        user_update(user=tech, actor=manager, name=tech.name, level=5, active=True)
    db.session.rollback()
    assert refused.value.field == "level"
    assert "new 6-digit PIN first" in refused.value.message
    assert tech.level == 4
    user_set_pin(user=tech, actor=manager, pin="424242")
    user_update(user=tech, actor=manager, name=tech.name, level=5, active=True)
    db.session.commit()
    assert tech.level == 5


def test_a_level_5_user_still_holding_a_4_digit_pin_cannot_sign_in_with_it(clinic):
    # Set before the rule: the stored PIN is 4 digits, its length unknown.
    vet = clinic.user(5)
    vet.pin_hash = generate_password_hash("5555", method="pbkdf2:sha256:1000")
    vet.pin_verifier, vet.pin_length = pin_verifier_make("5555"), None
    db.session.commit()
    with pytest.raises(DomainError) as refused:
        user_authenticate_pin(user_id=vet.id, pin="5555")
    assert refused.value.code == "short_pin" and "ask a manager" in refused.value.message
    db.session.rollback()
    assert vet.sign_in_failures == 0


# ---- Verifiers ------------------------------------------------------------------------------

def test_new_verifiers_get_at_least_150000_rounds_by_default():
    import config.default

    assert config.default.KIOSK_PIN_VERIFIER_ITERATIONS >= 150_000


def test_pins_set_under_older_rules_are_flagged_on_the_staff_page(client, clinic, login, app):
    app.config["KIOSK_PIN_VERIFIER_ITERATIONS"] = 2000  # above the test users' 1000
    login(clinic.user(6))
    page = client.get("/admin/staff").get_data(as_text=True)
    assert page.count("Reset PIN (weak verifier)") == 6
    user_set_pin(user=clinic.user(3), actor=clinic.user(6), pin="3434")
    db.session.commit()
    assert clinic.user(3).pin_verifier.split("$")[1] == "2000"
    page = client.get("/admin/staff").get_data(as_text=True)
    assert page.count("Reset PIN (weak verifier)") == 5


# ---- Only the people of the tablet's wards --------------------------------------------------

@pytest.fixture
def two_wards(clinic):
    """A second ward, and a nurse who works only there (the clinic's users: ICU only)."""
    ward = Ward(name="Surgery", code="SUR")
    db.session.add(ward)
    db.session.flush()
    nurse = user_create(name="Surgery nurse", level=3, pin="7777", wards=[ward.id])
    db.session.commit()
    return ward, nurse


def _tablet(clinic, ward=None):
    device, code = device_add(actor=clinic.user(6), name="T", colour="blue", number=7)
    device, token = device_pair(code=code)
    device.ward_id = ward.id if ward is not None else None
    db.session.commit()
    return device, token


def _staff_names(client, device, token) -> set[str]:
    response = client.get(f"/api/devices/{device.public_id}/staff",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return {s["name"] for s in response.get_json()["staff"]}


def test_a_tablet_gets_the_verifiers_of_its_wards_people_only(client, clinic, two_wards):
    ward, _nurse = two_wards
    device, token = _tablet(clinic, clinic.ward)
    assert _staff_names(client, device, token) == {f"Level {n}" for n in range(1, 7)}
    device.ward_id = ward.id
    db.session.commit()
    assert _staff_names(client, device, token) == {"Surgery nurse"}


def test_a_tablet_without_a_ward_goes_by_its_patients_wards(client, clinic, two_wards):
    ward, _nurse = two_wards
    device, token = _tablet(clinic)
    # Carrying nothing it carries every patient: everyone.
    assert "Surgery nurse" in _staff_names(client, device, token)
    patient = factories.patient_make(clinic, ward=ward)
    db.session.add(DevicePatient(device_id=device.id, patient_id=patient.id))
    db.session.commit()
    assert _staff_names(client, device, token) == {"Surgery nurse"}


def test_a_level_5_pin_of_unknown_length_is_not_handed_out(client, clinic):
    vet = clinic.user(5)
    vet.pin_length = None  # set before lengths were kept
    db.session.commit()
    device, token = _tablet(clinic, clinic.ward)
    names = _staff_names(client, device, token)
    assert "Level 5" not in names and "Level 6" in names


def test_the_wards_are_edited_on_the_staff_form(client, clinic, login, two_wards):
    ward, _nurse = two_wards
    user = clinic.user(3)
    login(clinic.user(6))
    response = client.post(f"/admin/staff/{user.id}", data={
        "name": user.name, "level": "3", "active": "1", "wards_shown": "1",
        "wards": [str(ward.id)]})
    assert response.status_code == 302
    db.session.expire_all()
    assert [w.name for w in user.wards] == ["Surgery"]
    bad = client.post(f"/admin/staff/{user.id}", data={
        "name": "Renamed", "level": "3", "active": "1", "wards_shown": "1", "wards": ["999"]})
    assert bad.status_code == 422 and "Choose wards from the list" in bad.get_data(as_text=True)
    db.session.expire_all()
    assert user.name == "Level 3" and [w.name for w in user.wards] == ["Surgery"]


def test_the_command_line_adds_a_user_on_named_wards(runner, clinic, two_wards):
    result = runner.invoke(main, ["users", "add", "--name", "Night tech", "--level", "2",
                                  "--pin", "2468", "--ward", "sur"])
    assert result.exit_code == 0, result.output
    made = json.loads(result.output.strip().splitlines()[-1])
    assert made["wards"] == ["Surgery"]
    before = count_users()
    bad = runner.invoke(main, ["users", "add", "--name", "X", "--level", "2", "--pin", "2468",
                               "--ward", "Nowhere"])
    assert bad.exit_code != 0 and "There is no ward 'Nowhere'" in bad.output
    assert count_users() == before


def test_the_upgrade_puts_everyone_on_every_ward(tmp_path):
    """Nothing changes for a clinic that upgrades: each user works on each ward."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from kiosk import create_app

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI":
                                 f"sqlite:///{tmp_path / 'upgraded.db'}"})
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision="8d41f0c2a7b6")
        now = "2026-11-30 08:00:00"
        with db.engine.begin() as conn:
            for n, name in enumerate(("Ana", "Ben"), start=1):
                conn.execute(text(
                    "INSERT INTO users (id, name, level, active, uid, created_at, updated_at) "
                    "VALUES (:id, :name, 3, 1, :uid, :now, :now)"),
                    {"id": n, "name": name, "uid": f"uid-{n}", "now": now})
            for n, name in enumerate(("ICU", "Surgery"), start=1):
                conn.execute(text("INSERT INTO wards (id, name, created_at, updated_at) "
                                  "VALUES (:id, :name, :now, :now)"),
                             {"id": n, "name": name, "now": now})
        upgrade(directory=directory, revision="a7c3e91f5b24")
        with db.engine.connect() as conn:
            pairs = set(conn.execute(text("SELECT user_id, ward_id FROM users_wards")))
            failures = set(conn.execute(text("SELECT sign_in_failures FROM users")))
        assert pairs == {(1, 1), (1, 2), (2, 1), (2, 2)}
        assert failures == {(0,)}
        db.engine.dispose()
