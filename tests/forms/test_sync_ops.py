"""Forms through the outbox: start, fill and finalise as ops; replays are duplicates; a
fill after finalising is a conflict; bad values are rejected alone, naming the field."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from kiosk.documents.models import Document
from kiosk.extensions import db
from kiosk.forms.models import FormEntry, PatientForm
from kiosk.forms.selectors import form_view, patient_form_by_uid
from tests import factories
from tests.support.forms import consent_template, consent_values
from tests.support.tablet import Tablet, now_z


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_consent_form_is_started_filled_and_finalised_offline_once(clinic, client):
    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    nurse = clinic.user(3)
    tablet = Tablet(client)
    form, fill = str(uuid.uuid4()), str(uuid.uuid4())
    values = consent_values()
    ops = [tablet.op("form.start", {"form": form, "patient": patient.uid,
                                    "template": template.uid, "version": 1}, nurse,
                     at=now_z(-timedelta(minutes=30))),
           tablet.op("form.fill", {"form": form, "fill": fill, "values": values}, nurse,
                     at=now_z(-timedelta(minutes=20))),
           tablet.op("form.finalise", {"form": form}, nurse, at=now_z(-timedelta(minutes=19)))]
    answer = tablet.post(ops).get_json()
    assert [r["status"] for r in answer["results"]] == ["applied"] * 3
    assert answer["results"][0]["result"] == {"form": form, "version": 1}
    assert sorted(answer["results"][1]["result"]["entries"]) == sorted(
        str(uuid.uuid5(uuid.UUID(fill), key)) for key in values)
    # The answers were lost: the tablet sends again, and nothing doubles.
    again = tablet.post(ops).get_json()
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    assert [r["original_status"] for r in again["results"]] == ["applied"] * 3
    assert count(PatientForm) == 1 and count(FormEntry) == len(values)
    assert count(Document) == 1
    saved = patient_form_by_uid(form)
    assert saved.is_finalised and saved.finalised_by == nurse
    assert saved.device_id == tablet.device.id
    assert form_view(saved).values["signature"] == values["signature"]
    # Later ops on the locked form: recorded as conflicts, never applied.
    late = [tablet.op("form.fill", {"form": form, "values": {"owner_name": "Someone else"}},
                      nurse),
            tablet.op("form.finalise", {"form": form}, clinic.user(5))]
    results = tablet.post(late).get_json()["results"]
    assert [r["status"] for r in results] == ["conflict", "conflict"]
    assert {r["result"]["conflict"] for r in results} == {"already_finalised"}
    assert count(FormEntry) == len(values) and count(Document) == 1
    assert form_view(patient_form_by_uid(form)).values["owner_name"] == "A. Client"


def test_bad_form_ops_are_rejected_alone_naming_what_is_wrong(clinic, client):
    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    nurse = clinic.user(3)
    tablet = Tablet(client)
    form = str(uuid.uuid4())
    ops = [tablet.op("form.start", {"form": form, "patient": patient.uid,
                                    "template": template.uid}, nurse),
           tablet.op("form.fill", {"form": form, "values": {
               "owner_name": "Ann", "signature": "data:image/png;base64,AAAA"}}, nurse),
           tablet.op("form.fill", {"form": form, "values": {"owner_name": "Ann"}}, nurse),
           tablet.op("form.finalise", {"form": form}, nurse),
           tablet.op("form.fill", {"form": form, "values": {"weight": "x"}},
                     clinic.user(2)),
           tablet.op("form.start", {"form": str(uuid.uuid4()), "patient": patient.uid,
                                    "template": template.uid, "version": 7}, nurse),
           tablet.op("form.fill", {"form": str(uuid.uuid4()), "values": {}}, nurse),
           tablet.op("form.start", {"form": "not-a-uid", "patient": patient.uid,
                                    "template": template.uid}, nurse)]
    results = tablet.post(ops).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "applied", "rejected",
                                              "rejected", "rejected", "rejected",
                                              "rejected"]
    errors = [r.get("error", {}) for r in results]
    assert (errors[1]["code"], errors[1]["field"]) == ("bad_signature", "signature")
    assert (errors[3]["code"], errors[3]["field"]) == ("required", "cpr")
    assert errors[4]["code"] == "forbidden"
    assert (errors[5]["code"], errors[5]["field"]) == ("not_found", "version")
    assert (errors[6]["code"], errors[6]["field"]) == ("not_found", "form")
    assert (errors[7]["code"], errors[7]["field"]) == ("bad_args", "form")
    # Only what was applied stands: one form, one entry, not finalised, no document.
    assert count(PatientForm) == 1 and count(FormEntry) == 1 and count(Document) == 0
    assert not patient_form_by_uid(form).is_finalised


def test_a_form_started_on_an_older_version_keeps_it(clinic, client):
    from kiosk.forms.services import form_template_publish
    from tests.support.forms import CONSENT_FIELDS

    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    form_template_publish(template=template, user=clinic.user(6),
                          fields=CONSENT_FIELDS + [{"key": "phone", "label": "Phone",
                                                    "type": "text", "required": True}])
    db.session.commit()
    tablet = Tablet(client)
    form = str(uuid.uuid4())
    values = consent_values()
    ops = [tablet.op("form.start", {"form": form, "patient": patient.uid,
                                    "template": template.uid, "version": 1}, clinic.user(3)),
           tablet.op("form.fill", {"form": form, "values": values}, clinic.user(3)),
           tablet.op("form.finalise", {"form": form}, clinic.user(3))]
    results = tablet.post(ops).get_json()["results"]
    assert [r["status"] for r in results] == ["applied"] * 3
    assert patient_form_by_uid(form).version.number == 1


def test_two_tablets_filling_one_form_offline_merge_by_time(clinic, client):
    from kiosk.discharge.services import patient_discharge
    from kiosk.forms.services import form_start

    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    form = form_start(patient=patient, template=template, user=clinic.user(3))
    db.session.commit()
    a, b = Tablet(client, "Blue"), Tablet(client, "Green")
    early = a.op("form.fill", {"form": form.uid, "values": {"owner_name": "Ann",
                                                            "weight": "30"}},
                 clinic.user(3), at=now_z(-timedelta(minutes=20)))
    late = b.op("form.fill", {"form": form.uid, "values": {"owner_name": "Ann Client"}},
                clinic.user(5), at=now_z(-timedelta(minutes=10)))
    # The later value reaches the server first; the earlier one is kept, and does not win.
    assert b.post([late]).get_json()["results"][0]["status"] == "applied"
    assert a.post([early]).get_json()["results"][0]["status"] == "applied"
    view = form_view(patient_form_by_uid(form.uid))
    assert view.values["owner_name"] == "Ann Client" and view.values["weight"] == "30"
    assert [e.value for e in view.entries if e.key == "owner_name"] == ["Ann", "Ann Client"]
    # A form started on a tablet for a patient discharged meanwhile: a conflict, no form.
    patient_discharge(patient=patient, user=clinic.user(6),
                      override_reason="Owner took the dog home against advice")
    db.session.commit()
    result = a.post([a.op("form.start", {"form": str(uuid.uuid4()), "patient": patient.uid,
                                         "template": template.uid}, clinic.user(3))]
                    ).get_json()["results"][0]
    assert result["status"] == "conflict" and result["result"]["conflict"] == "not_admitted"
    assert count(PatientForm) == 1


def test_the_ops_after_a_form_start_that_was_a_conflict_are_conflicts_too(clinic, client):
    from kiosk.devices.models import SyncOp
    from kiosk.discharge.services import patient_discharge

    patient = factories.patient_make(clinic, "Biscuit")
    template = consent_template(clinic)
    patient_discharge(patient=patient, user=clinic.user(6),
                      override_reason="Owner took the dog home against advice")
    db.session.commit()
    a = Tablet(client, "Blue")
    form_uid = str(uuid.uuid4())
    nurse = clinic.user(3)
    answer = a.post([
        a.op("form.start", {"form": form_uid, "patient": patient.uid,
                            "template": template.uid}, nurse),
        a.op("form.fill", {"form": form_uid, "values": {"owner_name": "Ann"}}, nurse),
        a.op("form.finalise", {"form": form_uid}, nurse)]).get_json()
    assert [r["status"] for r in answer["results"]] == ["conflict"] * 3
    assert [r["result"]["conflict"] for r in answer["results"]] == [
        "not_admitted", "after_conflict", "after_conflict"]
    assert "not accepted" in answer["results"][1]["result"]["message"]
    # In a later batch too, and nothing was made.
    later = a.post([a.op("form.fill", {"form": form_uid, "values": {"weight": "30"}},
                         nurse)]).get_json()["results"][0]
    assert later["status"] == "conflict" and later["result"]["conflict"] == "after_conflict"
    assert count(PatientForm) == 0
    # A form nobody started is still a mistake, refused as one.
    stray = a.post([a.op("form.fill", {"form": str(uuid.uuid4()), "values": {"weight": "1"}},
                         nurse)]).get_json()["results"][0]
    assert stray["status"] == "rejected" and stray["error"]["code"] == "not_found"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(SyncOp).where(
        SyncOp.status == "conflict")) == 4
