"""The clinic's settings for messages to owners: quiet hours, the daily limit per owner and
how long portal links last; each bad value named by its field, nothing stored."""

import pytest
from sqlalchemy import func, select

from kiosk.clinic.selectors import settings_get
from kiosk.clinic.services import ERR_TIME_OF_DAY, settings_update
from kiosk.core.audit import AuditEntry
from kiosk.core.errors import DomainError
from kiosk.extensions import db

KEYS = ("quiet_start", "quiet_end", "client_message_limit", "portal_link_days")
GOOD = {"quiet_start": "22:30", "quiet_end": "7:00", "client_message_limit": "5",
        "portal_link_days": "30"}


def stored() -> tuple:
    """The message settings and the audit count, as stored."""
    db.session.expire_all()
    row = settings_get()
    return (*(getattr(row, key) for key in KEYS),
            db.session.scalar(select(func.count(AuditEntry.id))))


def test_the_defaults_before_the_clinic_saves_any(app):
    row = settings_get()
    assert (row.quiet_start, row.quiet_end, row.client_message_limit, row.portal_link_days) \
        == ("21:00", "08:00", 10, 14)


def test_a_manager_sets_them(clinic):
    settings_update(actor=clinic.user(6), data=GOOD)
    db.session.commit()
    assert stored()[:4] == ("22:30", "07:00", 5, 30)
    settings_update(actor=clinic.user(6), data={"quiet_start": "00:00", "quiet_end": "00:00"})
    db.session.commit()
    assert stored()[:2] == ("00:00", "00:00")  # the same start and end: no quiet hours


@pytest.mark.parametrize("change, code, field, message", [
    ({"quiet_start": "24:00"}, "bad_time", "quiet_start",
     ERR_TIME_OF_DAY.format(label="Quiet hours start")),
    ({"quiet_end": "8pm"}, "bad_time", "quiet_end",
     ERR_TIME_OF_DAY.format(label="Quiet hours end")),
    ({"quiet_end": "07:60"}, "bad_time", "quiet_end",
     ERR_TIME_OF_DAY.format(label="Quiet hours end")),
    ({"quiet_start": " "}, "required", "quiet_start", "Quiet hours start is required."),
    ({"client_message_limit": "0"}, "out_of_range", "client_message_limit",
     "Messages per owner per day must be between 1 and 100."),
    ({"client_message_limit": "101"}, "out_of_range", "client_message_limit",
     "Messages per owner per day must be between 1 and 100."),
    ({"client_message_limit": "lots"}, "not_a_number", "client_message_limit",
     "Messages per owner per day must be a whole number."),
    ({"client_message_limit": ""}, "required", "client_message_limit",
     "Messages per owner per day is required."),
    ({"portal_link_days": "0"}, "out_of_range", "portal_link_days",
     "Portal link valid (days) must be between 1 and 90."),
    ({"portal_link_days": "91"}, "out_of_range", "portal_link_days",
     "Portal link valid (days) must be between 1 and 90."),
])
def test_a_bad_value_is_named_and_nothing_changes(clinic, change, code, field, message):
    before = stored()
    with pytest.raises(DomainError) as exc:
        settings_update(actor=clinic.user(6), data={**GOOD, **change})
    db.session.rollback()
    assert (exc.value.code, exc.value.field, exc.value.message) == (code, field, message)
    assert stored() == before


def test_the_settings_page_saves_them_or_shows_the_error_beside_the_field(
        clinic, client, login):
    login(clinic.user(6))
    page = client.get("/admin/settings").text
    assert 'name="quiet_start" value="21:00"' in page and 'name="portal_link_days"' in page
    form = {"name": "Riverside", "timezone": "UTC", "board_hours_back": "2",
            "board_hours_ahead": "10", "due_grace_minutes": "15", "board_rotate_seconds": "15",
            "tablet_lock_minutes": "5", **GOOD}
    before = stored()
    bad = client.post("/admin/settings", data={**form, "portal_link_days": "365"})
    assert bad.status_code == 422
    assert '<p class="field-error" id="portal_link_days-error" role="alert">Portal link ' \
        'valid (days) must be between 1 and 90.</p>' in bad.text
    assert stored() == before
    assert client.post("/admin/settings", data=form).status_code == 302
    assert stored()[:4] == ("22:30", "07:00", 5, 30)

