"""The practice-system import links patients to owners: by the owner's id, else the
patient's own owner, else a new one; bad owner details refuse the whole file."""

import json

import pytest
from sqlalchemy import select

from kiosk.extensions import db
from kiosk.intake.services import ERR_OWNER_NAME_NEEDED, ImportRefused, patients_import
from kiosk.owners.models import Owner
from kiosk.owners.services import (
    ERR_CHANNEL_CONSENT,
    ERR_EMAIL,
    ERR_NEW_OWNER_NAME,
    ERR_PHONE,
    ERR_PHONE_NO_COUNTRY,
    owner_link,
    owner_opt_out,
    owner_save,
)
from kiosk.patients.models import Patient
from tests import factories

from .helpers import GOOD, audits, owners_state


def csv_bytes(*lines: str) -> bytes:
    """A CSV file from its lines."""
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def do_import(clinic):
    """do_import(content, filename='p.csv'): import as level 4 and commit; the summary."""

    def run(content: bytes, filename: str = "p.csv"):
        summary = patients_import(user=clinic.user(4), content=content, filename=filename)
        db.session.commit()
        return summary

    return run


@pytest.fixture
def refused(clinic):
    """refused(content): the problems of a refused file, after checking nothing changed."""

    def run(content: bytes, filename: str = "p.csv") -> list[tuple]:
        before = owners_state()
        with pytest.raises(ImportRefused) as info:
            patients_import(user=clinic.user(4), content=content, filename=filename)
        assert not db.session.new and not db.session.dirty
        db.session.rollback()
        assert owners_state() == before
        return [(e.row, e.field, e.message) for e in info.value.errors]

    return run


def patient(pims_id: str) -> Patient:
    """The stored patient with this practice-system id."""
    db.session.expire_all()
    return db.session.scalar(select(Patient).where(Patient.pims_id == pims_id))


def owner(pims_id: str) -> Owner:
    """The stored owner with this practice-system id."""
    db.session.expire_all()
    return db.session.scalar(select(Owner).where(Owner.pims_id == pims_id))


def all_owners() -> list[Owner]:
    """Every stored owner, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(Owner).order_by(Owner.id)))


def test_a_clients_pets_share_one_owner(clinic, do_import):
    summary = do_import(csv_bytes(
        "pims_id,name,species,Client ID,owner_name,Mobile,Email,sms_consent,preferred_channel",
        "P-1,Rex,canine,C-9,Ann Smith,+44 7700 900123,ann@example.com,Yes,SMS",
        "P-2,Bella,feline,C-9,,,,,",
        "P-3,Tom,feline,,Raj Patel,,raj@example.org,,"))
    assert (summary.created, summary.owners_created, summary.owners_updated) == (3, 2, 0)
    ann = owner("C-9")
    assert (ann.name, ann.email, ann.phone, ann.sms_consent, ann.voice_consent,
            ann.preferred_channel) == ("Ann Smith", "ann@example.com", "+447700900123", True,
                                       False, "sms")
    assert [p.name for p in ann.patients] == ["Bella", "Rex"]
    assert (patient("P-2").owner_name, patient("P-2").owner_phone) == (
        "Ann Smith", "+447700900123")
    raj = patient("P-3").owner
    assert (raj.pims_id, raj.name, raj.preferred_channel, raj.sms_consent) == (
        None, "Raj Patel", "email", False)
    assert len(audits("owner.import_create")) == 2


def test_a_nameless_row_first_finds_the_name_on_a_later_row(clinic, do_import):
    do_import(csv_bytes("pims_id,name,species,client_number,client_name",
                        "P-1,Rex,canine,C-9,", "P-2,Bella,feline,C-9,Ann Smith"))
    assert [p.pims_id for p in owner("C-9").patients] == ["P-2", "P-1"]
    assert len(all_owners()) == 1


def test_without_an_owner_id_the_patients_own_owner_is_updated(clinic, do_import):
    do_import(csv_bytes("pims_id,name,species,owner_name,owner_phone",
                        "P-1,Rex,canine,Ann Smith,+44 7700 900123"))
    first = patient("P-1").owner
    summary = do_import(csv_bytes("pims_id,name,species,owner_name,client_email",
                                  "P-1,Rex,canine,Ann Jones,ann@example.com"))
    assert (summary.unchanged, summary.owners_created, summary.owners_updated) == (1, 0, 1)
    assert [o.id for o in all_owners()] == [first.id]
    again = patient("P-1")
    assert (again.owner.name, again.owner.email, again.owner.phone, again.owner_name) == (
        "Ann Jones", "ann@example.com", "+447700900123", "Ann Jones")


def test_an_import_never_erases_never_opts_in_and_turns_consent_only_on_request(
        clinic, do_import, frozen_clock):
    do_import(csv_bytes("pims_id,name,species,owner_id,owner_name,owner_email,owner_phone",
                        "P-1,Rex,canine,C-9,Ann Smith,ann@example.com,+44 7700 900123"))
    ann = owner("C-9")
    assert ann.sms_consent is False
    owner_opt_out(owner=ann, via="SMS reply STOP")
    db.session.commit()
    summary = do_import(csv_bytes("pims_id,name,species,owner_id,owner_name,owner_email,"
                                  "owner_phone,sms_consent", "P-1,Rex,canine,C-9,,,,"))
    assert (summary.owners_updated, summary.owners_created) == (0, 0)
    kept = owner("C-9")
    assert (kept.name, kept.email, kept.phone, kept.sms_consent, kept.opted_out) == (
        "Ann Smith", "ann@example.com", "+447700900123", False, True)
    do_import(csv_bytes("pims_id,name,species,owner_id,sms_consent", "P-1,Rex,canine,C-9,1"))
    assert (owner("C-9").sms_consent, owner("C-9").opted_out) == (True, True)
    do_import(csv_bytes("pims_id,name,species,owner_id,sms_consent", "P-1,Rex,canine,C-9,no"))
    assert owner("C-9").sms_consent is False


def test_the_patients_owner_without_an_id_takes_the_rows_id(clinic, do_import):
    rex = factories.patient_make(clinic, "Rex", pims_id="P-1")
    staff_made = owner_save(owner=None, user=clinic.user(3), **GOOD)
    owner_link(patient=rex, owner=staff_made)
    db.session.commit()
    do_import(csv_bytes("pims_id,name,species,owner_id", "P-1,Rex,canine,C-9"))
    assert [(o.id, o.pims_id) for o in all_owners()] == [(staff_made.id, "C-9")]


def test_another_owner_id_moves_the_patient_to_that_owner(clinic, do_import):
    do_import(csv_bytes("pims_id,name,species,owner_id,owner_name",
                        "P-1,Rex,canine,C-1,Ann Smith", "P-2,Tom,feline,C-2,Raj Patel"))
    do_import(csv_bytes("pims_id,name,species,owner_id", "P-1,Rex,canine,C-2"))
    moved = patient("P-1")
    assert (moved.owner.pims_id, moved.owner_name) == ("C-2", "Raj Patel")
    assert [p.pims_id for p in owner("C-1").patients] == []


def test_json_gives_ids_as_numbers_and_consent_as_true(clinic, do_import):
    rows = [{"pims_id": "J-1", "name": "Rex", "species": "canine", "client_id": 4411,
             "owner_name": "Ann Smith", "owner_phone": "+44 7700 900123", "sms_consent": True,
             "preferred_channel": "text"}]
    do_import(json.dumps(rows).encode(), filename="p.json")
    ann = owner("4411")
    assert (ann.sms_consent, ann.preferred_channel) == (True, "sms")


def test_national_numbers_take_the_configured_country_code(app, clinic, do_import, refused):
    content = csv_bytes("pims_id,name,species,owner_name,owner_phone",
                        "P-1,Rex,canine,Ann Smith,07700 900123")
    assert refused(content) == [(2, "owner_phone", ERR_PHONE_NO_COUNTRY)]
    app.config["KIOSK_PHONE_COUNTRY_CODE"] = "44"
    do_import(content)
    assert patient("P-1").owner.phone == "+447700900123"


def test_a_phone_alone_stays_the_patients_detail_as_before(clinic, do_import):
    do_import(csv_bytes("pims_id,name,species,owner_phone", "P-1,Rex,canine,ring the desk"))
    assert (patient("P-1").owner_phone, all_owners()) == ("ring the desk", [])


def test_every_bad_owner_detail_is_reported_and_nothing_is_stored(clinic, do_import, refused):
    do_import(csv_bytes("pims_id,name,species,owner_id,owner_name,owner_phone,sms_consent,"
                        "preferred_channel",
                        "P-9,Max,canine,C-5,Kim Lee,+44 7700 900555,yes,sms"))
    problems = refused(csv_bytes(
        "pims_id,name,species,owner_id,owner_name,owner_email,owner_phone,sms_consent,"
        "preferred_channel",
        "P-1,Rex,canine,C-1,Ann Smith,ann.example.com,,,",
        "P-2,Tom,feline,C-2,Raj Patel,,call me,,",
        "P-3,Bo,canine,C-3,Jo Bloggs,,,maybe,",
        "P-4,Al,canine,C-4,Al Jones,al@example.com,,,fax",
        "P-5,Cy,canine,,,cy@example.com,,,",
        "P-6,Di,canine,C-6,,di@example.com,,,",
        "P-7,Ed,canine,C-7,Ed Wu,,+44 7700 900777,,sms",
        "P-9,Max,canine,C-5,,,,no,",
        "P-8,Fi,canine,C-8,Fi Day,fi@example.com,+44 7700 900888,,"))
    assert problems == [
        (2, "owner_email", ERR_EMAIL),
        (3, "owner_phone", ERR_PHONE),
        (4, "sms_consent", "SMS consent must be yes or no (true/false, 1/0)."),
        (5, "preferred_channel",
         "The preferred channel must be one of: email, sms, voice, portal."),
        (6, "owner_name", ERR_OWNER_NAME_NEEDED),
        (7, "owner_name", ERR_NEW_OWNER_NAME),
        (8, "preferred_channel", ERR_CHANNEL_CONSENT.format(channel="SMS",
                                                              what="text messages")),
        (9, "preferred_channel", ERR_CHANNEL_CONSENT.format(channel="SMS",
                                                              what="text messages")),
    ]
    assert patient("P-8") is None and owner("C-8") is None


def test_the_upload_page_explains_the_owner_columns(clinic, client, login):
    login(clinic.user(4))
    html = client.get("/intake/").text
    for text in ("<code>owner_id</code>", "client_id, owner_pims_id, client_number",
                 "<code>owner_email</code>", "email, client_email", "<code>sms_consent</code>",
                 "<code>preferred_channel</code>", "+44 7700 900123"):
        assert text in html


def test_a_new_name_on_an_owner_of_other_pets_is_another_person(clinic, do_import):
    do_import(csv_bytes("pims_id,name,species,client_number,owner_name,owner_email",
                        "P-1,Rex,canine,C-1,Ann Smith,ann@example.com",
                        "P-2,Bella,feline,C-1,Ann Smith,ann@example.com"))
    ann = patient("P-1").owner
    assert patient("P-2").owner.id == ann.id
    do_import(csv_bytes("pims_id,name,species,owner_name,owner_email",
                        "P-1,Rex,canine,Bob Jones,bob@example.com"))
    rex, bella = patient("P-1"), patient("P-2")
    assert rex.owner.name == "Bob Jones" and rex.owner.id != ann.id
    assert (bella.owner.id, bella.owner.name, bella.owner.email) == (
        ann.id, "Ann Smith", "ann@example.com")  # Bella's messages still go to Ann
