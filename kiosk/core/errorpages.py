"""Error pages that tell staff what happened and what to do."""

import logging

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError

from .errors import DomainError, error_body

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Please sign in", "Your session has ended; sign in again."),
    403: ("Not allowed", "Your level does not allow this."),
    404: ("Not found", "There is nothing here. It may have been removed, or the link is wrong."),
    413: ("Too large", "That upload is too large."),
    500: ("Something went wrong", "The error was logged. Nothing you entered was saved twice; "
          "try again, and tell a manager if it keeps happening."),
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def json_error(status: int, code: str, message: str, **extra):
    """An error answered as JSON (core.errors.error_body), never kept in a cache."""
    response = jsonify(error_body(code, message, **extra))
    response.headers["Cache-Control"] = "no-store"
    return response, status


def error_response(status: int, message: str | None = None, code: str | None = None,
                   field: str | None = None):
    """An error as a JSON body for the API, or as a page for people."""
    title, default = MESSAGES.get(status, ("Error", "Something went wrong."))
    text = message or default
    if _wants_json():
        return json_error(status, code or title.lower().replace(" ", "_"), text, field=field)
    return render_template("errors/error.html", status=status, title=title, message=text), status


def install(app) -> None:
    """Register the handlers on `app`."""

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return error_response(exc.status, exc.message, exc.code, exc.field)

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(400, "This form has expired; reload the page and try again.",
                              "csrf")

    for status in (400, 401, 403, 404, 405, 413):
        app.register_error_handler(
            status, lambda exc, s=status: error_response(s, getattr(exc, "description", None)
                                                         if s in (403,) else None))

    @app.errorhandler(500)
    def server_error(exc):
        return error_response(500)
