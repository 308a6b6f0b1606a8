"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 keeping what it is given, and able
to refuse the next messages with a reply of the test's choosing."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.support.server import free_port


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


@contextmanager
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    """An SMTP server on a free port of 127.0.0.1 while the block runs: (port, Mailbox)."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()
