"""Writes for devices: provisioning with a token that is stored only as a hash."""

import hashlib
import secrets

from ..core.audit import audit_record
from ..core.validate import choice, int_optional, text_required
from ..extensions import db
from .models import Device

COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "black", "white")
KINDS = ("tablet", "display")


def token_hash(token: str) -> str:
    """The stored form of a device token (SHA-256; tokens are long and random)."""
    return hashlib.sha256(token.encode()).hexdigest()


def device_provision(*, name, colour, number=None, kind="tablet", actor=None
                     ) -> tuple[Device, str]:
    """A new device and its bearer token; the token is returned once and never stored."""
    device = Device(name=text_required(name, "name", "Name", 80),
                    colour=choice((colour or "").strip().lower(), "colour", "Colour", COLOURS),
                    number=int_optional(number, "number", "Number", 1, 999),
                    kind=choice(kind, "kind", "Kind", KINDS))
    token = secrets.token_urlsafe(32)
    device.token_hash = token_hash(token)
    db.session.add(device)
    db.session.flush()
    audit_record(action="device.provision", entity="device", entity_uid=device.public_id,
                 user=actor, detail={"name": device.name, "colour": device.colour})
    return device, token
