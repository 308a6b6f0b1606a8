"""`kiosk import FILE`: a JSON summary as the last line, or every problem and exit status 1."""

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from kiosk.cli import main
from kiosk.core.audit import AuditEntry
from kiosk.extensions import db
from kiosk.intake import cli, parsing
from kiosk.patients.models import Patient

from .helpers import csv_bytes, state


@pytest.fixture
def kiosk(runner):
    """kiosk(*args): run the `kiosk` command against the test app."""

    def invoke(*args: str):
        return runner.invoke(main, list(args))

    return invoke


def test_imports_a_csv_as_the_first_manager(clinic, kiosk, tmp_path, existing):
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes("pims_id,name,species,weight_kg,Balance",
                               "P-1,Biscuit,canine,12", "P-2,Rex,canine,30"))
    result = kiosk("import", str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "Ignored columns: Balance"
    assert json.loads(lines[-1]) == {"file": "export.csv", "rows": 2, "created": 1,
                                     "updated": 1, "unchanged": 0, "linked": 0,
                                     "owners_created": 0, "owners_updated": 0,
                                     "ignored_columns": ["Balance"], "format": "csv"}
    db.session.expire_all()
    assert db.session.scalar(select(Patient.weight_kg).where(Patient.pims_id == "P-1")) == \
        Decimal("12")
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "patients.import").order_by(AuditEntry.id.desc())).first()
    assert entry.user_id == clinic.user(6).id


def test_json_by_extension_or_by_option(clinic, kiosk, tmp_path):
    rows = json.dumps([{"pims_id": "J-1", "name": "Rex", "species": "canine"}])
    (tmp_path / "a.json").write_text(rows)
    (tmp_path / "b.txt").write_text(rows.replace("J-1", "J-2"))
    assert json.loads(kiosk("import", str(tmp_path / "a.json")).output.splitlines()[-1])[
        "created"] == 1
    result = kiosk("import", str(tmp_path / "b.txt"), "--format", "json", "--user",
                   clinic.user(4).public_id)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])["format"] == "json"
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "patients.import").order_by(AuditEntry.id.desc())).first()
    assert entry.user_id == clinic.user(4).id


def test_refused_file_prints_every_problem_and_stores_nothing(clinic, kiosk, tmp_path,
                                                              existing):
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes("pims_id,name,species,weight_kg", "P-1,Biscuit,canine,11",
                               "P-2,Rex,canine,heavy", "P-2,Rex,canine,3"))
    before = state()
    result = kiosk("import", str(path))
    assert result.exit_code == 1
    assert "row 3, weight_kg: Weight (kg) must be a number." in result.output
    assert "row 4, pims_id: Practice-system id P-2 is also on row 3." in result.output
    assert parsing.ERR_REFUSED.format(count=2, s="s") in result.output
    assert state() == before


def test_file_level_problem(clinic, kiosk, tmp_path, existing):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    before = state()
    result = kiosk("import", str(path))
    assert result.exit_code == 1
    assert f"file, file: {parsing.ERR_EMPTY}" in result.output
    assert state() == before


def test_too_large_file(app, clinic, kiosk, tmp_path, existing):
    app.config["KIOSK_IMPORT_MAX_BYTES"] = 1024
    path = tmp_path / "big.csv"
    path.write_bytes(b"pims_id,name,species\n" + b"P-9,Rex,canine\n" * 100)
    before = state()
    result = kiosk("import", str(path))
    assert result.exit_code == 1
    assert parsing.ERR_TOO_LARGE.format(limit="1 KiB") in result.output
    assert state() == before


def test_a_level_3_user_may_not_import(clinic, kiosk, tmp_path, existing):
    path = tmp_path / "p.csv"
    path.write_bytes(csv_bytes("pims_id,name,species,weight_kg", "P-1,Biscuit,canine,40"))
    before = state()
    result = kiosk("import", str(path), "--user", clinic.user(3).public_id)
    assert result.exit_code == 1
    assert "You need level 4 to import patients (you are level 3)." in result.output
    assert state() == before


@pytest.mark.parametrize("ref", ["u_999", "7", "someone"])
def test_unknown_user(clinic, kiosk, tmp_path, ref):
    path = tmp_path / "p.csv"
    path.write_bytes(csv_bytes("pims_id,name,species", "P-9,Rex,canine"))
    result = kiosk("import", str(path), "--user", ref)
    assert result.exit_code == 1
    assert cli.ERR_USER_UNKNOWN.format(ref=ref) in result.output
    assert db.session.scalar(select(Patient.id)) is None


def test_no_manager_to_import_as(app, kiosk, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(csv_bytes("pims_id,name,species", "P-9,Rex,canine"))
    result = kiosk("import", str(path))
    assert result.exit_code == 1
    assert cli.ERR_NO_MANAGER in result.output
    assert db.session.scalar(select(Patient.id)) is None


def test_missing_file_and_bad_format_option(clinic, kiosk, tmp_path):
    assert kiosk("import", str(tmp_path / "nope.csv")).exit_code == 2
    path = tmp_path / "p.csv"
    path.write_bytes(b"pims_id\nP-9\n")
    assert kiosk("import", str(path), "--format", "xlsx").exit_code == 2
