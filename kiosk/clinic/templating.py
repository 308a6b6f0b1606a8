"""The clinic in templates: its settings, and times on its wall clock."""

from ..core.clock import to_local
from .selectors import settings_get, settings_zone


def clinic_settings():
    """The clinic's settings for this request."""
    return settings_get()


def clinic_zone():
    """The clinic's ZoneInfo for this request."""
    return settings_zone(clinic_settings())


def install(app) -> None:
    """Register the clinic's filters (times in its zone) and the `clinic` global."""

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

    app.jinja_env.globals.update(clinic=clinic_settings)
