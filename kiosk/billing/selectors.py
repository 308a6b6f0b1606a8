"""Reading charges: the period a report covers, the charges in it, what is not yet sent."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..core.clock import as_utc
from ..core.errors import DomainError
from ..core.models import row_by_uid
from ..core.validate import timestamp
from ..devices.models import Device
from ..extensions import db
from ..patients.models import Patient
from ..staff.models import User
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


# The query a billing report is chosen by (page, PDF and CSV export alike).
REPORT_ARGS = ("shift", "from", "to", "patient")


def period_of_query(query: Mapping[str, str], *, tz: tzinfo) -> Period:
    """The period a report's query names: `shift` (a mark's uid or "current"), else `from`
    and `to` on the clinic's wall clock `tz` (a bare `to` date is that whole day), else
    the default (the last shift closed). DomainError naming the bad argument."""
    if query.get("shift"):
        return period_resolve(shift=query["shift"])
    if query.get("from") or query.get("to"):
        start = timestamp(query.get("from"), "from", "From", tz=tz)
        end = timestamp(query.get("to"), "to", "To", tz=tz)
        if end is not None and len(query["to"].strip()) == len("YYYY-MM-DD"):
            # The whole of that day on the clinic's clock: to the next local midnight (23
            # or 25 hours later on the days the clocks change).
            next_day = end.astimezone(tz).date() + timedelta(days=1)
            end = timestamp(next_day.isoformat(), "to", "To", tz=tz)
        try:
            return period_resolve(start=start, end=end)
        except DomainError as exc:
            if exc.field == "end":  # the period's end is this query's `to`
                exc.field = "to"
            raise
    return period_default()


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
                                   joinedload(Charge.device), joinedload(Charge.reverses))
    return list(db.session.scalars(_performed_in(query, period, patient)))


def _performed_in(query, period: Period, patient: Patient | None):
    """`query` narrowed to the charges performed in the period (of one patient), in time
    order: the one rule of which charges a report, its PDF and the CSV export hold."""
    if period.start is not None:
        query = query.where(Charge.performed_at >= period.start)
    if period.end is not None:
        query = query.where(Charge.performed_at < period.end)
    if patient is not None:
        query = query.where(Charge.patient_id == patient.id)
    return query.order_by(Charge.performed_at, Charge.id)


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


def arrived_late(period: Period, charge) -> bool:
    """Whether a charge of the period reached the server after the period had ended."""
    return period.end is not None and charge.recorded_at > period.end


@dataclass(slots=True)
class ReportLine:
    """One charge as a report shows it (read as plain columns: a report may hold thousands,
    and full rows with their relations cost ten times as much to load)."""

    id: int
    uid: str
    patient_id: int
    item_code: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    total: Decimal
    performed_at: datetime
    recorded_at: datetime
    offline: bool
    reverses_id: int | None
    reason: str | None
    sent_at: datetime | None
    user_name: str | None
    device_label: str | None
    held: bool = False
    late: bool = False


@dataclass
class PatientCharges:
    """One patient's lines in a report, with their total (Decimal)."""

    patient: Patient
    charges: list[ReportLine] = field(default_factory=list)
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
    earlier: "EarlierArrivals | None" = None


@dataclass(frozen=True)
class EarlierArrivals:
    """Charges that reached the server during a period but were performed before it (a
    tablet offline across a shift's end): they count in their own, earlier shift, whose
    report was perhaps printed already."""

    count: int
    total: Decimal
    first_performed: datetime


def earlier_arrivals(period: Period, *, patient: Patient | None = None
                     ) -> EarlierArrivals | None:
    """What arrived in `period` for earlier periods (one query), or None."""
    if period.start is None:
        return None
    query = select(func.count(), func.sum(Charge.total), func.min(Charge.performed_at)).where(
        Charge.recorded_at >= period.start, Charge.performed_at < period.start)
    if period.end is not None:
        query = query.where(Charge.recorded_at < period.end)
    if patient is not None:
        query = query.where(Charge.patient_id == patient.id)
    count, total, first = db.session.execute(query).one()
    if not count:
        return None
    return EarlierArrivals(count, Decimal(total).quantize(Decimal("0.01")), as_utc(first))


_LINE_COLUMNS = (Charge.id, Charge.uid, Charge.patient_id, Charge.item_code,
                 Charge.description, Charge.quantity, Charge.unit_price, Charge.total,
                 Charge.performed_at, Charge.recorded_at, Charge.offline, Charge.reverses_id,
                 Charge.reason, Charge.sent_at, Charge.user_id, Charge.device_id)


def _report_lines(period: Period, patient: Patient | None) -> list:
    return db.session.execute(_performed_in(select(*_LINE_COLUMNS), period, patient)).all()


def _by_id(model, ids: set[int]) -> dict:
    if not ids:
        return {}
    return {row.id: row for row in db.session.scalars(select(model).where(model.id.in_(ids)))}


def report_build(period: Period, *, patient: Patient | None = None) -> Report:
    """The report of a period: five queries (charges, then their patients, people and
    devices, and what arrived for earlier periods), whatever the number of charges."""
    rows = _report_lines(period, patient)
    patients = _by_id(Patient, {r.patient_id for r in rows})
    users = _by_id(User, {r.user_id for r in rows if r.user_id is not None})
    devices = _by_id(Device, {r.device_id for r in rows if r.device_id is not None})
    labels = {device_id: device.label for device_id, device in devices.items()}
    names = {user_id: user.name for user_id, user in users.items()}
    groups: dict[int, PatientCharges] = {}
    total = unsent_total = held_total = Decimal("0.00")
    unsent = held = offline = late = 0
    for r in rows:
        group = groups.get(r.patient_id)
        if group is None:
            group = groups[r.patient_id] = PatientCharges(patients[r.patient_id])
        line = ReportLine(*r[:14], names.get(r.user_id), labels.get(r.device_id),
                          held=group.patient.unallocated and r.sent_at is None)
        line.late = arrived_late(period, line)
        group.charges.append(line)
        group.total += line.total
        total += line.total
        offline += line.offline
        late += line.late
        if line.sent_at is None:
            group.unsent += 1
            unsent += 1
            unsent_total += line.total
            if line.held:
                held += 1
                held_total += line.total
    ordered = sorted(groups.values(), key=lambda g: (g.patient.name.lower(), g.patient.id))
    return Report(period, ordered, total, len(rows), unsent, unsent_total, held,
                  held_total, offline, late, earlier_arrivals(period, patient=patient))


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


def charge_saved(patient: Patient, charge_uid: str) -> bool:
    """Whether this patient has the charge of that uid (a form posted twice was saved)."""
    return db.session.scalar(select(Charge.id).where(
        Charge.uid == charge_uid, Charge.patient_id == patient.id)) is not None
