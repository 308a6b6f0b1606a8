"""Writes for maintenance windows: schedule, cancel, and the switches their start makes and
their end puts back, so that nothing depends on staff remembering.

A window is scheduled for a start and an expected end. A few minutes before the start
(`KIOSK_MAINTENANCE_PREPARE_S`) it is under way for the server: direct patient creation is
allowed if it was off, the practice-system connector pauses, and the tablets (told by the
banner) fetch every page they keep again — all while the server still answers. At the start
an end-of-shift mark is made for billing. The window ends at its expected end, when a
manager ends it, or when the server starts again after the window began (the maintenance is
over once the server is back); its end makes a second mark and puts back what its start
switched, unless a manager changed it meanwhile.
"""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from ..billing.models import ShiftMark
from ..billing.services import connector_get, connector_pause_set, shift_mark_record
from ..clinic.selectors import settings_get, settings_zone
from ..clinic.services import settings_apply
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.clock import moment_text, parse_local_datetime
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.validate import text_optional
from ..extensions import db
from .models import MaintenanceWindow, Outage

PREPARE_DEFAULT_S = 300
LONGEST = timedelta(hours=72)
# A window may start "now" (a start typed a minute ago is not a mistake).
PAST_TOLERANCE = timedelta(minutes=2)
PAUSE_REASON = "Maintenance window {start}–{end}"

ERR_END_BEFORE = "The window must end after it starts."
ERR_TOO_LONG = "A window can last at most 72 hours; schedule another for the rest."
ERR_PAST = "The start is in the past; choose a time from now on."
ERR_OVERLAP = "This overlaps the window already planned for {start} to {end}."
ERR_NOT_SCHEDULED = "Only a window that has not started can be cancelled (this one is {state})."
ERR_NOT_UNDER_WAY = "Only a window under way can be ended (this one is {state})."
STATE_WORDS = {"scheduled": "planned", "under_way": "under way", "ending": "ending",
               "ended": "over", "cancelled": "cancelled"}
# What a window switches, and so hands on to a window that follows straight after it.
SWITCHES = ("allow_direct_patient_creation", "connector_paused", "pause_reason")


def prepare_lead() -> timedelta:
    """How long before its start a window is under way for the server and the tablets."""
    return timedelta(seconds=int(current_app.config.get("KIOSK_MAINTENANCE_PREPARE_S",
                                                        PREPARE_DEFAULT_S)))


def window_fields_clean(data: dict, *, now: datetime) -> dict:
    """The start, expected end and message from a form (clinic wall-clock times), checked."""
    tz = settings_zone()
    starts_at = parse_local_datetime(data.get("starts_at") or "", tz, "starts_at")
    ends_at = parse_local_datetime(data.get("ends_at") or "", tz, "ends_at")
    if ends_at <= starts_at:
        raise DomainError("end_before_start", ERR_END_BEFORE, field="ends_at")
    if ends_at - starts_at > LONGEST:
        raise DomainError("too_long", ERR_TOO_LONG, field="ends_at")
    if starts_at < now - PAST_TOLERANCE:
        raise DomainError("in_the_past", ERR_PAST, field="starts_at")
    message = text_optional(data.get("message"), "message", "Message", 500) or ""
    return {"starts_at": starts_at, "ends_at": ends_at, "message": message}


def _overlap_check(starts_at: datetime, ends_at: datetime) -> None:
    """Refuse a window overlapping one planned or under way (ends meeting starts is fine)."""
    other = db.session.scalars(select(MaintenanceWindow).where(
        MaintenanceWindow.state.in_(("scheduled", "under_way")),
        MaintenanceWindow.starts_at < ends_at, MaintenanceWindow.ends_at > starts_at)
        .order_by(MaintenanceWindow.starts_at).limit(1)).first()
    if other is not None:
        tz = settings_zone()
        raise DomainError("overlap", ERR_OVERLAP.format(start=moment_text(other.starts_at, tz),
                                                        end=moment_text(other.ends_at, tz)),
                          field="starts_at")


def window_schedule(*, user, data: dict, now: datetime | None = None) -> MaintenanceWindow:
    """Plan a window; the banner, the status page and subscribers' notices follow."""
    permission_check(user, LEVEL_MANAGER, "plan maintenance")
    now = now or clock.utcnow()
    fields = window_fields_clean(data, now=now)
    _overlap_check(fields["starts_at"], fields["ends_at"])
    window = MaintenanceWindow(created_by_id=user.id, created_at=now, state="scheduled",
                               restore={}, **fields)
    db.session.add(window)
    db.session.flush()
    audit_record(action="maintenance.schedule", entity="maintenance_window",
                 entity_uid=window.uid, user=user,
                 detail={"starts_at": fields["starts_at"].isoformat(),
                         "ends_at": fields["ends_at"].isoformat()})
    # The moments travel with the event: what queues the window's ticks runs after the
    # commit, when this session can no longer be read.
    event_record(db.session, "maintenance.scheduled", window=window.uid,
                 moments=[(fields["starts_at"] - prepare_lead()).isoformat(),
                          fields["starts_at"].isoformat(), fields["ends_at"].isoformat()])
    return window


def window_cancel(*, user, window: MaintenanceWindow) -> MaintenanceWindow:
    """Call off a window that has not started."""
    permission_check(user, LEVEL_MANAGER, "cancel maintenance")
    if not window_claim(window, "scheduled", "cancelled"):  # a tick may have started it
        db.session.refresh(window)
        raise DomainError("not_scheduled", ERR_NOT_SCHEDULED.format(
            state=STATE_WORDS.get(window.state, window.state)), field="window", status=409)
    db.session.refresh(window)
    window.cancelled_at = clock.utcnow()
    audit_record(action="maintenance.cancel", entity="maintenance_window",
                 entity_uid=window.uid, user=user)
    event_record(db.session, "maintenance.cancelled", window=window.uid)
    return window


def window_end_now(*, user, window: MaintenanceWindow) -> MaintenanceWindow:
    """A manager ends a window under way (the work finished early)."""
    permission_check(user, LEVEL_MANAGER, "end maintenance")
    if not window_claim(window, "under_way", "ending"):  # the tick may be ending it
        db.session.refresh(window)
        raise DomainError("not_under_way", ERR_NOT_UNDER_WAY.format(
            state=STATE_WORDS.get(window.state, window.state)), field="window", status=409)
    db.session.refresh(window)
    return window_end(window=window, why="ended by hand", by=user)


def window_claim(window: MaintenanceWindow, was: str, becomes: str) -> bool:
    """Move the window from `was` to `becomes` in one conditional UPDATE: of two callers at
    once (the minute's tick and a planned one, a tick and a manager) only one gets it."""
    done = db.session.execute(update(MaintenanceWindow).where(
        MaintenanceWindow.id == window.id, MaintenanceWindow.state == was)
        .values(state=becomes).execution_options(synchronize_session=False))
    return done.rowcount == 1


def _pause_reason(window: MaintenanceWindow) -> str:
    tz = settings_zone()
    return PAUSE_REASON.format(start=moment_text(window.starts_at, tz),
                               end=moment_text(window.ends_at, tz))[:200]


def window_start(*, window: MaintenanceWindow, now: datetime | None = None) -> MaintenanceWindow:
    """Make the window under way: allow direct patient creation, pause the connector, and
    remember what was switched so the end puts back exactly that."""
    now = now or clock.utcnow()
    # The clinic's own switches, made by the window for the manager who planned it (their
    # level was checked then; a planner who left since does not stop the window).
    actor = window.created_by
    restore = dict(window.restore or {})
    if not settings_get().allow_direct_patient_creation:
        settings_apply(actor=actor, data={"allow_direct_patient_creation": True})
        restore["allow_direct_patient_creation"] = False
    connector = connector_get()
    if connector.kind != "none" and not connector.paused:
        reason = _pause_reason(window)
        connector_pause_set(user=actor, paused=True, reason=reason)
        restore["connector_paused"], restore["pause_reason"] = False, reason
    window.state, window.started_at, window.restore = "under_way", now, restore
    # From now on tablets may be cut off (a server stopped a little early): the outage's
    # span, and so its report, starts here, or at the window's start if that was earlier.
    db.session.add(Outage(cause="window", window_id=window.id,
                          started_at=min(now, window.starts_at), detected_at=now))
    audit_record(action="maintenance.start", entity="maintenance_window", entity_uid=window.uid,
                 user=None, detail={"switched": sorted(restore)})
    event_record(db.session, "maintenance.started", window=window.uid)
    return window


def _mark(window: MaintenanceWindow, key: str, at: datetime, note: str) -> None:
    """An end-of-shift mark for the window, once; a later mark already made (a tablet's,
    offline) is left as it is and said in the window's record."""
    restore = dict(window.restore or {})
    if key in restore:
        return
    try:
        with db.session.begin_nested():
            mark = shift_mark_record(user=window.created_by, at=at, note=note)
        restore[key] = mark.uid
    except DomainError as exc:
        restore[key] = None
        restore[key + "_skipped"] = exc.message
    window.restore = restore


def window_mark_start(*, window: MaintenanceWindow) -> None:
    """The end-of-shift mark at the window's start (made late, at that time, if the server
    was down then)."""
    _mark(window, "start_mark", window.starts_at, "Maintenance window starts")


def window_end(*, window: MaintenanceWindow, why: str, by=None,
               now: datetime | None = None) -> MaintenanceWindow:
    """End a window: the second mark, what its start switched put back, its outage closed."""
    now = now or clock.utcnow()
    if now >= window.starts_at:
        window_mark_start(window=window)
        _mark(window, "end_mark", now, "Maintenance window ends")
    restore = dict(window.restore or {})
    successor = _successor(window, now)
    if successor is not None:  # back to back: the next window puts things back at its end
        handed = {key: restore[key] for key in SWITCHES if key in restore}
        successor.restore = {**handed, **(successor.restore or {})}
    else:
        _put_back(window, restore)
    window.state, window.ended_at = "ended", now
    outage = db.session.scalars(select(Outage).where(Outage.window_id == window.id)).first()
    if outage is not None and outage.ended_at is None:
        outage.ended_at = now
    audit_record(action="maintenance.end", entity="maintenance_window", entity_uid=window.uid,
                 user=by, detail={"why": why})
    event_record(db.session, "maintenance.ended", window=window.uid)
    return window


def _successor(window: MaintenanceWindow, now: datetime) -> MaintenanceWindow | None:
    """Another window under way, or due to be within its lead: it keeps the switches on."""
    return db.session.scalars(select(MaintenanceWindow).where(
        MaintenanceWindow.id != window.id,
        MaintenanceWindow.state.in_(("scheduled", "under_way")),
        MaintenanceWindow.starts_at <= now + prepare_lead())
        .order_by(MaintenanceWindow.starts_at).limit(1)).first()


def _put_back(window: MaintenanceWindow, restore: dict) -> None:
    """What the window's start switched goes back: direct creation off again, and the
    connector resumed unless a manager paused it for a reason of their own meanwhile."""
    actor = window.created_by
    if restore.get("allow_direct_patient_creation") is False \
            and settings_get().allow_direct_patient_creation:
        settings_apply(actor=actor, data={"allow_direct_patient_creation": False})
    connector = connector_get()
    if restore.get("connector_paused") is False and connector.paused \
            and connector.pause_reason == restore.get("pause_reason"):
        connector_pause_set(user=actor, paused=False)


def windows_marks(windows: list[MaintenanceWindow]) -> dict[int, list[ShiftMark]]:
    """The end-of-shift marks each window made, in order, by window id (one query)."""
    wanted = {(w.restore or {}).get(key): w.id for w in windows
              for key in ("start_mark", "end_mark")}
    wanted.pop(None, None)
    out: dict[int, list[ShiftMark]] = {w.id: [] for w in windows}
    if wanted:
        for mark in db.session.scalars(select(ShiftMark).where(ShiftMark.uid.in_(wanted))
                                       .order_by(ShiftMark.at)):
            out[wanted[mark.uid]].append(mark)
    return out
