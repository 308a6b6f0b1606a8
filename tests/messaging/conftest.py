"""Sending for real: an SMTP server (aiosmtpd) and a provider on 127.0.0.1, and the
application itself served over HTTP so the provider's callbacks reach it."""

import threading

import pytest
from werkzeug.serving import make_server

from kiosk.core.models import new_uid
from kiosk.extensions import db
from kiosk.owners.models import Owner
from tests import factories
from tests.support.database import app_on_fresh_database
from tests.support.fake_provider import FakeProvider
from tests.support.server import free_port
from tests.support.smtp import smtp_server


@pytest.fixture
def mailbox():
    """A real SMTP server on 127.0.0.1; yields (port, Mailbox)."""
    with smtp_server() as served:
        yield served


@pytest.fixture
def provider():
    """A real Twilio-compatible provider on 127.0.0.1."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def sending_app(server_database, tmp_path, mailbox, provider):
    """An application set up to send through `mailbox` and `provider`, served on
    127.0.0.1 (its public address) so status callbacks and replies reach it."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    overrides = {"KIOSK_SMTP_HOST": "127.0.0.1", "KIOSK_SMTP_PORT": str(mailbox[0]),
                 "KIOSK_SMTP_FROM": "clinic@example.org", "KIOSK_PUBLIC_URL": public,
                 "KIOSK_SMS_TIMEOUT": "1", **provider.config()}
    with app_on_fresh_database(server_database, tmp_path / "test.db", overrides) as app:
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield app
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def clinic(sending_app):
    """A small clinic (quiet hours 21:00–08:00, ten messages a day, as by default)."""
    return factories.clinic_make()


def owner_make(*, name="Jane Smith", email="jane@example.org", phone="+447700900123",
               sms=True, voice=True, preferred="email") -> Owner:
    """An owner who agreed to everything unless told."""
    owner = Owner(uid=new_uid(), name=name, email=email, phone=phone, sms_consent=sms,
                  voice_consent=voice, preferred_channel=preferred)
    db.session.add(owner)
    db.session.flush()
    return owner


@pytest.fixture
def owned(clinic):
    """An admitted patient (Biscuit) whose owner agreed to every channel."""
    owner = owner_make()
    patient = factories.patient_make(clinic, "Biscuit")
    patient.owner = owner
    db.session.commit()
    return patient
