"""The device commands: provisioning prints the token once; revocation stops it at once."""

import json

import pytest

from kiosk.cli import main
from kiosk.devices.models import Device
from kiosk.devices.services import token_hash
from kiosk.extensions import db


@pytest.fixture
def kiosk(runner):
    """Run `kiosk ARGS…` against the test app."""
    return lambda *args: runner.invoke(main, list(args))


def test_add_prints_id_and_token_and_keeps_only_the_hash(kiosk, clinic):
    result = kiosk("devices", "add", "--name", "Ward 1 tablet",
                                 "--colour", "Blue", "--number", "2")
    assert result.exit_code == 0, result.output
    made = json.loads(result.output.strip().splitlines()[-1])
    device = db.session.get(Device, int(made["id"][2:]))
    assert device.colour == "blue" and device.number == 2
    assert device.token_hash == token_hash(made["token"])
    assert made["token"] not in repr(vars(device))


def test_add_with_a_colour_off_the_palette_is_refused_and_adds_nothing(kiosk, clinic):
    result = kiosk("devices", "add", "--name", "T", "--colour", "teal")
    assert result.exit_code != 0 and "Colour" in result.output
    assert db.session.query(Device).count() == 0


def test_revoke_stops_the_token_and_list_says_so(kiosk, client, clinic):
    made = json.loads(kiosk("devices", "add", "--name", "T", "--colour",
                                          "red").output.strip().splitlines()[-1])
    result = kiosk("devices", "revoke", made["id"])
    assert result.exit_code == 0, result.output
    response = client.post("/api/sync", json={"device": made["id"], "sent_at":
                                              "2026-11-22T10:00:00Z", "ops": []},
                           headers={"Authorization": f"Bearer {made['token']}"})
    assert response.status_code == 401
    listing = kiosk("devices", "list").output
    assert made["id"] in listing and "revoked" in listing
    again = kiosk("devices", "revoke", made["id"])
    assert again.exit_code != 0 and "already revoked" in again.output


def test_revoking_a_device_that_does_not_exist_says_so(kiosk, clinic):
    result = kiosk("devices", "revoke", "d_999")
    assert result.exit_code != 0 and "no device d_999" in result.output
