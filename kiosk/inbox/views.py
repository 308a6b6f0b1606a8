"""The staff inbox page: one person's tasks (complete them here) and messages (mark them
read), for them and for their level."""

from flask import Blueprint, redirect, render_template, url_for

from ..core import clock
from ..core.auth import LEVEL_COMPLETE_TASK, current_user, level_required, login_required
from ..core.errors import DomainError
from ..core.forms import commit_or_error
from ..core.htmx import is_htmx, render
from .models import TASK_OPEN
from .selectors import (
    InboxMessage,
    InboxTask,
    inbox_for,
    staff_message_by_uid,
    staff_task_by_uid,
)
from .services import staff_message_read, staff_task_complete

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

# A refusal shown in place of the row an htmx request swaps (htmx swaps a 422, not a 4xx).
HTMX_ERROR = 422


def _run(action):
    """commit_or_error, with "not allowed" shown on the page like any other refusal: the
    inbox's buttons are one person's, and a refused one says why where it was pressed."""
    try:
        return commit_or_error(action)
    except DomainError as exc:
        return None, exc


def _page(*, error: DomainError | None = None, status: int = 200):
    """The inbox page of the signed-in person (a tablet nobody signed in on is asked to)."""
    user = current_user()
    inbox = inbox_for(user, now=clock.utcnow()) if user is not None else None
    return render_template("inbox/page.html", inbox=inbox, user=user, error=error), status


@bp.get("/")
@level_required(LEVEL_COMPLETE_TASK, "see the inbox", tablet=True)
def index():
    """The signed-in person's tasks and messages."""
    return _page()


@bp.post("/tasks/<uid>/complete")
@login_required
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
@login_required
def message_read(uid: str):
    """Mark a message read: htmx gets its row back, a plain post the page."""
    message = staff_message_by_uid(uid)
    user = current_user()
    _, error = _run(lambda: staff_message_read(message=message, user=user))
    if not is_htmx():
        if error:
            return _page(error=error, status=error.status)
        return redirect(url_for("inbox.index"), code=303)
    item = InboxMessage(message=staff_message_by_uid(uid), read=error is None)
    return render("inbox/page.html", "inbox/_message.html", status=HTMX_ERROR if error else 200,
                  item=item, user=user, error=error)
