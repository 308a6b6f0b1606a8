"""The <template>s a tablet fills on the form pages (static/js/forms.js): rendered by the
server, empty, on the pages that need them; and the fill form is named for the binder."""

import re

from tests import factories
from tests.support.forms import consent_template


def template_of(page: str, template_id: str) -> str:
    """The markup inside <template id=…>, which must be on the page exactly once."""
    found = re.findall(rf'<template id="{template_id}">(.*?)</template>', page, re.S)
    assert len(found) == 1, (template_id, len(found))
    return found[0]


def test_a_blank_form_carries_the_templates_of_a_waiting_save(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    login(clinic.user(3))
    page = client.get(f"/patients/{patient.uid}/forms/new/{template.uid}").text
    error = template_of(page, "tpl-form-field-error")
    assert 'class="field-error local"' in error and 'data-slot="message"' in error
    signature = template_of(page, "tpl-form-signature")
    assert 'data-slot-attr="src:src"' in signature and "src=" not in signature.replace(
        'data-slot-attr="src:src"', "")
    # The binder turns this form's saves into ops on a tablet (form.fill's builder).
    assert re.search(r'<form [^>]*class="form-fill"[^>]*data-outbox="form.fill"', page)


def test_the_forms_list_carries_the_template_of_a_form_started_here(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    consent_template(clinic)
    login(clinic.user(3))
    page = client.get(f"/patients/{patient.uid}/forms").text
    waiting = template_of(page, "tpl-form-waiting")
    assert 'class="waiting"' in waiting and "waiting to sync" in waiting
    assert 'data-slot="label"' in waiting and 'data-slot-attr="href:href"' in waiting
    assert "Biscuit" in page and "Biscuit" not in waiting


def test_the_fill_form_carries_the_servers_words_for_a_missing_field(clinic, client, login):
    from html import unescape

    from kiosk.forms.services import ERR_REQUIRED

    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    login(clinic.user(3))
    started = client.post(f"/patients/{patient.uid}/forms", data={"template": template.uid})
    assert started.status_code == 302
    for url in (f"/patients/{patient.uid}/forms/new/{template.uid}",
                started.headers["Location"]):
        page = client.get(url).text
        said = re.search(r'<form [^>]*class="form-fill"[^>]*data-required-message="([^"]*)"',
                         page)
        assert said and unescape(said.group(1)) == ERR_REQUIRED
