"""The import page: the form, an upload's summary, refusals (422) and who may import."""

import io
import json
from decimal import Decimal

from sqlalchemy import select

from kiosk.extensions import db
from kiosk.intake import parsing, views
from kiosk.patients.models import Patient

from .helpers import csv_bytes, state


def upload(client, content: bytes, filename: str = "p.csv"):
    return client.post("/intake/", data={"file": (io.BytesIO(content), filename)},
                       content_type="multipart/form-data")


def test_needs_sign_in(clinic, client):
    response = client.get("/intake/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_form_explains_columns_and_all_or_nothing(clinic, client, login):
    login(clinic.user(4))
    response = client.get("/intake/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in html and 'name="csrf_token"' in html
    assert 'accept=".csv,.json' in html and 'action="/intake/"' in html
    assert "All or nothing" in html and "nothing is stored" in html
    assert "<code>pims_id</code>" in html and "patient_id" in html and "dob" in html
    assert "P-1001,Biscuit,canine" in html  # the example
    assert "1 MiB" in html and "5000 patients" in html


def test_level_3_gets_403_and_nothing_is_stored(clinic, client, login, existing):
    login(clinic.user(3))
    before = state()
    assert client.get("/intake/").status_code == 403
    response = upload(client, csv_bytes("pims_id,name,species,weight_kg",
                                        "P-1,Biscuit,canine,55", "P-2,Rex,canine,30"))
    assert response.status_code == 403
    assert "You need level 4 to import patients" in response.get_data(as_text=True)
    assert state() == before


def test_upload_csv_shows_the_summary(clinic, client, login, existing):
    login(clinic.user(4))
    response = upload(client, csv_bytes("pims_id,name,species,weight_kg,Balance",
                                        "P-1,Biscuit,canine,11", "P-2,Rex,canine,30,4.50"),
                      filename="ezyvet.csv")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="import-summary"' in html and "Imported ezyvet.csv" in html
    assert "<strong>1</strong> new patient admitted" in html
    assert "<strong>1</strong> updated" in html
    assert "Ignored columns" in html and '<span class="tag">Balance</span>' in html
    db.session.expire_all()
    weights = dict(db.session.execute(select(Patient.pims_id, Patient.weight_kg)).all())
    assert weights == {"P-1": Decimal("11"), "P-2": Decimal("30")}


def test_upload_json(clinic, client, login):
    login(clinic.user(5))
    content = json.dumps({"patients": [{"pims_id": "J-1", "name": "Rex",
                                        "species": "canine"}]}).encode()
    response = upload(client, content, filename="export.json")
    assert response.status_code == 200
    assert db.session.scalar(select(Patient.name).where(Patient.pims_id == "J-1")) == "Rex"


def test_refused_file_shows_every_problem_with_422(clinic, client, login, existing):
    login(clinic.user(4))
    before = state()
    response = upload(client, csv_bytes("pims_id,name,species,weight_kg,ward",
                                        "P-1,Biscuit,canine,11,ICU",
                                        "P-2,Rex,canine,heavy,<b>Mars</b>"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert parsing.ERR_REFUSED.format(count=2, s="s") in html
    assert "<tr><td>3</td><td>weight_kg</td><td>Weight (kg) must be a number.</td></tr>" in html
    assert ("<tr><td>3</td><td>ward</td><td>There is no ward “&lt;b&gt;Mars&lt;/b&gt;”.</td></tr>"
            in html)
    assert "<b>Mars</b>" not in html
    assert 'type="file"' in html  # the form again
    assert state() == before


def test_file_level_problem_is_shown_as_a_row_of_the_table(clinic, client, login, existing):
    login(clinic.user(4))
    before = state()
    response = upload(client, b"")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f"<tr><td>file</td><td>file</td><td>{parsing.ERR_EMPTY}</td></tr>" in html
    assert state() == before


def test_no_file_chosen(clinic, client, login):
    login(clinic.user(4))
    response = client.post("/intake/", data={}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert views.ERR_NO_FILE in response.get_data(as_text=True)


def test_over_the_import_limit_is_a_form_error_not_a_413(clinic, client, login, existing):
    login(clinic.user(4))
    before = state()
    content = b"pims_id,name,species\n" + b"P-9,Rex,canine\n" * 70_000  # just over 1 MiB
    response = upload(client, content)
    assert response.status_code == 422
    assert parsing.ERR_TOO_LARGE.format(limit="1 MiB") in response.get_data(as_text=True)
    assert state() == before


def test_over_the_request_limit_is_413(clinic, client, login, existing):
    login(clinic.user(4))
    before = state()
    response = upload(client, b"x" * (5 * 1024 * 1024))
    assert response.status_code == 413
    assert state() == before


def test_imported_script_name_is_escaped_on_the_patient_list(clinic, client, login):
    login(clinic.user(4))
    response = upload(client, csv_bytes("pims_id,name,species,ward",
                                        'S-1,"<script>alert(1)</script>",canine,ICU'))
    assert response.status_code == 200
    html = client.get("/patients/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
