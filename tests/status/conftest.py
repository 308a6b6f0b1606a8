"""A real SMTP server (aiosmtpd on 127.0.0.1) that can be told to refuse, and an
application that sends its status notices through it."""

import pytest

from tests.support.database import app_on_fresh_database
from tests.support.smtp import smtp_server


@pytest.fixture
def mailbox():
    """A real SMTP server on 127.0.0.1; yields (port, Mailbox)."""
    with smtp_server() as served:
        yield served


@pytest.fixture
def app(server_database, tmp_path, mailbox):
    """An application that sends e-mail through `mailbox`."""
    overrides = {"KIOSK_SMTP_HOST": "127.0.0.1", "KIOSK_SMTP_PORT": str(mailbox[0]),
                 "KIOSK_SMTP_FROM": "clinic@example.org", "KIOSK_SMTP_TIMEOUT": "5"}
    with app_on_fresh_database(server_database, tmp_path / "test.db", overrides) as application:
        yield application
