"""What the SMS and voice provider tells us: delivery status, and replies (STOP).

Both endpoints are called by the provider, not by a signed-in person: each request must
carry the provider's signature of the address and the fields (made with the account's
auth token). A request without a valid signature changes nothing and is answered 403.
"""

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select

from ..core import clock
from ..core.audit import audit_record
from ..core.errorpages import json_error
from ..core.events import event_record
from ..extensions import csrf, db
from ..owners.models import Owner
from ..owners.services import owner_opt_in, owner_opt_out, phone_normalise
from .channels import ChannelError, callback_signature_valid, provider_settings
from .links import public_address
from .models import MESSAGE_DELIVERED, MESSAGE_FAILED, MESSAGE_SENT, ClientMessage

bp = Blueprint("messaging_callbacks", __name__, url_prefix="/messaging/provider")
log = logging.getLogger(__name__)

# The provider's words for a message or a call → ours. Earlier ones ("queued",
# "sending", "ringing") change nothing: the message is already sent.
STATUS_MAP = {"sent": MESSAGE_SENT, "delivered": MESSAGE_DELIVERED, "read": MESSAGE_DELIVERED,
              "completed": MESSAGE_DELIVERED, "undelivered": MESSAGE_FAILED,
              "failed": MESSAGE_FAILED, "busy": MESSAGE_FAILED, "no-answer": MESSAGE_FAILED,
              "canceled": MESSAGE_FAILED}
RANK = {MESSAGE_SENT: 1, MESSAGE_FAILED: 2, MESSAGE_DELIVERED: 3}
STOP_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout"}
START_WORDS = {"start", "unstop", "optin"}
WHY_UNDELIVERED = "The provider could not deliver it ({status}{code})."
ERR_SIGNATURE = "The request is not signed by the provider; nothing was changed."


def _signed() -> bool:
    """Whether the request carries the provider's valid signature of this address."""
    try:
        settings = provider_settings(current_app.config)
    except ChannelError as exc:  # a wrong setting: nothing can be checked, nothing is kept
        log.error("provider callback refused: the provider settings are wrong (%s)", exc)
        return False
    if settings is None:
        return False
    base = public_address(request.endpoint)
    url = base + (f"?{request.query_string.decode()}" if request.query_string else "") \
        if base else request.url
    params = {key: request.form.get(key, "") for key in request.form}
    return callback_signature_valid(settings.token, url, params,
                                    request.headers.get("X-Twilio-Signature", ""))


@bp.post("/status")
@csrf.exempt  # the provider's signature authenticates this endpoint, not a cookie
def status():
    """A delivery status for a message or a call we sent."""
    if not _signed():
        log.warning("a status callback without a valid signature was refused")
        return json_error(403, "forbidden", ERR_SIGNATURE)
    sid = request.form.get("MessageSid") or request.form.get("CallSid") or ""
    word = (request.form.get("MessageStatus") or request.form.get("CallStatus") or "").lower()
    message = db.session.scalar(select(ClientMessage).where(ClientMessage.provider_id == sid))
    ours = STATUS_MAP.get(word)
    if message is None or ours is None:
        return Response(status=204)  # not ours, or nothing new: acknowledged, nothing kept
    if RANK.get(ours, 0) > RANK.get(message.status, 0):
        message.status = ours
        if ours == MESSAGE_DELIVERED:
            message.delivered_at = clock.utcnow()
            message.status_detail = None
        elif ours == MESSAGE_FAILED:
            code = request.form.get("ErrorCode")
            message.status_detail = WHY_UNDELIVERED.format(
                status=word, code=f", code {code[:12]}" if code else "")
        audit_record(action=f"client_message.{ours}", entity="patient",
                     entity_uid=message.patient.uid, user=None, device=None,
                     detail={"message": message.uid, "provider_status": word[:20]})
        event_record(db.session, "client_message.changed", patient=message.patient.uid,
                     message=message.uid)
        db.session.commit()
    return Response(status=204)


@bp.post("/inbound")
@csrf.exempt  # the provider's signature authenticates this endpoint, not a cookie
def inbound():
    """A reply by SMS: STOP (and its synonyms) opts the owner out of every message,
    START opts them back in; any other reply is acknowledged and not kept."""
    if not _signed():
        log.warning("an inbound message without a valid signature was refused")
        return json_error(403, "forbidden", ERR_SIGNATURE)
    word = (request.form.get("Body") or "").strip().lower().rstrip(".!")
    try:
        phone = phone_normalise(request.form.get("From"), country_code=None)
    except Exception:  # noqa: BLE001 - a number we cannot read is nobody we know
        phone = None
    owners = list(db.session.scalars(select(Owner).where(Owner.phone == phone))) if phone else []
    for owner in owners:
        if word in STOP_WORDS:
            owner_opt_out(owner=owner, via="SMS reply STOP")
        elif word in START_WORDS and (owner.opted_out_via or "").startswith("SMS"):
            # START undoes an SMS STOP only: an opt-out staff recorded stays.
            owner_opt_in(owner=owner, via="SMS reply START")
    db.session.commit()
    return Response("<Response/>", mimetype="text/xml")
