"""Who is calling the API: a device by its bearer token, or a signed-in user."""

from flask import request

from ..core.auth import current_user
from ..devices.services import device_by_token


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def device_from_request():
    """The active device whose token this request carries, or None."""
    token = bearer_token()
    return device_by_token(token) if token else None


def api_caller():
    """('device', device) or ('user', user) for this request, or (None, None)."""
    device = device_from_request()
    if device is not None:
        return "device", device
    user = current_user()
    if user is not None:
        return "user", user
    return None, None
