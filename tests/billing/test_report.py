"""The billing report: charges of a shift or of dates, per patient, with Decimal totals; a
charge that reached the server late lands in the shift it was performed in; the PDF."""

import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import event, select

from kiosk.billing.selectors import (
    Period,
    charges_of_patient,
    period_default,
    period_resolve,
    report_build,
)
from kiosk.billing.services import charge_add, charge_reverse, item_save, shift_end
from kiosk.core import clock
from kiosk.core.clock import format_iso_z
from kiosk.core.errors import DomainError
from kiosk.extensions import db
from kiosk.treatments.models import Task
from kiosk.treatments.services import task_complete
from tests import factories

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def first_task(order) -> Task:
    return db.session.scalars(select(Task).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).first()


def billable(clinic, patient, code="MAR10", price="12.50", name="Maropitant"):
    return factories.order_make(clinic, patient, name=name, billable_code=code, price=price)


def catalogue(clinic):
    item_save(user=clinic.user(6), data={"code": "CONS", "description": "Consultation",
                                         "unit_price": "45.00"})
    item_save(user=clinic.user(6), data={"code": "BAND", "description": "Bandage",
                                         "unit_price": "3.35"})
    db.session.commit()


def complete(clinic, order):
    task_complete(task=first_task(order), user=clinic.user(3))
    db.session.commit()


def test_charges_are_grouped_per_patient_by_name_with_decimal_totals(clinic, frozen_clock):
    catalogue(clinic)
    rex = factories.patient_make(clinic, "Rex", pims_id="P-2", file_number="F2")
    bella = factories.patient_make(clinic, "Bella", pims_id="P-1")
    complete(clinic, billable(clinic, rex))
    charge_add(patient=bella, user=clinic.user(4), data={"item_code": "BAND",
                                                        "quantity": "3"})
    consult = charge_add(patient=bella, user=clinic.user(4), data={"item_code": "CONS"})
    db.session.commit()
    charge_reverse(charge=consult, user=clinic.user(4), reason="charged in error")
    db.session.commit()

    report = report_build(Period(None, None))
    assert [g.patient.name for g in report.patients] == ["Bella", "Rex"]
    bella_lines, rex_lines = report.patients
    assert [c.total for c in bella_lines.charges] == [Decimal("10.05"), Decimal("45.00"),
                                                       Decimal("-45.00")]
    assert bella_lines.total == Decimal("10.05") and rex_lines.total == Decimal("12.50")
    assert report.total == Decimal("22.55") and isinstance(report.total, Decimal)
    assert report.count == 4 and report.unsent == 4 and report.held == 0
    assert report.unsent_total == Decimal("22.55")


def test_an_unallocated_patients_charges_are_counted_as_held(clinic, frozen_clock):
    patient = factories.patient_make(clinic, "Stray")  # made here, no practice-system id
    assert patient.unallocated
    complete(clinic, billable(clinic, patient))
    report = report_build(Period(None, None))
    assert (report.held, report.held_total) == (1, Decimal("12.50"))


def test_a_charge_that_reached_the_server_late_lands_in_the_shift_it_was_performed_in(
        clinic, tablet, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-9")
    order = billable(clinic, patient)
    task = first_task(order)
    done_at = clock.utcnow()
    frozen_clock.advance(minutes=10)
    mark = shift_end(user=clinic.user(4))  # the web's end of shift, while the tablet is offline
    db.session.commit()
    mark_at, mark_uid = mark.at, mark.uid
    frozen_clock.advance(minutes=30)
    result = tablet.send("task.complete", {"task": task.uid}, clinic.user(3),
                         at=format_iso_z(done_at))
    assert result["status"] == "applied"

    shift = report_build(period_resolve(shift=mark_uid))
    (group,) = shift.patients
    (charge,) = group.charges
    assert charge.performed_at == done_at and charge.offline
    assert charge.recorded_at > mark_at and charge.late
    assert (shift.offline, shift.late) == (1, 1)
    assert shift.earlier is None
    # The shift under way does not count it, but says it arrived (for a shift perhaps
    # printed already), with the dates to find it.
    current = report_build(period_resolve(shift="current"))
    assert current.patients == []
    assert (current.earlier.count, current.earlier.total) == (1, Decimal("12.50"))
    assert current.earlier.first_performed == done_at


def test_the_default_period_is_the_last_shift_closed_else_the_one_under_way(
        clinic, frozen_clock):
    assert period_default() == Period(None, None, None, None)
    first = shift_end(user=clinic.user(4), note="Day")
    db.session.commit()
    frozen_clock.advance(hours=8)
    second = shift_end(user=clinic.user(4), note="Evening")
    db.session.commit()
    frozen_clock.advance(hours=1)
    default = period_default()
    assert (default.start, default.end) == (first.at, second.at)
    assert default.mark.uid == second.uid and default.previous.uid == first.uid
    current = period_resolve(shift="current")
    assert (current.start, current.end) == (second.at, None)
    assert period_resolve(shift=first.uid).start is None


def test_a_shift_covers_what_was_performed_between_its_marks(clinic, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-3")
    before = billable(clinic, patient, code="A", name="Before")
    complete(clinic, before)
    frozen_clock.advance(minutes=5)
    first = shift_end(user=clinic.user(4))
    db.session.commit()
    frozen_clock.advance(minutes=5)
    complete(clinic, billable(clinic, patient, code="B", name="During"))
    frozen_clock.advance(minutes=5)
    second = shift_end(user=clinic.user(4))
    db.session.commit()
    frozen_clock.advance(minutes=5)
    complete(clinic, billable(clinic, patient, code="C", name="After"))

    def codes(period):
        return [c.item_code for g in report_build(period).patients for c in g.charges]

    assert codes(period_resolve(shift=first.uid)) == ["A"]
    assert codes(period_resolve(shift=second.uid)) == ["B"]
    assert codes(period_resolve(shift="current")) == ["C"]
    assert codes(period_resolve(start=T0 + timedelta(minutes=7),
                                end=T0 + timedelta(minutes=30))) == ["B", "C"]


def test_a_report_for_one_patient_has_only_theirs(clinic, frozen_clock):
    one = factories.patient_make(clinic, "One", pims_id="P-4")
    two = factories.patient_make(clinic, "Two", pims_id="P-5")
    complete(clinic, billable(clinic, one))
    complete(clinic, billable(clinic, two, price="7.00"))
    report = report_build(Period(None, None), patient=two)
    assert [g.patient.name for g in report.patients] == ["Two"]
    assert report.total == Decimal("7.00")


def test_a_period_ending_before_it_starts_is_refused_naming_its_end():
    with pytest.raises(DomainError) as caught:
        period_resolve(start=T0, end=T0 - timedelta(hours=1))
    assert caught.value.field == "end"


def statements_of(action) -> int:
    count = 0

    def counted(*_args):
        nonlocal count
        count += 1

    engine = db.engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def test_the_report_is_a_few_queries_whatever_the_number_of_charges(clinic, frozen_clock):
    catalogue(clinic)
    patients = [factories.patient_make(clinic, f"P{i}", pims_id=f"P-{i}") for i in range(6)]
    charge_add(patient=patients[0], user=clinic.user(4), data={"item_code": "CONS"})
    db.session.commit()
    db.session.expire_all()
    few = statements_of(lambda: report_build(Period(None, None)))
    for patient in patients:
        for _ in range(3):
            charge_add(patient=patient, user=clinic.user(4), data={"item_code": "BAND"})
    db.session.commit()
    db.session.expire_all()
    many = statements_of(lambda: report_build(Period(None, None)))
    assert many == few <= 4
    db.session.expire_all()
    assert statements_of(lambda: charges_of_patient(patients[0])) <= 2


def pdf_text(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_flags_offline_charges_and_has_each_patients_totals(
        app, clinic, tablet, frozen_clock):
    pytest.importorskip("weasyprint")
    from kiosk.billing.printing import billing_report_pdf
    from kiosk.billing.views import quantity_text

    catalogue(clinic)
    bella = factories.patient_make(clinic, "Bella", pims_id="P-1")
    rex = factories.patient_make(clinic, "Rex", pims_id="P-2")
    task = first_task(billable(clinic, rex))
    charge_add(patient=bella, user=clinic.user(4), data={"item_code": "CONS"})
    db.session.commit()
    done_at = clock.utcnow()
    frozen_clock.advance(minutes=15)
    assert tablet.send("task.complete", {"task": task.uid}, clinic.user(3),
                       at=format_iso_z(done_at))["status"] == "applied"

    with app.test_request_context():
        data = billing_report_pdf(report_build(Period(None, None)),
                                  when=lambda v: v.strftime("%H:%M") if v else "",
                                  qty=quantity_text)
    assert data.startswith(b"%PDF")
    pages, text = pdf_text(data)
    assert pages == 1  # two short patients share a page
    assert text.index("Bella") < text.index("Rex")
    assert "OFFLINE" in text and "Maropitant" in text and "Consultation" in text
    assert "57.50" in text and "12.50" in text and "45.00" in text


def test_the_demo_clinic_has_a_closed_shift_with_charges_to_report(app, frozen_clock):
    from kiosk.demo import demo_build

    demo_build()
    db.session.commit()
    report = report_build(period_default())
    assert report.period.mark is not None and report.period.mark.note == "Shift handover"
    assert report.count > 10 and report.total > 0 and report.late == 0
    codes = {c.item_code for g in report.patients for c in g.charges}
    assert {"MED-METH", "CONS", "BAND"} <= codes
    assert any(c.total < 0 for g in report.patients for c in g.charges)  # the reversal


def test_dates_are_read_on_the_clinics_clock_and_a_bare_to_date_is_that_whole_day(app):
    from zoneinfo import ZoneInfo

    from kiosk.billing.selectors import period_of_query

    new_york = ZoneInfo("America/New_York")  # UTC-5 in November
    period = period_of_query({"from": "2026-11-21", "to": "2026-11-22"}, tz=new_york)
    assert (period.start, period.end) == (datetime(2026, 11, 21, 5, 0, tzinfo=UTC),
                                          datetime(2026, 11, 23, 5, 0, tzinfo=UTC))
    period = period_of_query({"from": "2026-11-21T08:30", "to": "2026-11-21T17:00"},
                             tz=new_york)
    assert (period.start, period.end) == (datetime(2026, 11, 21, 13, 30, tzinfo=UTC),
                                          datetime(2026, 11, 21, 22, 0, tzinfo=UTC))
    assert period_of_query({"to": "2026-11-22"}, tz=new_york).start is None
    with pytest.raises(DomainError) as caught:
        period_of_query({"to": "22/11/2026"}, tz=new_york)
    assert caught.value.field == "to"


def test_a_bare_to_date_covers_that_whole_local_day_across_a_clock_change(app):
    from zoneinfo import ZoneInfo

    from kiosk.billing.selectors import period_of_query

    london = ZoneInfo("Europe/London")
    # 25 October 2026: the clocks go back, the day has 25 hours.
    period = period_of_query({"from": "2026-10-25", "to": "2026-10-25"}, tz=london)
    assert period.start.isoformat() == "2026-10-24T23:00:00+00:00"
    assert period.end.isoformat() == "2026-10-26T00:00:00+00:00"
    # 29 March 2026: they go forward, 23 hours.
    period = period_of_query({"from": "2026-03-29", "to": "2026-03-29"}, tz=london)
    assert period.end - period.start == timedelta(hours=23)


def test_the_report_page_says_what_arrived_for_earlier_shifts_and_links_to_it(
        clinic, tablet, client, login, frozen_clock):
    patient = factories.patient_make(clinic, pims_id="P-9")
    task = first_task(billable(clinic, patient))
    done_at = clock.utcnow()
    frozen_clock.advance(minutes=10)
    shift_end(user=clinic.user(4))
    db.session.commit()
    frozen_clock.advance(minutes=30)
    login(clinic.user(4))
    tablet.send("task.complete", {"task": task.uid}, clinic.user(3), at=format_iso_z(done_at))
    page = client.get("/billing/?shift=current").text
    assert "Arrived in this period for earlier ones" in page and "1 charge, 12.50" in page
    link = re.search(r'<a href="([^"]+)">see them</a>', page).group(1).replace("&amp;", "&")
    earlier = client.get(link).text
    assert "Maropitant" in earlier and 'data-total="12.50"' in earlier
