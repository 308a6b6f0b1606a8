"""Builders shared by the connector tests: catalogue items, charges by hand, the webhook."""

from sqlalchemy import select

from kiosk.billing.models import BillingConnector, Charge
from kiosk.billing.services import charge_add, connector_configure, connector_pause, item_save
from kiosk.extensions import db


def item_make(clinic, code="CONS", description="Consultation", price="12.50"):
    """A catalogue item charged by hand."""
    item = item_save(user=clinic.user(6), data={"code": code, "description": description,
                                                "unit_price": price})
    db.session.commit()
    return item


def charge_make(clinic, patient, code="CONS", **data):
    """A charge by hand of the item `code` for `patient`, committed."""
    charge = charge_add(patient=patient, user=clinic.user(4), data={"item_code": code, **data})
    db.session.commit()
    return charge


def webhook_on(clinic, url):
    """Send charges to `url`."""
    connector_configure(user=clinic.user(6), kind="webhook", webhook_url=url)
    db.session.commit()


def sending_paused(clinic, paused, reason=None):
    """Pause or resume sending."""
    connector_pause(user=clinic.user(6), paused=paused, reason=reason)
    db.session.commit()


def charges_all() -> list[Charge]:
    """Every charge, re-read, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(Charge).order_by(Charge.id)))


def connector_row() -> tuple | None:
    """The connector's settings as a tuple (to show they did not change)."""
    db.session.expire_all()
    row = db.session.scalar(select(BillingConnector))
    return None if row is None else (row.id, row.kind, row.webhook_url, row.paused,
                                     row.pause_reason)
