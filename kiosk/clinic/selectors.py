"""Reads of the clinic's settings and wards."""

from datetime import date

from flask import current_app, g, has_request_context
from sqlalchemy import select

from ..core import clock
from ..core.clock import zone
from ..core.errors import NotFound
from ..extensions import db
from .models import ClinicSettings, Ward


def settings_get() -> ClinicSettings:
    """The clinic's settings row, or unsaved defaults before the clinic is set up.

    Read once per request (pages ask for it from several places).
    """
    if has_request_context() and "clinic_settings" in g:
        return g.clinic_settings
    row = db.session.scalars(select(ClinicSettings).order_by(ClinicSettings.id).limit(1)).first()
    if row is None:
        row = ClinicSettings(name="Veterinary hospital",
                             timezone=current_app.config.get("KIOSK_TIMEZONE", "UTC"),
                             board_hours_back=2, board_hours_ahead=10, due_grace_minutes=15,
                             allow_direct_patient_creation=False, board_rotate_seconds=15,
                             tablet_lock_minutes=5, quiet_start="21:00", quiet_end="08:00",
                             client_message_limit=10, portal_link_days=14)
    if has_request_context():
        g.clinic_settings = row
    return row


def settings_zone(settings: ClinicSettings | None = None):
    """The clinic's time zone as a ZoneInfo."""
    settings = settings or settings_get()
    return zone(settings.timezone or "UTC")


def clinic_today(settings: ClinicSettings | None = None) -> date:
    """The clinic's calendar day now: the clock's instant on the clinic's wall clock."""
    return clock.to_local(clock.utcnow(), settings_zone(settings)).date()


def wards_list() -> list[Ward]:
    """Every ward, by name."""
    return list(db.session.scalars(select(Ward).order_by(Ward.name)))


def ward_by_id(ward_id: int) -> Ward:
    """The ward with this id, or NotFound."""
    ward = db.session.get(Ward, ward_id)
    if ward is None:
        raise NotFound("There is no ward with that id.")
    return ward
