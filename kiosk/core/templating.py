"""Template filters and globals that need no feature: the signed-in user, the clock.

Features add their own at start-up (clinic-local times and the clinic, device swatches …);
core imports no feature.
"""

from datetime import timedelta

from . import clock
from .auth import can, current_tablet, current_user


def install(app) -> None:
    """Register the shared filters and globals on `app`."""

    @app.template_filter("zip_pairs")
    def zip_pairs(values):
        """[(v, v) …] for a select whose values are their own labels."""
        return [(v, v) for v in values]

    app.jinja_env.filters["zip"] = zip
    app.jinja_env.globals.update(current_user=current_user, current_tablet=current_tablet,
                                 can=can, now_utc=clock.utcnow, timedelta=timedelta)
