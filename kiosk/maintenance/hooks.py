"""What maintenance registers at start-up: its jobs, the banner's template global and the
filters it draws with."""

from ..core.clock import as_utc
from .banner import banner_now, banner_poll_s
from .jobs import install_jobs


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


def install(app) -> None:
    """The tick on the job queue, and `maintenance_banner()` for every page."""
    install_jobs(app)
    app.jinja_env.globals.update(maintenance_banner=banner_now,
                                 maintenance_poll_s=banner_poll_s)
    app.add_template_filter(countdown_text, "countdown")
    app.add_template_filter(epoch_ms, "epoch_ms")
