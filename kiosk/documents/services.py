"""Writes for documents: archive a finalised sheet or form, retry a failed PDF, plan where
a ready document goes. Nothing here renders or sends: the worker does (worker.py)."""

from sqlalchemy import select

from ..clinic.selectors import settings_get
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.models import new_uid
from ..extensions import db
from .models import (
    DELIVERY_FAILED,
    DELIVERY_QUEUED,
    DOC_FAILED,
    DOC_KINDS,
    DOC_QUEUED,
    Document,
    DocumentDelivery,
)

ERR_NOT_FAILED = "This document has not failed: there is nothing to retry."
ERR_KIND = "Unknown document kind."


def document_queue(*, patient, kind: str, source_uid: str | None, title: str,
                   html: str | None, user=None, device=None) -> Document:
    """Archive a finalised sheet or form: keep its HTML as it is now and queue its PDF.

    The document is queued in the caller's unit of work: committed with the finalising
    itself, or not at all, so a finalised sheet can never be left without its document.
    """
    if kind not in DOC_KINDS:
        raise DomainError("bad_kind", ERR_KIND, field="kind")
    document = Document(uid=new_uid(), patient=patient, kind=kind, source_uid=source_uid,
                        title=title[:200], html=html, status=DOC_QUEUED, attempts=0,
                        next_try_at=clock.utcnow(),
                        finalised_by_id=user.id if user is not None else None,
                        device_id=device.id if device is not None else None)
    db.session.add(document)
    audit_record(action="document.queue", entity="document", entity_uid=document.uid,
                 user=user, device=device,
                 detail={"patient": patient.uid, "kind": kind, "source": source_uid})
    event_record(db.session, "document.queued", patient=patient.uid, document=document.uid)
    return document


def document_retry(*, document: Document, user) -> Document:
    """A manager asks a failed document (or delivery) to be tried again, from the start."""
    permission_check(user, LEVEL_MANAGER, "retry documents")
    failed_deliveries = list(db.session.scalars(select(DocumentDelivery).where(
        DocumentDelivery.document_id == document.id,
        DocumentDelivery.status == DELIVERY_FAILED)))
    if document.status != DOC_FAILED and not failed_deliveries:
        raise DomainError("not_failed", ERR_NOT_FAILED)
    now = clock.utcnow()
    if document.status == DOC_FAILED:
        document.status, document.attempts, document.next_try_at = DOC_QUEUED, 0, now
    for delivery in failed_deliveries:
        delivery.status, delivery.attempts, delivery.next_try_at = DELIVERY_QUEUED, 0, now
    audit_record(action="document.retry", entity="document", entity_uid=document.uid,
                 user=user, detail={"deliveries": [d.channel for d in failed_deliveries]})
    event_record(db.session, "document.queued", patient=document.patient.uid,
                 document=document.uid)
    return document


def deliveries_plan(document: Document) -> list[DocumentDelivery]:
    """The deliveries the clinic's settings ask for, added for a document just made ready."""
    settings = settings_get()
    wanted = []
    if settings.documents_folder:
        wanted.append(("folder", settings.documents_folder))
    if settings.documents_email:
        wanted.append(("email", settings.documents_email))
    if settings.documents_connector:
        wanted.append(("connector", None))
    made = []
    for channel, target in wanted:
        delivery = DocumentDelivery(document=document, channel=channel, target=target,
                                    status=DELIVERY_QUEUED, next_try_at=clock.utcnow())
        db.session.add(delivery)
        made.append(delivery)
    return made
