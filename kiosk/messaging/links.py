"""Client portal links: the one place their tokens are made and read.

A token is the message's uid signed with the application's secret, under a salt of its
own (a token for anything else signed with the same key is no portal link), with the
instant it was made. It opens the portal for that message's patient until the clinic's
`portal_link_days` have passed since then, measured on kiosk.core.clock, so tests hold the
clock still and a server run with KIOSK_CLOCK_START agrees with itself.
"""

from datetime import UTC, datetime, timedelta

from flask import current_app, has_request_context, url_for
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from ..clinic.models import ClinicSettings
from ..clinic.selectors import settings_get
from ..core import clock
from ..core.errors import DomainError
from ..extensions import db
from .models import ClientMessage

SALT = "kiosk.client-portal-link"
# The page a link opens (kiosk/portal/views.py).
PORTAL_ENDPOINT = "portal.page"

ERR_LINK_INVALID = ("This link does not work. Please check that the whole link was copied, "
                    "or contact {clinic} for a new one.")
ERR_LINK_EXPIRED = "This link has expired. Please contact {clinic} for a new one."
ERR_NO_PUBLIC_URL = ("Portal links need the address clients reach the server at: set "
                     "KIOSK_PUBLIC_URL (e.g. https://vets.example.org).")


class _ClockSigner(TimestampSigner):
    """Stamps tokens with kiosk.core.clock's time instead of the wall clock's."""

    def get_timestamp(self) -> int:
        """The clock's now, in whole seconds since the epoch."""
        return int(clock.utcnow().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT,
                                  signer=_ClockSigner)


def portal_token(message: ClientMessage) -> str:
    """The signed token of `message`'s portal link (it carries the message's uid only)."""
    return _serializer().dumps(message.uid)


def link_days(settings: ClinicSettings | None = None) -> int:
    """How many days a portal link stays valid: the clinic's setting, else the column's
    default (a clinic not set up yet)."""
    settings = settings or settings_get()
    if settings.portal_link_days is not None:
        return settings.portal_link_days
    return ClinicSettings.__table__.c.portal_link_days.default.arg


def portal_message(token: str, *, now: datetime | None = None) -> ClientMessage:
    """The message a portal token was made for, or DomainError: "link_invalid" (404) for a
    token that is garbled, signed otherwise or names no message, "link_expired" (410) for
    one older than the clinic's portal_link_days. The messages are for clients."""
    settings = settings_get()
    invalid = DomainError("link_invalid", ERR_LINK_INVALID.format(clinic=settings.name),
                          status=404)
    try:
        uid, made = _serializer().loads(token, return_timestamp=True)
    except (BadData, TypeError, ValueError):
        raise invalid from None
    if not isinstance(uid, str):
        raise invalid
    message = db.session.scalar(select(ClientMessage).where(ClientMessage.uid == uid))
    if message is None:
        raise invalid
    if message.owner_id is not None and message.patient.owner_id != message.owner_id:
        raise invalid  # the pet has another owner now: the former one's link shows nothing
    now = now or clock.utcnow()
    if now - made.astimezone(UTC) > timedelta(days=link_days(settings)):
        raise DomainError("link_expired", ERR_LINK_EXPIRED.format(clinic=settings.name),
                          status=410)
    return message


def public_address(endpoint: str, **values) -> str | None:
    """The absolute address of `endpoint` under KIOSK_PUBLIC_URL (the address clients and
    the provider reach the server at), built from the URL map alone (senders run in jobs,
    outside any request); None when no public address is set. The one place it is made:
    the provider signs the callback address it was given, which must be the one checked."""
    public = (current_app.config.get("KIOSK_PUBLIC_URL") or "").strip().rstrip("/")
    if not public:
        return None
    return public + current_app.url_map.bind("localhost").build(endpoint, values)


def portal_link(message: ClientMessage) -> str:
    """The absolute address of `message`'s portal page: under KIOSK_PUBLIC_URL (the address
    clients reach the server at), else the address of the request being served."""
    token = portal_token(message)
    public = public_address(PORTAL_ENDPOINT, token=token)
    if public:
        return public
    if not has_request_context() and not current_app.config.get("SERVER_NAME"):
        raise DomainError("no_public_url", ERR_NO_PUBLIC_URL)
    return url_for(PORTAL_ENDPOINT, token=token, _external=True)
