"""Billing pages: the report of a shift or a period (HTML and PDF), marking the end of a
shift, and a patient's charges (added by hand, reversed). Level 4 and up."""

import uuid
from decimal import Decimal

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from ..clinic.selectors import settings_zone
from ..core.auth import current_user, level_required
from ..core.clock import to_local
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.models import new_uid
from ..core.pdf import pdf_response
from ..extensions import db
from ..patients.selectors import patient_by_uid
from .selectors import (
    REPORT_ARGS,
    charge_by_uid,
    charge_saved,
    charges_of_patient,
    items_active,
    period_of_query,
    report_build,
    sending_configured,
    shift_marks,
)
from .services import LEVEL_BILLING, charge_add, charge_reverse, shift_end

bp = Blueprint("billing", __name__, url_prefix="/billing")
CHARGE_FIELDS = ("item_code", "quantity", "unit_price", "reason")
MARKS_LISTED = 30


def quantity_text(value: Decimal) -> str:
    """A quantity without trailing zeros ("1", "2.5", "-1"), never in exponent form."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def clinic_time_format():
    """A function writing a UTC time as the clinic's 'YYYY-MM-DD HH:MM' (the zone looked
    up once: a report writes thousands)."""
    tz = settings_zone()
    written: dict = {}  # by minute: a busy shift has several charges a minute

    def when(value) -> str:
        if not value:
            return ""
        minute = value.replace(second=0, microsecond=0)
        text = written.get(minute)
        if text is None:
            text = written[minute] = to_local(minute, tz).strftime("%Y-%m-%d %H:%M")
        return text

    return when


def _report_query() -> dict:
    """The report's query arguments as given (empty ones left out)."""
    return {key: request.args[key].strip() for key in REPORT_ARGS
            if request.args.get(key, "").strip()}


def _report_of(query: dict):
    """(report, patient) the query names; DomainError naming the bad argument."""
    patient = patient_by_uid(query["patient"]) if "patient" in query else None
    period = period_of_query(query, tz=settings_zone())
    return report_build(period, patient=patient), patient


def _export_href(query: dict) -> str:
    """The CSV export of the same query (served by the connector's pages)."""
    return url_for("billing_admin.export_csv", **query)


def _earlier_href(report, query: dict) -> str | None:
    """The report of the dates the charges that arrived late for earlier periods were
    performed in (from that first day to this period's start)."""
    if report is None or report.earlier is None:
        return None
    tz = settings_zone()
    args = {"from": to_local(report.earlier.first_performed, tz).strftime("%Y-%m-%d"),
            "to": to_local(report.period.start, tz).strftime("%Y-%m-%dT%H:%M:%S")}
    if "patient" in query:
        args["patient"] = query["patient"]
    return url_for("billing.report", **args)


def _report_page(query: dict, *, error=None, note: str = "", status: int = 200):
    report = patient = None
    try:
        report, patient = _report_of(query)
    except DomainError as exc:
        if exc.status == 404 and exc.field == "patient":
            raise
        error, status = error or exc, 400
    return render_template(
        "billing/report.html", report=report, patient=patient, query=query, error=error,
        note=note, marks=shift_marks(MARKS_LISTED), when=clinic_time_format(), qty=quantity_text,
        sending=sending_configured(), export_href=_export_href(query),
        earlier_href=_earlier_href(report, query)), status


@bp.get("/")
@level_required(LEVEL_BILLING, "see the billing report")
def report():
    """The billing report of a shift (the last one closed by default) or of dates."""
    return _report_page(_report_query())


@bp.get("/report.pdf")
@level_required(LEVEL_BILLING, "print the billing report")
def report_pdf():
    """The same report as a PDF: one patient, or the whole clinic a patient a page."""
    from .printing import billing_report_pdf

    query = _report_query()
    report_, patient = _report_of(query)
    name = f"billing-{patient.uid}.pdf" if patient else "billing.pdf"
    return pdf_response(billing_report_pdf(report_, patient=patient, when=clinic_time_format(),
                                           qty=quantity_text), name)


@bp.post("/shift-end")
@level_required(LEVEL_BILLING, "mark the end of a shift")
def shift_end_submit():
    """Mark the end of the shift now (with an optional note)."""
    note = request.form.get("note", "")
    _, error = commit_or_error(lambda: shift_end(user=current_user(), note=note))
    if error:
        return _report_page({}, error=error, note=note, status=422)
    return redirect(url_for("billing.report"))


def _patient_page(patient, *, error=None, data=None, reverse_error=None, status=200):
    charges, reversed_ids = charges_of_patient(patient)
    total = sum((c.total for c in charges), Decimal("0.00"))
    return render_template(
        "billing/patient.html", patient=patient, charges=charges, reversed_ids=reversed_ids,
        total=total, items=items_active(), error=error, data=data or {"quantity": "1"},
        reverse_error=reverse_error, when=clinic_time_format(), qty=quantity_text,
        form_uid=new_uid()), status


@bp.get("/patients/<uid>")
@level_required(LEVEL_BILLING, "see a patient's charges")
def patient_charges(uid: str):
    """A patient's charges, all time, with adding a charge by hand and reversing one."""
    return _patient_page(patient_by_uid(uid))


def _uid_or_none(value) -> str | None:
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) and len(value) <= 40 else None
    except ValueError:
        return None


@bp.post("/patients/<uid>")
@level_required(LEVEL_BILLING, "add charges")
def patient_charge_add(uid: str):
    """Add a charge by hand: a catalogue item, a quantity, the item's price or another."""
    patient = patient_by_uid(uid)
    data = form_data(*CHARGE_FIELDS)
    # The form's own uid: a double click or a resent form finds it taken, never bills twice.
    form_uid = _uid_or_none(request.form.get("charge_uid"))
    if form_uid and charge_saved(patient, form_uid):
        return redirect(url_for("billing.patient_charges", uid=uid))  # a second click: saved
    try:
        _, error = commit_or_error(lambda: charge_add(patient=patient, user=current_user(),
                                                      data=data, uid=form_uid))
    except IntegrityError:  # the same form posted twice at once: the other post saved it
        db.session.rollback()
        if form_uid and charge_saved(patient_by_uid(uid), form_uid):
            return redirect(url_for("billing.patient_charges", uid=uid))
        raise
    if error:
        return _patient_page(patient_by_uid(uid), error=error, data=data, status=422)
    return redirect(url_for("billing.patient_charges", uid=uid))


@bp.post("/charges/<uid>/reverse")
@level_required(LEVEL_BILLING, "reverse charges")
def charge_reverse_submit(uid: str):
    """Reverse a charge (a negative line, with the reason); the charge itself stays."""
    charge = charge_by_uid(uid)
    patient_uid = charge.patient.uid
    reason = request.form.get("reason", "")
    _, error = commit_or_error(lambda: charge_reverse(charge=charge, user=current_user(),
                                                      reason=reason))
    if error:
        return _patient_page(patient_by_uid(patient_uid), reverse_error=(uid, error),
                             status=422)
    return redirect(url_for("billing.patient_charges", uid=patient_uid))
