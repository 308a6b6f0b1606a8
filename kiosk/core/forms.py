"""Helpers views share for forms: run one service in a unit of work, or show its error."""

from flask import request

from ..extensions import db
from .errors import DomainError


def form_data(*names: str, lists: tuple[str, ...] = ()) -> dict:
    """The named fields of the posted form (absent ones left out); `lists` are multi-valued."""
    data = {name: request.form[name] for name in names if name in request.form}
    for name in lists:
        data[name] = request.form.getlist(name)
    return data


def commit_or_error(action):
    """Run `action()`; commit and return (result, None), or roll back and return (None, error).

    Permission errors are not form errors: they propagate to the 403 page.
    """
    try:
        result = action()
        db.session.commit()
        return result, None
    except DomainError as exc:
        db.session.rollback()
        if exc.status in (403, 404):
            raise
        return None, exc
