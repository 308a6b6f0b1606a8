"""Form templates (versions, bad fields refused) and forms filled per patient (append-only
entries, latest wins, required on finalise, locked afterwards, signatures checked)."""

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError, Forbidden
from kiosk.discharge.services import patient_discharge
from kiosk.documents.models import Document
from kiosk.documents.worker import documents_work
from kiosk.extensions import db
from kiosk.forms.fields import MAX_SIGNATURE_BYTES
from kiosk.forms.models import (
    FORM_DRAFT,
    FORM_FINALISED,
    FormEntry,
    FormTemplate,
    FormVersion,
    PatientForm,
)
from kiosk.forms.selectors import form_view, forms_of
from kiosk.forms.services import (
    form_fill,
    form_finalise,
    form_start,
    form_template_create,
    form_template_publish,
)
from tests import factories
from tests.support.forms import CONSENT_FIELDS, consent_template, consent_values, png_data_url

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def counts() -> tuple:
    db.session.expire_all()
    return tuple(count(m) for m in (FormTemplate, FormVersion, PatientForm, FormEntry,
                                    AuditEntry, Document))


@pytest.fixture
def patient(clinic):
    return factories.patient_make(clinic, "Biscuit")


def started(clinic, patient, template=None):
    form = form_start(patient=patient, template=template or consent_template(clinic),
                      user=clinic.user(3), at=T0)
    db.session.commit()
    return form


def with_field(index: int, **change) -> list[dict]:
    fields = copy.deepcopy(CONSENT_FIELDS)
    fields[index] = {**fields[index], **change}
    for key in [k for k, v in change.items() if v is None]:
        fields[index].pop(key)
    return fields


BAD_FIELDS = [
    ("no label", with_field(1, label="  "), "required", "owner_name", "needs a label"),
    ("label missing", with_field(2, label=None), "required", "weight", "needs a label"),
    ("duplicate keys", with_field(2, key="owner_name"), "duplicate_key", "owner_name",
     "used twice"),
    ("choice without options", with_field(4, options=[]), "no_options", "cpr",
     "needs at least one option"),
    ("choice with blank options", with_field(4, options=["", "  "]), "no_options", "cpr",
     "needs at least one option"),
    ("unknown type", with_field(3, type="colour"), "unknown_type", "procedure_date",
     "“colour” is not a field type"),
    ("bad key", with_field(3, key="Bad key!"), "bad_key", "Bad key!", "must start with"),
    ("no fields", [], "required", "fields", "at least one field"),
]


@pytest.mark.parametrize("name, fields, code, field, text", BAD_FIELDS,
                         ids=[b[0] for b in BAD_FIELDS])
def test_a_bad_field_is_refused_naming_it_and_nothing_is_made(clinic, name, fields, code,
                                                               field, text):
    before = counts()
    with pytest.raises(DomainError) as caught:
        form_template_create(user=clinic.user(6), name="Consent", fields=fields)
    db.session.rollback()
    assert caught.value.code == code and caught.value.field == field
    assert text in caught.value.message
    assert counts() == before


@pytest.mark.parametrize("name, fields, code, field, text", BAD_FIELDS,
                         ids=[b[0] for b in BAD_FIELDS])
def test_a_bad_change_publishes_nothing(clinic, name, fields, code, field, text):
    template = consent_template(clinic)
    before = counts()
    with pytest.raises(DomainError) as caught:
        form_template_publish(template=template, user=clinic.user(6), fields=fields,
                              name="Renamed")
    db.session.rollback()
    assert (caught.value.code, caught.value.field) == (code, field)
    assert counts() == before
    db.session.refresh(template)
    assert template.name == "Anaesthesia consent" and template.current.number == 1


def test_publishing_makes_a_version_and_a_started_form_keeps_its_own(clinic, patient):
    template = consent_template(clinic)
    first = started(clinic, patient, template)
    changed = copy.deepcopy(CONSENT_FIELDS)
    changed[1]["label"] = "Name of the owner or agent"
    changed.append({"key": "phone", "label": "Phone", "type": "text", "required": True})
    version = form_template_publish(template=template, user=clinic.user(6), fields=changed)
    db.session.commit()
    assert version.number == 2 and template.current is version
    second = form_start(patient=patient, template=template, user=clinic.user(3))
    db.session.commit()
    db.session.expire_all()
    assert first.version.number == 1 and second.version.number == 2
    assert [f.field["label"] for f in form_view(first).fields][1] == "Owner's name"
    assert "phone" not in [f.field["key"] for f in form_view(first).fields]
    assert [f.field["key"] for f in form_view(second).fields][-1] == "phone"
    # The first form finalises on its own version's rules (no phone needed).
    form_fill(form=first, user=clinic.user(3), values=consent_values())
    form_finalise(form=first, user=clinic.user(3))
    db.session.commit()
    assert first.status == FORM_FINALISED
    # Publishing the same fields again is not a change.
    with pytest.raises(DomainError) as caught:
        form_template_publish(template=template, user=clinic.user(6), fields=changed)
    assert caught.value.code == "unchanged"


def test_only_managers_build_and_level_3_fills(clinic, patient):
    before = counts()
    with pytest.raises(Forbidden):
        form_template_create(user=clinic.user(5), name="Consent", fields=CONSENT_FIELDS)
    db.session.rollback()
    assert counts() == before
    template = consent_template(clinic)
    with pytest.raises(Forbidden):
        form_start(patient=patient, template=template, user=clinic.user(2))
    db.session.rollback()
    form = started(clinic, patient, template)
    before = counts()
    with pytest.raises(Forbidden):
        form_fill(form=form, user=clinic.user(2), values={"owner_name": "X"})
    db.session.rollback()
    assert counts() == before


def test_a_form_needs_an_admitted_patient(clinic, patient):
    template = consent_template(clinic)
    patient_discharge(patient=patient, user=clinic.user(4))
    db.session.commit()
    before = counts()
    with pytest.raises(DomainError) as caught:
        form_start(patient=patient, template=template, user=clinic.user(3))
    db.session.rollback()
    assert caught.value.code == "not_admitted" and counts() == before


def test_entries_are_appended_and_the_latest_by_time_stands(clinic, patient):
    form = started(clinic, patient)
    nurse, vet = clinic.user(3), clinic.user(5)
    form_fill(form=form, user=nurse, values={"owner_name": "Ann", "weight": "30"},
              at=T0 + timedelta(minutes=5))
    form_fill(form=form, user=vet, values={"owner_name": "Ann Client", "weight": "30.0"},
              at=T0 + timedelta(minutes=10))
    # A value from a tablet that was offline arrives late: kept, but the later one stands.
    late = form_fill(form=form, user=nurse, values={"owner_name": "A. C."},
                     at=T0 + timedelta(minutes=7))
    # The same value again adds nothing.
    again = form_fill(form=form, user=vet, values={"owner_name": "Ann Client"},
                      at=T0 + timedelta(minutes=11))
    db.session.commit()
    assert len(late) == 1 and again == []
    view = form_view(form)
    assert view.values["owner_name"] == "Ann Client" and view.values["weight"] == "30"
    assert [e.value for e in view.entries if e.key == "owner_name"] == [
        "Ann", "A. C.", "Ann Client"]
    assert count(FormEntry) == 4  # weight 30.0 is 30: not a change


BAD_VALUES = [
    ({"weight": "heavy"}, "not_a_number", "weight"),
    ({"cpr": "Maybe"}, "bad_choice", "cpr"),
    ({"procedure_date": "23/11/2026"}, "bad_date", "procedure_date"),
    ({"procedure_date": "0001-01-01"}, "out_of_range", "procedure_date"),  # validate.day's years
    ({"agree": "perhaps"}, "bad_type", "agree"),
    ({"intro": "x"}, "no_value", "intro"),
    ({"colour": "red"}, "unknown_field", "colour"),
    ({"owner_name": ["a"]}, "bad_type", "owner_name"),
    ({"owner_name": "x" * 4001}, "too_long", "owner_name"),
]


@pytest.mark.parametrize("values, code, field", BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_a_bad_value_changes_nothing_even_beside_good_ones(clinic, patient, values, code,
                                                           field):
    form = started(clinic, patient)
    before = counts()
    with pytest.raises(DomainError) as caught:
        form_fill(form=form, user=clinic.user(3), values={"owner_name": "Ann", **values})
    db.session.rollback()
    assert (caught.value.code, caught.value.field) == (code, field)
    assert counts() == before


BIG = MAX_SIGNATURE_BYTES + 1
BAD_SIGNATURES = [
    ("not a data URL", "a signature"),
    ("jpeg", "data:image/jpeg;base64,/9j/4AAQSkZJRg=="),
    ("not base64", "data:image/png;base64,@@@not-base64@@@"),
    ("not a PNG", "data:image/png;base64,R0lGODlhAQABAAAAACw="),
    ("too large", png_data_url(300, 300, noise=True)),
    ("a number", 12),
]


@pytest.mark.parametrize("name, value", BAD_SIGNATURES, ids=[b[0] for b in BAD_SIGNATURES])
def test_a_bad_signature_is_refused_clearly(clinic, patient, name, value):
    form = started(clinic, patient)
    before = counts()
    with pytest.raises(DomainError) as caught:
        form_fill(form=form, user=clinic.user(3), values={"signature": value})
    db.session.rollback()
    assert caught.value.code == "bad_signature" and caught.value.field == "signature"
    assert "Owner's signature: the signature must be a PNG image" in caught.value.message
    assert counts() == before


def test_the_too_large_signature_really_is(clinic):
    import base64
    data = base64.b64decode(BAD_SIGNATURES[4][1].split(",", 1)[1])
    assert data.startswith(b"\x89PNG") and len(data) >= BIG


def test_finalising_needs_every_required_field_then_locks(clinic, patient):
    template = consent_template(clinic)
    user = clinic.user(3)
    values = consent_values()
    for missing in ("owner_name", "cpr", "agree", "signature"):
        form = started(clinic, patient, template)
        form_fill(form=form, user=user, values=values, at=T0)
        # Emptied later (an unticked box for the tick box): what stands is empty.
        form_fill(form=form, user=user, values={missing: False if missing == "agree"
                                                else None}, at=T0 + timedelta(minutes=1))
        db.session.commit()
        before = counts()
        with pytest.raises(DomainError) as caught:
            form_finalise(form=form, user=user)
        db.session.rollback()
        assert (caught.value.code, caught.value.field) == ("required", missing)
        assert "is required before the form is finalised" in caught.value.message
        assert counts() == before
        db.session.refresh(form)
        assert form.status == FORM_DRAFT and form.finalised_at is None
    form_fill(form=form, user=user, values=values, at=T0 + timedelta(minutes=2))
    form_finalise(form=form, user=clinic.user(5), at=T0 + timedelta(hours=1))
    db.session.commit()
    assert form.is_finalised and form.finalised_by == clinic.user(5)
    assert form_view(form).values["signature"] == values["signature"]
    # Archived in the same commit: the HTML as it is now, its PDF queued.
    document = db.session.scalars(select(Document)).one()
    assert (document.kind, document.source_uid, document.title) == (
        "form", form.uid, "Anaesthesia consent")
    assert document.patient == patient and document.status == "queued"
    assert "A. Client" in document.html and "Finalised" in document.html
    assert "Level 5" in document.html and values["signature"] in document.html
    before = counts()
    for action in (lambda: form_fill(form=form, user=user, values={"owner_name": "Other"}),
                   lambda: form_finalise(form=form, user=user)):
        with pytest.raises(DomainError) as caught:
            action()
        db.session.rollback()
        assert caught.value.code == "already_finalised" and "Level 5" in caught.value.message
    assert counts() == before


def test_a_fill_named_by_the_tablet_gets_entry_uids_of_its_own(clinic, patient):
    form = started(clinic, patient)
    fill = str(uuid.uuid4())
    made = form_fill(form=form, user=clinic.user(3), values={"owner_name": "Ann",
                                                             "weight": "3"}, fill=fill)
    db.session.commit()
    assert {e.uid for e in made} == {str(uuid.uuid5(uuid.UUID(fill), k))
                                     for k in ("owner_name", "weight")}
    with pytest.raises(DomainError) as caught:
        form_fill(form=form, user=clinic.user(3), values={"owner_name": "Bea"}, fill=fill)
    db.session.rollback()
    assert caught.value.code == "uid_taken"
    assert forms_of(patient) == [form]


def test_a_retired_template_starts_no_new_form_but_a_tablet_s_pinned_one(clinic, patient):
    from kiosk.forms.services import form_template_set_active

    template = form_template_create(user=clinic.user(6), name="Consent",
                                    fields=CONSENT_FIELDS)
    fresh = form_start(patient=patient, template=template, user=clinic.user(3))
    assert fresh.version.number == 1  # in the same unit of work as the template
    form_template_set_active(template=template, user=clinic.user(6), active=False)
    db.session.commit()
    before = counts()
    with pytest.raises(DomainError) as caught:
        form_start(patient=patient, template=template, user=clinic.user(3))
    db.session.rollback()
    assert (caught.value.code, caught.value.field) == ("retired", "template")
    assert counts() == before
    # A tablet that showed the form before it was retired names its version: kept.
    form_start(patient=patient, template=template, user=clinic.user(3), version=1)
    db.session.commit()
    assert count(PatientForm) == 2


def test_an_open_form_holds_the_discharge_until_it_is_finalised(clinic, patient):
    from kiosk.discharge.selectors import discharge_blockers, pending_by_patient

    form = started(clinic, patient)
    assert [b.code for b in discharge_blockers(patient)] == ["form_open"]
    assert "“Anaesthesia consent” is not finalised" in discharge_blockers(patient)[0].message
    assert pending_by_patient([patient])[patient.id] == ["1 form(s) open"]
    before = counts()
    with pytest.raises(DomainError) as caught:
        patient_discharge(patient=patient, user=clinic.user(4))
    db.session.rollback()
    assert caught.value.code == "discharge_blocked" and counts() == before
    form_fill(form=form, user=clinic.user(3), values=consent_values())
    form_finalise(form=form, user=clinic.user(3))
    db.session.commit()
    patient_discharge(patient=patient, user=clinic.user(4))  # its PDF queued: no hold
    db.session.commit()
    assert patient.status == "discharged"
    form_doc = db.session.scalars(select(Document).where(Document.kind == "form")).one()
    assert form_doc.status == "queued"
    documents_work()  # the worker makes it after the discharge
    db.session.expire_all()
    assert form_doc.status == "ready"


def test_a_form_from_the_client_portal_is_checked_whole_and_stored_finalised(app, clinic,
                                                                             patient):
    from kiosk.forms.models import FORM_FINALISED
    from kiosk.forms.services import ERR_REQUIRED_CLIENT, ERR_VERSION, form_submit_by_client

    consent = consent_template(clinic)
    other = consent_template(clinic, name="Other form")
    before = counts()
    for kwargs, code, message in (
            ({"values": {**consent_values(), "cpr": None}}, "required",
             ERR_REQUIRED_CLIENT.format(label="If the heart stops")),
            ({"values": {**consent_values(), "nope": "1"}}, "unknown_field", None),
            ({"values": {**consent_values(), "agree": False}}, "required", None),
            ({"values": consent_values(), "version": other.current}, "bad_version",
             ERR_VERSION)):
        with pytest.raises(DomainError) as caught:
            form_submit_by_client(patient=patient, template=consent, owner_name="Ann Client",
                                  **kwargs)
        db.session.rollback()
        assert caught.value.code == code and (message is None
                                              or caught.value.message == message)
        assert counts() == before
    form = form_submit_by_client(patient=patient, template=consent, values=consent_values(),
                                 owner_name="  Ann Client ")
    db.session.commit()
    assert (form.status, form.started_by_id, form.filled_by_client) == (
        FORM_FINALISED, None, "Ann Client")
    assert form.finalised_by_text == "the owner, Ann Client, through the client portal"
