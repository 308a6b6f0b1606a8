"""The outer layer against guessing: a per-address rate limit on the sign-in and pairing
posts (Flask-Limiter), in memory on one process, in Redis when KIOSK_REDIS_URL joins
several. Each user's own lockout (staff.services) is the inner layer and holds whatever
address the guesses come from."""

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..core.errorpages import error_response

ERR_TOO_MANY = "Too many attempts from this device: wait a minute and try again."


def _client_key() -> str:
    """The client's address, under the clinic's Redis channel name, so that clinics sharing
    one Redis server keep separate counts (set per application, unlike Flask-Limiter's
    own prefix, which the first application would fix for the process)."""
    return f"{current_app.config.get('KIOSK_REDIS_CHANNEL') or 'kiosk'}:{get_remote_address()}"


# One limiter for the process; init_app points it at the application's storage. A moving
# window: "30 a minute" means any 60 seconds, not a clock minute whose edge would let a
# guesser send 60 in two seconds (and would reset a count in the middle of a test).
limiter = Limiter(key_func=_client_key, default_limits=[], headers_enabled=False,
                  strategy="moving-window")


def sign_in_limit() -> str:
    """The per-address limit, e.g. '30 per minute' (KIOSK_SIGN_IN_LIMIT)."""
    return current_app.config["KIOSK_SIGN_IN_LIMIT"]


# For the views: the password and PIN forms share one budget per address; pairing has its
# own.
limit_sign_in = limiter.shared_limit(sign_in_limit, scope="sign-in", methods=["POST"])
limit_pairing = limiter.shared_limit(sign_in_limit, scope="pair", methods=["POST"])


def install(app) -> None:
    """Bind the limiter to `app`: Redis when configured (its own key prefix), else memory.

    The client address is the one ProxyFix sets from KIOSK_PROXIES behind a proxy.
    """
    app.config.setdefault("RATELIMIT_STORAGE_URI",
                          app.config.get("KIOSK_REDIS_URL") or "memory://")
    # Redis gone must not turn a sign-in into a 500: count in memory meanwhile (each
    # user's own lockout, in the database, holds either way).
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)

    @app.errorhandler(429)
    def too_many(exc):
        # /pair asks for JSON and gets it; the sign-in forms get a page.
        return error_response(429, ERR_TOO_MANY, "rate_limited")
