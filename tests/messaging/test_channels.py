"""The channels against real peers on 127.0.0.1: an SMTP server (aiosmtpd) that wants
STARTTLS with a certificate from a test CA and a login over TLS, and a Twilio-compatible
provider (tests/support/fake_provider.py)."""

import base64
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from kiosk.core import mail
from kiosk.core.mail import MailError, SmtpSettings, smtp_session, smtp_settings
from kiosk.messaging import channels
from kiosk.messaging.channels import (
    ChannelError,
    Receipt,
    callback_signature,
    callback_signature_valid,
    email_build,
    provider_settings,
    sms_send,
    voice_call,
)
from tests.support.fake_provider import FakeProvider

PASSWORD = "correct-horse-7"  # noqa: S105 (the test server's)


def _free_port() -> int:
    with socket.socket() as probe:  # aiosmtpd's own check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Inbox:
    """Takes every message, except for two recipients it refuses (for good, and for now)."""

    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 No such mailbox here"
        if address.startswith("later@"):
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((session.peer, envelope))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"clinic" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: the server says 535


@pytest.fixture(scope="module")
def ca():
    """A certificate authority of the tests' own, and the server's certificate from it."""
    return trustme.CA()


@pytest.fixture
def smtp_tls(ca, tmp_path):
    """A real SMTP server on 127.0.0.1 that requires STARTTLS, then a login, then mail;
    and settings that reach it, trusting the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(),
                            tls_context=context, require_starttls=True,
                            authenticator=_authenticator, auth_required=True,
                            auth_require_tls=True)
    controller.start()
    ca_file = tmp_path / "clinic-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    settings = SmtpSettings(host="127.0.0.1", port=controller.port, user="clinic",
                            password=PASSWORD, starttls=True, from_address="desk@clinic.test",
                            ca_file=str(ca_file), timeout_s=5)
    yield settings, inbox
    controller.stop()


def _email(key="reminder:1", to="owner@example.test", subject="Biscuit's check-up"):
    return email_build(to=to, subject=subject, text="See you on Monday.",
                       html="<p>See you on <b>Monday</b>.</p>", key=key,
                       from_address="desk@clinic.test", from_name="Riverside Vets")


def _received(inbox, index=-1):
    peer, envelope = inbox.messages[index]
    return envelope, message_from_bytes(envelope.content, policy=default_policy)


# -- SMTP --------------------------------------------------------------------------------


def test_smtp_settings_read_the_configuration_with_defaults():
    assert smtp_settings({}) is None
    assert smtp_settings({"KIOSK_SMTP_HOST": "  "}) is None
    plain = smtp_settings({"KIOSK_SMTP_HOST": "relay.clinic.test"})
    assert (plain.port, plain.starttls, plain.from_address, plain.timeout_s, plain.ca_file) == (
        25, False, "kiosk@relay.clinic.test", 20.0, None)
    full = smtp_settings({"KIOSK_SMTP_HOST": "relay.clinic.test", "KIOSK_SMTP_PORT": "587",
                          "KIOSK_SMTP_STARTTLS": "Yes", "KIOSK_SMTP_USER": "clinic",
                          "KIOSK_SMTP_PASSWORD": PASSWORD, "KIOSK_SMTP_FROM": "desk@clinic.test",
                          "KIOSK_SMTP_CA_FILE": "/etc/clinic/ca.pem", "KIOSK_SMTP_TIMEOUT": "7.5"})
    assert (full.port, full.starttls, full.user, full.from_address, full.ca_file,
            full.timeout_s) == (587, True, "clinic", "desk@clinic.test", "/etc/clinic/ca.pem", 7.5)
    assert PASSWORD not in repr(full)


@pytest.mark.parametrize(("name", "value", "error"), [
    ("KIOSK_SMTP_PORT", "smtp", mail.ERR_PORT), ("KIOSK_SMTP_PORT", "70000", mail.ERR_PORT),
    ("KIOSK_SMTP_TIMEOUT", "soon", mail.ERR_TIMEOUT), ("KIOSK_SMTP_TIMEOUT", "0", mail.ERR_TIMEOUT),
])
def test_smtp_settings_that_cannot_work_are_refused(name, value, error):
    with pytest.raises(MailError) as refused:
        smtp_settings({"KIOSK_SMTP_HOST": "relay.clinic.test", name: value})
    assert str(refused.value) == error and refused.value.permanent


def test_an_email_arrives_over_starttls_with_text_and_html(smtp_tls, frozen_clock):
    settings, inbox = smtp_tls
    with smtp_session(settings) as session:
        session.send(_email())
    envelope, message = _received(inbox)
    assert envelope.mail_from == "desk@clinic.test"
    assert envelope.rcpt_tos == ["owner@example.test"]
    assert message["From"] == "Riverside Vets <desk@clinic.test>"
    assert message["To"] == "owner@example.test"
    assert message["Subject"] == "Biscuit's check-up"
    assert message["Date"].datetime == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert text.get_content().strip() == "See you on Monday."
    assert html.get_content_type() == "text/html"
    assert html.get_content().strip() == "<p>See you on <b>Monday</b>.</p>"
    assert message["Message-ID"] == _email()["Message-ID"]  # a resend: the same id
    assert message["Message-ID"].endswith("@clinic.test>")
    assert _email(key="reminder:2")["Message-ID"] != message["Message-ID"]


def test_header_line_breaks_add_no_header_and_no_recipient(smtp_tls):
    settings, inbox = smtp_tls
    built = email_build(to="owner@example.test\r\nBcc: thief@example.test",
                        subject="Biscuit\r\nBcc: thief@example.test", text="t", html="<p>h</p>",
                        key="k:1", from_address="desk@clinic.test", from_name="Riverside\nVets")
    with smtp_session(settings) as session:
        session.send(built)
    envelope, message = _received(inbox)
    assert envelope.rcpt_tos == ["owner@example.test"]
    assert message["Bcc"] is None and message["From"] == "Riverside Vets <desk@clinic.test>"
    assert message["Subject"] == "Biscuit Bcc: thief@example.test"


def test_many_messages_go_over_one_connection_and_a_refusal_stops_only_its_own(smtp_tls):
    settings, inbox = smtp_tls
    with smtp_session(settings) as session:
        session.send(_email(key="a", to="one@example.test"))
        with pytest.raises(MailError) as refused:
            session.send(_email(key="b", to="nobody@example.test"))
        with pytest.raises(MailError) as deferred:
            session.send(_email(key="c", to="later@example.test"))
        session.send(_email(key="d", to="two@example.test"))
    assert refused.value.permanent and "550 5.1.1 No such mailbox here" in str(refused.value)
    assert "nobody@example.test" in str(refused.value)
    assert not deferred.value.permanent and "451" in str(deferred.value)
    assert [envelope.rcpt_tos for _, envelope in inbox.messages] == [
        ["one@example.test"], ["two@example.test"]]
    assert len({peer for peer, _ in inbox.messages}) == 1  # one connection for all


def test_a_wrong_password_is_permanent_and_never_repeated(smtp_tls):
    settings, inbox = smtp_tls
    wrong = replace(settings, password="not-the-pass-9")
    with pytest.raises(MailError) as refused:
        with smtp_session(wrong) as session:
            session.send(_email())
    assert str(refused.value) == mail.ERR_LOGIN.format(host="127.0.0.1")
    assert refused.value.permanent
    assert "not-the-pass-9" not in repr(refused.value.args) and refused.value.__cause__ is None
    assert inbox.messages == []


def test_an_untrusted_certificate_is_refused(smtp_tls):
    settings, inbox = smtp_tls
    system_trust = replace(settings, ca_file=None)
    with pytest.raises(MailError) as refused:
        with smtp_session(system_trust) as session:
            session.send(_email())
    assert str(refused.value) == mail.ERR_UNTRUSTED.format(host="127.0.0.1")
    assert refused.value.permanent and inbox.messages == []


def test_a_ca_file_that_cannot_be_read_is_said(smtp_tls, tmp_path):
    settings, inbox = smtp_tls
    missing = replace(settings, ca_file=str(tmp_path / "none.pem"))
    with pytest.raises(MailError) as refused:
        with smtp_session(missing):
            pass
    assert str(refused.value) == mail.ERR_CA_FILE.format(path=tmp_path / "none.pem")
    assert inbox.messages == []


def test_a_login_without_starttls_is_refused_before_connecting():
    # Nothing listens there: had it tried to connect, the error would be a refused connection.
    settings = SmtpSettings(host="127.0.0.1", port=_free_port(), user="clinic",
                            password=PASSWORD, starttls=False)
    with pytest.raises(MailError) as refused:
        with smtp_session(settings):
            pass
    assert str(refused.value) == mail.ERR_LOGIN_IN_CLEAR and refused.value.permanent
    assert PASSWORD not in str(refused.value)


def test_no_smtp_server_listening_is_worth_another_try():
    settings = SmtpSettings(host="127.0.0.1", port=_free_port(), timeout_s=2)
    with pytest.raises(MailError) as refused:
        with smtp_session(settings):
            pass
    assert str(refused.value) == mail.ERR_UNREACHABLE.format(host="127.0.0.1",
                                                             kind="ConnectionRefusedError")
    assert not refused.value.permanent


# -- SMS and voice -----------------------------------------------------------------------


@pytest.fixture
def provider():
    """A Twilio-compatible provider on 127.0.0.1."""
    with FakeProvider() as fake:
        yield fake


def _settings(provider, **extra) -> channels.ProviderSettings:
    return provider_settings(provider.config(KIOSK_SMS_TIMEOUT="0.5", **extra))


def test_provider_settings_read_the_configuration_with_defaults(provider):
    assert provider_settings({}) is None
    settings = provider_settings(provider.config())
    assert (settings.url, settings.account, settings.sms_from, settings.voice_from,
            settings.timeout_s, settings.voice_language) == (
        provider.url, provider.account, provider.number, provider.number, 10.0, "en-GB")
    assert provider.token not in repr(settings)
    voice = provider_settings(provider.config(KIOSK_VOICE_FROM="+441632960001",
                                              KIOSK_VOICE_LANGUAGE="cy-GB"))
    assert (voice.voice_from, voice.voice_language) == ("+441632960001", "cy-GB")


@pytest.mark.parametrize(("extra", "error"), [
    ({"KIOSK_SMS_URL": "ftp://api.example.test"}, channels.ERR_URL),
    ({"KIOSK_SMS_URL": "http://api.example.test"}, channels.ERR_URL),  # the token in clear
    ({"KIOSK_SMS_URL": "https://AC1:secret@api.example.test"}, channels.ERR_URL),
    ({"KIOSK_SMS_TOKEN": ""}, channels.ERR_MISSING.format(names="KIOSK_SMS_TOKEN")),
    ({"KIOSK_SMS_TIMEOUT": "soon"}, channels.ERR_TIMEOUT),
    ({"KIOSK_SMS_TIMEOUT": "-1"}, channels.ERR_TIMEOUT),
])
def test_provider_settings_that_cannot_work_are_refused(provider, extra, error):
    with pytest.raises(ChannelError) as refused:
        provider_settings(provider.config(**extra))
    assert refused.value.reason == error and refused.value.permanent
    assert provider.token not in refused.value.reason
    assert provider_settings(provider.config(KIOSK_SMS_URL="https://api.example.test"))


def test_a_text_is_sent_once_per_key(provider):
    settings = _settings(provider)
    receipt = sms_send(settings, to="+447700900123", body="Biscuit is ready to go home.",
                       key="discharge:42", status_callback="https://kiosk.test/sms/status")
    assert receipt.provider_id.startswith("SM") and receipt.status == "queued"
    [request] = provider.requests
    assert request.path == f"/2010-04-01/Accounts/{provider.account}/Messages.json"
    assert request.form == {"To": "+447700900123", "From": provider.number,
                            "Body": "Biscuit is ready to go home.",
                            "StatusCallback": "https://kiosk.test/sms/status"}
    assert request.headers["Idempotency-Key"] == "discharge:42"
    scheme, credentials = request.headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{provider.account}:{provider.token}"
    again = sms_send(settings, to="+447700900123", body="Biscuit is ready to go home.",
                     key="discharge:42", status_callback=None)
    assert again == receipt and provider.repeats == 1
    assert provider.sends_per_key() == {"discharge:42": 1}


def test_a_refused_number_is_permanent_in_the_providers_words(provider):
    provider.mode = "reject"
    with pytest.raises(ChannelError) as refused:
        sms_send(_settings(provider), to="+4400", body="Hello", key="k:1", status_callback=None)
    assert refused.value.permanent
    assert refused.value.reason == channels.ERR_REFUSED.format(
        status=400, code=", code 21211",
        words="The 'To' number +4400 is not a valid phone number.")
    with pytest.raises(ChannelError) as long_refusal:
        sms_send(_settings(provider), to="+44" + "1" * 400, body="Hello", key="k:2",
                 status_callback=None)
    prefix = channels.ERR_REFUSED.format(status=400, code=", code 21211", words="")
    assert len(long_refusal.value.reason) == len(prefix) + 200  # the provider's words, cut
    assert provider.sent == []


def test_a_failing_provider_is_worth_another_try(provider):
    provider.mode = "fail"
    with pytest.raises(ChannelError) as failed:
        sms_send(_settings(provider), to="+447700900123", body="Hello", key="k:1",
                 status_callback=None)
    assert failed.value.reason == channels.ERR_BUSY.format(status=503)
    assert not failed.value.permanent and provider.sent == []


def test_a_slow_provider_times_out_and_the_retry_is_not_sent_twice(provider):
    provider.mode, provider.hang_s = "timeout", 3.0
    settings = _settings(provider)
    started = time.monotonic()
    with pytest.raises(ChannelError) as slow:
        sms_send(settings, to="+447700900123", body="Hello", key="k:1", status_callback=None)
    assert time.monotonic() - started < 1.5  # the client's 0.5 s, not the provider's 3 s
    assert slow.value.reason == channels.ERR_SLOW.format(seconds=0.5)
    assert not slow.value.permanent
    provider.mode = "accept"  # it had taken the message; only its answer was lost
    receipt = sms_send(settings, to="+447700900123", body="Hello", key="k:1",
                       status_callback=None)
    assert receipt.provider_id == provider.sent[0].sid
    assert provider.sends_per_key() == {"k:1": 1} and provider.repeats == 1


def test_a_wrong_token_is_permanent_and_not_repeated(provider):
    settings = provider_settings(provider.config(KIOSK_SMS_TOKEN="wrong-token-1234"))
    with pytest.raises(ChannelError) as refused:
        sms_send(settings, to="+447700900123", body="Hello", key="k:1", status_callback=None)
    assert refused.value.reason == channels.ERR_AUTH.format(status=401)
    assert refused.value.permanent
    assert "wrong-token-1234" not in str(refused.value) and provider.token not in str(refused.value)
    assert [r.answered for r in provider.requests] == [401] and provider.sent == []


def test_a_redirect_is_not_followed(provider):
    provider.mode = "redirect"
    with pytest.raises(ChannelError) as moved:
        sms_send(_settings(provider), to="+447700900123", body="Hello", key="k:1",
                 status_callback=None)
    assert moved.value.reason == channels.ERR_REDIRECT.format(status=302)
    assert moved.value.permanent and len(provider.requests) == 1


def test_no_provider_listening_is_worth_another_try():
    settings = channels.ProviderSettings(url=f"http://127.0.0.1:{_free_port()}", account="AC1",
                                         token="t0ken-never-shown", sms_from="+1", voice_from="+1")
    with pytest.raises(ChannelError) as failed:
        sms_send(settings, to="+447700900123", body="Hello", key="k:1", status_callback=None)
    assert failed.value.reason == channels.ERR_UNREACHABLE.format(kind="ConnectionRefusedError")
    assert not failed.value.permanent


def test_a_key_that_cannot_travel_as_a_header_is_refused_before_sending(provider):
    with pytest.raises(ValueError, match=channels.ERR_KEY):
        sms_send(_settings(provider), to="+447700900123", body="Hello", key="k 1\r\nX: y",
                 status_callback=None)
    assert provider.requests == []


def test_settings_made_by_hand_are_checked_too(tmp_path):
    settings = channels.ProviderSettings(url=f"file://{tmp_path}", account="AC1", token="t",
                                         sms_from="+1", voice_from="+1")
    with pytest.raises(ChannelError) as refused:
        sms_send(settings, to="+447700900123", body="Hello", key="k:1", status_callback=None)
    assert refused.value.reason == channels.ERR_URL and refused.value.permanent
    assert list(tmp_path.iterdir()) == []


def test_a_call_reads_the_text_escaped(provider):
    settings = _settings(provider, KIOSK_VOICE_FROM="+441632960001")
    text = """Biscuit <script>alert("x")</script> & 'Max' are ready."""
    receipt = voice_call(settings, to="+447700900123", text=text, key="call:1",
                         status_callback="https://kiosk.test/voice/status")
    assert receipt == Receipt(provider_id=provider.sent[0].sid, status="queued")
    assert receipt.provider_id.startswith("CA")
    [request] = provider.requests
    assert request.path.endswith("/Calls.json")
    assert (request.form["To"], request.form["From"]) == ("+447700900123", "+441632960001")
    assert request.form["StatusCallback"] == "https://kiosk.test/voice/status"
    assert request.form["Twiml"] == (
        '<Response><Say language="en-GB">Biscuit &lt;script&gt;alert(&quot;x&quot;)'
        "&lt;/script&gt; &amp; &apos;Max&apos; are ready.</Say></Response>")
    root = ET.fromstring(request.form["Twiml"])
    [say] = list(root)
    assert (root.tag, say.tag, say.get("language"), say.text) == ("Response", "Say", "en-GB", text)


# -- callbacks ---------------------------------------------------------------------------


def test_the_signature_is_the_providers():
    # The example in Twilio's documentation of request validation.
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675310", "Digits": "1234",
              "From": "+14158675310", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert callback_signature("12345", url, params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    assert callback_signature_valid("12345", url, params, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not callback_signature_valid("12345", url, {**params, "Digits": "1235"},
                                        "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not callback_signature_valid("12345", url + "&baz=3", params,
                                        "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not callback_signature_valid("54321", url, params, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    for missing in (None, "", "é"):
        assert not callback_signature_valid("12345", url, params, missing)
    assert not callback_signature_valid("", url, params, callback_signature("", url, params))


class _CallbackSink:
    """Our end of the callbacks: a real HTTP server that believes only signed requests."""

    def __init__(self, token: str):
        self.token, self.believed = token, []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                params = dict(parse_qsl(self.rfile.read(length).decode()))
                ok = callback_signature_valid(sink.token, sink.url + self.path, params,
                                              self.headers.get("X-Twilio-Signature"))
                if ok:
                    sink.believed.append(params)
                self.send_response(204 if ok else 403)
                self.end_headers()

            def log_message(self, format, *args):  # noqa: A002
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_status_callbacks_and_inbound_texts_are_signed(provider):
    sink = _CallbackSink(provider.token)
    try:
        text = sms_send(_settings(provider), to="+447700900123", body="Hello", key="k:1",
                        status_callback=sink.url + "/sms/status?m=1")
        call = voice_call(_settings(provider), to="+447700900123", text="Hello", key="k:2",
                          status_callback=sink.url + "/voice/status")
        assert provider.deliver(text.provider_id) == 204
        assert provider.deliver(call.provider_id, "completed") == 204
        assert provider.deliver(text.provider_id, "failed", forge=True) == 403
        assert provider.inbound(sink.url + "/sms/inbound", from_="+447700900123",
                                body="STOP") == 204
        assert provider.inbound(sink.url + "/sms/inbound", from_="+447700900123",
                                body="STOP", forge=True) == 403
    finally:
        sink.close()
    sms_status, call_status, stop = sink.believed
    assert sms_status == {"MessageSid": text.provider_id, "MessageStatus": "delivered",
                          "To": "+447700900123", "From": provider.number,
                          "AccountSid": provider.account}
    assert (call_status["CallSid"], call_status["CallStatus"]) == (call.provider_id, "completed")
    assert (stop["From"], stop["To"], stop["Body"]) == ("+447700900123", provider.number, "STOP")
