"""Reads of documents: a patient's list, one document, and what still waits for a PDF."""

from sqlalchemy import select
from sqlalchemy.orm import undefer

from ..core.models import row_by_uid
from ..extensions import db
from .models import Document, DocumentDelivery


def document_by_uid(uid: str, *, with_pdf: bool = False) -> Document:
    """The document with this uid, or NotFound."""
    return row_by_uid(Document, uid, what="document", field="document",
                      options=(undefer(Document.pdf),) if with_pdf else ())


def documents_of(patient) -> list[Document]:
    """The patient's documents, newest first, each with its deliveries (`.deliveries`)."""
    documents = list(db.session.scalars(select(Document).where(
        Document.patient_id == patient.id).order_by(Document.created_at.desc(),
                                                    Document.id.desc())))
    by_doc: dict[int, list] = {d.id: [] for d in documents}
    if documents:
        for delivery in db.session.scalars(select(DocumentDelivery).where(
                DocumentDelivery.document_id.in_(by_doc)).order_by(DocumentDelivery.id)):
            by_doc[delivery.document_id].append(delivery)
    for document in documents:
        document.deliveries = by_doc[document.id]
    return documents


def documents_for_source(source_uid: str) -> list[Document]:
    """The documents made from one sheet or form (normally one), oldest first."""
    return list(db.session.scalars(select(Document).where(
        Document.source_uid == source_uid).order_by(Document.id)))

