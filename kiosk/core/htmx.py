"""Pages and partials share templates: one helper renders either."""

from flask import make_response, render_template, request


def is_htmx() -> bool:
    """True when htmx made this request (it wants a partial, not a page)."""
    return request.headers.get("HX-Request") == "true"


def render(page: str, partial: str, status: int = 200, **context):
    """Render the page, or only its partial for htmx; always `Vary: HX-Request`."""
    template = partial if is_htmx() else page
    response = make_response(render_template(template, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response
