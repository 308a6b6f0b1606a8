"""The client messages page: what was sent to owners, what waits and why, and sending a
held or failed message again."""

from flask import Blueprint, abort, redirect, render_template, request, url_for

from ..core.auth import LEVEL_FORMS, LEVEL_MANAGER, current_user, level_required
from ..core.forms import commit_or_error
from .models import STATUS_LABELS, STATUSES
from .selectors import client_message_by_uid, client_messages_list
from .sending import message_send_now, messages_waiting_counts

bp = Blueprint("messaging", __name__, url_prefix="/messages")


@bp.get("/")
@level_required(LEVEL_FORMS, "see messages to clients")
def index():
    """Messages to clients, newest first, filtered by status."""
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        abort(404)
    return render_template("messaging/index.html", messages=client_messages_list(status=status),
                           counts=messages_waiting_counts(), status=status,
                           labels=STATUS_LABELS, may_resend=current_user().level >= LEVEL_MANAGER)


@bp.post("/<uid>/send-now")
@level_required(LEVEL_MANAGER, "send client messages again")
def send_now(uid: str):
    """Send a held or failed message again now."""
    message = client_message_by_uid(uid)
    _, error = commit_or_error(lambda: message_send_now(message=message, user=current_user()))
    if error:
        return render_template("messaging/index.html", messages=client_messages_list(),
                               counts=messages_waiting_counts(), status=None,
                               labels=STATUS_LABELS, may_resend=True, error=error), 409
    return redirect(url_for("messaging.index"), code=303)
