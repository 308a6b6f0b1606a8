"""Anaesthesia sheet pages: start, record (one hand: last values carried, step buttons),
finalise. Tablets offline send the same actions as ops (anaesthesia.*)."""

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from ..clinic.selectors import settings_zone
from ..core.auth import LEVEL_ANAESTHESIA, current_user, level_required, login_required
from ..core.clock import parse_local_datetime
from ..core.forms import commit_or_error, form_data
from ..core.pdf import pdf_response
from ..documents.selectors import documents_for_source
from ..patients.selectors import patient_by_uid
from ..treatments.models import ROUTES
from .entries import ASA_CLASSES, EVENTS, HEADER_TEXT, PRE, VITALS
from .selectors import anaesthesia_sheet_by_uid, sheet_uids, sheet_view, sheets_of
from .services import (
    anaesthesia_finalise,
    anaesthesia_record,
    anaesthesia_start,
    rules_for_pages,
    sheet_target,
)

bp = Blueprint("anaesthesia", __name__)

FIELDS = {"header": [k for k, _, _ in HEADER_TEXT] + ["asa", "emergency"],
          "pre": [m.key for m in PRE] + ["mm"], "vitals": [m.key for m in VITALS],
          "drug": ["drug", "dose", "route", "given_by"], "event": ["event", "note"],
          "note": ["text"]}


@bp.get("/patients/<uid>/anaesthesia")
@login_required
def sheets(uid: str):
    """The patient's anaesthesia sheets, and a button to start one."""
    patient = patient_by_uid(uid)
    return render_template("anaesthesia/list.html", patient=patient, sheets=sheets_of(patient),
                           asa_classes=ASA_CLASSES, error=None)


@bp.post("/patients/<uid>/anaesthesia")
@level_required(LEVEL_ANAESTHESIA, "record anaesthesia")
def start(uid: str):
    """Start (or join) the patient's open anaesthesia sheet."""
    patient = patient_by_uid(uid)
    data = form_data("procedure", "asa", "team", "equipment")
    if request.form.get("emergency"):
        data["emergency"] = True
    header = {k: v for k, v in data.items() if v not in ("", None)}
    sheet, error = commit_or_error(lambda: anaesthesia_start(
        patient=patient, user=current_user(), header=header or None))
    if error:
        return make_response(render_template(
            "anaesthesia/list.html", patient=patient, sheets=sheets_of(patient),
            asa_classes=ASA_CLASSES, error=error), 422)
    return redirect(url_for("anaesthesia.sheet", uid=sheet.uid))


def _page(sheet, *, error=None, kind=None, values=None, status=200):
    view = sheet_view(sheet_target(sheet))
    return make_response(render_template(
        "anaesthesia/sheet.html", view=view, patient=view.sheet.patient, error=error,
        failed_kind=kind, values=values or {}, vitals=VITALS, pre=PRE, events=EVENTS,
        asa_classes=ASA_CLASSES, routes=ROUTES, rules=rules_for_pages(),
        sheet_uids=sheet_uids(view.sheet),
        archived=documents_for_source(view.sheet.uid)), status)


@bp.get("/anaesthesia/<uid>")
@login_required
def sheet(uid: str):
    """One sheet: everything every tablet recorded, by time; the chart; the forms."""
    return _page(anaesthesia_sheet_by_uid(uid))


@bp.get("/anaesthesia/<uid>/sheet.pdf")
@login_required
def pdf(uid: str):
    """The sheet as a PDF, as it stands (a preview until it is finalised)."""
    from .printing import anaesthesia_pdf

    view = sheet_view(sheet_target(anaesthesia_sheet_by_uid(uid)))
    return pdf_response(anaesthesia_pdf(view), f"anaesthesia-{uid}.pdf")


@bp.post("/anaesthesia/<uid>/record")
@level_required(LEVEL_ANAESTHESIA, "record anaesthesia")
def record(uid: str):
    """Append one entry (an addendum once the sheet is finalised)."""
    target = anaesthesia_sheet_by_uid(uid)
    kind = request.form.get("kind", "")
    values = form_data(*FIELDS.get(kind, []))
    data = {k: v for k, v in values.items() if v != ""}
    if kind == "header":
        data["emergency"] = bool(request.form.get("emergency"))
    confirmed = request.form.getlist("confirm")

    def action():
        at = request.form.get("at")
        return anaesthesia_record(sheet=target, user=current_user(), kind=kind, data=data,
                                  confirmed=confirmed,
                                  at=parse_local_datetime(at, settings_zone(), "at")
                                  if at else None)

    _, error = commit_or_error(action)
    if error:
        return _page(target, error=error, kind=kind, values=values, status=422)
    return redirect(url_for("anaesthesia.sheet", uid=sheet_target(target).uid) + f"#{kind}")


@bp.post("/anaesthesia/<uid>/finalise")
@level_required(LEVEL_ANAESTHESIA, "record anaesthesia")
def finalise(uid: str):
    """Lock the sheet: later entries are addenda."""
    target = anaesthesia_sheet_by_uid(uid)
    _, error = commit_or_error(lambda: anaesthesia_finalise(sheet=target, user=current_user()))
    if error:
        return _page(target, error=error, kind="finalise", status=422)
    return redirect(url_for("anaesthesia.sheet", uid=sheet_target(target).uid))
