"""The banner every board, tablet and staff page shows about maintenance: the window
under way, or the next one within the notice period, and what phase it is in."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, g

from ..core import clock
from .models import MaintenanceWindow
from .selectors import window_current, windows_upcoming

NOTICE_HOURS_DEFAULT = 48
POLL_S_DEFAULT = 60


@dataclass(frozen=True)
class Banner:
    """What the banner says: the window, its phase, and the server's time for countdowns.

    phase: "notice" (planned, not started: a countdown), "preparing" (under way for the
    server, not yet started: tablets make their pages fresh) or "under_way"."""

    window: MaintenanceWindow
    phase: str
    now: datetime

    @property
    def seconds_to_start(self) -> int:
        """Whole seconds until the window starts (0 once it has)."""
        return max(0, int((self.window.starts_at - self.now).total_seconds()))


def banner_poll_s() -> int:
    """How often a page asks for the banner again (a poke asks sooner)."""
    return int(current_app.config.get("KIOSK_MAINTENANCE_POLL_S", POLL_S_DEFAULT))


def banner_now(now: datetime | None = None) -> Banner | None:
    """The banner for this moment, or None (read once per request)."""
    if now is None and "maintenance_banner" in g:
        return g.maintenance_banner
    at = now or clock.utcnow()
    window, phase = window_current(now=at), None
    if window is not None:
        phase = "under_way" if at >= window.starts_at else "preparing"
    else:
        notice = timedelta(hours=int(current_app.config.get("KIOSK_MAINTENANCE_NOTICE_H",
                                                            NOTICE_HOURS_DEFAULT)))
        upcoming = windows_upcoming(limit=1)
        if upcoming and upcoming[0].starts_at - at <= notice:
            window, phase = upcoming[0], "notice"
    banner = Banner(window, phase, at) if window is not None else None
    if now is None:
        g.maintenance_banner = banner
    return banner
