"""The form pages: the builder (level 6, CSRF, bad rows refused with nothing made), filling
and finalising per patient (level 3), the tablet's offline list, the PDF link."""

from sqlalchemy import func, select

from kiosk import create_app
from kiosk.extensions import db
from kiosk.forms.models import FormEntry, FormTemplate, FormVersion, PatientForm
from kiosk.forms.selectors import form_template_by_uid, form_view, patient_form_by_uid
from tests import factories
from tests.support.forms import consent_template, png_data_url


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def rows(*fields) -> dict:
    """The builder's posted rows: (label, key, type, required, options)."""
    data = {"rows": str(len(fields) + 1)}
    for n, (label, key, kind, required, options) in enumerate(fields):
        data.update({f"label-{n}": label, f"key-{n}": key, f"type-{n}": kind,
                     f"position-{n}": str(n + 1), f"options-{n}": "\n".join(options)})
        if required:
            data[f"required-{n}"] = "1"
    data[f"type-{len(fields)}"] = "text"  # an empty row: ignored
    return data


CONSENT_ROWS = [("Consent", "", "heading", False, []),
                ("Owner's name", "", "text", True, []),
                ("If the heart stops", "cpr", "choice", True, ["Resuscitate", "Do not"]),
                ("Signature", "signature", "signature", True, [])]


def test_a_manager_builds_a_form_and_publishes_a_change(clinic, client, login):
    login(clinic.user(6))
    assert "+ New form" in client.get("/admin/forms").text
    page = client.get("/admin/forms/new").text
    assert 'name="label-0"' in page and "Signature (drawn)" in page
    response = client.post("/admin/forms/new", data={"name": "Anaesthesia consent",
                                                      **rows(*CONSENT_ROWS)})
    assert response.status_code == 302
    template = db.session.scalars(select(FormTemplate)).one()
    assert [f["key"] for f in template.current.fields] == [
        "consent", "owner_s_name", "cpr", "signature"]
    assert template.current.fields[2]["options"] == ["Resuscitate", "Do not"]
    edit = client.get(f"/admin/forms/{template.uid}").text
    assert 'value="owner_s_name"' in edit and "Publish version 2" in edit
    changed = rows(*CONSENT_ROWS, ("Phone", "phone", "text", False, []))
    changed["remove-0"] = "1"
    assert client.post(f"/admin/forms/{template.uid}", data={
        "name": "Anaesthesia consent", **changed}).status_code == 302
    db.session.expire_all()
    assert template.current.number == 2
    assert [f["key"] for f in template.current.fields] == [
        "owner_s_name", "cpr", "signature", "phone"]
    assert count(FormVersion) == 2


def test_a_bad_row_is_shown_with_its_error_and_nothing_is_made(clinic, client, login):
    login(clinic.user(6))
    for bad, message in (
            (("Cage side", "cage", "choice", False, []), "needs at least one option"),
            (("", "vague", "text", False, []), "needs a label"),
            (("Again", "cpr", "text", False, []), "used twice"),
            (("Colour", "colour", "paint", False, []), "“paint” is not a field type")):
        response = client.post("/admin/forms/new", data={
            "name": "Consent", **rows(*CONSENT_ROWS[1:3], bad)})
        assert response.status_code == 422, message
        assert message in response.text
        assert 'class="builder-row has-error"' in response.text
        assert 'value="Consent"' in response.text  # what was typed stays
        assert count(FormTemplate) == 0 and count(FormVersion) == 0


def test_the_builder_is_for_managers_and_needs_its_csrf_token(clinic, client, login, tmp_path):
    login(clinic.user(5))
    assert client.get("/admin/forms").status_code == 403
    assert client.post("/admin/forms/new", data={"name": "X", **rows(
        ("A", "a", "text", False, []))}).status_code == 403
    assert count(FormTemplate) == 0
    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/csrf.db"})
    with app.app_context():
        db.create_all()
        manager = factories.clinic_make().user(6)
        guarded = app.test_client()
        from kiosk.core.auth import SESSION_KEY
        from kiosk.staff.sessions import staff_session_start

        key = staff_session_start(user=manager, auth="password")
        db.session.commit()
        with guarded.session_transaction() as session:
            session["user_id"], session["auth"] = manager.id, "password"
            session[SESSION_KEY] = key
        data = {"name": "Consent", **rows(("A", "a", "text", False, []))}
        assert guarded.post("/admin/forms/new", data=data).status_code == 400
        page = guarded.get("/admin/forms/new").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert guarded.post("/admin/forms/new", data={**data, "csrf_token": token}
                            ).status_code == 302
        assert count(FormTemplate) == 1
        db.session.remove()
        db.engine.dispose()


def test_a_form_is_started_filled_signed_and_finalised(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    login(clinic.user(3))
    listing = client.get(f"/patients/{patient.uid}/forms").text
    assert "Anaesthesia consent" in listing and "No form yet." in listing
    response = client.post(f"/patients/{patient.uid}/forms", data={"template": template.uid})
    assert response.status_code == 302
    form_uid = response.headers["Location"].rsplit("/", 1)[-1]
    page = client.get(f"/forms/{form_uid}").text
    assert 'data-signature="signature"' in page and "Owner&#39;s name *" in page
    signature = png_data_url()
    response = client.post(f"/forms/{form_uid}/fill", data={
        "owner_name": "A. Client", "cpr": "Resuscitate", "signature": signature,
        "action": "finalise"})
    # The tick box was left unticked: saved, but not finalised, and it says why.
    assert response.status_code == 422
    assert "“I understand the risks of anaesthesia” is required" in response.text
    form = patient_form_by_uid(form_uid)
    assert not form.is_finalised and count(FormEntry) == 3
    response = client.post(f"/forms/{form_uid}/fill", data={
        "owner_name": "A. Client", "cpr": "Resuscitate", "agree": "1", "action": "finalise"})
    assert response.status_code == 302
    db.session.expire_all()
    form = patient_form_by_uid(form_uid)
    assert form.is_finalised and form_view(form).values["signature"] == signature
    assert count(FormEntry) == 4  # only what changed was recorded
    page = client.get(f"/forms/{form_uid}").text
    assert "locked" in page and ">Finalise<" not in page and "disabled" in page
    assert client.get(f"/patients/{patient.uid}/forms").text.count("finalised") == 1


def test_a_bad_value_through_the_page_keeps_what_was_typed(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    form_uid = _started(clinic, client, login, patient)
    response = client.post(f"/forms/{form_uid}/fill", data={
        "owner_name": "<b>Ann</b>", "weight": "heavy", "action": "save"})
    assert response.status_code == 422
    assert "Weight (kg) must be a number." in response.text
    assert 'value="heavy"' in response.text and "&lt;b&gt;Ann&lt;/b&gt;" in response.text
    assert count(FormEntry) == 0
    response = client.post(f"/forms/{form_uid}/fill", data={"signature": "data:image/png;"
                                                            "base64,AAAA"})
    assert response.status_code == 422 and "must be a PNG image" in response.text
    assert count(FormEntry) == 0


def _started(clinic, client, login, patient):
    template = consent_template(clinic)
    login(clinic.user(3))
    response = client.post(f"/patients/{patient.uid}/forms", data={"template": template.uid})
    return response.headers["Location"].rsplit("/", 1)[-1]


def test_level_2_reads_forms_but_cannot_fill_them(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    form_uid = _started(clinic, client, login, patient)
    login(clinic.user(2))
    assert client.get(f"/forms/{form_uid}").status_code == 200
    assert client.post(f"/forms/{form_uid}/fill", data={"owner_name": "X"}).status_code == 403
    assert client.post(f"/patients/{patient.uid}/forms", data={
        "template": form_template_by_uid(
            db.session.scalars(select(FormTemplate)).one().uid).uid}).status_code == 403
    assert count(FormEntry) == 0 and count(PatientForm) == 1


def test_a_tablet_keeps_the_form_pages_of_its_patients(clinic, client):
    from tests.support.tablet import Tablet

    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    from kiosk.forms.services import form_start

    form = form_start(patient=patient, template=template, user=clinic.user(3))
    db.session.commit()
    tablet = Tablet(client)
    urls = client.get("/tablet/offline-pages", headers={
        "Authorization": f"Bearer {tablet.token}"}).get_json()["urls"]
    assert "/static/js/forms.js" in urls
    assert f"/patients/{patient.uid}/forms" in urls
    assert f"/patients/{patient.uid}/forms/new/{template.uid}" in urls
    assert f"/forms/{form.uid}" in urls
    with client.session_transaction() as session:
        session["tablet_id"] = tablet.device.id
    page = client.get(f"/patients/{patient.uid}/forms/new/{template.uid}").text
    assert 'data-form=""' in page and 'data-version="1"' in page
    assert 'data-form-outbox="fill"' in page


def test_the_pdf_link_answers_a_pdf(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    form_uid = _started(clinic, client, login, patient)
    response = client.get(f"/forms/{form_uid}/form.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")


def test_a_row_count_or_position_past_any_number_is_not_a_crash(clinic, client, login):
    """The builder's hidden row count and positions, tampered with: huge, NaN, superscript
    digits. The page answers (the rows it can read), never a 500."""
    login(clinic.user(6))
    for count_text, position in (("9" * 5000, "1e999"), ("²", "nan"), ("10" * 30, "-1e400")):
        data = {"name": "Consent", **rows(*CONSENT_ROWS[1:3])}
        data["rows"], data["position-0"] = count_text, position
        response = client.post("/admin/forms/new", data=data)
        assert response.status_code in (302, 422), response.status_code
    assert count(FormTemplate) <= 3
