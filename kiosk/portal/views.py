"""The client portal's pages, under /portal/<token>. The signed token is the credential (no
account, no sign-in): every view reads it first, and a garbled, unknown or expired one gets
a page that says so (404 or 410) and nothing else.

The token sits in the address, so every answer says no-store (a shared computer's cache
keeps nothing), no-referrer (no other site learns the address) and noindex; the portal is
rate-limited per client address like sign-in.
"""

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from ..core.errors import DomainError
from ..core.forms import commit_or_error
from ..forms.fields import PNG_PREFIX, posted_values
from ..forms.selectors import form_version_of
from ..messaging.links import portal_message
from ..staff.throttle import limiter
from .selectors import portal_form_message, portal_view
from .services import portal_form_submit, portal_open, received_text

bp = Blueprint("portal", __name__, url_prefix="/portal")

# The field of a signature's typed alternative: "<key>-typed" (a field key holds no "-").
TYPED_SUFFIX = "-typed"
ERR_TOO_MANY = "Too many requests from this connection: please wait a minute and try again."
ERR_CSRF = "This page was open too long. Please reload it and send the form again."
ERR_PROBLEM = "Something was wrong with this request. Please open the link again."
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                   "X-Robots-Tag": "noindex, nofollow"}


def portal_limit() -> str:
    """Requests per client address, e.g. '60 per minute' (KIOSK_PORTAL_LIMIT)."""
    return current_app.config["KIOSK_PORTAL_LIMIT"]


limit_portal = limiter.shared_limit(portal_limit, scope="portal")


@bp.after_request
def _private(response):
    """Every portal answer, pages and refusals alike, is private to its client."""
    response.headers.update(PRIVATE_HEADERS)
    return response


def _problem(message: str, status: int):
    return render_template("portal/problem.html", message=message), status


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError):
    """A bad, expired or mixed-up link, in words for a client (not the staff error page)."""
    return _problem(exc.message, exc.status)


@bp.errorhandler(CSRFError)
def _csrf_error(exc):
    return _problem(ERR_CSRF, 400)


@bp.errorhandler(429)
def _too_many(exc):
    return _problem(ERR_TOO_MANY, 429)


@bp.errorhandler(400)
def _bad_request(exc):
    return _problem(ERR_PROBLEM, 400)


@bp.get("/<token>")
@limit_portal
def page(token: str):
    """The pet's messages and the forms asked of the client; the link's first opening is
    kept on its message."""
    message = portal_message(token)
    commit_or_error(lambda: portal_open(message=message))
    return render_template("portal/page.html", view=portal_view(message), token=token)


def _form(target, version, *, token, uid, values=None, typed=None, error=None, status=200):
    return render_template(
        "portal/form.html", target=target, version=version, token=token, uid=uid,
        patient=target.patient, values=values or {}, typed=typed or {}, error=error,
        typed_suffix=TYPED_SUFFIX), status


def _received(target, *, token, status=200):
    return render_template("portal/received.html", target=target, token=token,
                           patient=target.patient, text=received_text(target.form)), status


@bp.get("/<token>/form", defaults={"uid": None})
@bp.get("/<token>/form/<uid>")
@limit_portal
def form_page(token: str, uid: str | None):
    """The form the link's message (or, `uid`, another message of the same pet and owner)
    asks for, on its template's current version; "received, thank you" once sent."""
    target = portal_form_message(portal_message(token), uid)
    if target.form is not None:
        return _received(target, token=token)
    return _form(target, target.form_template.current, token=token, uid=uid)


def _posted_version(template):
    """The version the client was shown (the page's hidden field), else the current one."""
    posted = request.form.get("version", "")
    if posted.isdecimal() and len(posted) <= 6:
        return form_version_of(template, int(posted))
    return template.current


def _posted_values(version) -> tuple[dict, dict]:
    """The posted value of each field, and each signature's typed name (a drawn one wins)."""
    typed = {field["key"]: request.form.get(field["key"] + TYPED_SUFFIX, "")
             for field in version.fields if field["type"] == "signature"}
    return posted_values(version.fields, request.form), typed


def _kept(values: dict, version, error) -> dict:
    """What the form shows again after a refusal: everything typed, and a drawn signature
    unless it was the fault (so the client need not sign twice)."""
    kept = dict(values)
    for field in version.fields:
        key = field["key"]
        if field["type"] == "signature" and (
                error.field == key or not str(kept.get(key, "")).startswith(PNG_PREFIX)):
            kept.pop(key, None)
    return kept


@bp.post("/<token>/form", defaults={"uid": None})
@bp.post("/<token>/form/<uid>")
@limit_portal
def form_submit(token: str, uid: str | None):
    """Store the form as filled by the owner and finalised, then show "received"; a missing
    or bad field shows the form again with its error, storing nothing."""
    target = portal_form_message(portal_message(token), uid)
    if target.form is not None:
        return _received(target, token=token, status=409)
    version = _posted_version(target.form_template)
    values, typed = _posted_values(version)
    _, error = commit_or_error(lambda: portal_form_submit(
        message=target, values=values, typed_names=typed, version=version))
    if error is not None:
        if error.code == "already_received":
            return _received(target, token=token, status=409)
        return _form(target, version, token=token, uid=uid, values=_kept(values, version, error),
                     typed=typed, error=error, status=422)
    return redirect(url_for("portal.form_page", token=token, uid=uid), code=303)
