"""Fixtures of the sync tests: a provisioned tablet that posts ops as SYNC.md writes them."""

import json
import uuid

import pytest

from kiosk.core import clock
from kiosk.core.clock import format_iso_z
from kiosk.devices.services import device_provision
from kiosk.extensions import db


class SyncTablet:
    """A device as the protocol sees it: its token, its seq counter, a way to post."""

    def __init__(self, client, name: str = "Blue"):
        self.client = client
        self.device, self.token = device_provision(name=name, colour="blue")
        db.session.commit()
        self.id = self.device.public_id
        self.seq = 0

    def op(self, name: str, args: dict, user, *, at: str | None = None) -> dict:
        """The next op, stamped with the clock's time unless `at` says otherwise."""
        self.seq += 1
        return {"id": str(uuid.uuid4()), "seq": self.seq, "name": name, "args": args,
                "at": at or format_iso_z(clock.utcnow()), "user": user.public_id}

    def send(self, name: str, args: dict, user, **kwargs) -> dict:
        """Post one op; its result (the answer's only entry). Fails on a non-200 answer."""
        op = self.op(name, args, user, **kwargs)
        db.session.remove()
        response = self.client.post(
            "/api/sync", content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
            data=json.dumps({"device": self.id, "sent_at": format_iso_z(clock.utcnow()),
                             "ops": [op]}))
        db.session.remove()
        assert response.status_code == 200, response.get_data(as_text=True)
        (result,) = response.get_json()["results"]
        return result


@pytest.fixture
def tablet(client):
    """A provisioned tablet: tablet.send(name, args, user) → that op's result."""
    return SyncTablet(client)
