"""The anaesthesia pages: start, record, confirm an unusual value, finalise; levels."""

from sqlalchemy import func, select

from kiosk.anaesthesia.models import AnaesthesiaEntry, AnaesthesiaSheet
from kiosk.extensions import db
from tests import factories


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def start(client, patient):
    response = client.post(f"/patients/{patient.uid}/anaesthesia",
                           data={"procedure": "Spay", "asa": "II", "team": "Dr Okafor"})
    assert response.status_code == 302
    return response.headers["Location"]


def finalised_marks(page: str) -> list[str]:
    """What says a sheet is finalised: the flag the tablet reads, and who and when (the
    frozen clock's 12:00 on Sunday 22 November). Empty on an open sheet."""
    marks = ['data-finalised="1"', "finalised Sun 22 Nov 12:00 by Level 3"]
    return [mark for mark in marks if mark in page]


def test_a_sheet_is_started_recorded_on_and_finalised(frozen_clock, clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(3))
    url = start(client, patient)
    sheet_uid = url.rsplit("/", 1)[-1]
    assert client.post(f"/anaesthesia/{sheet_uid}/record", data={
        "kind": "vitals", "hr": "92", "spo2": "98", "sys": "110", "dia": "60"}).status_code == 302
    assert client.post(f"/anaesthesia/{sheet_uid}/record", data={
        "kind": "event", "event": "induction"}).status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Spay" in page and "Induction" in page and "<polyline" in page
    assert 'name="hr" inputmode="decimal" value="92"' in page  # carried forward
    assert finalised_marks(page) == [] and "Finalise sheet" in page
    assert client.post(f"/anaesthesia/{sheet_uid}/finalise").status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert len(finalised_marks(page)) == 2 and "Finalise sheet" not in page


def test_an_unusual_value_asks_to_confirm_and_keeps_what_was_typed(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(3))
    sheet_uid = start(client, patient).rsplit("/", 1)[-1]
    before = count(AnaesthesiaEntry)
    response = client.post(f"/anaesthesia/{sheet_uid}/record",
                           data={"kind": "vitals", "hr": "900", "spo2": "97"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "HR 900 bpm is outside the usual 20–300" in page
    assert 'name="confirm" value="hr"' in page and 'value="900"' in page
    assert count(AnaesthesiaEntry) == before
    response = client.post(f"/anaesthesia/{sheet_uid}/record",
                           data={"kind": "vitals", "hr": "900", "spo2": "97", "confirm": "hr"})
    assert response.status_code == 302 and count(AnaesthesiaEntry) == before + 1


def test_level_2_reads_but_cannot_record_and_escapes_what_it_reads(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(3))
    sheet_uid = start(client, patient).rsplit("/", 1)[-1]
    client.post(f"/anaesthesia/{sheet_uid}/record",
                data={"kind": "note", "text": "<script>alert(1)</script>"})
    login(clinic.user(2))
    page = client.get(f"/anaesthesia/{sheet_uid}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "Record vitals" not in page
    before = count(AnaesthesiaEntry)
    response = client.post(f"/anaesthesia/{sheet_uid}/record", data={"kind": "note", "text": "x"})
    assert response.status_code == 403 and count(AnaesthesiaEntry) == before
    assert count(AnaesthesiaSheet) == 1


def test_finalising_without_a_procedure_says_so_and_leaves_the_sheet_open(clinic, client,
                                                                           login):
    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(3))
    response = client.post(f"/patients/{patient.uid}/anaesthesia", data={"team": "Leo"})
    sheet_uid = response.headers["Location"].rsplit("/", 1)[-1]
    response = client.post(f"/anaesthesia/{sheet_uid}/finalise")
    assert response.status_code == 422
    assert "Enter the procedure before finalising." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalars(select(AnaesthesiaSheet)).one().status == "open"


def test_addenda_read_as_entries_on_the_page_and_in_the_pdf(app, clinic, client, login):
    from kiosk.anaesthesia.printing import anaesthesia_html
    from kiosk.anaesthesia.selectors import sheet_view

    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(3))
    url = start(client, patient)
    sheet_uid = url.rsplit("/", 1)[-1]
    assert client.post(f"/anaesthesia/{sheet_uid}/finalise").status_code == 302
    for data in ({"kind": "vitals", "hr": "310", "spo2": "97", "confirm": "hr"},
                 {"kind": "drug", "drug": "Meloxicam <i>", "dose": "0.1 mg/kg", "route": "SC",
                  "given_by": "Sam"},
                 {"kind": "event", "event": "extubation"}):
        assert client.post(f"/anaesthesia/{sheet_uid}/record", data=data).status_code == 302
    page = client.get(url).get_data(as_text=True)
    addenda = page[page.index('id="addenda"'):]
    addenda = addenda[:addenda.index("</section>")]
    assert "HR 310 bpm (confirmed) · SpO₂ 97 %" in addenda
    assert "Meloxicam &lt;i&gt; 0.1 mg/kg SC given by Sam" in addenda
    assert "<strong>Event</strong> Extubation" in addenda
    assert "{&#34;" not in addenda and '{"' not in addenda  # no raw JSON
    sheet = db.session.scalars(select(AnaesthesiaSheet)).one()
    with app.test_request_context():
        html = anaesthesia_html(sheet_view(sheet))
    printed = html[html.index("Addenda"):]
    assert "Vitals: HR 310 bpm (confirmed)" in printed and "Drug: Meloxicam &lt;i&gt;" in printed
