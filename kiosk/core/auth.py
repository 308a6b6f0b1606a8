"""Who is signed in, and the decorators that guard every page by level."""

import time
from collections.abc import Callable
from functools import wraps

from flask import abort, current_app, g, redirect, request, session, url_for

from .errors import Forbidden

# What each level may do (DOMAIN.md); services check these, views only translate.
LEVEL_COMPLETE_TASK = 1
LEVEL_ANAESTHESIA = 3
LEVEL_FORMS = 3
LEVEL_ORDERS = 4
LEVEL_DISCHARGE = 4
LEVEL_MANAGER = 6


SESSION_REFRESHED = "refreshed"


def session_keep_alive(response):
    """Renew a session's cookie (and so its expiry) once a day, not on every response.

    Run after each request. Sessions are cookies, and a response that re-sends one writes
    back the session as it was when its request began. Re-sent on every response, a slow
    request begun before a sign-in or a tablet claim would undo it by answering after it.
    So the cookie goes out when the session changed, stamped, and again once the stamp is a
    day old: a wall display or a tablet always in use keeps its session, without the race.
    """
    if session:
        # Wall-clock seconds, not clock.utcnow(): the stamp paces the cookie, whose expiry
        # the browser keeps on its own wall clock, not a clinic-time fact.
        now = int(time.time())
        every = current_app.config["KIOSK_SESSION_REFRESH_SECONDS"]
        if session.modified or now - session.get(SESSION_REFRESHED, 0) >= every:
            session[SESSION_REFRESHED] = now
    return response


SESSION_KEY = "sid"  # the cookie's name for its sign-in (staff.sessions)

# Who a session's ids stand for, told at start-up by the features that own them (core
# imports no feature): "sign_in" (staff) maps (sign-in key, user id) to (user, live
# sign-in) or (None, None); "device" (devices) maps a device id to the device or None.
_loaders: dict[str, Callable] = {}


def auth_loader_register(name: str, loader: Callable) -> None:
    """Register the feature function that loads `name` ("sign_in" or "device")."""
    if name not in ("sign_in", "device"):
        raise ValueError(f"unknown auth loader {name!r}")
    _loaders[name] = loader


def _loader(name: str) -> Callable:
    loader = _loaders.get(name)
    if loader is None:
        raise RuntimeError(f"no {name} loader is registered (create_app registers them)")
    return loader


def current_user():
    """The signed-in, active user for this request, or None.

    The one check of a person's session: the cookie names a sign-in that must still be
    live on the server (not signed out, not ended by a new password or PIN, at most 30
    days old), and a PIN sign-in lives only on the paired tablet it was made on.
    """
    if "user" not in g:
        user_id = session.get("user_id")
        user, live = _loader("sign_in")(session.get(SESSION_KEY), user_id) if user_id \
            else (None, None)
        if live is not None and live.auth == "pin":
            tablet = current_tablet()
            user = user if tablet is not None and tablet.id == live.device_id else None
        g.user = user if user is not None and user.active else None
        g.sign_in = live if g.user is not None else None
    return g.user


def current_sign_in():
    """The live sign-in (`StaffSession`) of this request's user, or None."""
    current_user()
    return g.sign_in


def session_generation_key(kind: str) -> str:
    """Where a device's session keeps the generation it was made in (tablet_gen, ...)."""
    return f"{kind}_gen"


def _session_device(kind: str):
    """The active device of `kind` this browser's session names (display_id, tablet_id).

    The session holds the device's generation from when it was made (pairing, claim);
    re-pairing or revoking the device moves the generation on, which ends every session
    made before, copied cookies included.
    """
    if kind not in g:
        device_id = session.get(f"{kind}_id")
        device = _loader("device")(device_id) if device_id else None
        live = device is not None and device.is_active and device.kind == kind and \
            session.get(session_generation_key(kind), 0) == device.session_generation
        setattr(g, kind, device if live else None)
    return getattr(g, kind)


def session_device_set(device) -> None:
    """Make this browser's session the device's (a tablet or a display), stamped with the
    device's current generation. Every place that makes a device session calls this."""
    session.permanent = True
    session[f"{device.kind}_id"] = device.id
    session[session_generation_key(device.kind)] = device.session_generation or 0
    g.pop(device.kind, None)


def session_tablet_keep() -> dict:
    """The tablet session's keys of this browser, to carry over a sign-in or sign-out
    (a paired tablet stays paired whoever signs in or out on it)."""
    return {key: session[key] for key in ("tablet_id", session_generation_key("tablet"))
            if key in session}


def current_display():
    """The wall display signed in on this browser (read-only, one board), or None."""
    return _session_device("display")


def current_tablet():
    """The paired tablet this browser is (its tablet session), or None.

    A tablet may read the pages it needs whoever holds it; the person is the one who
    unlocked it with a PIN, named in each change it sends (docs/security.md).
    """
    return _session_device("tablet")


def can(level: int) -> bool:
    """Whether a page shows actions of `level`: on a tablet every action (the tablet hides
    what the person who unlocked it may not do), else those of the user's level."""
    if current_tablet() is not None:
        return True
    user = current_user()
    return user is not None and user.level >= level


def permission_check(user, level: int, action: str) -> None:
    """Raise Forbidden, naming the level needed, unless `user` may do `action`."""
    if user is None or user.level < level:
        have = user.level if user is not None else 0
        raise Forbidden(f"You need level {level} to {action} (you are level {have}).")


def _to_sign_in():
    """The sign-in page (or 401 for htmx and JSON requests)."""
    wants_json = request.accept_mimetypes.best == "application/json"
    if request.headers.get("HX-Request") or wants_json:
        abort(401)
    return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))


def login_required(view):
    """Send anyone not signed in (and no paired tablet) to the sign-in page."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None and current_tablet() is None:
            return _to_sign_in()
        return view(*args, **kwargs)

    return wrapped


ERR_MANAGER_PAGES_NEED_SIGN_IN = (
    "Sign in with your password to {action}: a PIN only unlocks a shared tablet, and never "
    "opens the manager's pages.")


def signed_in_with_password() -> bool:
    """Whether this browser's person signed in with a password (not a tablet's PIN), as
    the server recorded the sign-in."""
    sign_in = current_sign_in()
    return sign_in is not None and sign_in.auth == "password"


def password_check(action: str) -> None:
    """Raise Forbidden unless the person signed in with a password.

    The manager's pages (staff, devices, settings, the clinic's set-up) change who may do
    what; a PIN has a million values and is typed on shared tablets, so it never opens
    them (docs/security.md).
    """
    if not signed_in_with_password():
        raise Forbidden(ERR_MANAGER_PAGES_NEED_SIGN_IN.format(action=action))


def level_required(level: int, action: str, *, tablet: bool = False):
    """Require a signed-in user of at least `level`; 403 with the reason otherwise.

    Pages of `LEVEL_MANAGER` also need a password sign-in (`password_check`).
    `tablet`: a paired tablet may open the page too (a form whose change goes through its
    outbox, where the server checks the level of the person named in the op).
    """

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not (tablet and current_tablet() is not None):
                if current_user() is None:  # a tablet, on a page for people only
                    return _to_sign_in()
                permission_check(current_user(), level, action)
                if level >= LEVEL_MANAGER:
                    password_check(action)
            return view(*args, **kwargs)

        return wrapped

    return decorator
