"""The limit on asking for subscriptions: each request sends a confirmation e-mail from the
clinic's own mail server, so a signed-in person may ask only so often, and an address may be
asked for only so often whoever asks (Flask-Limiter, in memory or in Redis like sign-in's).
Only a request that queued an e-mail counts: a refused address costs nothing."""

import hashlib

from flask import current_app, request

from ..core.auth import current_user
from ..staff.throttle import limiter

SUBSCRIBE_LIMIT = "5 per hour"
ERR_TOO_MANY_MAILS = ("Too many confirmation e-mails were asked for lately, by you or to "
                      "this address: please try again in an hour.")


def subscribe_limit() -> str:
    """Requests per person, and per address asked for (KIOSK_STATUS_SUBSCRIBE_LIMIT)."""
    return current_app.config.get("KIOSK_STATUS_SUBSCRIBE_LIMIT") or SUBSCRIBE_LIMIT


def _channel() -> str:
    # Clinics sharing one Redis server keep separate counts (as sign-in's limit does).
    return current_app.config.get("KIOSK_REDIS_CHANNEL") or "kiosk"


def _person_key() -> str:
    user = current_user()
    return f"{_channel()}:user:{user.id}" if user is not None else \
        f"{_channel()}:client:{request.remote_addr}"


def _address_key() -> str:
    # Hashed: the limiter's storage (Redis) need not hold the addresses themselves.
    address = (request.form.get("email") or "").strip().lower()
    return f"{_channel()}:email:{hashlib.sha256(address.encode()).hexdigest()[:32]}"


def _mail_queued(response) -> bool:
    # The subscribe view answers 302 with someone signed in only once the mail is queued
    # (a refusal is 422; nobody signed in is sent to sign in).
    return response.status_code == 302 and current_user() is not None


limit_per_person = limiter.shared_limit(subscribe_limit, scope="status-subscribe",
                                        key_func=_person_key, methods=["POST"],
                                        deduct_when=_mail_queued)
limit_per_address = limiter.shared_limit(subscribe_limit, scope="status-subscribe-address",
                                         key_func=_address_key, methods=["POST"],
                                         deduct_when=_mail_queued)
