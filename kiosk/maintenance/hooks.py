"""What maintenance registers at start-up with the layers below it: the windows' tick on
the job queue, the banner's template global and filters, outage detection from the
tablets' offline work, and the pokes that keep an open outage report fresh."""

import logging
import time

from ..core.clock import as_utc
from ..core.events import DomainEvent, event_prepare_batch, event_subscribe_batch
from ..extensions import socketio
from .banner import banner_now, banner_poll_s
from .detection import detect_prepare
from .jobs import install_jobs
from .report import outage_to_review

log = logging.getLogger(__name__)

# The staff room of the sync dashboard (kiosk.live.pokes.ROOM_DEVICES: live sits above
# maintenance, so the name is repeated here). Signed-in people only may join it.
ROOM_STAFF = "devices"
# What changes a line of an outage's report: a tablet's report of its outbox, a conflict
# reviewed (device.changed), a PDF archived or failed, a sheet, form or discharge arriving,
# a patient linked, a charge captured, the outage itself.
REPORT_EVENTS = {"device.synced", "device.changed", "device.revoked", "document.queued",
                 "document.ready", "document.failed", "anaesthesia.finalised",
                 "form.finalised", "patient.discharged", "patient.allocated",
                 "patient.changed", "charge.captured", "outage.changed",
                 "maintenance.started", "maintenance.ended"}


def countdown_text(seconds: int) -> str:
    """A countdown as staff read it: '2 d 3 h', '1 h 05 min', '4 min 30 s', '12 s'."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def epoch_ms(value) -> str:
    """A datetime as milliseconds since 1970 (for a page's script), or ''."""
    return str(int(as_utc(value).timestamp() * 1000)) if value is not None else ""


def report_poke(events: list[DomainEvent]) -> None:
    """After a commit that changed something an outage's report shows: one "outage" poke
    (no data: the page asks for its part again through the ordinary, signed-in view)."""
    if not any(evt.name in REPORT_EVENTS for evt in events):
        return
    try:
        socketio.emit("poke", {"topic": "outage", "version": time.time_ns() // 1_000_000},
                      to=ROOM_STAFF)
    except Exception:  # a poke lost is a refresh late, never a change undone
        log.exception("could not send the outage report's poke")


def report_install(app) -> None:
    """Detect outages from the tablets' offline work, poke open reports when what they show
    changes, and give templates the banner's outage (`outage_to_review()`)."""
    event_prepare_batch(detect_prepare)
    event_subscribe_batch(report_poke)
    app.jinja_env.globals.update(outage_to_review=outage_to_review)


def install(app) -> None:
    """The tick on the job queue, `maintenance_banner()` for every page, and the report's
    detection and pokes."""
    install_jobs(app)
    app.jinja_env.globals.update(maintenance_banner=banner_now,
                                 maintenance_poll_s=banner_poll_s)
    app.add_template_filter(countdown_text, "countdown")
    app.add_template_filter(epoch_ms, "epoch_ms")
    report_install(app)
