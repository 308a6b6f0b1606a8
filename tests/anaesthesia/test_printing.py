"""The anaesthesia sheet's PDF: everything on it, page numbers, escaped, one preview link."""

from kiosk.anaesthesia.printing import anaesthesia_document, anaesthesia_html, anaesthesia_pdf
from kiosk.anaesthesia.selectors import sheet_view
from tests import factories
from tests.support.anaesthesia import long_sheet


def test_a_four_hour_sheet_prints_every_row_and_numbers_its_pages(app, clinic):
    patient = factories.patient_make(clinic, "Biscuit <b>&</b>", owner_name="A. Client")
    sheet = long_sheet(patient, clinic.user(3))
    with app.test_request_context():
        view = sheet_view(sheet)
        html = anaesthesia_html(view)
        document = anaesthesia_document(view)
        pdf = anaesthesia_pdf(view)
    assert len(view.vitals) == 48 and len(view.drugs) == 20
    assert html.count("<tr><td class=\"time\">") == 48 + 20 + 5
    assert "Biscuit &lt;b&gt;&amp;&lt;/b&gt;" in html and "<b>&</b>" not in html
    assert 'counter(page) " of " counter(pages)' in html and "Test Hospital" in html
    assert "TPLO, left stifle" in html and "II" in html and "Finalised" in html
    assert "<polyline" in html
    assert 2 <= len(document.pages) <= 4
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


def test_the_pdf_link_answers_a_pdf_to_staff_only(app, clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    sheet = long_sheet(patient, clinic.user(3), hours=1, drugs=2, finalise=False)
    url = f"/anaesthesia/{sheet.uid}/sheet.pdf"
    assert client.get(url).status_code in (302, 401)
    login(clinic.user(1))
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
