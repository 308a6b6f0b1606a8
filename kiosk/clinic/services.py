"""Writes for the clinic's settings. A ward and its board change together
(whiteboards.wards): the clinic knows neither patients nor boards."""

import os
import re
from pathlib import Path

from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.clock import zone
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import HHMM, int_optional, text_required
from ..extensions import db
from .models import ClinicSettings
from .selectors import settings_get

# Setting → (label, lowest, highest) for the whole-number settings.
SETTING_NUMBERS = {
    "board_hours_back": ("Board hours back", 0, 12),
    "board_hours_ahead": ("Board hours ahead", 1, 24),
    "due_grace_minutes": ("Due grace window (minutes)", 0, 120),
    "board_rotate_seconds": ("Board rotate (seconds)", 5, 300),
    "tablet_lock_minutes": ("Tablet lock (minutes)", 1, 120),
    "client_message_limit": ("Messages per owner per day", 1, 100),
    "portal_link_days": ("Portal link valid (days)", 1, 90),
}
# Setting → label for the times of day (clinic time, HH:MM).
SETTING_TIMES = {"quiet_start": "Quiet hours start", "quiet_end": "Quiet hours end"}
ERR_TIME_OF_DAY = "{label} must be a time of day, HH:MM (00:00–23:59)."
ERR_FOLDER = ("{folder} is not a folder this server can write to: give the full path of an "
              "existing folder.")
ERR_EMAIL = "“{address}” is not an e-mail address (separate several with commas)."
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
FLAG_TRUE = ("1", "on", "true", "yes")


def settings_fields_clean(data: dict) -> dict:
    """Validate the settings present in `data`; return clean values (absent keys left out)."""
    out: dict = {}
    if "name" in data:
        out["name"] = text_required(data.get("name"), "name", "Clinic name", 120)
    if "timezone" in data:
        name = text_required(data.get("timezone"), "timezone", "Time zone", 64)
        out["timezone"] = zone(name).key
    for key, (label, lowest, highest) in SETTING_NUMBERS.items():
        if key in data:
            number = int_optional(data.get(key), key, label, lowest, highest)
            if number is None:
                raise DomainError("required", f"{label} is required.", field=key)
            out[key] = number
    for key, label in SETTING_TIMES.items():
        if key in data:
            out[key] = _time_of_day(data.get(key), key, label)
    if "allow_direct_patient_creation" in data:
        out["allow_direct_patient_creation"] = _flag(data["allow_direct_patient_creation"])
    out.update(_documents_fields_clean(data))
    return out


def _time_of_day(value, field: str, label: str) -> str:
    """A time of day as "HH:MM" (a single-digit hour gets its 0: 8:00 is 08:00)."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise DomainError("required", f"{label} is required.", field=field)
    if len(text) == 4 and text[1] == ":":
        text = "0" + text
    if not HHMM.match(text):
        raise DomainError("bad_time", ERR_TIME_OF_DAY.format(label=label), field=field)
    return text


def _documents_fields_clean(data: dict) -> dict:
    """Where documents go: a folder that exists and can be written, valid e-mail addresses."""
    out: dict = {}
    if "documents_folder" in data:
        folder = (data.get("documents_folder") or "").strip() or None
        if folder is not None:
            path = Path(folder)
            if not path.is_absolute() or not path.is_dir() or not os.access(path, os.W_OK):
                raise DomainError("bad_folder", ERR_FOLDER.format(folder=folder),
                                  field="documents_folder")
        out["documents_folder"] = folder
    if "documents_email" in data:
        text = (data.get("documents_email") or "").strip()
        addresses = [a.strip() for a in re.split(r"[,;]", text) if a.strip()]
        bad = [a for a in addresses if not EMAIL.match(a)]
        if bad or len(text) > 500:
            raise DomainError("bad_email", ERR_EMAIL.format(address=(bad or [text[:40]])[0]),
                              field="documents_email")
        out["documents_email"] = ", ".join(addresses) or None
    for flag in ("documents_connector", "documents_merge_at_discharge"):
        if flag in data:
            out[flag] = _flag(data[flag])
    return out


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in FLAG_TRUE


def settings_update(*, actor, data: dict) -> ClinicSettings:
    """Change the settings present in `data`, creating the settings row on first save."""
    permission_check(actor, LEVEL_MANAGER, "change the clinic's settings")
    return settings_apply(actor=actor, data=data)


def settings_apply(*, actor, data: dict) -> ClinicSettings:
    """The change itself, for callers that checked who may make it (settings_update) or
    act for the clinic by themselves (a maintenance window); `actor` may be None."""
    fields = settings_fields_clean(data)
    settings = settings_get()
    if settings.id is None:
        db.session.add(settings)
    before = {key: getattr(settings, key) for key in fields}
    for key, value in fields.items():
        setattr(settings, key, value)
    db.session.flush()
    audit_record(action="settings.update", entity="settings", entity_uid=str(settings.id),
                 user=actor, detail={"before": before, "after": fields})
    # Hours, grace window and rotation change what every screen draws (live pokes them).
    event_record(db.session, "settings.changed")
    return settings
