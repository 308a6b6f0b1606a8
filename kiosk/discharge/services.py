"""The checks a discharge runs first, a manager's override, and the summary it archives."""

from flask import render_template

from ..clinic.selectors import settings_get
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.validate import text_optional
from ..documents.selectors import documents_of
from ..documents.services import document_queue
from ..documents.worker import documents_render_now
from .selectors import Blocker, discharge_blockers

ERR_BLOCKED = "{name} cannot be discharged yet: {reasons}"
ERR_OVERRIDE_LEVEL = "override a blocked discharge"


def discharge_check(*, patient, user, device=None, override_reason=None) -> list[Blocker]:
    """DomainError `discharge_blocked` naming every blocker, unless there are none or a
    manager overrides them with a reason; the blockers overridden are returned."""
    reason = text_optional(override_reason, "override_reason", "Reason", 500)
    blockers = discharge_blockers(patient, device=device)
    if blockers and all(b.code == "document_unready" for b in blockers):
        # Only PDFs still queued stand in the way: make them now rather than wait.
        problems = documents_render_now(patient)
        blockers = discharge_blockers(patient, device=device)
        if blockers and problems:
            blockers.append(Blocker("pdf_not_made", " ".join(sorted(set(problems)))))
    if not blockers:
        return []
    if not reason:
        raise DomainError("discharge_blocked", ERR_BLOCKED.format(
            name=patient.name, reasons=" ".join(b.message for b in blockers)))
    permission_check(user, LEVEL_MANAGER, ERR_OVERRIDE_LEVEL)
    return blockers


def discharge_archive(*, patient, user, device=None, overridden=()) -> None:
    """Queue the discharge summary PDF, then (if the clinic asks) one PDF of everything."""
    html = render_template("discharge/summary.html", patient=patient, clinic=settings_get(),
                           user=user, device=device, overridden=list(overridden),
                           documents=[d for d in documents_of(patient) if d.kind != "merged"])
    document_queue(patient=patient, kind="discharge", source_uid=patient.uid,
                   title="Discharge summary", html=html, user=user, device=device)
    if settings_get().documents_merge_at_discharge:
        document_queue(patient=patient, kind="merged", source_uid=patient.uid,
                       title="All documents (merged at discharge)", html=None, user=user,
                       device=device)
