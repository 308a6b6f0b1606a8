"""Reading charges: the period a report covers, the charges in it, what is not yet sent."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..core.errors import DomainError
from ..core.models import row_by_uid
from ..extensions import db
from ..patients.models import Patient
from .models import BillingConnector, BillingItem, Charge, ShiftMark

ERR_PERIOD_ORDER = "The period's end must be after its start."


@dataclass(frozen=True)
class Period:
    """What a report covers: [start, end) by when each charge was performed. `mark` is the
    end-of-shift mark that closes it (None for a period chosen by dates)."""

    start: datetime | None
    end: datetime | None
    mark: ShiftMark | None = None
    previous: ShiftMark | None = None


def shift_marks(limit: int = 50) -> list[ShiftMark]:
    """The latest end-of-shift marks, newest first."""
    return list(db.session.scalars(select(ShiftMark).options(joinedload(ShiftMark.user))
                                   .order_by(ShiftMark.at.desc(), ShiftMark.id.desc())
                                   .limit(limit)))


def shift_period(mark: ShiftMark) -> Period:
    """The shift that `mark` ends: from the mark before it (or the beginning) to it."""
    previous = db.session.scalar(select(ShiftMark).where(ShiftMark.at < mark.at)
                                 .order_by(ShiftMark.at.desc(), ShiftMark.id.desc()).limit(1))
    return Period(previous.at if previous else None, mark.at, mark, previous)


def current_shift_period() -> Period:
    """The shift under way: since the latest mark, open-ended."""
    latest = db.session.scalar(select(ShiftMark).order_by(ShiftMark.at.desc(),
                                                          ShiftMark.id.desc()).limit(1))
    return Period(latest.at if latest else None, None, None, latest)


def period_default() -> Period:
    """The last shift closed by a mark, or the shift under way when there is none yet."""
    latest = db.session.scalar(select(ShiftMark).order_by(ShiftMark.at.desc(),
                                                          ShiftMark.id.desc()).limit(1))
    return shift_period(latest) if latest is not None else current_shift_period()


def period_resolve(*, shift: str | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> Period:
    """The period a request names: a shift (its closing mark's uid, or "current"), or
    dates (either may be open). A shift and dates together: the shift wins."""
    if shift == "current":
        return current_shift_period()
    if shift:
        return shift_period(row_by_uid(ShiftMark, shift, what="end-of-shift mark",
                                       field="shift"))
    if start is not None and end is not None and end <= start:
        raise DomainError("bad_period", ERR_PERIOD_ORDER, field="end")
    return Period(start, end)


def charges_in_period(period: Period, *, patient: Patient | None = None) -> list[Charge]:
    """Every charge performed in the period (a late one from an offline tablet counts in
    the shift it was performed in), with its patient, person and device, in time order."""
    query = select(Charge).options(joinedload(Charge.patient), joinedload(Charge.user),
                                   joinedload(Charge.device))
    if period.start is not None:
        query = query.where(Charge.performed_at >= period.start)
    if period.end is not None:
        query = query.where(Charge.performed_at < period.end)
    if patient is not None:
        query = query.where(Charge.patient_id == patient.id)
    return list(db.session.scalars(query.order_by(Charge.performed_at, Charge.id)))


def connector_settings() -> BillingConnector | None:
    """The clinic's connector row, if one was ever configured (reads never create it)."""
    return db.session.scalar(select(BillingConnector).order_by(BillingConnector.id).limit(1))


def sending_configured() -> bool:
    """Whether charges go to the practice system by themselves (a webhook is set)."""
    row = connector_settings()
    return row is not None and row.kind == "webhook"


def unsent_by_patient(patient_ids: list[int]) -> dict[int, dict[str, int]]:
    """For each of these patients, how many charges are not yet sent, and how many of
    those are held (the patient is not linked to the practice system)."""
    if not patient_ids:
        return {}
    rows = db.session.execute(
        select(Charge.patient_id, Patient.unallocated, func.count())
        .join(Patient, Patient.id == Charge.patient_id)
        .where(Charge.patient_id.in_(patient_ids), Charge.sent_at.is_(None))
        .group_by(Charge.patient_id, Patient.unallocated)).all()
    out: dict[int, dict[str, int]] = {}
    for patient_id, unallocated, count in rows:
        entry = out.setdefault(patient_id, {"unsent": 0, "held": 0})
        entry["unsent"] += count
        if unallocated:
            entry["held"] += count
    return out


def arrived_late(period: Period, charge: Charge) -> bool:
    """Whether a charge of the period reached the server after the period had ended."""
    return period.end is not None and charge.recorded_at > period.end


@dataclass
class PatientCharges:
    """One patient's lines in a report, with their total (Decimal)."""

    patient: Patient
    charges: list[Charge] = field(default_factory=list)
    total: Decimal = Decimal("0.00")
    unsent: int = 0


@dataclass
class Report:
    """A billing report: the charges performed in a period, grouped per patient (by name),
    each group's total and the clinic's, and what is not yet sent to the practice system
    (held: the patient is unallocated, so the connector keeps them back)."""

    period: Period
    patients: list[PatientCharges]
    total: Decimal
    count: int
    unsent: int
    unsent_total: Decimal
    held: int
    held_total: Decimal
    offline: int
    late: int

    def arrived_late(self, charge: Charge) -> bool:
        """Whether the charge reached the server after the period's end (performed in it)."""
        return arrived_late(self.period, charge)


def report_build(period: Period, *, patient: Patient | None = None) -> Report:
    """The report of a period (one query for the charges, whatever their number)."""
    groups: dict[int, PatientCharges] = {}
    total = unsent_total = held_total = Decimal("0.00")
    unsent = held = offline = late = 0
    charges = charges_in_period(period, patient=patient)
    for charge in charges:
        group = groups.get(charge.patient_id)
        if group is None:
            group = groups[charge.patient_id] = PatientCharges(charge.patient)
        group.charges.append(charge)
        group.total += charge.total
        total += charge.total
        offline += charge.offline
        late += arrived_late(period, charge)
        if charge.sent_at is None:
            group.unsent += 1
            unsent += 1
            unsent_total += charge.total
            if charge.patient.unallocated:
                held += 1
                held_total += charge.total
    ordered = sorted(groups.values(), key=lambda g: (g.patient.name.lower(), g.patient.id))
    return Report(period, ordered, total, len(charges), unsent, unsent_total, held,
                  held_total, offline, late)


def charges_of_patient(patient: Patient) -> tuple[list[Charge], set[int]]:
    """Every charge of a patient (all time, in time order) and the ids of those that a
    reversal already undid: two queries."""
    charges = list(db.session.scalars(
        select(Charge).options(joinedload(Charge.user), joinedload(Charge.device))
        .where(Charge.patient_id == patient.id).order_by(Charge.performed_at, Charge.id)))
    reversed_ids = {c.reverses_id for c in charges if c.reverses_id is not None}
    return charges, reversed_ids


def charge_by_uid(uid: str) -> Charge:
    """The charge with this uid, or NotFound naming `charge`."""
    return row_by_uid(Charge, uid, what="charge", field="charge",
                      options=(joinedload(Charge.patient),))


def items_active() -> list[BillingItem]:
    """The catalogue items a person may charge by hand, by code."""
    return list(db.session.scalars(select(BillingItem).where(BillingItem.active.is_(True))
                                   .order_by(BillingItem.code)))
