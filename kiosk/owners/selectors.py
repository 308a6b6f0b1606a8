"""Reads of owners: one by uid, one with their patients, and the staff's search."""

import re

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from ..core.models import row_by_uid
from ..extensions import db
from .models import Owner

SEARCH_LIMIT = 50
SEARCH_MIN_DIGITS = 4  # fewer digits match half the phone book


def owner_by_uid(uid: str) -> Owner:
    """The owner with this uid, or NotFound."""
    return row_by_uid(Owner, uid, what="owner", field="owner")


def owner_with_patients(uid: str) -> Owner:
    """The owner with this uid and their patients (by name), loaded together; or NotFound."""
    return row_by_uid(Owner, uid, what="owner", field="owner",
                      options=(selectinload(Owner.patients),))


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching it anywhere, its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def owners_search(query: str | None, *, limit: int = SEARCH_LIMIT) -> list[Owner]:
    """Owners whose name or e-mail address holds `query` (any case), or whose phone holds
    its digits (at least four, typed with or without spaces or a leading 0); by name.
    An empty query finds nobody."""
    text = " ".join((query or "").split())[:120]
    if not text:
        return []
    pattern = _like(text.lower())
    matches = [func.lower(Owner.name).like(pattern, escape="\\"),
               func.lower(Owner.email).like(pattern, escape="\\")]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= SEARCH_MIN_DIGITS and not re.search(r"[^\d\s.\-+()/]", text):
        # A national number typed as dialled (07700 …) is stored after its country code.
        matches.append(Owner.phone.like(_like(digits.lstrip("0") or digits), escape="\\"))
    return list(db.session.scalars(
        select(Owner).where(or_(*matches)).order_by(Owner.name, Owner.id).limit(limit)))
