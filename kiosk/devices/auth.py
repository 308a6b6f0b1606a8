"""Who is calling the API: a device by its bearer token, or a signed-in user.

Every place that reads a device token (sync, the API reads, the tablet claim, the lock
screen's staff list, the wall display's claim, live connections) goes through
`device_by_credential`, naming the kinds of device it accepts: a wall display's token is
read-only for its own board and is never taken for a tablet's.
"""

from flask import request

from ..core.auth import current_user
from .services import device_by_token


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _kinds(kind) -> tuple[str, ...]:
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    if not kinds:
        raise ValueError("name the kinds of device this caller accepts")
    return kinds


def device_by_credential(token, kind):
    """The active device holding `token` if it is of `kind` (a kind or a tuple), else None.

    The one check of a device token's kind: a caller that forgets it cannot exist, since
    `kind` has no default.
    """
    device = device_by_token(token) if token else None
    return device if device is not None and device.kind in _kinds(kind) else None


def device_from_request(kind):
    """The active device of `kind` whose bearer token this request carries, or None."""
    return device_by_credential(bearer_token(), kind)


def api_caller():
    """('device', tablet) or ('user', user) for this request, or (None, None).

    Only a tablet's token reads the API; a wall display's is refused like no token.
    """
    device = device_from_request("tablet")
    if device is not None:
        return "device", device
    user = current_user()
    if user is not None:
        return "user", user
    return None, None
