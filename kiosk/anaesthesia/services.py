"""Starting, recording on and finalising anaesthesia sheets (level 3 and up)."""

from datetime import datetime

from sqlalchemy import select

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_ANAESTHESIA, permission_check
from ..core.clock import as_utc
from ..core.errors import DomainError
from ..core.events import event_record, fact_record
from ..core.models import new_uid, uid_check_free
from ..extensions import db
from .entries import entry_clean, entry_rules
from .models import SHEET_FINALISED, SHEET_OPEN, AnaesthesiaEntry, AnaesthesiaSheet
from .selectors import sheet_header, sheet_view

ERR_NOT_ADMITTED = "{name} is not admitted: an anaesthesia sheet needs an admitted patient."
ERR_FINALISED = "This sheet was finalised already (by {who}); record changes as addenda."
ERR_FINALISE_NEEDS = "Enter {label} before finalising."
# What a sheet needs before it is finalised, in the order they are asked for.
FINALISE_NEEDS = {"procedure": "the procedure", "asa": "the ASA status"}


def rules_for_pages() -> dict:
    """Everything a tablet checks before it queues an anaesthesia op, as plain JSON: the
    entries' ranges and words, and what finalising needs (the server's rules, not a copy)."""
    rules = entry_rules()
    rules["messages"] = rules["messages"] | {"finalise_needs": ERR_FINALISE_NEEDS}
    rules["finalise_needs"] = list(FINALISE_NEEDS.items())  # pairs: JSON keeps their order
    return rules


def anaesthesia_start(*, patient, user, uid: str | None = None, device=None,
                      at: datetime | None = None, header: dict | None = None
                      ) -> AnaesthesiaSheet:
    """Start the patient's anaesthesia sheet; the sheet that holds its entries is returned.

    A patient has one open sheet at a time. A sheet started while another was open (two
    tablets that each started one offline) is kept, joined to that one: entries sent to
    either land on it, merged by time (as addenda if it was finalised meanwhile). Nothing
    is ever deleted.
    """
    permission_check(user, LEVEL_ANAESTHESIA, "record anaesthesia")
    if not patient.admitted_when(as_utc(at) if at else None):
        raise DomainError("not_admitted", ERR_NOT_ADMITTED.format(name=patient.name))
    if uid is not None:
        uid_check_free(AnaesthesiaSheet, uid, field="sheet", what="sheet")
    at = as_utc(at) if at else clock.utcnow()
    clean_header = entry_clean("header", header)[0] if header else None
    open_sheet = _sheet_open_at(patient, at)
    sheet = AnaesthesiaSheet(uid=uid or new_uid(), patient=patient, status=SHEET_OPEN,
                             started_at=at, started_by_id=user.id,
                             device_id=device.id if device else None, merged_into=open_sheet)
    db.session.add(sheet)
    target = open_sheet or sheet
    if clean_header:
        db.session.add(AnaesthesiaEntry(uid=new_uid(), sheet=target, kind="header", at=at,
                                        data=clean_header, user_id=user.id,
                                        device_id=device.id if device else None))
    audit_record(action="anaesthesia.start", entity="anaesthesia", entity_uid=sheet.uid,
                 user=user, device=device,
                 detail={"patient": patient.uid, "joined": open_sheet.uid if open_sheet
                         else None})
    event_record(db.session, "anaesthesia.changed", patient=patient.uid, sheet=target.uid)
    return target


def anaesthesia_record(*, sheet: AnaesthesiaSheet, user, kind: str, data, uid: str | None = None,
                       at: datetime | None = None, device=None, confirmed=(),
                       now: datetime | None = None) -> AnaesthesiaEntry:
    """Append an entry. On a finalised sheet it is an addendum, never an edit."""
    permission_check(user, LEVEL_ANAESTHESIA, "record anaesthesia")
    sheet = sheet_target(sheet)
    clean, sure = entry_clean(kind, data, confirmed=confirmed)
    if uid is not None:
        uid_check_free(AnaesthesiaEntry, uid, field="entry", what="entry")
    now = now or clock.utcnow()
    entry = AnaesthesiaEntry(uid=uid or new_uid(), sheet=sheet, kind=kind,
                             at=as_utc(at) if at else now, data=clean, user=user,
                             device_id=device.id if device else None, recorded_at=now,
                             addendum=sheet.is_finalised, confirmed=sure)
    db.session.add(entry)
    if entry.addendum:
        _archive_addendum(sheet, entry, user=user, device=device)
    if kind == "drug":
        fact_record("anaesthesia.drug_given", entry=entry, patient=sheet.patient, user=user,
                    device=device, now=now)
    audit_record(action="anaesthesia.record", entity="anaesthesia", entity_uid=sheet.uid,
                 user=user, device=device,
                 detail={"entry": entry.uid, "kind": kind, "confirmed": sure,
                         "addendum": entry.addendum})
    event_record(db.session, "anaesthesia.changed", patient=sheet.patient.uid, sheet=sheet.uid)
    return entry


def anaesthesia_finalise(*, sheet: AnaesthesiaSheet, user, device=None,
                         at: datetime | None = None) -> AnaesthesiaSheet:
    """Lock the sheet (its PDF is rendered from it); it needs a procedure and ASA status."""
    permission_check(user, LEVEL_ANAESTHESIA, "finalise anaesthesia sheets")
    sheet = sheet_target(sheet)
    if sheet.is_finalised:
        who = sheet.finalised_by.name if sheet.finalised_by else "someone"
        raise DomainError("already_finalised", ERR_FINALISED.format(who=who))
    header = sheet_header(sheet)
    for key, label in FINALISE_NEEDS.items():
        if not header.get(key):
            raise DomainError("required", ERR_FINALISE_NEEDS.format(label=label), field=key)
    sheet.status = SHEET_FINALISED
    sheet.finalised_at = as_utc(at) if at else clock.utcnow()
    sheet.finalised_by = user
    _archive(sheet, header, user=user, device=device)
    audit_record(action="anaesthesia.finalise", entity="anaesthesia", entity_uid=sheet.uid,
                 user=user, device=device, detail={"patient": sheet.patient.uid})
    event_record(db.session, "anaesthesia.finalised", patient=sheet.patient.uid,
                 sheet=sheet.uid, at=sheet.finalised_at)
    return sheet


def _archive(sheet: AnaesthesiaSheet, header: dict, *, user, device) -> None:
    """Queue the sheet's PDF from what it holds now: the archived record never changes."""
    from ..documents.services import document_queue
    from .printing import anaesthesia_html

    document_queue(patient=sheet.patient, kind="anaesthesia", source_uid=sheet.uid,
                   title=f"Anaesthesia record — {header.get('procedure')}",
                   html=anaesthesia_html(sheet_view(sheet)), user=user, device=device)


ADDENDA_HELD = "kiosk.addenda_documents"


def _archive_addendum(sheet: AnaesthesiaSheet, entry: AnaesthesiaEntry, *, user,
                      device) -> None:
    """Archive an addendum: the finalised sheet's document never changes, so what is added
    after it goes into a document of its own, delivered like the sheet's.

    The addenda one unit of work adds to a sheet (a tablet's sync batch, a form on the
    page) share one document, so a tablet back from theatre sends one, not one per row
    of vitals. It is committed with them; once committed it never changes either.
    """
    from ..documents.models import DOC_QUEUED
    from ..documents.services import document_queue
    from .printing import addenda_html

    held = db.session.info.setdefault(ADDENDA_HELD, {})
    transaction = db.session().get_transaction()
    kept = held.get(sheet.id)
    discharged_at = sheet.patient.discharged_at
    # Still this unit of work's, not undone with a savepoint (an op that failed), its PDF
    # not made yet, and no discharge since (a discharge in the same batch archives what
    # came before it, as it stood): else a new document.
    if kept is not None and kept[0] is transaction and kept[1] in db.session \
            and kept[1].status == DOC_QUEUED and kept[4] == discharged_at:
        _transaction, document, entries, view, _discharged_at = kept
        entries = [e for e in entries if e in db.session]
    else:
        view = sheet_view(sheet)
        document = document_queue(
            patient=sheet.patient, kind="addendum", source_uid=sheet.uid,
            title=f"Anaesthesia addenda — {view.header.get('procedure') or 'record'}",
            html=None, user=user, device=device)
        entries = []
    entries.append(entry)
    entry.document = document
    document.html = addenda_html(view, entries)
    held[sheet.id] = (transaction, document, entries, view, discharged_at)


def _sheet_open_at(patient, at: datetime) -> AnaesthesiaSheet | None:
    """The patient's sheet that is open, or else the last one still open at `at` (another
    tablet finalised it after this one started its own, offline)."""
    roots = select(AnaesthesiaSheet).where(AnaesthesiaSheet.patient == patient,
                                           AnaesthesiaSheet.merged_into_id.is_(None))
    open_now = db.session.scalar(roots.where(AnaesthesiaSheet.status == SHEET_OPEN)
                                 .order_by(AnaesthesiaSheet.id).limit(1))
    if open_now is not None:
        return open_now
    return db.session.scalar(roots.where(AnaesthesiaSheet.finalised_at >= at).order_by(
        AnaesthesiaSheet.started_at.desc(), AnaesthesiaSheet.id.desc()).limit(1))


def sheet_target(sheet: AnaesthesiaSheet) -> AnaesthesiaSheet:
    """The sheet that holds this one's entries (itself, or the open sheet it joined; that
    one never joins another)."""
    return sheet.merged_into or sheet
