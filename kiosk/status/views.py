"""The status page and the health endpoints (public: no sign-in, nothing clinical), the
manager's incident notes, and staff's e-mail subscriptions with their signed links."""

import logging
from functools import wraps

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.exc import SQLAlchemyError

from ..clinic.selectors import settings_get, settings_zone
from ..core import clock
from ..core.auth import LEVEL_MANAGER, current_user, level_required, login_required
from ..core.clock import format_iso_z, moment_text, zone
from ..core.errorpages import error_response
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.mail import MailError, smtp_settings
from ..extensions import csrf, db
from ..maintenance.selectors import window_current, windows_upcoming
from .health import DOWN, health_run, overall
from .models import SEVERITIES
from .notices import LinkInvalid, deliveries_counts, token_confirm_read, token_unsubscribe_read
from .selectors import (
    deliveries_failed,
    deliveries_waiting,
    note_by_uid,
    notes_open,
    notes_resolved,
    notices_recent,
    subscriptions_of,
)
from .services import (
    MANAGE,
    incident_post,
    incident_resolve,
    incident_update,
    subscription_confirm,
    subscription_request,
    subscription_unsubscribe,
)
from .throttle import ERR_TOO_MANY_MAILS, limit_per_address, limit_per_person

log = logging.getLogger(__name__)
bp = Blueprint("status", __name__)

NO_STORE = {"Cache-Control": "no-store"}
REFRESH_S = 60
NOTE_FIELDS = ("title", "body", "severity")


# Public: health for load balancers, the status page

@bp.get("/healthz")
def healthz():
    """Liveness: the process answers (touches nothing else)."""
    return Response("ok\n", mimetype="text/plain", headers=NO_STORE)


@bp.get("/readyz")
def readyz():
    """Readiness: 200 when the database (and Redis when configured) answer, else 503
    naming what is down."""
    checks = health_run(current_app._get_current_object(), ready_only=True)
    down = [c.name for c in checks if c.state == DOWN]
    body = {"status": "down" if down else "ok", "down": down,
            "checks": {c.name: c.as_dict() for c in checks}}
    return jsonify(body), 503 if down else 200, NO_STORE


def _window(window, tz) -> dict:
    # A window is under way for the server a few minutes before its start (tablets make
    # their pages fresh then): "started" says whether its start has come.
    return {"uid": window.uid, "state": window.state, "message": window.message or "",
            "started": clock.utcnow() >= window.starts_at,
            "starts_at": format_iso_z(window.starts_at), "ends_at": format_iso_z(window.ends_at),
            "starts_local": moment_text(window.starts_at, tz),
            "ends_local": moment_text(window.ends_at, tz)}


def _note(note, tz) -> dict:
    def stamp(value):
        return format_iso_z(value) if value else None

    return {"uid": note.uid, "title": note.title, "body": note.body, "severity": note.severity,
            "posted_at": stamp(note.posted_at), "updated_at": stamp(note.updated_at),
            "resolved_at": stamp(note.resolved_at),
            "posted_local": moment_text(note.posted_at, tz),
            "resolved_local": moment_text(note.resolved_at, tz)}


def _readings(database_ok: bool) -> dict:
    """What the page shows from the database (maintenance, notes, the clinic's name and
    time zone); empty when the database is down (the page still answers)."""
    fallback = {"clinic": None, "timezone": current_app.config.get("KIOSK_TIMEZONE") or "UTC",
                "maintenance": None, "incidents": None}
    if not database_ok:
        return fallback
    try:
        settings = settings_get()
        tz = settings_zone(settings)
        current = window_current()
        readings = {
            "clinic": settings.name, "timezone": settings.timezone or "UTC",
            "maintenance": {"current": _window(current, tz) if current else None,
                            "upcoming": [_window(w, tz) for w in windows_upcoming()]},
            "incidents": {"open": [_note(n, tz) for n in notes_open()],
                          "resolved": [_note(n, tz) for n in notes_resolved()]}}
        db.session.commit()
        return readings
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("status page: the database could not be read (%s)", type(exc).__name__)
        return fallback


def status_view() -> tuple[dict, int]:
    """The status as /status and /status.json show it, and its HTTP status (503 when
    something essential is down)."""
    checks = health_run(current_app._get_current_object())
    state = overall(checks)
    database = next(c for c in checks if c.name == "database")
    body = {"status": state, "checked_at": format_iso_z(clock.utcnow()),
            "version": current_app.jinja_env.globals.get("app_version"),
            "checks": {c.name: c.as_dict() for c in checks},
            **_readings(database.state != DOWN)}
    return body, 503 if state == DOWN else 200


@bp.get("/status")
def page():
    """The status page for staff and the clinic (refreshes itself; no script needed)."""
    body, code = status_view()
    try:
        tz = zone(body["timezone"])
    except DomainError:
        tz = zone("UTC")
    response = make_response(render_template(
        "status/page.html", status=body, refresh_s=REFRESH_S,
        checked_local=moment_text(clock.utcnow(), tz), now=clock.utcnow()), code)
    response.headers.update(NO_STORE)
    return response


@bp.get("/status.json")
def page_json():
    """The status, machine-readable (the same keys every time)."""
    body, code = status_view()
    return jsonify(body), code, NO_STORE


# The manager's incident notes

def _notes_page(data=None, error=None, note=None, status=200):
    return render_template("status/notes.html", notes=notes_open(), resolved=notes_resolved(),
                           data=data or {"severity": "info"}, error=error, note=note,
                           severities=[(s, s.capitalize()) for s in SEVERITIES],
                           failed=deliveries_failed(), waiting=deliveries_waiting(),
                           counts=deliveries_counts(), notices=notices_recent()), status


@bp.get("/status/notes")
@level_required(LEVEL_MANAGER, MANAGE)
def notes():
    """Open and resolved notes, the form to post one, and notices that failed to go."""
    return _notes_page()


@bp.post("/status/notes")
@level_required(LEVEL_MANAGER, MANAGE)
def note_post():
    """Post a note; nothing is stored when a field is refused."""
    data = form_data(*NOTE_FIELDS)
    _, error = commit_or_error(lambda: incident_post(user=current_user(), **{
        name: data.get(name) for name in NOTE_FIELDS}))
    if error:
        return _notes_page(data, error, status=422)
    flash("Note posted on the status page.")
    return redirect(url_for("status.notes"))


@bp.get("/status/notes/<uid>")
@level_required(LEVEL_MANAGER, MANAGE)
def note_edit(uid: str):
    """The form to change an open note."""
    note = note_by_uid(uid)
    return _notes_page({"title": note.title, "body": note.body, "severity": note.severity},
                       note=note)


@bp.post("/status/notes/<uid>")
@level_required(LEVEL_MANAGER, MANAGE)
def note_update(uid: str):
    """Change an open note's words or severity."""
    note = note_by_uid(uid)
    data = form_data(*NOTE_FIELDS)
    _, error = commit_or_error(lambda: incident_update(note=note, user=current_user(), **{
        name: data.get(name) for name in NOTE_FIELDS}))
    if error:
        return _notes_page(data, error, note=note, status=422)
    flash("Note updated.")
    return redirect(url_for("status.notes"))


@bp.post("/status/notes/<uid>/resolve")
@level_required(LEVEL_MANAGER, MANAGE)
def note_resolve(uid: str):
    """Mark a note resolved."""
    note = note_by_uid(uid)
    _, error = commit_or_error(lambda: incident_resolve(note=note, user=current_user()))
    if error:
        return _notes_page(error=error, status=422)
    flash("Note resolved.")
    return redirect(url_for("status.notes"))


# Staff's subscriptions

def _smtp_problem() -> str | None:
    try:
        if smtp_settings(current_app.config) is None:
            return "No SMTP server is set up yet: notices wait and go once one is."
    except MailError:
        return "The SMTP settings need fixing: notices wait and go once they are."
    return None


def _subscriptions_page(data=None, error=None, status=200):
    return render_template("status/subscriptions.html", data=data or {"maintenance": "1",
                                                                       "incidents": "1"},
                           error=error, rows=subscriptions_of(current_user()),
                           smtp_problem=_smtp_problem()), status


def person_required(view):
    """Send anyone but a signed-in person to the sign-in page: subscriptions are a
    person's own, and a paired tablet with nobody signed in has none."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return redirect(url_for("staff.login"))
        return view(*args, **kwargs)

    return login_required(wrapped)


@bp.errorhandler(429)
def _too_many(exc):
    """The subscription form again, saying why nothing was sent (the only limited view)."""
    if request.endpoint != "status.subscribe" or current_user() is None:
        return error_response(429, ERR_TOO_MANY_MAILS, "rate_limited")
    data = form_data("email", "maintenance", "incidents")
    return _subscriptions_page(data, DomainError("rate_limited", ERR_TOO_MANY_MAILS,
                                                 field="email"), 429)


def _link_base() -> str:
    """Where a subscription's e-mail links start: KIOSK_PUBLIC_URL when set, else the
    address this request came to (a new address's only; see subscription_request)."""
    public = (current_app.config.get("KIOSK_PUBLIC_URL") or "").strip()
    return public.rstrip("/") + "/" if public else request.host_url


@bp.get("/status/subscriptions")
@person_required
def subscriptions():
    """The addresses the signed-in person asked notices for, and the form to add one."""
    return _subscriptions_page()


@bp.post("/status/subscriptions")
@person_required
@limit_per_person
@limit_per_address
def subscribe():
    """Ask for notices at an address (a confirmation e-mail goes to it)."""
    data = form_data("email", "maintenance", "incidents")
    _, error = commit_or_error(lambda: subscription_request(
        user=current_user(), email=data.get("email"), maintenance=data.get("maintenance") == "1",
        incidents=data.get("incidents") == "1", link_base=_link_base()))
    if error:
        return _subscriptions_page(data, error, 422)
    flash("A confirmation e-mail is on its way: follow its link to start the notices.")
    return redirect(url_for("status.subscriptions"))


@bp.post("/status/subscriptions/<uid>/stop")
@person_required
def subscription_stop(uid: str):
    """Stop the notices to one of the signed-in person's addresses."""
    row = next((r for r in subscriptions_of(current_user()) if r.uid == uid), None)
    if row is None:
        return _subscriptions_page(error=DomainError("not_found", "There is no such "
                                                     "subscription of yours."), status=404)
    commit_or_error(lambda: subscription_unsubscribe(subscription=row))
    flash(f"No more notices to {row.email}.")
    return redirect(url_for("status.subscriptions"))


# The links in the e-mails: the signed token is the credential (no sign-in, no cookie)

def _link_page(template: str, status: int = 200, **context):
    response = make_response(render_template(template, **context), status)
    response.headers.update({**NO_STORE, "Referrer-Policy": "no-referrer",
                             "X-Robots-Tag": "noindex, nofollow"})
    return response


@bp.errorhandler(LinkInvalid)
def _link_error(exc: LinkInvalid):
    return _link_page("status/link.html", exc.status, problem=exc.message)


@bp.get("/status/confirm/<token>")
def confirm(token: str):
    """The confirmation link: a button to confirm (a mail scanner's visit changes nothing)."""
    subscription, maintenance, incidents, _ = token_confirm_read(token)
    return _link_page("status/link.html", action="confirm", subscription=subscription,
                      maintenance=maintenance, incidents=incidents, token=token)


@bp.post("/status/confirm/<token>")
@csrf.exempt  # the signed token is the credential; the person may not be signed in here
def confirm_post(token: str):
    """Confirm: notices go to the address from now on."""
    subscription, maintenance, incidents, link_base = token_confirm_read(token)
    commit_or_error(lambda: subscription_confirm(subscription=subscription,
                                                 maintenance=maintenance, incidents=incidents,
                                                 link_base=link_base))
    return _link_page("status/link.html", action="confirmed", subscription=subscription)


@bp.get("/status/unsubscribe/<token>")
def unsubscribe(token: str):
    """The unsubscribe link: a button to stop the notices."""
    subscription = token_unsubscribe_read(token)
    return _link_page("status/link.html", action="unsubscribe", subscription=subscription,
                      token=token)


@bp.post("/status/unsubscribe/<token>")
@csrf.exempt  # the signed token is the credential (also a mail client's one-click POST)
def unsubscribe_post(token: str):
    """Stop every notice to the address."""
    subscription = token_unsubscribe_read(token)
    commit_or_error(lambda: subscription_unsubscribe(subscription=subscription))
    return _link_page("status/link.html", action="unsubscribed", subscription=subscription)
