"""Owners' services on the database: phone numbers, saving with every rule checked first,
the patients' copies of the name and phone, opting out and in, links, addresses, reads."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.core.errors import DomainError, Forbidden
from kiosk.extensions import db
from kiosk.owners.models import Owner
from kiosk.owners.selectors import owner_with_patients, owners_search
from kiosk.owners.services import (
    ERR_CHANNEL_CONSENT,
    ERR_CHANNEL_EMAIL,
    ERR_CHANNEL_PHONE,
    ERR_EMAIL,
    ERR_HAS_OWNER,
    ERR_OPT_OUT_AT,
    ERR_PHONE,
    ERR_PHONE_NO_COUNTRY,
    ERR_REASON,
    owner_add_to_patient,
    owner_address,
    owner_link,
    owner_opt_in,
    owner_opt_out,
    owner_save,
)
from kiosk.owners.services import phone_normalise as normalise
from kiosk.patients.services import ERR_OWNER_LINKED, patient_update
from tests import factories

from .helpers import GOOD, audits, count, owner_make, owners_state


def pending_events(name: str) -> list[dict]:
    """The data of the events called `name` waiting for the commit."""
    return [e.data for e in db.session.info.get("pending_events", []) if e.name == name]


# Phone numbers

@pytest.mark.parametrize("raw, country, expected", [
    ("+44 7700 900123", None, "+447700900123"),
    ("0044 7700-900.123", None, "+447700900123"),
    ("+44 (0)7700 900123", None, "+447700900123"),
    ("(07700) 900 123", "44", "+447700900123"),
    ("07700 900123", "+44", "+447700900123"),
    ("+1 (212) 555-0100", "44", "+12125550100"),
    ("+353 85 123 4567", None, "+353851234567"),
    (None, None, None), ("", "44", None), ("   ", "44", None),
])
def test_phone_numbers_become_international(raw, country, expected):
    assert normalise(raw, country_code=country) == expected


@pytest.mark.parametrize("raw", [
    "abc", "+44 7700 ABC123", "7700 900123", "+0447700900123", "+1234567",
    "+1234567890123456", "0", "+", "00", "+44 7700 900123 ext 4", "+٤٤٧٧٠٠٩٠٠١٢٣",
    "+44 7700 900123" + " " * 40,
])
def test_what_is_no_phone_number_is_refused_naming_the_field(raw):
    with pytest.raises(DomainError) as exc:
        normalise(raw, country_code="44")
    assert (exc.value.code, exc.value.field, exc.value.message) == ("bad_phone", "phone",
                                                                     ERR_PHONE)


def test_a_national_number_needs_the_country_code():
    with pytest.raises(DomainError) as exc:
        normalise("07700 900123", country_code=None, field="owner_phone")
    assert (exc.value.code, exc.value.field, exc.value.message) == (
        "no_country_code", "owner_phone", ERR_PHONE_NO_COUNTRY)


def test_the_country_code_comes_from_the_configuration(app, clinic):
    app.config["KIOSK_PHONE_COUNTRY_CODE"] = "44"
    owner = owner_make(clinic.user(3), phone="07700 900456")
    assert owner.phone == "+447700900456"
    app.config["KIOSK_PHONE_COUNTRY_CODE"] = None
    with pytest.raises(DomainError) as exc:
        owner_save(owner=owner, user=clinic.user(3), **{**GOOD, "phone": "07700 900789"})
    db.session.rollback()
    assert exc.value.code == "no_country_code"
    assert owner_with_patients(owner.uid).phone == "+447700900456"


# Saving

def test_an_owner_is_created_with_every_field_and_audited_without_contact_details(
        clinic, frozen_clock):
    owner = owner_save(owner=None, user=clinic.user(3), **GOOD)
    created = pending_events("owner.changed")
    db.session.commit()
    stored = db.session.get(Owner, owner.id)
    assert (stored.name, stored.email, stored.phone, stored.preferred_channel,
            stored.sms_consent, stored.voice_consent, stored.opted_out) == (
        "Ann Smith", "ann@example.com", "+447700900123", "email", True, False, False)
    assert created == [{"owner": owner.uid}]
    entry = audits("owner.create")[0]
    assert entry.user_id == clinic.user(3).id and entry.entity_uid == owner.uid
    assert entry.detail["changed"] == ["name", "email", "phone", "preferred_channel",
                                       "sms_consent", "voice_consent"]
    text = json.dumps(entry.detail)
    assert "Ann" not in text and "example.com" not in text and "7700" not in text


def test_saving_changes_the_owners_patients_copies(clinic, frozen_clock):
    owner = owner_make(clinic.user(3))
    rex, bella = (factories.patient_make(clinic, name) for name in ("Rex", "Bella"))
    for patient in (rex, bella):
        owner_link(patient=patient, owner=owner, user=clinic.user(3))
    db.session.commit()
    assert (rex.owner_name, rex.owner_phone) == ("Ann Smith", "+447700900123")
    owner_save(owner=owner, user=clinic.user(3),
               **{**GOOD, "name": "Ann Jones", "phone": "+44 7700 900999"})
    changed = pending_events("patient.changed")
    db.session.commit()
    db.session.expire_all()
    assert {(p.owner_name, p.owner_phone) for p in (rex, bella)} == {
        ("Ann Jones", "+447700900999")}
    assert sorted(e["patient"] for e in changed) == sorted([rex.uid, bella.uid])
    assert audits("owner.update")[-1].detail == {"changed": ["name", "phone"]}


def test_a_save_that_changes_nothing_writes_nothing(clinic):
    owner = owner_make(clinic.user(3))
    before = owners_state()
    owner_save(owner=owner, user=clinic.user(4), **{**GOOD, "email": " ann@example.com "})
    assert pending_events("owner.changed") == []
    db.session.commit()
    assert owners_state() == before


def test_consent_and_channel_are_audited_with_their_new_values(clinic):
    owner = owner_make(clinic.user(3))
    owner_save(owner=owner, user=clinic.user(3),
               **{**GOOD, "preferred_channel": "voice", "voice_consent": True})
    db.session.commit()
    assert audits("owner.update")[-1].detail == {
        "changed": ["preferred_channel", "voice_consent"],
        "now": {"preferred_channel": "voice", "voice_consent": True}}


BAD = [
    ({"name": "  "}, "required", "name", "Name is required."),
    ({"name": "x" * 121}, "too_long", "name", "Name is longer than 120 characters."),
    ({"email": "ann.example.com"}, "bad_email", "email", ERR_EMAIL),
    ({"email": "ann@example"}, "bad_email", "email", ERR_EMAIL),
    ({"email": "a" * 243 + "@example.com"}, "too_long", "email",
     "The e-mail address is longer than 254 characters."),
    ({"phone": "call me"}, "bad_phone", "phone", ERR_PHONE),
    ({"preferred_channel": "fax"}, "bad_choice", "preferred_channel",
     "The preferred channel must be one of: email, sms, voice, portal."),
    ({"preferred_channel": None}, "bad_choice", "preferred_channel",
     "The preferred channel must be one of: email, sms, voice, portal."),
    ({"email": ""}, "channel_needs_email", "preferred_channel", ERR_CHANNEL_EMAIL),
    ({"preferred_channel": "sms", "phone": ""}, "channel_needs_phone", "preferred_channel",
     ERR_CHANNEL_PHONE.format(channel="SMS")),
    ({"preferred_channel": "sms", "sms_consent": False}, "channel_needs_consent",
     "preferred_channel", ERR_CHANNEL_CONSENT.format(channel="SMS", what="text messages")),
    ({"preferred_channel": "voice", "phone": None, "voice_consent": True},
     "channel_needs_phone", "preferred_channel", ERR_CHANNEL_PHONE.format(channel="Voice call")),
    ({"preferred_channel": "voice"}, "channel_needs_consent", "preferred_channel",
     ERR_CHANNEL_CONSENT.format(channel="Voice call", what="calls")),
    ({"sms_consent": "maybe"}, "bad_consent", "sms_consent",
     "SMS consent must be yes or no (true/false, 1/0)."),
]


@pytest.mark.parametrize("change, code, field, message", BAD)
def test_bad_input_creates_nothing(clinic, change, code, field, message):
    before = owners_state()
    with pytest.raises(DomainError) as exc:
        owner_save(owner=None, user=clinic.user(3), **{**GOOD, **change})
    db.session.rollback()
    assert (exc.value.code, exc.value.field, exc.value.message) == (code, field, message)
    assert owners_state() == before and count(Owner) == 0


@pytest.mark.parametrize("change, code, field, message", BAD)
def test_bad_input_changes_nothing(clinic, change, code, field, message):
    owner = owner_make(clinic.user(3))
    owner_link(patient=factories.patient_make(clinic), owner=owner)
    db.session.commit()
    before = owners_state()
    with pytest.raises(DomainError) as exc:
        owner_save(owner=owner, user=clinic.user(3),
                   **{**GOOD, "name": "Ann Jones", **change})
    db.session.rollback()
    assert (exc.value.code, exc.value.field, exc.value.message) == (code, field, message)
    assert owners_state() == before


def test_level_2_may_not_enter_contact_details(clinic):
    before = owners_state()
    with pytest.raises(Forbidden) as exc:
        owner_save(owner=None, user=clinic.user(2), **GOOD)
    db.session.rollback()
    assert "You need level 3 to enter owners' contact details" in exc.value.message
    assert owners_state() == before


# Opting out and in

def test_an_sms_stop_opts_out_once(clinic, frozen_clock):
    owner = owner_make(clinic.user(3))
    at = datetime(2026, 11, 22, 11, 58, tzinfo=UTC)
    owner_opt_out(owner=owner, via="SMS reply STOP", at=at)
    assert pending_events("owner.opted_out") == [{"owner": owner.uid}]
    db.session.commit()
    assert (owner.opted_out, owner.opted_out_at, owner.opted_out_via) == (
        True, at, "SMS reply STOP")
    assert audits("owner.opt_out")[0].user_id is None
    before = owners_state()
    frozen_clock.advance(minutes=5)
    owner_opt_out(owner=owner, via="SMS reply STOP")
    assert pending_events("owner.opted_out") == []
    db.session.commit()
    assert owners_state() == before


def test_staff_opt_out_keeps_who_and_why(clinic, frozen_clock):
    owner = owner_make(clinic.user(3))
    owner_opt_out(owner=owner, via=" Phoned to ask for no more messages ", user=clinic.user(1))
    db.session.commit()
    assert owner.opted_out_at == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert owner.opted_out_via == "staff: Level 1: Phoned to ask for no more messages"
    assert audits("owner.opt_out")[0].user_id == clinic.user(1).id


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_staff_opt_out_and_in_need_a_reason(clinic, reason):
    owner = owner_make(clinic.user(3))
    before = owners_state()
    with pytest.raises(DomainError) as exc:
        owner_opt_out(owner=owner, via=reason, user=clinic.user(3))
    db.session.rollback()
    assert (exc.value.field, exc.value.message) == ("reason", ERR_REASON)
    assert owners_state() == before
    owner_opt_out(owner=owner, via="SMS reply STOP")
    db.session.commit()
    before = owners_state()
    with pytest.raises(DomainError) as exc:
        owner_opt_in(owner=owner, via=reason, user=clinic.user(3))
    db.session.rollback()
    assert (exc.value.field, exc.value.message) == ("reason", ERR_REASON)
    assert owners_state() == before


def test_an_opt_out_time_needs_its_zone(clinic):
    owner = owner_make(clinic.user(3))
    before = owners_state()
    with pytest.raises(DomainError) as exc:
        owner_opt_out(owner=owner, via="SMS reply STOP", at=datetime(2026, 11, 22, 12))
    db.session.rollback()
    assert (exc.value.code, exc.value.field, exc.value.message) == ("bad_time", "at",
                                                                     ERR_OPT_OUT_AT)
    assert owners_state() == before


def test_opting_back_in_needs_level_3_and_leaves_consent_alone(clinic, frozen_clock):
    owner = owner_make(clinic.user(3))
    owner_opt_out(owner=owner, via="SMS reply STOP")
    db.session.commit()
    before = owners_state()
    with pytest.raises(Forbidden):
        owner_opt_in(owner=owner, via="Asked at the desk", user=clinic.user(2))
    db.session.rollback()
    assert owners_state() == before
    owner_opt_in(owner=owner, via="Asked at the desk", user=clinic.user(3))
    assert pending_events("owner.opted_in") == [{"owner": owner.uid}]
    db.session.commit()
    assert (owner.opted_out_at, owner.opted_out_via, owner.sms_consent) == (None, None, True)
    assert audits("owner.opt_in")[0].detail == {
        "via": "staff: Level 3: Asked at the desk", "was": "SMS reply STOP"}
    before = owners_state()
    owner_opt_in(owner=owner, via="SMS reply START")  # not opted out: nothing to do
    assert pending_events("owner.opted_in") == []
    db.session.commit()
    assert owners_state() == before


# Links and addresses

def test_linking_a_patient_gives_it_the_owners_name_and_phone(clinic):
    owner = owner_make(clinic.user(3))
    patient = factories.patient_make(clinic, owner_name="Old name", owner_phone="555")
    owner_link(patient=patient, owner=owner, user=clinic.user(3))
    assert pending_events("patient.changed") == [{"patient": patient.uid}] * 2
    db.session.commit()
    assert (patient.owner_id, patient.owner_name, patient.owner_phone) == (
        owner.id, "Ann Smith", "+447700900123")
    assert audits("patient.owner_link")[0].detail == {"owner": owner.uid, "was": None}
    before = owners_state()
    owner_link(patient=patient, owner=owner, user=clinic.user(3))
    db.session.commit()
    assert owners_state() == before
    with pytest.raises(Forbidden):
        owner_link(patient=patient, owner=owner, user=clinic.user(2))
    db.session.rollback()


def test_a_linked_patients_copies_change_only_through_the_owner(clinic):
    owner = owner_make(clinic.user(3))
    patient = factories.patient_make(clinic)
    owner_link(patient=patient, owner=owner)
    db.session.commit()
    before = owners_state()
    for key, value, what in (("owner_name", "Someone else", "name"),
                             ("owner_phone", "999", "phone")):
        with pytest.raises(DomainError) as exc:
            patient_update(patient=patient, user=clinic.user(4), data={key: value})
        db.session.rollback()
        assert (exc.value.field, exc.value.message) == (
            key, ERR_OWNER_LINKED.format(name="Biscuit", what=what))
        assert owners_state() == before
    patient_update(patient=patient, user=clinic.user(4),
                   data={"owner_name": "Ann Smith", "cage": "7"})
    db.session.commit()
    assert (patient.cage, patient.owner_name) == ("7", "Ann Smith")


def test_adding_an_owner_to_a_patient_creates_and_links_them(clinic):
    patient = factories.patient_make(clinic)
    owner = owner_add_to_patient(patient=patient, user=clinic.user(3), **GOOD)
    db.session.commit()
    assert patient.owner_id == owner.id and patient.owner_name == "Ann Smith"
    before = owners_state()
    with pytest.raises(DomainError) as exc:
        owner_add_to_patient(patient=patient, user=clinic.user(3), **{**GOOD, "name": "B"})
    db.session.rollback()
    assert (exc.value.code, exc.value.message) == ("has_owner", ERR_HAS_OWNER)
    assert owners_state() == before


def test_each_channel_has_its_address(clinic):
    owner = owner_make(clinic.user(3))
    assert [owner_address(owner, c) for c in ("email", "sms", "voice", "portal")] == [
        "ann@example.com", "+447700900123", "+447700900123", "portal"]
    no_phone = owner_make(clinic.user(3), phone=None, sms_consent=False)
    assert owner_address(no_phone, "sms") is None
    with pytest.raises(DomainError) as exc:
        owner_address(owner, "pigeon")
    assert exc.value.code == "bad_choice"


# Reads

def test_staff_find_owners_by_name_email_or_phone(clinic):
    ann = owner_make(clinic.user(3))
    bob = owner_make(clinic.user(3), name="Bob 100% Real", email="bob@example.org",
                     phone="+44 7700 900456")
    assert owners_search("smith") == [ann]
    assert owners_search("EXAMPLE.ORG") == [bob]
    assert owners_search("07700 900123") == [ann]
    assert owners_search("900 456") == [bob]
    assert owners_search("100%") == [bob]
    assert owners_search("1%") == []  # a wildcard is a character, not "anything"
    assert owners_search("123") == []  # too few digits to mean a phone
    assert owners_search("") == [] and owners_search(None) == []
    assert owners_search("example") == [ann, bob]


def test_an_owner_comes_with_their_patients(clinic):
    owner = owner_make(clinic.user(3))
    for name in ("Rex", "Bella"):
        owner_link(patient=factories.patient_make(clinic, name), owner=owner)
    db.session.commit()
    db.session.expire_all()
    loaded = owner_with_patients(owner.uid)
    assert [p.name for p in loaded.patients] == ["Bella", "Rex"]


def test_opted_out_owners_stay_findable(clinic, frozen_clock):
    owner = owner_make(clinic.user(3))
    owner_opt_out(owner=owner, via="SMS reply STOP", at=frozen_clock.now - timedelta(days=1))
    db.session.commit()
    assert owners_search("Ann") == [owner]
