"""A tablet as the sync protocol sees it, for tests that post ops to /api/sync."""

import json
import uuid
from datetime import timedelta

from kiosk.core import clock
from kiosk.devices.services import device_provision
from kiosk.extensions import db


def now_z(delta: timedelta = timedelta()) -> str:
    """The clock's time (plus `delta`) as a SYNC.md timestamp."""
    return clock.format_iso_z(clock.utcnow() + delta)


class Tablet:
    """A device as the protocol sees it: a token, a counter, a way to post."""

    def __init__(self, client, name="Blue"):
        self.client = client
        self.device, self.token = device_provision(name=name, colour="blue")
        db.session.commit()
        self.id = self.device.public_id
        self.seq = 0

    def op(self, name, args, user, *, at=None, op_id=None, seq=None):
        """One op by `user`, numbered after the last unless `seq` says otherwise."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        return {"id": op_id or str(uuid.uuid4()), "seq": seq, "name": name, "args": args,
                "at": at or now_z(), "user": user.public_id}

    def post(self, ops, *, token=None, device=None, sent_at=None, outbox=None, raw=None):
        """POST a batch (or `raw` bytes) to /api/sync with this tablet's token."""
        body = raw if raw is not None else json.dumps({
            "device": device or self.id, "sent_at": sent_at or now_z(),
            "outbox": outbox or {"pending": len(ops), "oldest_at": None}, "ops": ops})
        return self.client.post("/api/sync", data=body, content_type="application/json",
                                headers={"Authorization": f"Bearer {token or self.token}"})


def paired_tablet_client(app, number: int):
    """A browser that is a paired tablet (its tablet session claimed by the device's token):
    a PIN signs in there and nowhere else."""
    _device, token = device_provision(name=f"Tablet {number}", colour="blue", number=number)
    db.session.commit()
    browser = app.test_client()
    assert browser.post("/tablet/claim", headers={"Authorization": f"Bearer {token}"}
                        ).status_code == 200
    return browser
