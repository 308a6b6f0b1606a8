"""Reads of devices."""

from sqlalchemy import select

from ..core.errors import NotFound
from ..extensions import db
from .models import Device


def device_by_id(device_id: int) -> Device:
    """The device with this id, or NotFound."""
    device = db.session.get(Device, device_id)
    if device is None:
        raise NotFound("There is no device with that id.")
    return device


def displays_list() -> list[Device]:
    """Wall displays, active ones first, by name."""
    return list(db.session.scalars(
        select(Device).where(Device.kind == "display")
        .order_by(Device.revoked_at.is_not(None), Device.name)))
