"""What devices registers at start-up with the layers below it: a session's device for
core.auth, the swatches and carriers templates show, the carriers on the boards."""

from ..core.auth import auth_loader_register
from ..extensions import db
from ..whiteboards.sources import board_source_register
from .models import Device
from .palette import swatch
from .selectors import carriers_by_patient


def device_by_id(device_id) -> Device | None:
    """The device with this id, or None (a session's device; core.auth checks the rest)."""
    return db.session.get(Device, device_id)


def install(app) -> None:
    """Register the device loader, the template globals and the boards' carriers."""
    auth_loader_register("device", device_by_id)
    board_source_register("carriers", carriers_by_patient)
    app.jinja_env.globals.update(
        device_swatch=swatch,
        carriers_of=lambda p: carriers_by_patient([p]).get(p.id, []))
