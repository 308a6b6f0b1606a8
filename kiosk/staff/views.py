"""Sign-in and sign-out: a password on desktops, a name and PIN on shared tablets."""

import time
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for

from ..core.auth import current_tablet, current_user
from ..core.errors import DomainError
from ..extensions import db
from .selectors import users_with_pin
from .services import user_authenticate_password, user_authenticate_pin
from .throttle import install as throttle_install
from .throttle import limit_sign_in

bp = Blueprint("staff", __name__)
bp.record_once(lambda state: throttle_install(state.app))


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc:
        return target
    return url_for("patients.index")


def _sign_in(user, method: str) -> None:
    tablet_id = session.get("tablet_id")
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["auth"] = method
    # A paired tablet stays paired, and takes this person as the one who unlocked it.
    session["signed_in_at"] = int(time.time() * 1000)
    if tablet_id:
        session["tablet_id"] = tablet_id


@bp.get("/login")
def login():
    """The sign-in page: password form and PIN form side by side."""
    return render_template("staff/login.html", users=users_with_pin(),
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
        return render_template("staff/login.html", users=users_with_pin(), error=exc,
                               next=request.form.get("next", ""), mode="password"), 401
    db.session.commit()  # the count of wrong tries starts over
    _sign_in(user, "password")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/login/pin")
@limit_sign_in
def login_pin():
    """Sign in on a shared tablet with a name and PIN."""
    raw_id = request.form.get("user_id", "")
    try:
        user = user_authenticate_pin(user_id=int(raw_id) if raw_id.isdigit() else None,
                                     pin=request.form.get("pin", ""),
                                     device=current_tablet())
    except DomainError as exc:
        db.session.commit()  # the count of wrong PINs
        return render_template("staff/login.html", users=users_with_pin(), error=exc,
                               next=request.form.get("next", ""), mode="pin"), 401
    db.session.commit()  # the count of wrong tries starts over
    _sign_in(user, "pin")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    """Sign out of this browser (a paired tablet stays paired: its session goes on)."""
    tablet_id = session.get("tablet_id")
    session.clear()
    if tablet_id:
        session["tablet_id"] = tablet_id
    db.session.rollback()
    return redirect(url_for("staff.login"))


@bp.get("/")
def home():
    """The front door: the patient list when signed in, the sign-in page otherwise."""
    if current_user() is None:
        return redirect(url_for("staff.login"))
    return redirect(url_for("patients.index"))
