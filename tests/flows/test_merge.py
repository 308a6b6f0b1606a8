"""Merge fields: the sandbox refuses anything outside the catalogue; every field renders
from merge_context in the clinic's time zone, empty when the value is missing."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from kiosk.core.errors import DomainError
from kiosk.extensions import db
from kiosk.flows.merge import MERGE_FIELDS, merge_context, template_check, template_render
from kiosk.flows.models import FlowTemplate
from tests import factories


@pytest.mark.parametrize(("text", "words"), [
    ("{{ patient.nmae }}", "unknown merge field “patient.nmae”"),
    ("{{ pateint.name }}", "unknown merge field “pateint.name”"),
    ("{{ ''.__class__ }}", "unknown merge field"),
    ("{{ patient.name.__class__.__mro__ }}", "unknown merge field"),
    ("{{ patient['name'] }}", "not allowed"),
    ("{{ range(10) }}", "not allowed"),
    ("{% for x in patient %}{{ x }}{% endfor %}", "not allowed"),
    ("{{ patient.name|attr('__class__') }}", "unknown filter “attr”"),
    ("{{ patient }}", "unknown merge field “patient”"),
    ("{{ patient.name ", "cannot be read"),
    ("{{ patient.name|truncate('a') }}", "cannot be used"),
])
def test_the_sandbox_refuses_what_the_catalogue_does_not_name(app, text, words):
    with pytest.raises(DomainError) as caught:
        template_check(text, field="body", label="Text")
    assert caught.value.code == "template_invalid" and caught.value.field == "body"
    assert caught.value.message.startswith("Text: ") and words in caught.value.message


def test_allowed_templates_pass(app):
    for text in ("Plain words", "{{ patient.name|upper }} ({{ owner.name|default('') }})",
                 "{% if event.value %}Value {{ event.value }}{% else %}none{% endif %}"):
        template_check(text, field="body", label="Text")


def test_a_refused_template_is_not_stored(clinic, manager, count):
    from kiosk.flows.services import template_save

    with pytest.raises(DomainError) as caught:
        template_save(user=manager, data={"name": "Bad", "body": "Hi {{ ''.__class__ }}"})
    db.session.rollback()
    assert caught.value.field == "body" and count(FlowTemplate) == 0
    with pytest.raises(DomainError) as caught:
        template_save(user=manager, data={"name": "Bad", "subject": "{{ pateint.name }}",
                                          "body": "Hello"})
    db.session.rollback()
    assert caught.value.field == "subject" and count(FlowTemplate) == 0


def test_template_names_are_unique(clinic, manager, flow_template, count):
    from kiosk.flows.services import template_save

    flow_template("Welcome")
    with pytest.raises(DomainError) as caught:
        template_save(user=manager, data={"name": "welcome", "body": "Hi"})
    db.session.rollback()
    assert caught.value.field == "name" and count(FlowTemplate) == 1


def test_every_merge_field_renders_from_the_context(app, frozen_clock):
    clinic = factories.clinic_make(timezone="Europe/London")
    frozen_clock.set(datetime(2026, 12, 2, 14, 5, tzinfo=UTC))
    patient = factories.patient_make(
        clinic, "Biscuit", breed="Labrador", sex="FS", weight_kg=Decimal("12.500"),
        date_of_birth=date(2023, 6, 1), owner_name="Ann Lee", owner_phone="0123",
        doctor="Dr Vet", file_number="F-77")
    context = merge_context(patient=patient, event_kind="value_recorded",
                            event_at=datetime(2026, 12, 2, 14, 5, tzinfo=UTC),
                            event_data={"value": "39.9", "order_name": "Temperature"},
                            flow_name="Fever watch",
                            task_due=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    text = "\n".join(f"{key}={{{{ {key} }}}}" for key in MERGE_FIELDS)
    template_check(text, field="body", label="Text")
    rendered = dict(line.split("=", 1) for line in template_render(text, context).split("\n"))
    assert {key.split(".")[0] for key in rendered} == {
        "patient", "owner", "clinic", "event", "flow", "task"}
    assert rendered == {
        "patient.name": "Biscuit", "patient.species": "canine", "patient.breed": "Labrador",
        "patient.sex": "female spayed", "patient.age": "3 years", "patient.weight": "12.5 kg",
        "patient.ward": "ICU", "patient.cage": "1", "patient.doctor": "Dr Vet",
        "patient.file_number": "F-77", "patient.admitted": "Wed 2 Dec 14:05",
        "patient.discharged": "", "owner.name": "Ann Lee", "owner.phone": "0123",
        "clinic.name": "Test Hospital", "event.kind": "value recorded",
        "event.date": "Wed 2 Dec", "event.time": "14:05", "event.value": "39.9",
        "event.order": "Temperature", "flow.name": "Fever watch",
        "task.due": "Thu 3 Dec 09:00"}


def test_a_clinic_wide_context_renders_empty_patient_fields(clinic, frozen_clock):
    context = merge_context(patient=None, event_kind="schedule",
                            event_at=frozen_clock.now, event_data={}, flow_name="Daily")
    assert template_render("[{{ patient.name }}|{{ owner.phone }}|{{ flow.name }}]",
                           context) == "[||Daily]"


def test_rendering_is_capped(app):
    assert len(template_render("{{ event.value }}" * 10, {"event": {"value": "x" * 1000}})) \
        == 5000


def test_replaces_nested_to_fill_memory_are_refused_at_save_and_at_send():
    from kiosk.core.errors import DomainError
    from kiosk.flows.merge import template_check, template_render

    bomb = '{{ "xxxxxxxxxx"' + '|replace("x", "xxxxxxxxxx")' * 9 + " }}"
    with pytest.raises(DomainError) as caught:
        template_check(bomb, field="body", label="Body")
    assert caught.value.field == "body" and "5000 characters" in caught.value.message
    with pytest.raises(DomainError):
        template_render(bomb, {})
    assert template_render('{{ "a-b-c"|replace("-", " ") }}', {}) == "a b c"
    assert template_render('{{ "a-b-c"|replace("-", " ", 1) }}', {}) == "a b-c"


@pytest.mark.parametrize(("text", "empty"), [
    ("Dear {{ owner.name }}, {{ patient.name }} is well.", ["owner.name"]),
    ("{% if owner.name %}Dear {{ owner.name }}{% endif %} {{ patient.name }}", []),
    ("Dear {{ owner.name or 'client' }}", []),
    ("Dear {{ 'you' if not owner.name else owner.name }}", []),
    ("Dear {{ owner.name|default('client', true) }}", []),
    ("Dear {{ owner.name|default('client') }}", ["owner.name"]),  # empty is not undefined
    ("Dear {{ owner.name|upper }} about {{ patient.ward }}", ["owner.name", "patient.ward"]),
    ("{% if patient.ward %}{% else %}{{ owner.phone }}{% endif %}", ["owner.phone"]),
    ("{{ broken", []),  # refused at save; nothing to say here
])
def test_empty_merge_fields_are_those_printed_without_a_fallback(text, empty):
    from kiosk.flows.merge import template_empty_fields

    context = {"owner": {"name": "", "phone": ""}, "patient": {"name": "Rex", "ward": ""}}
    assert template_empty_fields(text, context) == empty
