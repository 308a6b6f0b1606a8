"""A real SMTP server (aiosmtpd on 127.0.0.1) that can be told to refuse, and an
application that sends its status notices through it."""

from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller

from tests.messaging.conftest import free_port
from tests.support.database import app_on_fresh_database


@dataclass
class Mailbox:
    """What the SMTP server took: (envelope recipients, the message's bytes). `refuse`:
    replies to give instead of taking the next messages (e.g. "451 4.3.0 Try later")."""

    messages: list = field(default_factory=list)
    refuse: list = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.refuse:
            return self.refuse.pop(0)
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@pytest.fixture
def mailbox():
    """A real SMTP server on 127.0.0.1; yields (port, Mailbox)."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


@pytest.fixture
def app(server_database, tmp_path, mailbox):
    """An application that sends e-mail through `mailbox`."""
    overrides = {"KIOSK_SMTP_HOST": "127.0.0.1", "KIOSK_SMTP_PORT": str(mailbox[0]),
                 "KIOSK_SMTP_FROM": "clinic@example.org", "KIOSK_SMTP_TIMEOUT": "5"}
    with app_on_fresh_database(server_database, tmp_path / "test.db", overrides) as application:
        yield application
