"""The form's PDF: the clinic, the patient, every field with its value, signatures as
images, who signed and finalised and when, page numbers, escaped."""

from kiosk.extensions import db
from kiosk.forms.printing import form_document, form_html, form_pdf
from kiosk.forms.services import form_fill, form_finalise, form_start
from tests import factories
from tests.support.forms import consent_template, consent_values, long_form


def test_a_consent_form_prints_every_field_escaped_with_its_signature(app, clinic):
    patient = factories.patient_make(clinic, "Biscuit <b>&</b>", owner_name="A. Client")
    template = consent_template(clinic)
    form = form_start(patient=patient, template=template, user=clinic.user(3))
    values = {**consent_values(), "owner_name": "<script>x</script>"}
    form_fill(form=form, user=clinic.user(3), values=values)
    db.session.commit()
    preview = form_html(form)
    assert "Not finalised: a preview" in preview
    form_finalise(form=form, user=clinic.user(4))
    db.session.commit()
    html = form_html(form)
    assert "Test Hospital" in html and "Anaesthesia consent" in html
    assert "Biscuit &lt;b&gt;&amp;&lt;/b&gt;" in html and "<b>&</b>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    for label in ("Owner&#39;s name", "If the heart stops", "Weight (kg)", "Date of the procedure"):
        assert label in html
    assert "Resuscitate" in html and "32.4" in html and "2026-11-23" in html and "☑ Yes" in html
    assert f'<img class="signature" src="{values["signature"]}"' in html
    assert "recorded by Level 3" in html and "Finalised" in html and "by Level 4" in html
    assert 'counter(page) " of " counter(pages)' in html
    pdf = form_pdf(form)
    assert pdf.startswith(b"%PDF")


def test_a_long_form_prints_on_about_three_pages(app, clinic):
    patient = factories.patient_make(clinic, "Biscuit")
    form = long_form(clinic, patient)
    document = form_document(form)
    assert 3 <= len(document.pages) <= 4
    html = form_html(form)
    assert html.count('<img class="signature"') == 2 and html.count("<h2>") == 5
