"""The CSV export practice systems import: its columns, quoting, the guard against formulas,
and the download of a shift's, a period's or one patient's charges."""

import csv
import io
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import select

from kiosk.billing.connectors import charges_csv
from kiosk.billing.selectors import ERR_PERIOD_ORDER, Period, charges_in_period
from kiosk.billing.services import charge_reverse, shift_end
from kiosk.core import clock
from kiosk.core.clock import format_iso_z
from kiosk.devices.models import Device
from kiosk.extensions import db
from kiosk.treatments.models import Task
from tests import factories
from tests.admin.helpers import audit_count

from .connect_helpers import charge_make, item_make

HEADER = ["date", "time", "patient_pims_id", "file_number", "patient_name", "item_code",
          "description", "quantity", "unit_price", "total", "staff", "device", "offline",
          "charge_id", "reverses"]


@pytest.fixture
def paris(app):
    """A clinic on Paris time (UTC+1 in November), with an item to charge."""
    made = factories.clinic_make(timezone="Europe/Paris")
    item_make(made)
    return made


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def exported(client, **query) -> tuple[list[list[str]], str]:
    response = client.get("/billing/admin/export.csv", query_string=query)
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    return rows(response.text), disposition.split("filename=")[1].strip('"')


def test_one_row_per_charge_in_the_columns_practice_systems_import(paris, tablet,
                                                                   frozen_clock):
    biscuit = factories.patient_make(paris, "Biscuit", pims_id="P-1", file_number="F-1")
    charge = charge_make(paris, biscuit, quantity="2")
    reversal = charge_reverse(charge=charge, user=paris.user(4), reason="entered twice")
    db.session.commit()
    charge_uid, reversal_uid, device_id = charge.uid, reversal.uid, tablet.device.id
    order = factories.order_make(paris, biscuit, name="Maropitant", billable_code="MAR10",
                                 price="12.50")
    done_at = clock.utcnow()
    frozen_clock.advance(minutes=40)  # the tablet was offline meanwhile
    task_uid = db.session.scalar(select(Task.uid).where(Task.order_id == order.id)
                                 .order_by(Task.due_at))
    result = tablet.send("task.complete", {"task": task_uid}, paris.user(3),
                         at=format_iso_z(done_at))
    assert result["status"] == "applied"
    device_label = db.session.get(Device, device_id).label
    charges = charges_in_period(Period(None, None))
    text = charges_csv(charges)

    assert text.endswith("\r\n") and text.count("\r\n") == 4
    header, by_hand, undone, offline = rows(text)
    assert header == HEADER
    assert by_hand == ["2026-11-22", "13:00:00", "P-1", "F-1", "Biscuit", "CONS",
                       "Consultation", "2", "12.50", "25.00", "Level 4", "", "no",
                       charge_uid, ""]
    assert undone == ["2026-11-22", "13:00:00", "P-1", "F-1", "Biscuit", "CONS",
                      "Reversal: Consultation", "-2", "12.50", "-25.00", "Level 4", "", "no",
                      reversal_uid, charge_uid]
    assert offline[:2] == ["2026-11-22", "13:00:00"]  # when it was done, not when it arrived
    assert offline[5:] == ["MAR10", "Maropitant", "1", "12.50", "12.50", "Level 3",
                           device_label, "yes", charges[2].uid, ""]


def test_cells_are_quoted_and_formulas_never_run_but_numbers_stay_numbers(paris,
                                                                          frozen_clock):
    item_make(paris, code="=1+2", description='Bandage, "large"', price="3.00")
    item_make(paris, code="@SUM", description="-Cleaning\nextra", price="1.00")
    patients = [factories.patient_make(paris, name, pims_id=pims) for name, pims in (
        ('=HYPERLINK("http://evil.example","x")', "+44"), ("+Rex", "P-2"),
        ("-Tom", "P-3"), ("@Max", "P-4"))]
    charge = charge_make(paris, patients[0], code="=1+2")
    charge_reverse(charge=charge, user=paris.user(4), reason="wrong")
    for patient in patients[1:]:
        charge_make(paris, patient, code="@SUM")
    db.session.commit()
    text = charges_csv(charges_in_period(Period(None, None)))

    assert '"Bandage, ""large"""' in text  # a comma and quotes, quoted as CSV does
    _, first, reversal, rex, tom, max_ = rows(text)
    assert first[2] == "+44"  # a number: left as it is
    assert first[4] == '\'=HYPERLINK("http://evil.example","x")'
    assert first[5] == "'=1+2" and first[6] == 'Bandage, "large"'
    assert (reversal[7], reversal[9]) == ("-1", "-3.00")  # negative numbers stay numbers
    assert (rex[4], tom[4], max_[4]) == ("'+Rex", "'-Tom", "'@Max")
    assert (rex[5], rex[6]) == ("'@SUM", "'-Cleaning\nextra")
    for row in rows(text)[1:]:
        assert not any(cell[:1] in "=+-@\t" and not cell.lstrip("+-").replace(".", "")
                       .isdigit() for cell in row if cell)


@pytest.fixture
def shifts(paris, frozen_clock):
    """Biscuit's charge at 12:00 UTC, a shift ended at 13:00, then Pepper's charge at 13:30
    and, at 13:45, one performed at 12:40 that a tablet brought late (it is the first
    shift's)."""
    biscuit = factories.patient_make(paris, "Biscuit", pims_id="P-1")
    pepper = factories.patient_make(paris, "Pepper", pims_id="P-2")
    early = charge_make(paris, biscuit)
    frozen_clock.advance(hours=1)
    mark = shift_end(user=paris.user(4))
    db.session.commit()
    frozen_clock.advance(minutes=30)
    later = charge_make(paris, pepper)
    frozen_clock.advance(minutes=15)
    late = charge_make(paris, biscuit,
                       performed_at=format_iso_z(clock.utcnow() - timedelta(minutes=65)))
    return {"mark": mark, "early": early, "later": later, "late": late, "pepper": pepper,
            "biscuit": biscuit}


def test_the_export_of_a_shift_a_period_and_a_patient(paris, shifts, client, login):
    login(paris.user(4))
    got, name = exported(client, shift=shifts["mark"].uid)
    assert [r[13] for r in got[1:]] == [shifts["early"].uid, shifts["late"].uid]
    assert [r[1] for r in got[1:]] == ["13:00:00", "13:40:00"]
    assert name == "charges-shift-to-20261122-1400.csv"

    got, name = exported(client, shift="current")
    assert [r[13] for r in got[1:]] == [shifts["later"].uid]
    assert name == "charges-current-shift-from-20261122-1400.csv"

    got, name = exported(client, **{"from": "2026-11-22", "to": "2026-11-22"})
    assert len(got) == 4 and name == "charges-20261122-0000-to-20261123-0000.csv"
    got, _ = exported(client, **{"from": "2026-11-22T14:30", "to": "2026-11-22T14:45"})
    assert [r[13] for r in got[1:]] == [shifts["later"].uid]  # clinic time: 13:30 UTC

    got, name = exported(client, shift="current", patient=shifts["pepper"].uid)
    assert [r[4] for r in got[1:]] == ["Pepper"]
    assert name == "charges-current-shift-from-20261122-1400-P-2-Pepper.csv"
    got, name = exported(client, shift=shifts["mark"].uid, patient=shifts["pepper"].uid)
    assert got == [HEADER] and name.endswith("-P-2-Pepper.csv")


def test_the_export_needs_level_4(paris, shifts, client, login):
    assert client.get("/billing/admin/export.csv?shift=current").status_code == 302
    login(paris.user(3))
    response = client.get("/billing/admin/export.csv?shift=current")
    assert response.status_code == 403 and "You need level 4" in response.text
    assert "Pepper" not in response.text


@pytest.mark.parametrize(("query", "status", "field", "message"), [
    ({"from": "yesterday"}, 400, "from", "is not a date and time"),
    ({"to": "2026-13-01"}, 400, "to", "is not a date and time"),
    ({"from": "2026-11-23", "to": "2026-11-21"}, 400, "to", ERR_PERIOD_ORDER),
    ({"shift": "no-such-mark"}, 404, "shift", "There is no end-of-shift mark with that id."),
    ({"shift": "current", "patient": "nobody"}, 404, "patient",
     "There is no patient with that id."),
])
def test_a_bad_query_is_a_clear_error_naming_the_field(paris, shifts, client, login, query,
                                                       status, field, message):
    login(paris.user(4))
    audits = audit_count()
    response = client.get("/billing/admin/export.csv", query_string=query,
                          headers={"Accept": "application/json"})
    assert response.status_code == status
    body = response.get_json()
    assert body["field"] == field and message in body["message"]
    page = client.get("/billing/admin/export.csv", query_string=query)
    assert page.status_code == status and escape(message.split("“")[0]) in page.text
    assert audit_count() == audits
