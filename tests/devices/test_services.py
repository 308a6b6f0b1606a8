"""Devices: pairing codes, renaming, assignment, and what each refusal leaves unchanged."""

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kiosk.clinic.models import Ward
from kiosk.core.errors import DomainError, Forbidden
from kiosk.devices.models import Device, DevicePatient
from kiosk.devices.selectors import (
    assignment_cards,
    carried_patients,
    carriers_by_patient,
    dashboard_rows,
    dashboard_summary,
)
from kiosk.devices.services import (
    ERR_CODE_EXPIRED,
    ERR_CODE_FORMAT,
    ERR_CODE_USED,
    ERR_CODE_WRONG,
    code_normalise,
    device_add,
    device_assign_ward,
    device_by_token,
    device_pair,
    device_pairing_start,
    device_patient_assign,
    device_patient_unassign,
    device_revoke,
    device_update,
)
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.staff.services import (
    PIN_TRIES,
    pin_verifier_make,
    user_authenticate_pin,
)
from tests import factories


def snapshot(device: Device) -> dict:
    """Every column of a device, to show a refused request changed nothing."""
    db.session.expire_all()
    row = db.session.get(Device, device.id)
    return {c.name: getattr(row, c.name) for c in Device.__table__.columns}


def links() -> int:
    return db.session.scalar(select(func.count(DevicePatient.id)))


def added(clinic, **fields) -> tuple[Device, str]:
    data = {"name": "Ward 1 tablet", "colour": "blue", "number": 2, **fields}
    device, code = device_add(actor=clinic.user(6), **data)
    db.session.commit()
    return device, code


# ---- Pairing ---------------------------------------------------------------------------

def test_a_code_pairs_once_and_gives_a_token_stored_hashed(clinic):
    device, code = added(clinic)
    assert device.token_hash is None and not device.is_paired
    assert len(code) == 8 and code_normalise(code) == code
    # Typed with a dash, spaces and lower case, as people do.
    paired, token = device_pair(code=f" {code[:4].lower()}-{code[4:]} ")
    db.session.commit()
    assert paired.id == device.id
    assert paired.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(snapshot(device).values())
    assert device_by_token(token).id == device.id
    with pytest.raises(DomainError) as again:
        device_pair(code=code)
    assert again.value.code == "used_code" and again.value.message == ERR_CODE_USED


def test_an_expired_code_gives_no_token_and_changes_nothing(clinic):
    device, code = added(clinic)
    device.pairing_expires_at = device.pairing_expires_at - timedelta(minutes=11)
    db.session.commit()
    before = snapshot(device)
    with pytest.raises(DomainError) as refused:
        device_pair(code=code)
    db.session.rollback()
    assert refused.value.code == "expired_code" and refused.value.message == ERR_CODE_EXPIRED
    assert snapshot(device) == before and before["token_hash"] is None


@pytest.mark.parametrize("typed, code, message", [
    ("", "bad_code", ERR_CODE_FORMAT),
    ("K7PM", "bad_code", ERR_CODE_FORMAT),
    ("K7PM-4QX0", "bad_code", ERR_CODE_FORMAT),  # 0 is never in a code
    ("x" * 5000, "bad_code", ERR_CODE_FORMAT),
    (None, "bad_code", ERR_CODE_FORMAT),
    (12345678, "bad_code", ERR_CODE_FORMAT),
    ("ZZZZ-ZZZZ", "wrong_code", ERR_CODE_WRONG),
])
def test_a_wrong_code_gives_no_token_and_changes_nothing(clinic, typed, code, message):
    device, _real = added(clinic)
    before = snapshot(device)
    with pytest.raises(DomainError) as refused:
        device_pair(code=typed)
    db.session.rollback()
    assert (refused.value.code, refused.value.message) == (code, message)
    assert snapshot(device) == before


def test_a_new_code_replaces_the_old_and_the_old_token_works_until_it_is_used(clinic):
    device, first = added(clinic)
    _, token = device_pair(code=first)
    db.session.commit()
    second = device_pairing_start(actor=clinic.user(6), device=device)
    db.session.commit()
    assert device_by_token(token) is not None  # still the tablet until the code is used
    _, new_token = device_pair(code=second)
    db.session.commit()
    assert device_by_token(token) is None and device_by_token(new_token).id == device.id


def test_repairing_a_revoked_device_brings_it_back_with_its_history(clinic):
    device, code = added(clinic)
    _, token = device_pair(code=code)
    device.last_seq = 41
    device_revoke(actor=clinic.user(6), device=device)
    db.session.commit()
    assert device_by_token(token) is None
    code = device_pairing_start(actor=clinic.user(6), device=device)
    _, token = device_pair(code=code)
    db.session.commit()
    assert device_by_token(token).id == device.id
    assert device.revoked_at is None and device.last_seq == 41


def test_revoking_cancels_a_code_handed_out_before(clinic):
    device, code = added(clinic)
    device_revoke(actor=clinic.user(6), device=device)
    db.session.commit()
    with pytest.raises(DomainError) as refused:
        device_pair(code=code)
    assert refused.value.code == "wrong_code"


def test_a_browser_holding_another_tablets_changes_is_not_paired_over_them(clinic):
    device, code = added(clinic)
    before = snapshot(device)
    with pytest.raises(DomainError) as refused:
        device_pair(code=code, holding="d_99", holding_pending=3)
    db.session.rollback()
    assert refused.value.code == "holds_changes" and "3 unsent changes of d_99" in \
        refused.value.message
    assert snapshot(device) == before
    # Its own id (a re-paired tablet keeps its waiting changes) is fine.
    paired, _ = device_pair(code=code, holding=device.public_id, holding_pending=3)
    assert paired.id == device.id


def test_only_managers_add_pair_rename_and_assign(clinic):
    device, _ = added(clinic)
    before = snapshot(device)
    for call in (
        lambda u: device_add(actor=u, name="X", colour="red"),
        lambda u: device_pairing_start(actor=u, device=device),
        lambda u: device_update(actor=u, device=device, name="X", colour="red"),
        lambda u: device_assign_ward(actor=u, device=device, ward_id=clinic.ward.id),
    ):
        with pytest.raises(Forbidden, match="level 6"):
            call(clinic.user(5))
        db.session.rollback()
    assert snapshot(device) == before
    assert db.session.scalar(select(func.count(Device.id))) == 1


@pytest.mark.parametrize("fields, field", [
    ({"name": ""}, "name"), ({"colour": "pink"}, "colour"), ({"number": "0"}, "number"),
    ({"number": "two"}, "number"), ({"kind": "phone"}, "kind"), ({"name": "x" * 81}, "name"),
    ({"kind": "display", "board_id": None}, "board"),
])
def test_adding_a_device_with_bad_fields_is_refused_and_adds_nothing(clinic, fields, field):
    data = {"name": "Ward 1 tablet", "colour": "blue", "number": 2, **fields}
    with pytest.raises(DomainError) as refused:
        device_add(actor=clinic.user(6), **data)
    db.session.rollback()
    assert refused.value.field == field
    assert db.session.scalar(select(func.count(Device.id))) == 0


def test_renaming_and_recolouring(clinic):
    device, _ = added(clinic)
    device_update(actor=clinic.user(6), device=device, name="Surgery", colour="RED", number="3")
    db.session.commit()
    assert (device.name, device.colour, device.number, device.label) == \
        ("Surgery", "red", 3, "Red #3")
    before = snapshot(device)
    with pytest.raises(DomainError):
        device_update(actor=clinic.user(6), device=device, name="Surgery", colour="teal")
    db.session.rollback()
    assert snapshot(device) == before


def test_a_display_is_added_for_a_board(clinic):
    display, code = added(clinic, kind="display", colour="black", board_id=clinic.board.id)
    assert display.kind == "display" and display.board_id == clinic.board.id
    paired, _token = device_pair(code=code)
    assert paired.kind == "display"


# ---- Assignment ------------------------------------------------------------------------

def test_a_ward_and_picked_patients_make_what_a_tablet_carries(clinic):
    device, _ = added(clinic)
    other_ward = Ward(name="Surgery")
    db.session.add(other_ward)
    db.session.commit()
    icu_one = factories.patient_make(clinic, "Rex", cage="3")
    icu_two = factories.patient_make(clinic, "Ada", cage="1")
    away = factories.patient_make(clinic, "Milo", ward=other_ward)
    assert carried_patients(device) is None  # unassigned: carries everyone
    device_assign_ward(actor=clinic.user(6), device=device, ward_id=str(clinic.ward.id))
    device_patient_assign(actor=clinic.user(6), device=device, patient=away)
    device_patient_assign(actor=clinic.user(6), device=device, patient=away)  # no double
    db.session.commit()
    assert [p.name for p in carried_patients(device)] == ["Ada", "Rex", "Milo"]
    assert links() == 1
    carriers = carriers_by_patient([icu_one, icu_two, away])
    assert [d.label for d in carriers[away.id]] == ["Blue #2"]
    assert [d.label for d in carriers[icu_one.id]] == ["Blue #2"]
    device_patient_unassign(actor=clinic.user(6), device=device, patient=away)
    device_assign_ward(actor=clinic.user(6), device=device, ward_id="")
    db.session.commit()
    assert carried_patients(device) is None and carriers_by_patient([away])[away.id] == []


def test_a_discharged_patient_leaves_the_tablet_it_was_on(clinic):
    device, _ = added(clinic)
    patient = factories.patient_make(clinic, "Rex")
    device_patient_assign(actor=clinic.user(6), device=device, patient=patient)
    patient_discharge(patient=patient, user=clinic.user(6))
    db.session.commit()
    assert carried_patients(device) == []
    assert carriers_by_patient([patient])[patient.id] == []  # one rule: admitted ones only


def test_assigning_a_discharged_patient_is_refused_with_the_reason(clinic):
    device, _ = added(clinic)
    patient = factories.patient_make(clinic, "Rex")
    patient_discharge(patient=patient, user=clinic.user(6))
    db.session.commit()
    with pytest.raises(DomainError) as refused:
        device_patient_assign(actor=clinic.user(6), device=device, patient=patient)
    db.session.rollback()
    assert refused.value.code == "discharged"
    assert "Rex is discharged" in refused.value.message
    assert links() == 0


def test_assigning_to_a_revoked_device_or_a_display_is_refused(clinic):
    device, _ = added(clinic)
    display, _ = added(clinic, name="Wall", kind="display", colour="black",
                       board_id=clinic.board.id)
    patient = factories.patient_make(clinic, "Rex")
    device_revoke(actor=clinic.user(6), device=device)
    db.session.commit()
    before = snapshot(device)
    for target, code in ((device, "device_revoked"), (display, "not_a_tablet")):
        with pytest.raises(DomainError) as refused:
            device_patient_assign(actor=clinic.user(6), device=target, patient=patient)
        db.session.rollback()
        assert refused.value.code == code
        with pytest.raises(DomainError):
            device_assign_ward(actor=clinic.user(6), device=target, ward_id=clinic.ward.id)
        db.session.rollback()
    assert snapshot(device) == before and links() == 0


def test_an_unknown_ward_is_refused(clinic):
    device, _ = added(clinic)
    before = snapshot(device)
    for ward in ("999", "abc"):
        with pytest.raises(DomainError) as refused:
            device_assign_ward(actor=clinic.user(6), device=device, ward_id=ward)
        db.session.rollback()
        assert refused.value.code == "no_ward"
    assert snapshot(device) == before


def test_assignment_cards_for_the_page_and_the_pdf(clinic):
    device, _ = added(clinic)
    added(clinic, name="Spare", colour="white", number=5)
    factories.patient_make(clinic, "Rex", cage="3")
    device_assign_ward(actor=clinic.user(6), device=device, ward_id=clinic.ward.id)
    db.session.commit()
    cards = {c["label"]: c for c in assignment_cards()}
    assert cards["Blue #2"]["ward"] == "ICU" and cards["Blue #2"]["assigned"]
    assert [p["name"] for p in cards["Blue #2"]["patients"]] == ["Rex"]
    assert cards["White #5"]["patients"] == [] and not cards["White #5"]["assigned"]


# ---- The dashboard ---------------------------------------------------------------------

def test_the_dashboard_puts_waiting_and_silent_devices_first(clinic):
    quiet, _ = added(clinic, name="Quiet", number=1)
    busy, _ = added(clinic, name="Busy", number=3)
    fine, _ = added(clinic, name="Fine", number=4)
    added(clinic, name="New", number=5)  # never paired: nothing to sync, never "silent"
    wall, _ = added(clinic, name="Wall", number=6, kind="display", board_id=clinic.board.id)
    for device in (quiet, busy, fine, wall):
        device.token_hash = f"hash-{device.id}"
    from kiosk.core.clock import utcnow

    now = utcnow()
    busy.last_seen_at, busy.outbox_pending = now, 4
    fine.last_seen_at, fine.outbox_pending = now, 0
    quiet.last_seen_at = now - timedelta(minutes=30)
    db.session.commit()
    rows = dashboard_rows(now=now)
    assert [(r.device.name, r.state) for r in rows] == \
        [("Busy", "waiting"), ("Quiet", "silent"), ("Fine", "ok"), ("Wall", "display"),
         ("New", "unpaired")]
    summary = dashboard_summary(rows)
    assert summary.devices == 3 and not summary.all_synced  # the display does not count
    assert [r.device.name for r in summary.waiting] == ["Busy"]
    assert [r.device.name for r in summary.silent] == ["Quiet"]


# ---- PINs ------------------------------------------------------------------------------

def test_the_pin_verifier_is_pbkdf2_and_not_the_servers_hash(clinic):
    user = clinic.user(3)
    algorithm, rounds, salt, digest = user.pin_verifier.split("$")
    assert algorithm == "pbkdf2_sha256" and int(rounds) == 1000
    expected = hashlib.pbkdf2_hmac("sha256", b"3333", bytes.fromhex(salt), 1000, dklen=32)
    assert digest == expected.hex()
    assert user.pin_verifier != user.pin_hash
    assert pin_verifier_make("3333") != user.pin_verifier  # a fresh salt each time


def test_five_wrong_pins_lock_the_user_out_wherever_they_try(clinic):
    user = clinic.user(3)
    for _ in range(PIN_TRIES):
        with pytest.raises(DomainError) as wrong:
            user_authenticate_pin(user_id=user.id, pin="9999")
        db.session.commit()
        assert wrong.value.code == "bad_pin"
    with pytest.raises(DomainError) as locked:
        user_authenticate_pin(user_id=user.id, pin="3333")
    assert locked.value.code == "pin_locked" and "Level 3 is locked out" in locked.value.message
    db.session.rollback()
    # Someone else is not locked out.
    assert user_authenticate_pin(user_id=clinic.user(2).id, pin="2222") == clinic.user(2)


def test_a_pin_of_the_wrong_length_is_refused_before_any_check(clinic):
    user = clinic.user(3)
    for pin in ("333", "3333333", "33a3", ""):
        with pytest.raises(DomainError) as refused:
            user_authenticate_pin(user_id=user.id, pin=pin)
        assert refused.value.code == "bad_pin" and "4 to 6 digits" in refused.value.message
        db.session.commit()
    db.session.expire_all()
    assert user.sign_in_failures == 0  # never counted


def test_a_heartbeat_pokes_the_dashboard_only_and_an_assignment_the_tablet_too(clinic):
    from kiosk.core.events import DomainEvent
    from kiosk.live.pokes import pokes_for

    def topics(*events):
        return sorted((room, poke["topic"]) for room, poke in pokes_for(list(events)))

    # Heartbeats come every minute from every tablet: they must not redraw the lists a
    # manager is editing (a pick would be lost), only the dashboard.
    assert topics(DomainEvent("device.synced", {"device": 3})) == [("devices", "sync")]
    assert topics(DomainEvent("device.assigned", {"device": 3})) == [
        ("device:3", "assignment"), ("devices", "devices"), ("devices", "sync")]


def test_the_assignment_list_takes_the_same_queries_for_any_number_of_devices(clinic):
    from sqlalchemy import event

    def queries_for(devices: int) -> int:
        for n in range(devices):
            device, _ = added(clinic, name=f"T{n}", number=n + 1)
            patient = factories.patient_make(clinic, f"P{devices}-{n}")
            device_patient_assign(actor=clinic.user(6), device=device, patient=patient)
            db.session.commit()
        db.session.expire_all()
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            cards = assignment_cards()
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert all(card["patients"] for card in cards)
        return len(statements)

    # devices (with their ward and board), picks, admitted patients
    assert queries_for(2) == queries_for(6) <= 3
