"""E-mail notices to staff: double opt-in, notices through the job queue, unsubscribe,
retries that never send twice; a real SMTP server on 127.0.0.1."""

import email
import re
from datetime import timedelta

from sqlalchemy import func, select

from kiosk.core.events import event_record
from kiosk.core.jobs import jobs_run_pending
from kiosk.extensions import db
from kiosk.maintenance.models import MaintenanceWindow
from kiosk.status.models import StatusDelivery, StatusNotice, StatusSubscription
from kiosk.status.notices import MAX_TRIES, WHY_NO_SMTP, deliveries_send_all
from kiosk.status.services import ERR_TOPICS

LINK = re.compile(r"http://localhost(/status/(?:confirm|unsubscribe)/[A-Za-z0-9._-]+)")


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def mails(box) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=email.policy.default)
            for _, raw in box.messages]


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def link_in(message) -> str:
    return LINK.search(text_of(message)).group(1)


def window_event(name: str, window: MaintenanceWindow | None = None, *, at=None):
    """A window (made if not given) and the event the lead's services record for it."""
    if window is None:
        window = MaintenanceWindow(starts_at=at, ends_at=at + timedelta(hours=1),
                                   message="Upgrading the server")
        db.session.add(window)
        db.session.flush()
    event_record(db.session, name, window=window.uid)
    db.session.commit()
    return window


def subscribe(client, login, user, address="nurse@example.test", **topics):
    login(user)
    data = {"email": address, **{k: "1" for k, on in topics.items() if on}}
    return client.post("/status/subscriptions", data=data)


def confirmed(client, login, clinic, mailbox, address="nurse@example.test"):
    """Subscribe `address` to both topics and follow its confirmation link."""
    _, box = mailbox
    assert subscribe(client, login, clinic.user(2), address, maintenance=True,
                     incidents=True).status_code == 302
    jobs_run_pending()
    confirm = link_in(mails(box)[-1])
    assert client.post(confirm).status_code == 200
    return db.session.scalar(select(StatusSubscription)
                             .where(StatusSubscription.email == address))


def test_double_opt_in_then_a_notice_once_then_unsubscribe(clinic, client, login, mailbox,
                                                           frozen_clock):
    _, box = mailbox
    answer = subscribe(client, login, clinic.user(2), "Nurse@Example.test", maintenance=True)
    assert answer.status_code == 302
    jobs_run_pending()  # the job the commit queued
    (confirmation,) = mails(box)
    assert confirmation["To"] == "nurse@example.test"
    assert "Confirm" in confirmation["Subject"]
    window = window_event("maintenance.scheduled", at=frozen_clock.now + timedelta(days=1))
    jobs_run_pending()
    assert len(box.messages) == 1  # not confirmed: nothing but the confirmation
    confirm = link_in(confirmation)
    client.get("/")  # the link works for anyone: sign out first
    client.delete_cookie("session")
    page = client.get(confirm)
    assert page.status_code == 200 and "nurse@example.test" in page.text
    assert db.session.scalar(select(StatusSubscription.confirmed_at)) is None  # GET: nothing
    assert client.post(confirm).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(StatusSubscription.confirmed_at)) is not None

    window_event("maintenance.started", window)
    jobs_run_pending()
    jobs_run_pending()
    deliveries_send_all()  # the sweep finds nothing more to send
    notice = mails(box)[-1]
    assert len(box.messages) == 2 and notice["Subject"] == "Maintenance has started"
    assert "Upgrading the server" in text_of(notice)
    assert notice["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    window_event("maintenance.started", window)  # the same fact again: the same notice
    jobs_run_pending()
    assert len(box.messages) == 2
    assert count(StatusNotice) == 3  # the confirmation, scheduled, started

    unsubscribe = link_in(notice)
    assert "/status/unsubscribe/" in unsubscribe
    assert client.post(unsubscribe).status_code == 200
    window_event("maintenance.ended", window)
    jobs_run_pending()
    assert len(box.messages) == 2
    assert db.session.scalar(select(func.count()).where(
        StatusDelivery.notice_id == select(StatusNotice.id).where(
            StatusNotice.key == f"maintenance.ended:{window.uid}").scalar_subquery())) == 0


def test_incident_notices_go_to_those_who_chose_them(clinic, client, login, mailbox,
                                                     frozen_clock):
    _, box = mailbox
    confirmed(client, login, clinic, mailbox, "a@example.test")
    subscribe(client, login, clinic.user(3), "b@example.test", maintenance=True)
    jobs_run_pending()
    client.post(link_in(mails(box)[-1]))
    sent_before = len(box.messages)
    login(clinic.user(6))
    client.post("/status/notes", data={"title": "Phones down", "severity": "major",
                                       "body": "Use the radio."})
    jobs_run_pending()
    news = mails(box)[sent_before:]
    assert [m["To"] for m in news] == ["a@example.test"]
    assert news[0]["Subject"] == "[Major] Phones down" and "Use the radio." in text_of(news[0])


def test_a_retry_after_a_refusal_sends_once(clinic, client, login, mailbox, frozen_clock):
    _, box = mailbox
    confirmed(client, login, clinic, mailbox)
    box.refuse.append("451 4.3.0 Try again later")
    window_event("maintenance.scheduled", at=frozen_clock.now + timedelta(days=1))
    jobs_run_pending()
    delivery = db.session.scalar(select(StatusDelivery).order_by(StatusDelivery.id.desc()))
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "451" in delivery.last_error
    assert len(box.messages) == 1  # the confirmation only
    deliveries_send_all()  # before its back-off: not tried
    assert len(box.messages) == 1
    frozen_clock.advance(seconds=31)
    deliveries_send_all()
    deliveries_send_all()
    db.session.expire_all()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    subjects = [m["Subject"] for m in mails(box)]
    assert subjects.count("Planned maintenance: Mon 23 Nov 12:00") == 1


def test_a_delivery_that_keeps_failing_is_marked_failed_and_shown(clinic, client, login,
                                                                   mailbox, frozen_clock):
    _, box = mailbox
    confirmed(client, login, clinic, mailbox)
    box.refuse.extend(["451 4.3.0 Busy"] * MAX_TRIES)
    window_event("maintenance.cancelled", at=frozen_clock.now + timedelta(days=1))
    for _ in range(MAX_TRIES):
        deliveries_send_all()
        frozen_clock.advance(hours=1)
    delivery = db.session.scalar(select(StatusDelivery).order_by(StatusDelivery.id.desc()))
    assert delivery.status == "failed" and delivery.attempts == MAX_TRIES
    assert delivery.last_error.startswith(f"Gave up after {MAX_TRIES} tries")
    login(clinic.user(6))
    page = client.get("/status/notes").text
    assert "Planned maintenance cancelled" in page and "Gave up after" in page


def test_a_permanent_refusal_fails_at_once(clinic, client, login, mailbox, frozen_clock):
    _, box = mailbox
    confirmed(client, login, clinic, mailbox)
    box.refuse.append("554 5.7.1 Rejected")
    window_event("maintenance.scheduled", at=frozen_clock.now + timedelta(days=1))
    jobs_run_pending()
    delivery = db.session.scalar(select(StatusDelivery).order_by(StatusDelivery.id.desc()))
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "554" in delivery.last_error


def test_without_an_smtp_server_deliveries_wait(app, clinic, client, login, mailbox):
    app.config["KIOSK_SMTP_HOST"] = ""
    login(clinic.user(2))
    assert "No SMTP server is set up" in client.get("/status/subscriptions").text
    subscribe(client, login, clinic.user(2), maintenance=True)
    jobs_run_pending()
    delivery = db.session.scalar(select(StatusDelivery))
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        "pending", 0, WHY_NO_SMTP)
    app.config["KIOSK_SMTP_HOST"] = "127.0.0.1"
    db.session.execute(StatusDelivery.__table__.update().values(next_at=delivery.created_at))
    db.session.commit()
    deliveries_send_all()
    assert len(mailbox[1].messages) == 1


def test_bad_subscriptions_are_refused_and_nothing_is_stored(clinic, client, login, mailbox):
    answer = subscribe(client, login, clinic.user(1), "not-an-address", maintenance=True)
    assert answer.status_code == 422 and 'id="email-error"' in answer.text
    answer = subscribe(client, login, clinic.user(1), "a@example.test")
    assert answer.status_code == 422 and ERR_TOPICS in answer.text
    assert count(StatusSubscription) == 0 and count(StatusNotice) == 0


def test_subscribing_needs_a_sign_in_and_links_need_a_good_token(client, clinic, mailbox):
    assert client.get("/status/subscriptions").status_code == 302
    assert client.post("/status/subscriptions", data={"email": "a@example.test",
                                                      "maintenance": "1"}).status_code == 302
    assert count(StatusSubscription) == 0
    for path in ("/status/confirm/garbage", "/status/unsubscribe/garbage"):
        for answer in (client.get(path), client.post(path)):
            assert answer.status_code == 404 and "This link does not work" in answer.text


def test_a_notice_that_cannot_be_written_never_fails_the_change(clinic, monkeypatch,
                                                                frozen_clock):
    from sqlalchemy import text

    from kiosk.status import notices

    def broken(session, *args):
        session.connection().execute(text("SELECT * FROM no_such_table"))

    monkeypatch.setattr(notices, "_write", broken)
    window = window_event("maintenance.scheduled", at=frozen_clock.now + timedelta(days=1))
    db.session.expire_all()
    assert db.session.scalar(select(MaintenanceWindow.uid)) == window.uid
    assert count(StatusNotice) == 0


def test_a_tablet_with_nobody_signed_in_is_sent_to_sign_in_never_a_500(clinic, client, login,
                                                                         mailbox):
    from tests.support.tablet import Tablet

    row = confirmed(client, login, clinic, mailbox)
    client.post("/logout")
    tablet = Tablet(client)
    with client.session_transaction() as session:
        session.clear()
        session["tablet_id"] = tablet.device.id
    assert client.get("/status/subscriptions").status_code == 302  # the paired tablet
    for path in (f"/status/subscriptions/{row.uid}/stop", "/status/subscriptions/nope/stop"):
        answer = client.post(path)
        assert answer.status_code == 302, (path, answer.status_code)
        assert answer.headers["Location"].startswith("/login")
    db.session.expire_all()
    assert db.session.get(StatusSubscription, row.id).unsubscribed_at is None


ANY_LINK = re.compile(r"(https?://[^/\s]+)/status(?:/(?:confirm|unsubscribe)/[A-Za-z0-9._-]+)?")


def link_hosts(message) -> set[str]:
    return set(ANY_LINK.findall(text_of(message)))


def ask_at_host(client, host, **data):
    """POST a subscription with `Host: host`, signed in as the client is (its cookie)."""
    client.set_cookie("session", client.get_cookie("session").value, domain=host)
    return client.post("/status/subscriptions", data=data, base_url=f"http://{host}")


def test_a_confirmed_address_keeps_its_links_whatever_host_a_colleague_asks_at(
        clinic, client, login, mailbox, frozen_clock):
    _, box = mailbox
    row = confirmed(client, login, clinic, mailbox, "manager@example.test")
    assert row.link_base == "http://localhost/"
    login(clinic.user(1))
    answer = ask_at_host(client, "evil.example", email="manager@example.test",
                         maintenance="1", incidents="1")
    assert answer.status_code == 302
    jobs_run_pending()
    db.session.expire_all()
    assert db.session.get(StatusSubscription, row.id).link_base == "http://localhost/"
    again = mails(box)[-1]
    assert link_hosts(again) == {"http://localhost"}, text_of(again)
    client.post(LINK.search(text_of(again)).group(1))  # its owner confirms it after all
    window_event("maintenance.scheduled", at=frozen_clock.now + timedelta(days=1))
    jobs_run_pending()
    db.session.expire_all()
    assert db.session.get(StatusSubscription, row.id).link_base == "http://localhost/"
    notice = mails(box)[-1]
    assert notice["Subject"].startswith("Planned maintenance")
    assert link_hosts(notice) == {"http://localhost"}, text_of(notice)
    assert "evil.example" not in notice["List-Unsubscribe"]


def test_a_request_at_another_host_cannot_change_a_pending_addresss_links(
        clinic, client, login, mailbox, frozen_clock):
    _, box = mailbox
    subscribe(client, login, clinic.user(3), "vet@example.test", maintenance=True)
    jobs_run_pending()
    first = mails(box)[-1]
    login(clinic.user(1))
    assert ask_at_host(client, "evil.example", email="vet@example.test",
                       maintenance="1").status_code == 302
    jobs_run_pending()
    assert len(box.messages) == 2
    client.post(LINK.search(text_of(first)).group(1))  # the owner confirms the first mail
    db.session.expire_all()
    row = db.session.scalar(select(StatusSubscription))
    assert row.confirmed_at is not None and row.link_base == "http://localhost/"
    window_event("maintenance.scheduled", at=frozen_clock.now + timedelta(days=1))
    jobs_run_pending()
    assert link_hosts(mails(box)[-1]) == {"http://localhost"}


def test_links_start_at_the_public_address_when_it_is_set(app, clinic, client, login,
                                                          mailbox, frozen_clock):
    _, box = mailbox
    app.config["KIOSK_PUBLIC_URL"] = "https://status.clinic.example/"
    login(clinic.user(2))
    assert ask_at_host(client, "evil.example", email="a@example.test",
                       incidents="1").status_code == 302
    jobs_run_pending()
    assert db.session.scalar(select(StatusSubscription.link_base)) == \
        "https://status.clinic.example/"
    assert link_hosts(mails(box)[-1]) == {"https://status.clinic.example"}


def sign_in(other_client, user):
    """Sign `user` in on another test client (as the `login` fixture does on its own)."""
    from kiosk.core.auth import SESSION_KEY
    from kiosk.staff.sessions import staff_session_start

    key = staff_session_start(user=user, auth="password")
    db.session.commit()
    with other_client.session_transaction() as session:
        session.update({"user_id": user.id, SESSION_KEY: key, "auth": "password"})


def test_confirmation_mails_are_limited_per_person_and_per_address(app, clinic, client, login,
                                                                     mailbox):
    _, box = mailbox
    app.config["KIOSK_STATUS_SUBSCRIBE_LIMIT"] = "3 per hour"
    for _ in range(3):
        refused = subscribe(client, login, clinic.user(1), "not-an-address", incidents=True)
        assert refused.status_code == 422  # a refusal sends nothing and costs nothing
        assert subscribe(client, login, clinic.user(1), "boss@example.test",
                         incidents=True).status_code == 302
    notices_before = count(StatusNotice)
    answer = subscribe(client, login, clinic.user(1), "boss@example.test", incidents=True)
    assert answer.status_code == 429 and "Too many confirmation e-mails" in answer.text
    assert 'id="email-error"' in answer.text
    other = app.test_client()  # someone else, elsewhere, asking for the same address
    sign_in(other, clinic.user(2))
    assert other.post("/status/subscriptions", data={
        "email": "Boss@Example.test", "incidents": "1"}).status_code == 429
    assert other.post("/status/subscriptions", data={
        "email": "own@example.test", "incidents": "1"}).status_code == 302
    for address in ("fresh@example.test", "own@example.test"):  # the first person: spent
        assert subscribe(client, login, clinic.user(1), address,
                         incidents=True).status_code == 429
    assert count(StatusNotice) == notices_before + 1  # own@ only
    jobs_run_pending()
    assert sorted(m["To"] for m in mails(box)) == ["boss@example.test"] * 3 + [
        "own@example.test"]
