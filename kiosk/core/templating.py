"""Template filters and globals: clinic-local times, the signed-in user, the clinic."""

from datetime import timedelta

from . import clock
from .auth import can, current_tablet, current_user
from .clock import to_local


def clinic_settings():
    """The clinic's settings for this request."""
    from ..clinic.selectors import settings_get

    return settings_get()


def clinic_zone():
    """The clinic's ZoneInfo for this request."""
    from ..clinic.selectors import settings_zone

    return settings_zone(clinic_settings())


def install(app) -> None:
    """Register filters and globals on `app`."""

    @app.template_filter("hm")
    def hm(value):
        """A UTC datetime as the clinic's HH:MM."""
        return to_local(value, clinic_zone()).strftime("%H:%M") if value else ""

    @app.template_filter("dt")
    def dt(value):
        """A UTC datetime as the clinic's 'Sun 22 Nov 14:30'."""
        return to_local(value, clinic_zone()).strftime("%a %d %b %H:%M") if value else ""

    @app.template_filter("dtinput")
    def dtinput(value):
        """A UTC datetime as a datetime-local input value in clinic time."""
        return to_local(value, clinic_zone()).strftime("%Y-%m-%dT%H:%M") if value else ""

    @app.template_filter("zip_pairs")
    def zip_pairs(values):
        """[(v, v) …] for a select whose values are their own labels."""
        return [(v, v) for v in values]

    app.jinja_env.filters["zip"] = zip
    from .. import __version__
    from ..devices.palette import swatch
    from ..devices.selectors import carriers_by_patient

    app.jinja_env.globals.update(current_user=current_user, current_tablet=current_tablet,
                                 can=can, clinic=clinic_settings, device_swatch=swatch,
                                 now_utc=clock.utcnow, app_version=__version__,
                                 carriers_of=lambda p: carriers_by_patient([p]).get(p.id, []),
                                 timedelta=timedelta)
