"""The staff inbox page: one person's tasks (complete them here) and messages (mark them
read, write one to a colleague), for them and for their level; and what a tablet's banner
asks when a message reaches the person signed in on it.

The inbox is a person's: on a shared tablet only the person who signed in there with their
PIN sees it (the tablet's own session, whoever holds it, is sent to sign in)."""

import re

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from ..core import clock
from ..core.auth import LEVEL_COMPLETE_TASK, current_user, level_required
from ..core.errorpages import json_error
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.htmx import is_htmx, render
from ..core.models import new_uid
from ..staff.levels import level_choices
from ..staff.selectors import users_list
from .models import TASK_OPEN
from .selectors import (
    InboxTask,
    inbox_for,
    inbox_message,
    inbox_open_count,
    message_recipient,
    staff_message_by_uid,
    staff_task_by_uid,
)
from .services import (
    ERR_MESSAGE_NOT_YOURS,
    LEVEL_SEND_MESSAGE,
    staff_message_is_for,
    staff_message_read,
    staff_message_send,
    staff_task_complete,
)

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

# A refusal shown in place of the row an htmx request swaps (htmx swaps a 422, not a 4xx).
HTMX_ERROR = 422
SEE = "see the inbox"
ERR_FORM_KEY = "This form has expired: reload the page and send the message again."
# The form's own key (a uid drawn when the page was drawn): sending twice sends once.
FORM_KEY_RE = re.compile(r"^[0-9a-f-]{32,36}$")


def _run(action):
    """commit_or_error, with "not allowed" shown on the page like any other refusal: the
    inbox's buttons are one person's, and a refused one says why where it was pressed."""
    try:
        return commit_or_error(action)
    except DomainError as exc:
        return None, exc


def _page(*, error: DomainError | None = None, status: int = 200, compose: dict | None = None,
          compose_error: DomainError | None = None):
    """The inbox page of the signed-in person, with the message form for those who may
    write (kept as typed after a refusal)."""
    user = current_user()
    may_send = user.level >= LEVEL_SEND_MESSAGE
    compose = dict(compose or {})
    if not FORM_KEY_RE.match(compose.get("key", "")):  # a form that lost its key gets one
        compose["key"] = new_uid()
    return render_template(
        "inbox/page.html", inbox=inbox_for(user, now=clock.utcnow()), user=user, error=error,
        may_send=may_send, people=users_list(active_only=True) if may_send else [],
        levels=level_choices(), compose=compose, compose_error=compose_error), status


@bp.get("/")
@level_required(LEVEL_COMPLETE_TASK, SEE)
def index():
    """The signed-in person's tasks and messages."""
    return _page()


@bp.post("/tasks/<uid>/complete")
@level_required(LEVEL_COMPLETE_TASK, SEE)
def task_complete(uid: str):
    """Complete a task: htmx gets its row back (done, or the refusal), a plain post the page."""
    task = staff_task_by_uid(uid)
    user = current_user()
    _, error = _run(lambda: staff_task_complete(task=task, user=user))
    if not is_htmx():
        if error:
            return _page(error=error, status=error.status if error.status != 400 else 409)
        return redirect(url_for("inbox.index"), code=303)
    task = staff_task_by_uid(uid)  # as stored now (a refused change was rolled back)
    item = InboxTask(task=task, overdue=task.status == TASK_OPEN and task.due_at < clock.utcnow())
    return render("inbox/page.html", "inbox/_task.html", status=HTMX_ERROR if error else 200,
                  item=item, user=user, error=error)


@bp.post("/messages/<uid>/read")
@level_required(LEVEL_COMPLETE_TASK, SEE)
def message_read(uid: str):
    """Mark a message read: htmx gets its row back, a plain post the page."""
    message = staff_message_by_uid(uid)
    user = current_user()
    _, error = _run(lambda: staff_message_read(message=message, user=user))
    if not is_htmx():
        if error:
            return _page(error=error, status=error.status)
        return redirect(url_for("inbox.index"), code=303)
    item = inbox_message(staff_message_by_uid(uid), read=error is None)
    return render("inbox/page.html", "inbox/_message.html", status=HTMX_ERROR if error else 200,
                  item=item, user=user, error=error)


def _form_key(user, raw) -> str:
    """The message's key from the form's own: one message however often it is posted."""
    if not isinstance(raw, str) or not FORM_KEY_RE.match(raw):
        raise DomainError("bad_key", ERR_FORM_KEY, field="key")
    return f"inbox:{user.public_id}:{raw}"


@bp.post("/messages")
@level_required(LEVEL_SEND_MESSAGE, "send staff messages")
def message_send():
    """Write a message to a colleague or to everyone of a level; back to the inbox."""
    user = current_user()
    data = form_data("to", "subject", "body", "key")

    def send():
        to_user, to_level = message_recipient(data.get("to"))
        return staff_message_send(key=_form_key(user, data.get("key")),
                                  subject=data.get("subject"), body=data.get("body") or None,
                                  to_user=to_user, to_level=to_level, sender=user)

    message, error = _run(send)
    if error:
        return _page(compose=data, compose_error=error, status=error.status)
    flash(f"Message sent: {message.subject}")
    return redirect(url_for("inbox.index"), code=303)


@bp.get("/notice")
@level_required(LEVEL_COMPLETE_TASK, SEE)
def notice():
    """For a tablet's banner (JSON, never kept): whose inbox this is, what waits in it, and
    with `?message=<uid>` that message's subject and link if it was sent to this person."""
    user = current_user()
    body = {"for": user.public_id, "count": inbox_open_count(user)}
    uid = request.args.get("message")
    if uid is not None:
        message = staff_message_by_uid(uid)
        if not staff_message_is_for(message, user):
            return json_error(403, "forbidden", ERR_MESSAGE_NOT_YOURS)
        body["message"] = {"uid": message.uid, "subject": message.subject,
                           "url": url_for("inbox.index", _anchor=f"message-{message.uid}")}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
