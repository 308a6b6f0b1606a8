"""Sign-in and sign-out: a password on desktops, a name and PIN on shared tablets."""

import time
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for

from ..core.auth import SESSION_KEY, current_tablet, current_user, session_tablet_keep
from ..core.errors import DomainError
from ..extensions import db
from .levels import level_name
from .selectors import users_for_tablet
from .services import user_authenticate_password, user_authenticate_pin
from .sessions import staff_session_end, staff_session_start
from .throttle import limit_sign_in

bp = Blueprint("staff", __name__)
# Every page shows a level by its name (staff.levels), through this one filter.
bp.add_app_template_filter(level_name, "level_name")


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc:
        return target
    return url_for("patients.index")


def _sign_in(user, method: str) -> None:
    """Start a sign-in kept on the server (so it can be ended) and commit it; the cookie
    names it. A paired tablet stays paired, and takes this person as the one who unlocked
    it; a sign-in this browser held before ends."""
    keep = session_tablet_keep()
    staff_session_end(session.get(SESSION_KEY))
    key = staff_session_start(user=user, auth=method,
                              device=current_tablet() if method == "pin" else None)
    db.session.commit()
    session.clear()
    session.permanent = True
    session.update(keep)
    session["user_id"] = user.id
    session[SESSION_KEY] = key
    session["auth"] = method
    # Wall-clock milliseconds, not clock.utcnow(): the tablet's lock compares this stamp
    # with its own Date.now() (when it was locked), so both must read the same wall clock.
    session["signed_in_at"] = int(time.time() * 1000)


ERR_PIN_NOT_A_TABLET = DomainError(
    "not_a_tablet", "A PIN signs in only on a paired tablet; sign in with your username "
    "and password here.", field="pin")


def _pin_users():
    """Who may unlock with a PIN, for the sign-in page: only a paired tablet is shown the
    list (names and ids are nobody else's business, and a PIN works nowhere else), and only
    of the people its lock screen offers (those who work on its wards)."""
    tablet = current_tablet()
    return users_for_tablet(tablet) if tablet is not None else []


@bp.get("/login")
def login():
    """The sign-in page: the password form, and on a paired tablet the PIN form too."""
    return render_template("staff/login.html", users=_pin_users(),
                           next=request.args.get("next", ""), error=None, mode="password")


@bp.post("/login")
@limit_sign_in
def login_post():
    """Sign in with a username and password."""
    try:
        user = user_authenticate_password(username=request.form.get("username"),
                                          password=request.form.get("password"))
    except DomainError as exc:
        db.session.commit()  # the count of wrong passwords
        return render_template("staff/login.html", users=_pin_users(), error=exc,
                               next=request.form.get("next", ""), mode="password"), 401
    db.session.commit()  # the count of wrong tries starts over
    _sign_in(user, "password")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/login/pin")
@limit_sign_in
def login_pin():
    """Sign in on a shared tablet with a name and PIN (nowhere else: nothing is checked
    or counted off a paired tablet)."""
    if current_tablet() is None:
        db.session.rollback()
        return render_template("staff/login.html", users=[], error=ERR_PIN_NOT_A_TABLET,
                               next=request.form.get("next", ""), mode="password"), 403
    raw_id = request.form.get("user_id", "")
    try:
        user = user_authenticate_pin(user_id=int(raw_id) if raw_id.isdigit() else None,
                                     pin=request.form.get("pin", ""),
                                     device=current_tablet())
    except DomainError as exc:
        db.session.commit()  # the count of wrong PINs
        return render_template("staff/login.html", users=_pin_users(), error=exc,
                               next=request.form.get("next", ""), mode="pin"), 401
    db.session.commit()  # the count of wrong tries starts over
    _sign_in(user, "pin")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    """Sign out of this browser: its sign-in ends on the server, so a copy of the cookie
    stops working too (a paired tablet stays paired: its tablet session goes on)."""
    keep = session_tablet_keep()
    staff_session_end(session.get(SESSION_KEY))
    db.session.commit()
    session.clear()
    session.update(keep)
    return redirect(url_for("staff.login"))


@bp.get("/")
def home():
    """The front door: the patient list when signed in, the sign-in page otherwise."""
    if current_user() is None:
        return redirect(url_for("staff.login"))
    return redirect(url_for("patients.index"))
