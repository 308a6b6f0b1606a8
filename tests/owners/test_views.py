"""Owner pages: who may see and change what, forms that show each error beside its field
with nothing stored, opt-out and opt-in with a reason, the patient's page linking to its
owner (or offering to add one), escaped output and the CSRF token the forms need."""

import pytest

from kiosk import create_app
from kiosk.core.auth import SESSION_KEY
from kiosk.extensions import db
from kiosk.owners.services import (
    ERR_CHANNEL_CONSENT,
    ERR_CHANNEL_EMAIL,
    ERR_EMAIL,
    ERR_PHONE,
    ERR_REASON,
    owner_link,
    owner_opt_out,
)
from kiosk.patients.models import Patient
from tests import factories

from .helpers import owner_make, owners_state

FORM = {"name": "Ann Jones", "email": "ann.jones@example.com", "phone": "+44 7700 900321",
        "preferred_channel": "sms", "sms_consent": "1"}


@pytest.fixture
def ann(clinic):
    """Ann Smith, owner of Rex (committed)."""
    owner = owner_make(clinic.user(3))
    owner_link(patient=factories.patient_make(clinic, "Rex"), owner=owner)
    db.session.commit()
    return owner


def test_the_owner_page_shows_contact_consent_and_patients(clinic, client, login, ann):
    login(clinic.user(1))
    page = client.get(f"/owners/{ann.uid}")
    html = page.text
    assert page.status_code == 200
    for text in ("Ann Smith", 'href="mailto:ann@example.com"', 'href="tel:+447700900123"',
                 "<dt>Preferred channel</dt><dd>E-mail</dd>", "SMS: yes · Calls: no", "Rex",
                 f'href="/patients/{ann.patients[0].uid}/sheet"', "Opt out of all messages"):
        assert text in html
    assert "Edit details" not in html and "Opt back in" not in html  # level 1


def test_an_opted_out_owner_shows_how_and_when(clinic, client, login, ann, frozen_clock):
    owner_opt_out(owner=ann, via="SMS reply STOP")
    db.session.commit()
    login(clinic.user(3))
    html = client.get(f"/owners/{ann.uid}").text
    assert "Opted out of all messages" in html and "since Sun 22 Nov 12:00" in html
    assert "(SMS reply STOP)" in html and "Opt back in" in html
    assert "Opt out of all messages</button>" not in html


def test_pages_need_a_signed_in_person(clinic, client, ann):
    for url in ("/owners/", f"/owners/{ann.uid}", f"/owners/{ann.uid}/edit"):
        answer = client.get(url)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], url
    before = owners_state()
    assert client.post(f"/owners/{ann.uid}/edit", data=FORM).status_code == 302
    assert client.post(f"/owners/{ann.uid}/opt-out", data={"reason": "x"}).status_code == 302
    assert owners_state() == before


def test_a_tablet_is_sent_to_sign_in(clinic, client, ann):
    from kiosk.devices.services import device_provision

    device, _ = device_provision(name="Blue", colour="blue")
    db.session.commit()
    with client.session_transaction() as session:
        session["tablet_id"], session["tablet_gen"] = device.id, device.session_generation or 0
    answer = client.get(f"/owners/{ann.uid}")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_an_unknown_owner_is_404(clinic, client, login):
    login(clinic.user(3))
    assert client.get("/owners/nope").status_code == 404
    assert client.post("/owners/nope/edit", data=FORM).status_code == 404


def test_level_2_may_see_but_not_edit(clinic, client, login, ann):
    login(clinic.user(2))
    before = owners_state()
    assert client.get(f"/owners/{ann.uid}").status_code == 200
    for answer in (client.get(f"/owners/{ann.uid}/edit"),
                   client.post(f"/owners/{ann.uid}/edit", data=FORM)):
        assert answer.status_code == 403
        assert "You need level 3 to enter owners&#39; contact details" in answer.text
    answer = client.post(f"/owners/{ann.uid}/opt-in", data={"reason": "Asked"})
    assert answer.status_code == 403
    assert owners_state() == before


def test_editing_saves_and_the_patient_shows_the_new_name(clinic, client, login, ann):
    login(clinic.user(3))
    form = client.get(f"/owners/{ann.uid}/edit").text
    assert 'value="ann@example.com"' in form and 'name="sms_consent" value="1" checked' in form
    answer = client.post(f"/owners/{ann.uid}/edit", data=FORM)
    assert answer.status_code == 303 and answer.headers["Location"] == f"/owners/{ann.uid}"
    db.session.expire_all()
    assert (ann.name, ann.email, ann.phone, ann.preferred_channel, ann.sms_consent,
            ann.voice_consent) == ("Ann Jones", "ann.jones@example.com", "+447700900321",
                                   "sms", True, False)
    assert ann.patients[0].owner_name == "Ann Jones"


@pytest.mark.parametrize("change, field, message", [
    ({"name": ""}, "name", "Name is required."),
    ({"email": "ann@"}, "email", ERR_EMAIL),
    ({"phone": "12"}, "phone", ERR_PHONE),
    ({"preferred_channel": "fax"}, "preferred_channel",
     "The preferred channel must be one of: email, sms, voice, portal."),
    ({"sms_consent": None}, "preferred_channel",
     ERR_CHANNEL_CONSENT.format(channel="SMS", what="text messages")),
    ({"preferred_channel": "email", "email": ""}, "preferred_channel", ERR_CHANNEL_EMAIL),
])
def test_a_bad_field_is_shown_beside_it_and_nothing_is_stored(clinic, client, login, ann,
                                                               change, field, message):
    login(clinic.user(3))
    before = owners_state()
    data = {key: value for key, value in {**FORM, **change}.items() if value is not None}
    answer = client.post(f"/owners/{ann.uid}/edit", data=data)
    html = answer.text
    assert answer.status_code == 422
    assert f'<p class="field-error" id="{field}-error" role="alert">' in html
    assert html.index(f'name="{field}"') < html.index(f'id="{field}-error"')
    assert message.replace("'", "&#39;") in html
    typed = FORM["email"] if "email" not in change else FORM["phone"]
    assert f'value="{typed}"' in html  # what was typed stays in the form
    assert owners_state() == before


def test_output_is_escaped(clinic, client, login):
    owner = owner_make(clinic.user(3), name="<script>alert(1)</script>")
    login(clinic.user(1))
    html = client.get(f"/owners/{owner.uid}").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    found = client.get("/owners/?q=%3Cscript").text
    assert "&lt;script&gt;" in found and "<script>alert" not in found


def test_opting_out_and_back_in_with_a_reason(clinic, client, login, ann, frozen_clock):
    login(clinic.user(1))
    answer = client.post(f"/owners/{ann.uid}/opt-out", data={"reason": "Phoned: no more"})
    assert answer.status_code == 303
    db.session.expire_all()
    assert ann.opted_out_via == "staff: Level 1: Phoned: no more"
    login(clinic.user(3))
    assert client.post(f"/owners/{ann.uid}/opt-in",
                       data={"reason": "Asked again at the desk"}).status_code == 303
    db.session.expire_all()
    assert ann.opted_out is False


@pytest.mark.parametrize("action", ["opt-out", "opt-in"])
def test_opting_out_or_in_without_a_reason_changes_nothing(clinic, client, login, ann, action,
                                                          frozen_clock):
    if action == "opt-in":
        owner_opt_out(owner=ann, via="SMS reply STOP")
        db.session.commit()
    login(clinic.user(3))
    before = owners_state()
    answer = client.post(f"/owners/{ann.uid}/{action}", data={"reason": "  "})
    assert answer.status_code == 422
    assert f'<p class="field-error" id="reason-error" role="alert">{ERR_REASON}</p>' in \
        answer.text
    assert owners_state() == before


def test_search_lists_matching_owners(clinic, client, login, ann):
    owner_make(clinic.user(3), name="Raj Patel", email="raj@example.org", phone=None,
               sms_consent=False)
    login(clinic.user(1))
    html = client.get("/owners/?q=07700+900123").text
    assert f'href="/owners/{ann.uid}"' in html and "Raj Patel" not in html
    assert "No owner matches “zzz”" in client.get("/owners/?q=zzz").text
    assert 'href="/owners/"' in client.get("/patients/").text  # in the menu


def test_the_sheet_links_the_owner_or_offers_to_add_one(clinic, client, login, ann):
    rex = ann.patients[0]
    bella = factories.patient_make(clinic, "Bella", owner_name="Raj Patel",
                                   owner_phone="+44 7700 900999")
    login(clinic.user(3))
    sheet = client.get(f"/patients/{rex.uid}/sheet").text
    assert f'<a href="/owners/{ann.uid}" class="owner-link">Ann Smith</a>' in sheet
    assert "Add owner details" not in sheet
    sheet = client.get(f"/patients/{bella.uid}/sheet").text
    assert f'href="/patients/{bella.uid}/owner/new" class="owner-add">Add owner details' in sheet
    login(clinic.user(2))
    assert "Add owner details" not in client.get(f"/patients/{bella.uid}/sheet").text
    assert client.get(f"/patients/{bella.uid}/owner/new").status_code == 403


def test_adding_owner_details_to_a_patient(clinic, client, login, ann):
    bella = factories.patient_make(clinic, "Bella", owner_name="Raj Patel",
                                   owner_phone="+44 7700 900999")
    login(clinic.user(3))
    form = client.get(f"/patients/{bella.uid}/owner/new").text
    assert 'value="Raj Patel"' in form and 'value="+44 7700 900999"' in form
    before = owners_state()
    bad = client.post(f"/patients/{bella.uid}/owner/new",
                      data={**FORM, "name": "Raj Patel", "email": "raj@"})
    assert bad.status_code == 422 and 'id="email-error"' in bad.text
    assert owners_state() == before
    answer = client.post(f"/patients/{bella.uid}/owner/new",
                         data={**FORM, "name": "Raj Patel", "phone": "+44 7700 900999"})
    assert answer.status_code == 303
    db.session.expire_all()
    stored = db.session.get(Patient, bella.id)
    assert answer.headers["Location"] == f"/owners/{stored.owner.uid}"
    assert (stored.owner.name, stored.owner.phone, stored.owner_phone) == (
        "Raj Patel", "+447700900999", "+447700900999")
    again = client.get(f"/patients/{bella.uid}/owner/new")
    assert again.status_code == 302 and again.headers["Location"] == f"/owners/{stored.owner.uid}"
    before = owners_state()
    twice = client.post(f"/patients/{bella.uid}/owner/new", data=FORM)
    assert twice.status_code == 422 and "already has an owner" in twice.text
    assert owners_state() == before


def test_the_patient_form_sends_owner_changes_to_the_owners_page(clinic, client, login, ann):
    rex = ann.patients[0]
    login(clinic.user(4))
    form = client.get(f"/patients/{rex.uid}/edit").text
    assert f'href="/owners/{ann.uid}"' in form and 'name="owner_name"' not in form


def test_the_forms_need_their_csrf_token(clinic, tmp_path):
    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/csrf.db"})
    with app.app_context():
        db.create_all()
        user = factories.clinic_make().user(3)
        owner = owner_make(user)
        guarded = app.test_client()
        from kiosk.staff.sessions import staff_session_start

        key = staff_session_start(user=user, auth="password")
        db.session.commit()
        with guarded.session_transaction() as session:
            session["user_id"], session["auth"], session[SESSION_KEY] = user.id, "password", key
        before = owners_state()
        for url, data in ((f"/owners/{owner.uid}/edit", FORM),
                          (f"/owners/{owner.uid}/opt-out", {"reason": "Asked"})):
            assert guarded.post(url, data=data).status_code == 400
        assert owners_state() == before
        page = guarded.get(f"/owners/{owner.uid}/edit").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert guarded.post(f"/owners/{owner.uid}/edit",
                            data={**FORM, "csrf_token": token}).status_code == 303
        db.session.expire_all()
        assert owner.name == "Ann Jones"
        db.session.remove()
        db.engine.dispose()
