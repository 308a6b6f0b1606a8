"""A manager marks an outage's report reviewed: the report stays, the staff pages' banner
pointing at it goes."""

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..extensions import db
from .models import Outage

ERR_NOT_OVER = "This outage is not over yet: review it once the server is back."
ERR_ALREADY = "This outage was already marked reviewed; nothing was changed."


def outage_review(*, outage: Outage, user) -> Outage:
    """Mark `outage` reviewed by `user` (a manager). DomainError, nothing changed, when it
    has not ended or was reviewed already."""
    permission_check(user, LEVEL_MANAGER, "mark an outage reviewed")
    if outage.ended_at is None:
        raise DomainError("outage_not_over", ERR_NOT_OVER, status=409)
    if outage.reviewed_at is not None:
        raise DomainError("already_reviewed", ERR_ALREADY, status=409)
    outage.reviewed_at = clock.utcnow()
    outage.reviewed_by_id = user.id
    audit_record(action="outage.review", entity="outage", entity_uid=outage.uid, user=user)
    event_record(db.session, "outage.changed", outage=outage.uid)
    return outage
