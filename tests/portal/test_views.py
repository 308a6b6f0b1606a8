"""The portal's pages, as a client's phone uses them: the messages about their pet only,
the link's first opening kept, a form filled (signed by drawing or by typing the name),
stored finalised as the owner's and shown so on staff pages; every bad input answered
clearly with nothing stored; private headers, the limit, and no token in the logs."""

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError
from kiosk.core.jobs import jobs_run_pending
from kiosk.documents.models import Document
from kiosk.extensions import db
from kiosk.flows.models import FlowEvent
from kiosk.forms.fields import PNG_MAGIC, PNG_PREFIX, signature_clean
from kiosk.forms.models import FORM_FINALISED, FormEntry, PatientForm
from kiosk.forms.printing import form_html
from kiosk.forms.services import (
    ERR_FINALISED,
    ERR_REQUIRED_CLIENT,
    form_fill,
    form_template_publish,
)
from kiosk.inbox.models import StaffMessage
from kiosk.messaging.links import ERR_LINK_EXPIRED, ERR_LINK_INVALID, portal_token
from kiosk.messaging.models import MESSAGE_FAILED, MESSAGE_NOT_SENT, MESSAGE_QUEUED
from kiosk.owners.models import Owner
from kiosk.portal.selectors import ERR_NO_FORM
from kiosk.portal.signatures import ERR_TYPED_NAME
from kiosk.portal.views import ERR_CSRF, ERR_TOO_MANY
from tests import factories
from tests.support.flows import AT_ONCE, flow_make, template_make

from .conftest import OWNER_NAME, count, filled, stored

CLIENT_TEXT = f"the owner, {OWNER_NAME}, through the client portal"
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "X-Robots-Tag": "noindex, nofollow"}


def private(response) -> bool:
    return all(response.headers.get(name) == value for name, value in PRIVATE.items())


def submitted_form() -> PatientForm:
    db.session.expire_all()
    return db.session.scalars(select(PatientForm)).one()


# ---- The page --------------------------------------------------------------------------

def test_the_page_shows_this_pets_messages_to_this_owner_newest_first(
        client, clinic, rex, intake, send, asked):
    _, token = asked
    older = send(rex, "welcome", subject="Welcome", body="Rex is settled in.",
                 ago=timedelta(days=2))
    portal_only = send(rex, "portal", channel="portal", subject="Discharge notes",
                       body="Short walks only.", status=MESSAGE_QUEUED)
    hidden = [send(rex, "queued", subject="Still queued", status=MESSAGE_QUEUED),
              send(rex, "failed", subject="Bounced", status=MESSAGE_FAILED),
              send(rex, "refused", subject="Opted out", status=MESSAGE_NOT_SENT),
              send(factories.patient_make(clinic, "Tibbles"), "cat", subject="About Tibbles")]
    previous = Owner(name="Former Owner", email="former@example.org")
    db.session.add(previous)
    db.session.commit()
    hidden.append(send(rex, "old-owner", subject="For the former owner", to=previous))
    page = client.get(f"/portal/{token}")
    assert page.status_code == 200 and private(page)
    html = page.text
    assert "<h1>Rex</h1>" in html and "Test Hospital" in html and "Dr Ada Lovelace" in html
    for message in hidden:
        assert message.subject not in html
    assert "Tibbles" not in html and "Former Owner" not in html
    # Newest first: the intake e-mail and the portal note (now), then the welcome.
    assert html.index("Before Rex&#39;s visit") < html.index("Welcome")
    assert html.index(portal_only.subject) < html.index(older.subject)
    # The form asked for, still to fill, with its link; no staff names or internal words.
    assert "Intake questions" in html and "To fill" in html
    assert f'href="/portal/{token}/form"' in html
    for internal in ("Level 6", "flow:Intake", "alex@example.org", "Sent", "Queued"):
        assert internal not in html


def test_the_first_opening_is_kept_and_each_one_audited(client, asked, held):
    message, token = asked
    opened = held.now
    assert client.get(f"/portal/{token}").status_code == 200
    held.advance(hours=3)
    assert client.get(f"/portal/{token}").status_code == 200
    db.session.expire_all()
    assert message.opened_at == opened
    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "portal.opened")
                              .order_by(AuditEntry.id)).all()
    assert [(r.user_id, r.entity_uid, r.detail["first"]) for r in rows] == [
        (None, message.uid, True), (None, message.uid, False)]
    assert token not in str([r.detail for r in rows])


# ---- Filling the form ------------------------------------------------------------------

def test_a_form_with_a_drawn_signature_is_stored_finalised_as_the_owners(
        client, clinic, login, rex, asked, held):
    message, token = asked
    form_page = client.get(f"/portal/{token}/form")
    assert form_page.status_code == 200 and private(form_page)
    html = form_page.text
    for label in ("How is Rex eating?", "Any vomiting?", "I agree to the treatment plan",
                  "sign by typing your full name"):
        assert label in html
    assert 'for="f-eating"' in html and 'name="csrf_token"' in html
    assert 'src="/static/js/portal-signature.js"' in html
    values = filled()
    answer = client.post(f"/portal/{token}/form", data=values)
    assert answer.status_code == 303 and private(answer)
    assert answer.headers["Location"].endswith(f"/portal/{token}/form")
    thanks = client.get(answer.headers["Location"])
    assert thanks.status_code == 200
    assert "We received this form on 22 November 2026 at 12:00. Thank you" in thanks.text

    form = submitted_form()
    assert (form.status, form.finalised_at, form.patient_id) == (FORM_FINALISED, held.now,
                                                                 rex.id)
    assert (form.started_by_id, form.finalised_by_id, form.filled_by_client) == (
        None, None, OWNER_NAME)
    entries = {e.key: e for e in db.session.scalars(select(FormEntry))}
    assert {k: e.value for k, e in entries.items()} == {
        "eating": "Well, twice a day", "weight": "31.5", "last_meal": "2026-11-21",
        "vomiting": "No", "agree": True, "signature": values["signature"]}
    assert {e.user_id for e in entries.values()} == {None}
    db.session.refresh(message)
    assert message.form_id == form.id
    document = db.session.scalars(select(Document)).one()  # archived like any finalised form
    assert (document.kind, document.source_uid) == ("form", form.uid)
    audit = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "portal.form_submitted")).one()
    assert audit.user_id is None and audit.detail["form"] == form.uid
    assert "Well, twice a day" not in str(audit.detail) and "data:" not in str(audit.detail)

    # Staff see it on the patient's forms, the form page and its PDF as the owner's.
    login(clinic.user(3))
    listing = client.get(f"/patients/{rex.uid}/forms").text
    assert "Intake questions" in listing and f"finalised Sun 22 Nov 12:00 by {CLIENT_TEXT}" \
        in listing
    page = client.get(f"/forms/{form.uid}").text
    assert f"started Sun 22 Nov 12:00 by {CLIENT_TEXT}" in page and "locked" in page
    assert f"recorded by {CLIENT_TEXT}" in page
    with client.application.test_request_context():
        printed = form_html(form)
    assert f"Finalised Sun 22 Nov 12:00 by {CLIENT_TEXT}." in printed
    assert f"recorded by {CLIENT_TEXT}" in printed


def test_a_typed_name_becomes_a_png_signature(client, asked):
    _, token = asked
    answer = client.post(f"/portal/{token}/form",
                         data=filled(signature="", **{"signature-typed": "  Alex   Owner "}))
    assert answer.status_code == 303
    entry = db.session.scalars(select(FormEntry).where(FormEntry.key == "signature")).one()
    assert entry.value.startswith(PNG_PREFIX)
    assert base64.b64decode(entry.value[len(PNG_PREFIX):]).startswith(PNG_MAGIC)
    assert signature_clean(entry.value, "signature", "Signature") == entry.value


def test_the_form_is_filled_on_the_version_the_client_was_shown(client, clinic, intake, asked):
    _, token = asked
    assert 'name="version" value="1"' in client.get(f"/portal/{token}/form").text
    form_template_publish(template=intake, user=clinic.user(6),
                          fields=[*intake.current.fields,
                                  {"key": "phone", "label": "Phone", "type": "text",
                                   "required": True}])
    db.session.commit()
    assert client.post(f"/portal/{token}/form", data=filled()).status_code == 303
    assert submitted_form().version.number == 1


def test_a_follow_up_form_sent_back_runs_the_flows_waiting_for_it(client, clinic, intake, asked):
    template = template_make(name="Follow-up in", body="{{ patient.name }}'s owner sent a form")
    flow_make(clinic, {"trigger": {"kind": "form_finalised", "form": intake.uid},
                       "conditions": [],
                       "steps": [{"category": "smartflow", "type": "staff_message",
                                  "due": AT_ONCE, "item": template.uid,
                                  "responsible": "level:5"}]},
              name="Tell the vets")
    _, token = asked
    assert client.post(f"/portal/{token}/form", data=filled()).status_code == 303
    form = submitted_form()
    event = db.session.scalars(select(FlowEvent)).one()
    assert (event.kind, event.key) == ("form_finalised", f"form_finalised:{form.uid}")
    jobs_run_pending()
    message = db.session.scalars(select(StaffMessage)).one()
    assert (message.to_level, message.body) == (5, "Rex's owner sent a form")


def test_another_form_of_the_same_pet_and_owner_is_reached_by_its_uid(client, rex, intake,
                                                                        send, asked):
    _, token = asked
    second = send(rex, "follow-up", subject="A week later", form_template=intake)
    page = client.get(f"/portal/{token}").text
    assert f'href="/portal/{token}/form/{second.uid}"' in page
    assert client.post(f"/portal/{token}/form/{second.uid}", data=filled()).status_code == 303
    db.session.refresh(second)
    assert second.form_id == submitted_form().id
    assert "To fill" in client.get(f"/portal/{token}").text  # the first one still waits


# ---- Bad input: a clear answer, nothing stored ------------------------------------------

def test_an_expired_link_gets_a_clear_page_and_stores_nothing(client, asked, held):
    message, token = asked
    held.advance(days=15)
    before = stored()
    for answer in (client.get(f"/portal/{token}"), client.get(f"/portal/{token}/form"),
                   client.post(f"/portal/{token}/form", data=filled())):
        assert answer.status_code == 410 and private(answer)
        assert ERR_LINK_EXPIRED.format(clinic="Test Hospital") in answer.text
        assert "Sign in" not in answer.text  # the client's page, not the staff one
    assert stored() == before
    db.session.refresh(message)
    assert message.opened_at is None and message.form_id is None


def test_a_garbled_link_gets_a_clear_page_and_stores_nothing(client, asked):
    _, token = asked
    before = stored()
    for url in (f"/portal/{token[:-3]}", f"/portal/{token[:-3]}/form", "/portal/rubbish"):
        answer = client.get(url)
        assert answer.status_code == 404 and private(answer)
        assert ERR_LINK_INVALID.format(clinic="Test Hospital") in answer.text
    assert client.post(f"/portal/{token[:-3]}/form", data=filled()).status_code == 404
    assert stored() == before


def test_a_reused_link_says_received_and_refuses_a_second_form(client, asked, held):
    message, token = asked
    assert client.post(f"/portal/{token}/form", data=filled()).status_code == 303
    held.advance(days=1)
    before = stored()
    again = client.get(f"/portal/{token}/form")
    assert again.status_code == 200
    assert "We received this form on 22 November 2026 at 12:00. Thank you" in again.text
    assert 'name="eating"' not in again.text
    refused = client.post(f"/portal/{token}/form", data=filled(eating="Changed my mind"))
    assert refused.status_code == 409 and private(refused)
    assert "We received this form on 22 November 2026" in refused.text
    assert stored() == before
    assert "Changed my mind" not in db.session.scalars(select(FormEntry.value)).all()
    assert "Received on Sun 22 Nov 12:00" in client.get(f"/portal/{token}").text


def test_a_token_mixed_with_another_patients_message_is_not_found(client, clinic, intake,
                                                                  send, asked):
    _, token = asked
    tibbles = factories.patient_make(clinic, "Tibbles")
    theirs = send(tibbles, "cat", form_template=intake)
    no_form = send(tibbles, "cat-note")
    before = stored()
    for uid in (theirs.uid, no_form.uid, "not-a-uid"):
        for answer in (client.get(f"/portal/{token}/form/{uid}"),
                       client.post(f"/portal/{token}/form/{uid}", data=filled())):
            assert answer.status_code == 404 and private(answer)
            assert ERR_NO_FORM in answer.text and "Tibbles" not in answer.text
    assert stored() == before
    db.session.refresh(theirs)
    assert theirs.form_id is None


def test_a_message_without_a_form_has_no_form_page(client, rex, send):
    message = send(rex, "note", body="Rex is eating well.")
    answer = client.get(f"/portal/{portal_token(message)}/form")
    assert answer.status_code == 404 and ERR_NO_FORM in answer.text


def test_a_missing_required_field_shows_the_form_again_with_its_error(client, asked):
    _, token = asked
    before = stored()
    answer = client.post(f"/portal/{token}/form", data=filled(vomiting=None))
    assert answer.status_code == 422 and private(answer)
    error = ERR_REQUIRED_CLIENT.format(label="Any vomiting?")
    assert f'<p class="field-error" id="f-vomiting-error">{error}</p>' in answer.text
    assert f'<a href="#f-vomiting">{error}</a>' in answer.text
    assert "Well, twice a day" in answer.text  # what was typed stays
    assert 'class="sig-kept"' in answer.text  # and the drawn signature, not to sign twice
    assert stored() == before


def test_an_unticked_box_or_no_signature_is_refused(client, asked):
    _, token = asked
    before = stored()
    for data, key, label in ((filled(agree=None), "agree", "I agree to the treatment plan"),
                             (filled(signature=""), "signature", "Your signature")):
        answer = client.post(f"/portal/{token}/form", data=data)
        assert answer.status_code == 422
        assert f'id="f-{key}-error">{ERR_REQUIRED_CLIENT.format(label=label)}' in answer.text
    assert stored() == before


def test_a_bad_signature_or_typed_name_is_refused_next_to_the_field(client, asked):
    _, token = asked
    before = stored()
    for data, words in (
            (filled(signature="data:image/png;base64,bm90IGEgcG5n"), "it is not a PNG"),
            (filled(signature="javascript:alert(1)"), "not a data:image/png;base64 URL"),
            (filled(signature="", **{"signature-typed": "12345"}),
             ERR_TYPED_NAME.format(label="Your signature", n=120)),
            (filled(signature="", **{"signature-typed": "A" * 121}),
             ERR_TYPED_NAME.format(label="Your signature", n=120))):
        answer = client.post(f"/portal/{token}/form", data=data)
        assert answer.status_code == 422, words
        assert 'id="f-signature-error">' in answer.text and words in answer.text
        assert 'class="sig-kept"' not in answer.text  # the bad one is not offered back
    assert stored() == before


def test_a_bad_value_or_a_version_of_another_form_stores_nothing(client, clinic, asked):
    _, token = asked
    before = stored()
    answer = client.post(f"/portal/{token}/form", data=filled(weight="heavy"))
    assert answer.status_code == 422 and 'id="f-weight-error"' in answer.text
    assert client.post(f"/portal/{token}/form", data=filled(version="7")).status_code == 404
    assert stored() == before


def test_the_post_needs_its_csrf_token_which_works_without_an_account(app, client, asked):
    _, token = asked
    app.config["WTF_CSRF_ENABLED"] = True
    before = stored()
    refused = client.post(f"/portal/{token}/form", data=filled())
    assert refused.status_code == 400 and ERR_CSRF in refused.text and private(refused)
    assert stored() == before
    page = client.get(f"/portal/{token}/form").text  # no sign-in: the session cookie holds it
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post(f"/portal/{token}/form", data=filled(csrf_token=csrf)).status_code == 303
    assert count(PatientForm) == 1


def test_the_portal_is_rate_limited_per_address(app, client, asked):
    _, token = asked
    app.config["KIOSK_PORTAL_LIMIT"] = "3 per minute"
    answers = [client.get(url).status_code for url in (
        f"/portal/{token}", "/portal/whatever", f"/portal/{token}/form", f"/portal/{token}")]
    assert answers == [200, 404, 200, 429]
    before = stored()
    refused = client.post(f"/portal/{token}/form", data=filled())
    assert refused.status_code == 429 and ERR_TOO_MANY in refused.text and private(refused)
    assert stored() == before


def test_what_staff_or_a_client_typed_is_shown_as_text(client, clinic, rex, intake, send):
    rex.name = "<script>alert('rex')</script>"
    db.session.commit()
    message = send(rex, "x", subject="<b>Hi</b>", body="<img src=x onerror=alert(1)>",
                   form_template=intake)
    token = portal_token(message)
    page = client.get(f"/portal/{token}").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>Hi</b>" not in page
    refused = client.post(f"/portal/{token}/form", data=filled(eating="<script>1</script>",
                                                               vomiting=None))
    assert "&lt;script&gt;1&lt;/script&gt;" in refused.text and "<script>1" not in refused.text


def test_staff_cannot_change_a_form_the_owner_sent(client, clinic, asked):
    _, token = asked
    assert client.post(f"/portal/{token}/form", data=filled()).status_code == 303
    form = submitted_form()
    before = stored()
    with pytest.raises(DomainError) as caught:
        form_fill(form=form, user=clinic.user(3), values={"eating": "Edited"})
    assert caught.value.message == ERR_FINALISED.format(who=CLIENT_TEXT,
                                                        at="2026-11-22 12:00 UTC")
    db.session.rollback()
    assert stored() == before


def test_a_form_fee_is_charged_for_a_form_the_owner_sent(client, clinic, asked):
    from kiosk.billing.models import Charge
    from kiosk.billing.services import item_save

    item_save(user=clinic.user(6), data={"code": "INTAKE", "description": "Intake review",
                                         "unit_price": "15.00", "applies_to": "form",
                                         "match": "Intake questions"})
    db.session.commit()
    _, token = asked
    assert client.post(f"/portal/{token}/form", data=filled()).status_code == 303
    charge = db.session.scalars(select(Charge)).one()
    assert (charge.key, charge.item_code, charge.user_id) == (
        f"form:{submitted_form().uid}", "INTAKE", None)
