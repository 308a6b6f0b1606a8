"""Messages to clients, sent for real: e-mail through an SMTP server, SMS and calls through
a provider, its callbacks over HTTP — and every safety rule, with what was recorded."""

import email
from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select

from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError
from kiosk.extensions import db
from kiosk.messaging import sending
from kiosk.messaging.models import ClientMessage
from kiosk.messaging.sending import messages_send_all, messages_send_due
from kiosk.messaging.services import client_message_queue

from .conftest import owner_make

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def queue(patient, channel="email", *, key=None, body="Biscuit ate well today.", **extra):
    message = client_message_queue(key=key or f"test:{channel}:{body}", patient=patient,
                                   channel=channel, body=body, subject="About Biscuit",
                                   **extra)
    db.session.commit()
    return message


def fresh(message) -> ClientMessage:
    db.session.expire_all()
    return db.session.get(ClientMessage, message.id)


def parts(raw: bytes) -> dict[str, str]:
    parsed = email.message_from_bytes(raw)
    return {part.get_content_type(): part.get_payload(decode=True).decode()
            for part in parsed.walk() if not part.is_multipart()} | {"_id": parsed["Message-ID"],
                                                                     "_subject": parsed["Subject"]}


def test_an_email_goes_once_with_its_words_in_text_and_html_and_the_portal_link(
        owned, mailbox, frozen_clock):
    message = queue(owned)
    counts = messages_send_all()
    assert counts["sent"] == 1
    _port, box = mailbox
    assert len(box.messages) == 1
    recipients, raw = box.messages[0]
    assert recipients == ["jane@example.org"]
    got = parts(raw)
    assert "Biscuit ate well today." in got["text/plain"]
    assert "Biscuit ate well today." in got["text/html"]
    link = next(w for w in got["text/plain"].split() if "/portal/" in w)
    assert link in got["text/html"]
    assert got["_subject"] == "About Biscuit"
    row = fresh(message)
    assert (row.status, row.to_address, row.send_attempts) == ("sent", "jane@example.org", 1)
    assert row.sent_at == NOON
    assert messages_send_all()["sent"] == 0  # nothing sent twice
    assert len(box.messages) == 1
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_uid == owned.uid)).all()
    assert "client_message.queue" in actions and "client_message.sent" in actions


def test_html_escapes_what_the_words_hold(owned, mailbox, frozen_clock):
    queue(owned, body="<script>alert(1)</script> & done")
    messages_send_all()
    got = parts(mailbox[1].messages[0][1])
    assert "<script>" not in got["text/html"]
    assert "&lt;script&gt;" in got["text/html"]


def test_an_sms_without_leave_for_clinical_words_sends_a_notice_and_the_link(
        owned, provider, frozen_clock):
    message = queue(owned, "sms", body="Biscuit's kidney values are high.")
    assert messages_send_all()["sent"] == 1
    assert len(provider.sent) == 1
    sent = provider.sent[0]
    assert sent.form["To"] == "+447700900123"
    assert "kidney" not in sent.form["Body"]
    assert "/portal/" in sent.form["Body"] and "STOP" in sent.form["Body"]
    row = fresh(message)
    assert row.status == "sent" and row.provider_id == sent.sid
    assert sent.key == row.uid  # the Idempotency-Key


def test_an_sms_whose_template_allows_it_carries_the_words(owned, provider, frozen_clock):
    queue(owned, "sms", body="Biscuit can go home at 4 pm.", clinical_ok=True)
    messages_send_all()
    assert "Biscuit can go home at 4 pm." in provider.sent[0].form["Body"]


def test_a_call_reads_the_words_as_speech(owned, provider, frozen_clock):
    queue(owned, "voice", body="Please call us about Biscuit & <his> plan.", clinical_ok=True)
    messages_send_all()
    call = provider.sent[0]
    assert call.is_call
    assert "<Say" in call.form["Twiml"]
    assert "Biscuit &amp; &lt;his&gt; plan" in call.form["Twiml"]


@pytest.mark.parametrize(("change", "channel", "why"), [
    ({"opted_out_at": NOON - timedelta(days=1), "opted_out_via": "SMS reply STOP"}, "email",
     "The owner opted out of messages (SMS reply STOP"),
    ({"email": None}, "email", "The owner has no e-mail address."),
    ({"phone": None}, "sms", "The owner has no mobile phone number."),
    ({"sms_consent": False}, "sms", "The owner has not agreed to SMS messages."),
    ({"voice_consent": False}, "voice", "The owner has not agreed to voice calls."),
])
def test_a_message_that_must_not_go_is_recorded_not_sent_with_why(
        owned, mailbox, provider, frozen_clock, change, channel, why):
    for name, value in change.items():
        setattr(owned.owner, name, value)
    db.session.commit()
    message = queue(owned, channel)
    counts = messages_send_all()
    assert counts["not_sent"] == 1 and counts["sent"] == 0
    row = fresh(message)
    assert row.status == "not_sent" and row.status_detail.startswith(why)
    assert mailbox[1].messages == [] and provider.requests == []


def test_a_patient_without_an_owner_is_sent_nothing(clinic, mailbox, frozen_clock):
    from tests import factories

    patient = factories.patient_make(clinic, "Stray")
    message = queue(patient)
    messages_send_all()
    assert fresh(message).status_detail == "The patient has no owner on record."
    assert mailbox[1].messages == []


def test_sms_waits_out_the_quiet_hours_unless_urgent(owned, provider, frozen_clock):
    frozen_clock.set(datetime(2026, 11, 22, 22, 30, tzinfo=UTC))
    waiting = queue(owned, "sms", key="a")
    urgent = queue(owned, "sms", key="b", urgent=True)
    counts = messages_send_all()
    assert counts == {"sent": 1, "failed": 0, "held": 1, "not_sent": 0, "taken": 0}
    held = fresh(waiting)
    assert held.status == "held"
    assert held.send_next_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert "quiet hours until" in held.status_detail
    assert fresh(urgent).status == "sent"
    frozen_clock.set(datetime(2026, 11, 23, 7, 59, tzinfo=UTC))
    assert messages_send_all()["sent"] == 0
    frozen_clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    assert messages_send_all()["sent"] == 1
    assert fresh(waiting).status == "sent"
    assert len(provider.sent) == 2


def test_quiet_hours_follow_the_clinics_wall_clock_across_dst(app_zone_quiet):
    from kiosk.messaging.safety import quiet_until

    settings = app_zone_quiet
    # Europe/London, the night the clocks go back (25 Oct 2026): quiet from 21:00 BST
    # (20:00 UTC) to 08:00 GMT (08:00 UTC).
    assert quiet_until(datetime(2026, 10, 24, 19, 59, tzinfo=UTC), settings) is None
    assert quiet_until(datetime(2026, 10, 24, 20, 0, tzinfo=UTC), settings) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC)
    assert quiet_until(datetime(2026, 10, 25, 7, 59, tzinfo=UTC), settings) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC)
    assert quiet_until(datetime(2026, 10, 25, 8, 0, tzinfo=UTC), settings) is None
    settings.quiet_start = settings.quiet_end = "09:00"  # equal: no quiet hours
    assert quiet_until(datetime(2026, 10, 24, 23, 0, tzinfo=UTC), settings) is None


@pytest.fixture
def app_zone_quiet(clinic):
    clinic.settings.timezone = "Europe/London"
    clinic.settings.quiet_start, clinic.settings.quiet_end = "21:00", "08:00"
    return clinic.settings


def test_an_owner_gets_at_most_the_daily_limit_and_the_rest_wait(owned, mailbox, frozen_clock):
    from kiosk.clinic.models import ClinicSettings

    db.session.scalar(select(ClinicSettings)).client_message_limit = 2
    db.session.commit()
    messages = [queue(owned, key=f"n{i}", body=f"Update {i}") for i in range(3)]
    counts = messages_send_all()
    assert counts["sent"] == 2 and counts["held"] == 1
    late = fresh(messages[2])
    assert late.status == "held" and late.send_next_at == NOON + timedelta(hours=24)
    assert "limit" in late.status_detail
    frozen_clock.set(NOON + timedelta(hours=24))
    assert messages_send_all()["sent"] == 1
    assert len(mailbox[1].messages) == 3


def test_a_refusal_fails_at_once_with_the_providers_words(owned, provider, frozen_clock):
    provider.mode = "reject"
    message = queue(owned, "sms")
    counts = messages_send_all()
    assert counts["failed"] == 1
    row = fresh(message)
    assert row.status == "failed" and "not a valid phone number" in row.status_detail
    assert row.send_attempts == 1
    assert provider.sent == []


def test_a_provider_down_is_tried_again_later_then_given_up_with_why(
        owned, clinic, provider, frozen_clock):
    clinic.settings.quiet_start = clinic.settings.quiet_end = "00:00"  # tries through the night
    provider.mode = "fail"
    message = queue(owned, "sms")
    messages_send_all()
    row = fresh(message)
    assert (row.status, row.send_attempts) == ("queued", 1)
    assert row.send_next_at == NOON + timedelta(seconds=30)
    assert messages_send_all()["failed"] == 0  # its back-off is not over: not tried again
    for _ in range(sending.MAX_TRIES - 1):
        frozen_clock.advance(hours=3)
        messages_send_all()
    row = fresh(message)
    assert row.status == "failed" and row.status_detail.startswith("Gave up after 6 tries")
    assert len(provider.requests) == sending.MAX_TRIES
    provider.mode = "accept"  # a manager sends it again once the provider is back
    from kiosk.messaging.sending import message_send_now

    message_send_now(message=row, user=_manager())
    db.session.commit()
    assert messages_send_all()["sent"] == 1


def _manager():
    from kiosk.staff.models import User

    return db.session.scalar(select(User).where(User.level == 6))


def test_a_provider_that_does_not_answer_costs_its_timeout_not_the_batch(
        owned, provider, mailbox, frozen_clock):
    provider.mode = "timeout"
    provider.hang_s = 2.0
    sms = queue(owned, "sms", key="slow")
    mail = queue(owned, "email", key="quick")
    messages_send_due()
    assert fresh(sms).status == "queued" and fresh(mail).status == "sent"


def test_a_sender_that_died_mid_send_is_replaced_and_the_provider_sends_once(
        owned, provider, frozen_clock):
    message = queue(owned, "sms")
    token = sending._claim(frozen_clock(), 10)  # a sender took it …
    claimed = sending._claimed(token)
    going = sending._decide(claimed, token, frozen_clock())
    jobs, _ = sending._jobs(going, "Test Hospital", token, frozen_clock())
    sending._Senders(current_app.config).send(jobs[0])  # … the provider took it, and the
    # sender died before writing it down
    db.session.rollback()
    assert fresh(message).status == "sending"
    assert messages_send_all()["sent"] == 0  # its lease is not over: nobody takes it
    frozen_clock.advance(minutes=4)
    assert messages_send_all()["sent"] == 1
    assert len(provider.requests) == 2 and provider.repeats == 1
    assert provider.sends_per_key() == {message.uid: 1}
    assert fresh(message).provider_id == provider.sent[0].sid


def test_delivery_callbacks_are_kept_and_forged_ones_change_nothing(owned, provider,
                                                                       frozen_clock):
    message = queue(owned, "sms")
    messages_send_all()
    sid = fresh(message).provider_id
    assert provider.deliver(sid, "delivered", forge=True) == 403
    assert fresh(message).status == "sent"
    assert provider.deliver(sid, "delivered") == 204
    row = fresh(message)
    assert row.status == "delivered" and row.delivered_at is not None
    assert provider.deliver(sid, "sent") == 204  # a late, earlier status changes nothing
    assert fresh(message).status == "delivered"


def test_an_undelivered_message_is_failed_with_why(owned, provider, frozen_clock):
    message = queue(owned, "sms")
    messages_send_all()
    assert provider.deliver(fresh(message).provider_id, "undelivered") == 204
    row = fresh(message)
    assert row.status == "failed" and "could not deliver" in row.status_detail


def test_stop_opts_the_owner_out_and_start_back_in(owned, provider, sending_app,
                                                     frozen_clock):
    url = sending_app.config["KIOSK_PUBLIC_URL"] + "/messaging/provider/inbound"
    assert provider.inbound(url, from_="+447700900123", body="STOP", forge=True) == 403
    db.session.expire_all()
    assert owned.owner.opted_out_at is None
    assert provider.inbound(url, from_="+447700900123", body="Stop") == 200
    db.session.expire_all()
    assert owned.owner.opted_out and owned.owner.opted_out_via == "SMS reply STOP"
    message = queue(owned, "sms")
    messages_send_all()
    assert fresh(message).status == "not_sent" and provider.sent == []
    assert provider.inbound(url, from_="+447700900123", body="START") == 200
    db.session.expire_all()
    assert not owned.owner.opted_out


def test_a_portal_message_is_posted_without_sending_anything(owned, mailbox, provider,
                                                              frozen_clock):
    message = queue(owned, "portal")
    assert messages_send_all()["sent"] == 1
    assert fresh(message).status == "sent"
    assert mailbox[1].messages == [] and provider.requests == []


def test_preferred_means_the_owners_choice_when_recorded(owned, provider, frozen_clock):
    owned.owner.preferred_channel = "sms"
    db.session.commit()
    assert queue(owned, "preferred").channel == "sms"


def test_an_unknown_channel_is_refused_and_nothing_recorded(owned):
    with pytest.raises(DomainError) as refused:
        client_message_queue(key="x", patient=owned, channel="fax", body="Hello")
    assert refused.value.field == "channel"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ClientMessage)) == 0


def test_the_same_key_records_one_message(owned):
    first = queue(owned, key="same")
    assert queue(owned, key="same", body="Other words").id == first.id
    assert db.session.scalar(select(func.count()).select_from(ClientMessage)) == 1


def test_two_senders_never_take_the_same_message(owned, frozen_clock):
    for i in range(5):
        queue(owned, key=f"k{i}")
    first = sending._claim(frozen_clock(), 3)
    second = sending._claim(frozen_clock(), 10)
    a = {m.id for m in sending._claimed(first)}
    b = {m.id for m in sending._claimed(second)}
    assert len(a) == 3 and len(b) == 2 and not a & b
    assert sending._claim(frozen_clock(), 10) is None


def test_a_message_recorded_before_the_owner_goes_to_the_owner_added_since(
        clinic, mailbox, frozen_clock):
    from tests import factories

    patient = factories.patient_make(clinic, "Rex")
    message = queue(patient)  # the admission's flow wrote before reception added the owner
    assert message.owner is None
    patient.owner = owner_make(email="rex.owner@example.org")
    db.session.commit()
    assert messages_send_all()["sent"] == 1
    row = fresh(message)
    assert row.owner_id == patient.owner_id and row.to_address == "rex.owner@example.org"


def test_an_email_whose_sender_died_handing_it_over_is_never_sent_twice(
        owned, mailbox, frozen_clock):
    message = queue(owned)
    token = sending._claim(frozen_clock(), 10)
    going = sending._decide(sending._claimed(token), token, frozen_clock())
    jobs, _ = sending._jobs(going, "Test Hospital", token, frozen_clock())
    senders = sending._Senders(current_app.config, engine=db.engine, token=token)
    senders._send(jobs[0])  # handed to the SMTP server, and the sender died right after
    senders.close()
    db.session.rollback()
    assert len(mailbox[1].messages) == 1
    frozen_clock.advance(minutes=4)
    assert messages_send_all()["failed"] == 1
    row = fresh(message)
    assert row.status == "failed" and row.status_detail.startswith("The sender stopped")
    assert len(mailbox[1].messages) == 1  # not sent again by itself
    sending.message_send_now(message=row, user=_manager())  # the owner said it never came
    db.session.commit()
    assert messages_send_all()["sent"] == 1 and len(mailbox[1].messages) == 2


def test_a_sender_whose_claim_was_taken_over_sends_nothing(owned, mailbox, frozen_clock):
    message = queue(owned)
    token = sending._claim(frozen_clock(), 10)
    going = sending._decide(sending._claimed(token), token, frozen_clock())
    jobs, _ = sending._jobs(going, "Test Hospital", token, frozen_clock())
    frozen_clock.advance(minutes=4)  # this sender stalled past its lease: another took it
    assert messages_send_all()["sent"] == 1
    outcome, written = sending._Senders(current_app.config, engine=db.engine,
                                        token=token).send(jobs[0])
    assert outcome.taken and written == "taken" and len(mailbox[1].messages) == 1
    assert fresh(message).status == "sent"


def test_a_message_that_cannot_be_prepared_says_why_and_is_not_left_claimed(
        owned, mailbox, frozen_clock):
    current_app.config["KIOSK_PUBLIC_URL"] = None  # no address for the portal link
    message = queue(owned)
    assert messages_send_all()["failed"] == 1
    row = fresh(message)
    assert row.status == "queued" and row.claim is None and row.send_attempts == 1
    assert "KIOSK_PUBLIC_URL" in row.status_detail or "address" in row.status_detail
    assert mailbox[1].messages == []


def test_a_wrong_provider_setting_holds_sms_with_why_and_lets_email_go(
        owned, mailbox, provider, frozen_clock):
    current_app.config["KIOSK_SMS_URL"] = "http://example.org"  # plain http elsewhere: refused
    sms = queue(owned, "sms", key="s")
    mail = queue(owned, "email", key="e")
    messages_send_all()
    assert fresh(mail).status == "sent"
    row = fresh(sms)
    assert row.status == "queued" and row.claim is None and row.status_detail
    assert provider.requests == []


def test_the_lease_setting_decides_how_long_a_claim_holds(owned, frozen_clock):
    current_app.config["KIOSK_MESSAGE_LEASE_S"] = "3600"
    message = queue(owned)
    sending._claim(frozen_clock(), 10)
    assert fresh(message).send_next_at == NOON + timedelta(hours=1)


def test_a_message_for_a_former_owner_is_not_sent_and_its_link_shows_nothing(
        owned, mailbox, frozen_clock):
    from kiosk.messaging.links import portal_message, portal_token

    message = queue(owned)
    token = portal_token(message)
    owned.owner = owner_make(name="New Owner", email="new@example.org")
    db.session.commit()
    messages_send_all()
    row = fresh(message)
    assert row.status == "not_sent" and "owner changed" in row.status_detail
    assert mailbox[1].messages == []
    with pytest.raises(DomainError) as refused:
        portal_message(token)
    assert refused.value.code == "link_invalid"


def test_start_does_not_undo_an_opt_out_staff_recorded(owned, provider, sending_app,
                                                       frozen_clock):
    owned.owner.opted_out_at, owned.owner.opted_out_via = NOON, "staff: Level 6: asked by phone"
    db.session.commit()
    url = sending_app.config["KIOSK_PUBLIC_URL"] + "/messaging/provider/inbound"
    assert provider.inbound(url, from_="+447700900123", body="START") == 200
    db.session.expire_all()
    assert owned.owner.opted_out


def test_callbacks_with_the_provider_misconfigured_are_refused_not_crashed(
        owned, provider, sending_app, frozen_clock):
    sending_app.config["KIOSK_SMS_URL"] = "http://example.org"
    url = sending_app.config["KIOSK_PUBLIC_URL"] + "/messaging/provider/inbound"
    assert provider.inbound(url, from_="+447700900123", body="STOP") == 403
    db.session.expire_all()
    assert not owned.owner.opted_out


def test_send_now_of_an_unknown_message_is_refused_and_sends_nothing(client, login, owned,
                                                                      frozen_clock):
    from kiosk.core.models import new_uid

    client_message_queue(patient=owned, key="d1", channel="email", subject="Going home",
                         body="Biscuit is ready.")
    db.session.commit()
    login(_manager())
    before = db.session.scalars(select(ClientMessage.status)).all()
    response = client.post(f"/messages/{new_uid()}/send-now")
    assert response.status_code == 404
    assert "There is no client message with that id." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalars(select(ClientMessage.status)).all() == before
