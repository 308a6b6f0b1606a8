"""The after-outage report's reads: what to check once the server is back, built in one
go for the page, its live refresh and its printout.

Each section reuses the reads of the feature that owns it: the sync dashboard's rule of
"synced" (devices.selectors.dashboard_rows, asked since the outage's end), the conflict
review's cards in words, the documents' states, the billing report's totals.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..anaesthesia.models import SHEET_FINALISED, AnaesthesiaSheet
from ..billing.selectors import Period, Report, report_build
from ..core import clock
from ..core.clock import format_iso_z
from ..core.models import row_by_uid
from ..devices.models import Device
from ..devices.selectors import (
    DashboardRow,
    DashboardSummary,
    ProblemCard,
    dashboard_rows,
    dashboard_summary,
    problem_cards_between,
)
from ..documents.models import DOC_FAILED, DOC_READY, Document
from ..extensions import db
from ..forms.models import FORM_FINALISED, PatientForm
from ..patients.models import Patient
from ..staff.models import User
from .models import Outage

# What the report says of a document's PDF, by the document's status.
PDF_STATES = {DOC_READY: "archived", DOC_FAILED: "failed"}


@dataclass
class Paper:
    """A sheet, form or discharge finalised in the outage, with its archived document."""

    what: str
    patient: Patient
    at: datetime
    person: str
    device: Device | None
    document: Document | None

    @property
    def state(self) -> str:
        """'archived' (its PDF is kept), 'waiting' (queued), 'failed', or 'missing'."""
        if self.document is None:
            return "missing"
        return PDF_STATES.get(self.document.status, "waiting")


@dataclass
class OutageReport:
    """Everything the report shows of one outage; `end` is now while it is under way."""

    outage: Outage
    start: datetime
    end: datetime
    built_at: datetime
    devices: list[DashboardRow]
    summary: DashboardSummary
    conflicts: list[ProblemCard]
    papers: list[Paper]
    discharges: list[Paper]
    unlinked: list[Patient]
    billing: Report | None = None
    billing_args: dict = field(default_factory=dict)

    @property
    def over(self) -> bool:
        """Whether the server is back (the outage has an end)."""
        return self.outage.ended_at is not None

    @property
    def all_synced(self) -> bool:
        """True only when the outage is over and every tablet in use confirmed, after its
        end, that it holds nothing unsent (the sync dashboard's rule)."""
        return self.over and self.summary.all_synced


def outage_by_uid(uid: str) -> Outage:
    """The outage with this uid, or NotFound."""
    return row_by_uid(Outage, uid, what="outage", field="outage")


def outages_list(*, limit: int = 100) -> list[Outage]:
    """Outages, newest first, each with its window."""
    return list(db.session.scalars(select(Outage).options(joinedload(Outage.window),
                                                          joinedload(Outage.reviewed_by))
                                   .order_by(Outage.started_at.desc(), Outage.id.desc())
                                   .limit(limit)))


def outage_to_review() -> Outage | None:
    """The latest outage that has ended and that no manager has marked reviewed (the staff
    pages' banner), or None. One query."""
    return db.session.scalar(select(Outage).where(
        Outage.ended_at.is_not(None), Outage.reviewed_at.is_(None))
        .order_by(Outage.ended_at.desc(), Outage.id.desc()).limit(1))


def outage_report(outage: Outage, *, billing: bool = True,
                  now: datetime | None = None) -> OutageReport:
    """The whole report of `outage` (about twenty queries, whatever the number of tablets,
    patients or charges): `billing` False leaves the billing section out (a person below
    the billing report's level)."""
    now = now or clock.utcnow()
    start = clock.as_utc(outage.started_at)
    end = clock.as_utc(outage.ended_at) if outage.ended_at else now
    rows = dashboard_rows(now=now, since=end if outage.ended_at else now)
    tablets = [r for r in rows if r.counts]
    devices = {r.device.id: r.device for r in rows}
    papers = _papers(start, end, devices)
    report = OutageReport(
        outage=outage, start=start, end=end, built_at=now, devices=tablets,
        summary=dashboard_summary(tablets), conflicts=problem_cards_between(start, end),
        papers=[p for p in papers if p.what != DISCHARGE],
        discharges=[p for p in papers if p.what == DISCHARGE],
        unlinked=_unlinked(start, end))
    if billing:
        # The billing report's period is [start, end): the outage's last second included.
        period = Period(start, end + timedelta(seconds=1))
        report.billing = report_build(period)
        report.billing_args = {"from": format_iso_z(period.start), "to": format_iso_z(period.end)}
    return report


DISCHARGE = "Discharge summary"


def _papers(start: datetime, end: datetime, devices: dict[int, Device]) -> list[Paper]:
    """Anaesthesia sheets and forms finalised, and patients discharged, within the span
    (when they were performed, however late they arrived), each with its document, in time
    order (five queries)."""
    sheets = list(db.session.scalars(select(AnaesthesiaSheet).options(
        joinedload(AnaesthesiaSheet.patient)).where(
        AnaesthesiaSheet.status == SHEET_FINALISED, AnaesthesiaSheet.finalised_at >= start,
        AnaesthesiaSheet.finalised_at <= end)))
    forms = list(db.session.scalars(select(PatientForm).options(
        joinedload(PatientForm.patient), joinedload(PatientForm.template)).where(
        PatientForm.status == FORM_FINALISED, PatientForm.finalised_at >= start,
        PatientForm.finalised_at <= end)))
    discharged = list(db.session.scalars(select(Patient).where(
        Patient.status == "discharged", Patient.discharged_at >= start,
        Patient.discharged_at <= end)))
    wanted = {("anaesthesia", s.uid) for s in sheets} | {("form", f.uid) for f in forms} | \
        {("discharge", p.uid) for p in discharged}
    documents = _documents({uid for _, uid in wanted})
    people = {u.id: u.name for u in db.session.scalars(select(User).where(User.id.in_(
        {s.finalised_by_id for s in sheets} | {f.finalised_by_id for f in forms}
        | {p.discharged_by_id for p in discharged})))}

    def paper(what, patient, at, person_id, kind, uid) -> Paper:
        document = documents.get((kind, uid))
        device = devices.get(document.device_id) if document and document.device_id else None
        return Paper(what, patient, clock.as_utc(at), people.get(person_id, "someone"),
                     device, document)

    out = [paper("Anaesthesia sheet", s.patient, s.finalised_at, s.finalised_by_id,
                 "anaesthesia", s.uid) for s in sheets]
    out += [paper(f"Form: {f.template.name}", f.patient, f.finalised_at, f.finalised_by_id,
                  "form", f.uid) for f in forms]
    out += [paper(DISCHARGE, p, p.discharged_at, p.discharged_by_id, "discharge", p.uid)
            for p in discharged]
    return sorted(out, key=lambda p: (p.at, p.patient.name))


def _documents(sources: set[str]) -> dict[tuple[str, str], Document]:
    """The latest document of each (kind, source uid) among `sources` (one query)."""
    if not sources:
        return {}
    out = {}
    for document in db.session.scalars(select(Document).where(
            Document.source_uid.in_(sources),
            Document.kind.in_(("anaesthesia", "form", "discharge"))).order_by(Document.id)):
        out[(document.kind, document.source_uid)] = document
    return out


def _unlinked(start: datetime, end: datetime) -> list[Patient]:
    """Patients admitted within the span (a tablet's patient.create is admitted when it was
    performed) and still not linked to the practice system, by name."""
    return list(db.session.scalars(select(Patient).where(
        Patient.unallocated.is_(True), Patient.admitted_at >= start, Patient.admitted_at <= end)
        .order_by(Patient.name, Patient.id)))
