"""patients_import: CSV and JSON, create and update by pims_id, and whole-file refusals."""

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kiosk.core.audit import AuditEntry
from kiosk.core.errors import Forbidden
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.intake import parsing, services
from kiosk.intake.services import patients_import
from kiosk.patients.models import Patient

from .helpers import csv_bytes, problems, state

HEADER = "pims_id,name,species,breed,sex,weight_kg,date_of_birth,owner_name,ward,cage,alerts"


def patient(pims_id: str) -> Patient:
    db.session.expire_all()
    return db.session.scalar(select(Patient).where(Patient.pims_id == pims_id))


def patient_count() -> int:
    return db.session.scalar(select(func.count(Patient.id)))


# --- creating and updating -------------------------------------------------------------

def test_csv_creates_admitted_pims_patients(clinic, do_import):
    content = csv_bytes(HEADER,
                        "P-1001,Biscuit,Canine,Beagle,MN,12.5,2019-04-02,Ann Smith,ICU,3,"
                        "bites;allergies",
                        "P-1002,Mittens,feline,,FS,4.1,,Raj Patel,ICU,7,")
    summary = do_import(content)
    assert (summary.created, summary.updated, summary.unchanged) == (2, 0, 0)
    assert summary.ignored_columns == [] and summary.file_format == "csv"
    biscuit = patient("P-1001")
    assert (biscuit.name, biscuit.species, biscuit.breed, biscuit.sex) == (
        "Biscuit", "canine", "Beagle", "MN")
    assert biscuit.weight_kg == Decimal("12.5")
    assert biscuit.date_of_birth == date(2019, 4, 2)
    assert biscuit.ward_id == clinic.ward.id and biscuit.cage == "3"
    assert biscuit.alerts == ["bites", "allergies"]
    assert (biscuit.origin, biscuit.status, biscuit.unallocated) == ("pims", "admitted", False)
    assert patient("P-1002").breed is None and patient("P-1002").alerts == []


def test_one_audit_row_per_file_plus_one_per_patient(clinic, do_import):
    do_import(csv_bytes("pims_id,name,species", "A,Rex,canine", "B,Tom,feline"),
              filename="ezyvet.csv")
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action != "user.create")
                                 .order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["patient.create", "patient.create", "patients.import"]
    file_entry = entries[-1]
    assert file_entry.user_id == clinic.user(4).id and len(file_entry.entity_uid) == 64
    assert file_entry.detail["filename"] == "ezyvet.csv"
    assert file_entry.detail["created"] == 2


@pytest.mark.parametrize("wrap", [lambda rows: rows, lambda rows: {"patients": rows}])
def test_json_creates_patients(clinic, do_import, wrap):
    rows = [{"pims_id": 1234, "name": "Rex", "species": "canine", "weight_kg": 30.2,
             "ward": "ICU", "alerts": ["DNR", "isolation"], "cage": 4},
            {"Patient ID": "X-2", "Animal Name": "Tom", "Species": "feline", "colour": "Teal"}]
    summary = do_import(json.dumps(wrap(rows)).encode(), filename="export.json")
    assert (summary.created, summary.file_format) == (2, "json")
    rex = patient("1234")
    assert rex.weight_kg == Decimal("30.2") and rex.cage == "4"
    assert rex.alerts == ["dnr", "isolation"] and rex.ward_id == clinic.ward.id
    assert patient("X-2").colour == "teal"


def test_second_import_updates_by_pims_id_without_duplicates(clinic, do_import, existing):
    summary = do_import(csv_bytes("pims_id,name,species,weight_kg",
                                  "P-1,Biscuit,canine,11.25", "P-2,Rex,canine,30"))
    assert (summary.created, summary.updated, summary.unchanged) == (1, 1, 0)
    assert patient_count() == 2
    updated = patient("P-1")
    assert updated.id == existing.id and updated.weight_kg == Decimal("11.25")
    assert updated.alerts == ["bites"] and updated.cage == "1"  # columns not in the file stay
    before = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "patient.update")).one().detail["before"]
    assert before == {"weight_kg": "10.000"}


def test_same_file_twice_is_unchanged_and_writes_no_patient_rows(clinic, do_import, existing):
    from .helpers import EXISTING_CSV

    summary = do_import(EXISTING_CSV)
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 1)
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "patient.update" not in actions and actions.count("patients.import") == 2


def test_empty_cells_leave_details_as_they_are(clinic, do_import, existing):
    summary = do_import(csv_bytes("pims_id,name,species,weight_kg,ward,cage,alerts",
                                  "P-1,,,,,, ; | "))
    assert summary.unchanged == 1
    json_rows = [{"pims_id": "P-1", "name": None, "alerts": ["", " "], "weight_kg": ""}]
    assert do_import(json.dumps(json_rows).encode(), filename="p.json").unchanged == 1
    kept = patient("P-1")
    assert (kept.name, kept.weight_kg, kept.ward_id, kept.cage, kept.alerts) == (
        "Biscuit", Decimal("10"), clinic.ward.id, "1", ["bites"])


def test_a_discharged_patient_is_updated_but_stays_discharged(clinic, do_import, existing):
    patient_discharge(patient=existing, user=clinic.user(4))
    db.session.commit()
    summary = do_import(csv_bytes("pims_id,name,species,cage", "P-1,Biscuit,canine,9"))
    assert summary.updated == 1
    again = patient("P-1")
    assert (again.cage, again.status) == ("9", "discharged")


def test_header_aliases_any_case_and_ignored_columns(clinic, do_import):
    content = csv_bytes("Patient ID,Animal Name,SPECIES,Weight,DOB,Color,Owner,Balance,Gender",
                        "C-77,Luna,feline,3.9 kg,2020-01-31,Purple,Jo Bloggs,12.00,"
                        "Female Spayed")
    summary = do_import(content)
    assert summary.created == 1 and summary.ignored_columns == ["Balance"]
    luna = patient("C-77")
    assert (luna.name, luna.weight_kg, luna.date_of_birth, luna.colour, luna.owner_name,
            luna.sex) == ("Luna", Decimal("3.9"), date(2020, 1, 31), "purple", "Jo Bloggs", "FS")


def test_ward_names_match_in_any_case(clinic, do_import):
    do_import(csv_bytes("pims_id,name,species,ward", "W-1,Rex,canine, icu "))
    assert patient("W-1").ward_id == clinic.ward.id


def test_bom_semicolons_crlf_and_pipe_separated_alerts(clinic, do_import):
    content = "\ufeffpims_id;name;species;weight_kg;alerts\r\nR-1;Ziggy;canine;7,5;bites|dnr\r\n"
    summary = do_import(content.encode())
    assert summary.created == 1
    ziggy = patient("R-1")
    assert ziggy.weight_kg == Decimal("7.5") and ziggy.alerts == ["bites", "dnr"]


def test_json_unknown_keys_are_ignored_columns(clinic, do_import):
    content = json.dumps([{"pims_id": "J-1", "name": "Rex", "species": "canine",
                           "balance": 3, "insurer": "Petplan"}]).encode()
    assert do_import(content, filename="p.json").ignored_columns == ["balance", "insurer"]


def test_format_can_be_given_instead_of_the_extension(clinic, do_import):
    content = json.dumps([{"pims_id": "J-1", "name": "Rex", "species": "canine"}]).encode()
    assert do_import(content, filename="export.txt", file_format="json").created == 1


def test_rows_can_be_given_directly(clinic):
    summary = patients_import(user=clinic.user(4),
                              rows=[{"pims_id": "D-1", "name": "Rex", "species": "canine"}])
    db.session.commit()
    assert summary.created == 1 and patient("D-1").name == "Rex"


def test_level_3_may_not_import(clinic, existing):
    before = state()
    with pytest.raises(Forbidden) as info:
        patients_import(user=clinic.user(3), content=csv_bytes(
            "pims_id,name,species,weight_kg", "P-1,Biscuit,canine,50"), filename="p.csv")
    db.session.rollback()
    assert "You need level 4 to import patients" in info.value.message
    assert state() == before


# --- refusals: the whole file, with every problem, and nothing stored --------------------

def test_every_bad_row_is_reported_and_nothing_is_stored(clinic, refused, existing):
    content = csv_bytes(
        "pims_id,name,species,sex,weight_kg,date_of_birth,ward,alerts",
        "P-1,Biscuit,canine,,11,,,",                       # fine on its own
        "P-2,Rex,canine,,heavy,,,",                         # row 3
        "P-3,Tom,feline,,4,,Mars,",                         # row 4
        "P-4,Kit,feline,X,4,31/12/2020,,",                  # row 5: two problems
        "P-5,,,,,,,",                                       # row 6: new, no name or species
        ",Nameless,canine,,,,,",                            # row 7
        "P-6,Dot,canine,,,,,bites;sleepy",                  # row 8
    )
    exc = refused(content)
    assert exc.message == parsing.ERR_REFUSED.format(count=8, s="s")
    assert problems(exc) == [
        (3, "weight_kg", "Weight (kg) must be a number."),
        (4, "ward", "There is no ward “Mars”."),
        (5, "sex", "Sex must be one of: M, MN, F, FS, U."),
        (5, "date_of_birth", "Date of birth must be a date (YYYY-MM-DD)."),
        (6, "name", "Name is required."),
        (6, "species", "Species is required."),
        (7, "pims_id", services.ERR_PIMS_REQUIRED),
        (8, "alerts", "Alert must be one of: caution, bites, dnr, isolation, allergies."),
    ]
    assert patient("P-1").weight_kg == Decimal("10")


def test_a_bad_value_for_an_existing_patient_refuses_the_file(clinic, refused, existing):
    exc = refused(csv_bytes("pims_id,name,species,weight_kg", "P-2,Rex,canine,30",
                            "P-1,Biscuit,canine,-3"))
    assert problems(exc) == [
        (3, "weight_kg", "Weight must be more than 0 and at most 2000 kg.")]
    assert patient("P-2") is None


def test_duplicate_pims_id_within_the_file(clinic, refused, existing):
    exc = refused(csv_bytes("pims_id,name,species", "P-9,Rex,canine", "P-8,Tom,feline",
                            "P-9,Rex again,canine"))
    assert problems(exc) == [(4, "pims_id", services.ERR_PIMS_TWICE.format(
        pims_id="P-9", first=2))]


@pytest.mark.parametrize("content, error", [
    (b"", (None, "file", parsing.ERR_EMPTY)),
    (b"\xef\xbb\xbf \n\n", (None, "file", parsing.ERR_EMPTY)),
    (b"pims_id,name,species\n", (None, "file", parsing.ERR_NO_ROWS)),
    (b"pims_id,name,species\n,,\n\n", (None, "file", parsing.ERR_NO_ROWS)),
    (b"pims_id,name\nP-9,Caf\xe9\n", (None, "file", parsing.ERR_NOT_UTF8.format(position=21))),
    (b"name,species\nRex,canine\n", (1, "pims_id", parsing.ERR_NO_PIMS_COLUMN)),
    (b"pims_id,Weight,weight_kg\nP-9,1,2\n",
     (1, "weight_kg", parsing.ERR_SAME_FIELD.format(first="Weight", second="weight_kg",
                                                    field="weight_kg"))),
    (b"pims_id,name,species\nP-9,Rex,canine,,loose cell\n",
     (2, None, parsing.ERR_EXTRA_CELLS.format(count=5, header=3))),
])
def test_bad_csv_files(clinic, refused, existing, content, error):
    assert problems(refused(content)) == [error]
    assert patient("P-1").name == "Biscuit"


def test_malformed_csv_names_the_line(clinic, refused, existing):
    exc = refused(b'pims_id,name,species\nP-9,"Rex,canine\n')
    [(row, field, message)] = problems(exc)
    assert (row, field) == (None, "file")
    assert message.startswith("The CSV cannot be read at line 2: ")
    assert "unexpected end of data" in message


def test_malformed_json_names_line_and_column(clinic, refused, existing):
    exc = refused(b'[{"pims_id": "P-9",}]', filename="p.json")
    [(row, field, message)] = problems(exc)
    assert (row, field) == (None, "file")
    assert message.startswith("The JSON cannot be read at line 1, column 20: ")


@pytest.mark.parametrize("content, error", [
    (b'{"animals": []}', (None, "file", parsing.ERR_JSON_SHAPE)),
    (b'"hello"', (None, "file", parsing.ERR_JSON_SHAPE)),
    (b'{"patients": {"pims_id": "P-9"}}', (None, "file", parsing.ERR_JSON_SHAPE)),
    (b"[" * 100_000, (None, "file", parsing.ERR_JSON_DEEP)),
    (b"[]", (None, "file", parsing.ERR_NO_ROWS)),
])
def test_bad_json_files(clinic, refused, existing, content, error):
    assert problems(refused(content, filename="p.json")) == [error]


def test_json_items_that_are_not_objects_and_bad_values(clinic, refused, existing):
    content = json.dumps([7, {"pims_id": "P-9", "name": ["Rex"], "species": "canine"},
                          {"pims_id": "P-1", "weight_kg": True}]).encode()
    assert problems(refused(content, filename="p.json")) == [
        (1, None, parsing.ERR_NOT_OBJECT),
        (2, "name", "Name must be text."),
        (3, "weight_kg", "Weight (kg) must be a number."),
    ]


def test_unknown_format(clinic, refused, existing):
    assert problems(refused(b"pims_id\nP-9\n", filename="export.xlsx")) == [
        (None, "file", parsing.ERR_FORMAT)]


def test_too_large_is_refused_before_parsing(app, clinic, refused, existing):
    app.config["KIOSK_IMPORT_MAX_BYTES"] = 64
    content = b"pims_id,name,species\n" + b"\xff" * 60  # not UTF-8 either: size comes first
    assert problems(refused(content)) == [
        (None, "file", parsing.ERR_TOO_LARGE.format(limit="64 bytes"))]


def test_more_than_5000_rows(clinic, refused, existing):
    lines = ["pims_id,name,species"] + [f"N-{n},Rex,canine" for n in range(5001)]
    assert problems(refused(csv_bytes(*lines))) == [
        (None, "file", parsing.ERR_TOO_MANY_ROWS.format(limit=5000))]
    rows = json.dumps([{"pims_id": f"N-{n}"} for n in range(5001)]).encode()
    assert problems(refused(rows, filename="p.json")) == [
        (None, "file", parsing.ERR_TOO_MANY_ROWS.format(limit=5000))]


def test_the_row_limit_itself_is_allowed(clinic, do_import, monkeypatch):
    monkeypatch.setattr(services, "IMPORT_MAX_ROWS", 3)
    lines = ["pims_id,name,species"] + [f"N-{n},Rex,canine" for n in range(3)]
    assert do_import(csv_bytes(*lines)).created == 3
