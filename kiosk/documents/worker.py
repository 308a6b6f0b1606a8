"""The documents worker: renders queued PDFs and sends ready ones on, retrying failures.

The document rows are the queue (models.py); the job queue's "documents.work" job and its
periodic sweep run the passes (hooks.py). A pass claims one row by moving its next try
past a lease, in a statement that only succeeds if nobody else moved it first, so several
worker threads or processes (gunicorn, `kiosk worker`, `kiosk documents work`) never
render the same document twice at once, and one that dies mid-render leaves it to the next.
"""

import hashlib
import io
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from ..core import clock
from ..core.errors import DomainError
from ..core.events import event_record
from ..extensions import db
from .delivery import DeliveryError, deliver_connector, deliver_email, deliver_folder
from .models import (
    DELIVERY_FAILED,
    DELIVERY_QUEUED,
    DELIVERY_SENT,
    DOC_FAILED,
    DOC_QUEUED,
    DOC_READY,
    MAX_ATTEMPTS,
    Document,
    DocumentDelivery,
)
from .services import deliveries_plan

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
BACKOFF = (timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=2),
           timedelta(minutes=10), timedelta(minutes=30))
WAIT_FOR_SOURCES = timedelta(seconds=5)


class NotYet(Exception):  # noqa: N818
    """A merged PDF whose parts are not all archived yet: try again soon, no attempt spent."""


def _claim(model, row_id: int, seen: datetime, now: datetime) -> bool:
    """Take the row for one lease if nobody took it since we looked (commits)."""
    done = db.session.execute(update(model).where(
        model.id == row_id, model.next_try_at == seen).values(
        next_try_at=now + LEASE, attempts=model.attempts + 1))
    db.session.commit()
    return done.rowcount == 1


def pdf_render(document: Document) -> tuple[bytes, int]:
    """The PDF of a document and its page count (merged: its parts, in order)."""
    if document.kind == "merged":
        return _merge(document)
    from ..core.pdf import pdf_document

    laid_out = pdf_document(document.html or "")
    return laid_out.write_pdf(), len(laid_out.pages)


def _merge(document: Document) -> tuple[bytes, int]:
    from pypdf import PdfReader, PdfWriter

    parts = list(db.session.scalars(select(Document).where(
        Document.patient_id == document.patient_id, Document.kind != "merged",
        Document.created_at <= document.created_at).order_by(Document.created_at, Document.id)))
    missing = [p for p in parts if p.status != DOC_READY]
    if any(p.status == DOC_FAILED for p in missing):
        # Spends an attempt: after the last one the merge is failed, and a manager's retry
        # (once the part is made) starts it again. It never waits for ever.
        raise DomainError("part_failed", "a document to merge has no PDF (it failed): "
                          "retry it first")
    if missing:
        raise NotYet()
    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(io.BytesIO(part.pdf)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), len(writer.pages)


def _render_one(document: Document, now: datetime) -> str:
    _ = document.html  # loaded here: a database error is not a PDF failure
    try:
        pdf, pages = pdf_render(document)
    except NotYet:
        db.session.rollback()
        db.session.execute(update(Document).where(Document.id == document.id).values(
            next_try_at=now + WAIT_FOR_SOURCES, attempts=Document.attempts - 1))
        db.session.commit()
        return "waiting"
    except Exception as exc:  # noqa: BLE001 - any failure is retried, then reported
        db.session.rollback()
        return _render_failed(document.id, exc, now)
    if not _mark_ready(document, pdf, pages):
        db.session.rollback()  # archived meanwhile by another worker: that PDF stands
        return "waiting"
    db.session.commit()
    return "rendered"


def _mark_ready(document: Document, pdf: bytes, pages: int) -> bool:
    """Archive the PDF unless someone archived this document first (then False)."""
    done = db.session.execute(update(Document).where(
        Document.id == document.id, Document.status == DOC_QUEUED).values(
        status=DOC_READY, pdf=pdf, pages=pages, size=len(pdf), last_error=None,
        sha256=hashlib.sha256(pdf).hexdigest(), ready_at=clock.utcnow()))
    if done.rowcount != 1:
        return False
    db.session.refresh(document)
    deliveries_plan(document)
    event_record(db.session, "document.ready", patient=document.patient.uid,
                 document=document.uid)
    return True


def _render_failed(document_id: int, exc: Exception, now: datetime) -> str:
    document = db.session.get(Document, document_id)
    reason = getattr(exc, "message", None) or type(exc).__name__
    document.last_error = f"PDF failed (try {document.attempts}): {reason}"[:500]
    if document.attempts >= MAX_ATTEMPTS:
        document.status = DOC_FAILED
        log.error("document %s: PDF failed %d times, given up (%s)", document.uid,
                  document.attempts, type(exc).__name__)
        event_record(db.session, "document.failed", patient=document.patient.uid,
                     document=document.uid)
    else:
        document.next_try_at = now + BACKOFF[min(document.attempts, len(BACKOFF)) - 1]
        log.warning("document %s: PDF failed (try %d), retrying (%s)", document.uid,
                    document.attempts, type(exc).__name__)
    db.session.commit()
    return "failed"


def _deliver_one(delivery: DocumentDelivery, now: datetime) -> str:
    document = delivery.document
    try:
        if delivery.channel == "folder":
            deliver_folder(document, document.pdf, delivery.target)
        elif delivery.channel == "email":
            deliver_email(document, document.pdf, delivery.target)
        else:
            deliver_connector(document, document.pdf)
    except Exception as exc:  # noqa: BLE001 - every failure is retried, then reported
        if not isinstance(exc, DeliveryError):
            exc = DeliveryError(f"The {delivery.channel} delivery failed: "
                                f"{type(exc).__name__}.")
        delivery.last_error = f"{exc} (try {delivery.attempts})"[:500]
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = DELIVERY_FAILED
            log.error("document %s: %s delivery given up after %d tries", document.uid,
                      delivery.channel, delivery.attempts)
        else:
            delivery.next_try_at = now + BACKOFF[min(delivery.attempts, len(BACKOFF)) - 1]
        db.session.commit()
        return "failed"
    delivery.status, delivery.sent_at, delivery.last_error = DELIVERY_SENT, clock.utcnow(), None
    db.session.commit()
    return "delivered"


def documents_work(*, now: datetime | None = None, limit: int = 50) -> dict:
    """Render every due document and send every due delivery once; say what happened."""
    counts = {"rendered": 0, "failed": 0, "waiting": 0, "delivered": 0}
    now = now or clock.utcnow()
    due = db.session.execute(select(Document.id, Document.next_try_at).where(
        Document.status == DOC_QUEUED, Document.next_try_at <= now)
        .order_by(Document.next_try_at, Document.id).limit(limit)).all()
    for row_id, seen in due:
        if _claim(Document, row_id, seen, now):
            counts[_render_one(db.session.get(Document, row_id), now)] += 1
    now = max(now, clock.utcnow())  # documents just made ready have their deliveries due now
    due = db.session.execute(select(DocumentDelivery.id, DocumentDelivery.next_try_at).where(
        DocumentDelivery.status == DELIVERY_QUEUED, DocumentDelivery.next_try_at <= now)
        .order_by(DocumentDelivery.next_try_at, DocumentDelivery.id).limit(limit)).all()
    for row_id, seen in due:
        if _claim(DocumentDelivery, row_id, seen, now):
            result = _deliver_one(db.session.get(DocumentDelivery, row_id), now)
            counts["delivered" if result == "delivered" else "failed"] += 1
    return counts


def documents_next_try() -> datetime | None:
    """When the next queued document or delivery falls due (None: nothing is queued)."""
    tries = [db.session.scalar(select(func.min(model.next_try_at)).where(
        model.status == status)) for model, status in
        ((Document, DOC_QUEUED), (DocumentDelivery, DELIVERY_QUEUED))]
    tries = [clock.as_utc(t) for t in tries if t is not None]
    return min(tries) if tries else None
