"""What maintenance registers at start-up with the layers below it."""

import logging
import time

from ..core.events import DomainEvent, event_prepare_batch, event_subscribe_batch
from ..extensions import socketio
from .detection import detect_prepare
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
