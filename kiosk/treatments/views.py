"""The treatment sheet: the hourly grid, tasks completed or skipped, orders and notes."""

from datetime import date

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from ..clinic.templating import clinic_zone
from ..core.auth import LEVEL_ORDERS, current_user, level_required, login_required
from ..core.clock import local_day_bounds, parse_local_datetime
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.htmx import is_htmx, render
from ..core.validate import day
from ..extensions import db
from ..patients.selectors import patient_by_uid
from .models import ORDER_KINDS, ROUTES
from .selectors import order_by_uid, sheet_for, task_by_uid
from .services import (
    ORDER_FIELDS,
    note_add,
    order_create,
    order_give_prn,
    order_stop,
    task_complete,
    task_skip,
    tasks_generate_shown,
)

bp = Blueprint("treatments", __name__)


def _day_arg() -> date | None:
    """?day= as a date the calendar can hold (a DomainError, answered 400, otherwise)."""
    return day(request.args.get("day"), "day", "The day")


def _tasks_of_day_made(patient, shown: date | None) -> None:
    """Tasks are generated lazily: a day shown beyond what upkeep made (two days ahead) gets
    its tasks now, with the uids a tablet computes. The view owns this small commit."""
    if shown is None:
        return
    _, end = local_day_bounds(shown, clinic_zone())
    try:
        tasks_generate_shown(patient=patient, until=end)
        db.session.commit()
    except IntegrityError:  # another request made the same tasks first: they are there
        db.session.rollback()


def _sheet_response(uid: str, *, message: str | None = None, day: date | None = None):
    """The sheet page, or its grid for htmx (which also closes the task dialog)."""
    sheet = sheet_for(patient_by_uid(uid), day=day)
    response = render("treatments/sheet.html", "treatments/_grid.html", sheet=sheet,
                      message=message)
    if is_htmx():
        response.headers["HX-Retarget"] = "#sheet-grid"
        response.headers["HX-Reswap"] = "outerHTML"
        response.headers["HX-Trigger"] = "sheet:closeDialog"
    return response


@bp.get("/patients/<uid>/sheet")
@login_required
def sheet(uid: str):
    """The patient's treatment sheet for a day (today by default)."""
    shown, patient = _day_arg(), patient_by_uid(uid)
    _tasks_of_day_made(patient, shown)
    sheet = sheet_for(patient, day=shown)
    return render("treatments/sheet.html", "treatments/_grid.html", sheet=sheet, message=None)


@bp.get("/tasks/<uid>")
@login_required
def task(uid: str):
    """The complete-or-skip dialog for one task (a page without JavaScript)."""
    task = task_by_uid(uid)
    return render("treatments/task_page.html", "treatments/_task_dialog.html", task=task,
                  error=None, data={})


def _given_at(data: dict):
    """The optional "time given" field (clinic wall clock) as UTC, or None for now."""
    return parse_local_datetime(data["at"], clinic_zone(), "at") if data.get("at") else None


def _task_error(task, error: DomainError, data: dict):
    return render("treatments/task_page.html", "treatments/_task_dialog.html", status=422,
                  task=task, error=error, data=data)


@bp.post("/tasks/<uid>/complete")
@login_required
def complete(uid: str):
    """Complete a task with an optional value, note and time given."""
    task = task_by_uid(uid)
    data = form_data("value", "note", "at")

    completion, error = commit_or_error(lambda: task_complete(
        task=task, user=current_user(), at=_given_at(data), value=data.get("value"),
        note=data.get("note")))
    if error:
        return _task_error(task_by_uid(uid), error, data)
    message = "Recorded — this task had already been done; flagged for review." \
        if completion.conflict else None
    # The day the task is on (the grid it was opened from), not the day it was done:
    # a task due before midnight and done after it stays on its own day's grid.
    return _sheet_response(task.order.patient.uid, message=message,
                           day=_local_day(task.due_at))


@bp.post("/tasks/<uid>/skip")
@login_required
def skip(uid: str):
    """Skip a task, with the reason."""
    task = task_by_uid(uid)
    data = form_data("reason")
    _, error = commit_or_error(
        lambda: task_skip(task=task, user=current_user(), reason=data.get("reason")))
    if error:
        return _task_error(task_by_uid(uid), error, data)
    return _sheet_response(task.order.patient.uid, day=_local_day(task.due_at))


def _local_day(value):
    return value.astimezone(clinic_zone()).date() if value else None


def _order_form(patient, data, error=None, status=200):
    return render_template("treatments/order_form.html", patient=patient, data=data, error=error,
                           kinds=ORDER_KINDS, routes=ROUTES), status


@bp.get("/patients/<uid>/orders/new")
@level_required(LEVEL_ORDERS, "create orders", tablet=True)
def order_new(uid: str):
    """The new-order form."""
    return _order_form(patient_by_uid(uid), {"kind": request.args.get("kind", "medication")})


@bp.post("/patients/<uid>/orders/new")
@level_required(LEVEL_ORDERS, "create orders")
def order_post(uid: str):
    """Create an order and its tasks; nothing is stored if any field is wrong."""
    patient = patient_by_uid(uid)
    data = form_data(*ORDER_FIELDS)
    _, error = commit_or_error(
        lambda: order_create(user=current_user(), patient=patient, data=data))
    if error:
        return _order_form(patient_by_uid(uid), data, error, 422)
    return redirect(url_for("treatments.sheet", uid=uid))


@bp.post("/orders/<uid>/stop")
@level_required(LEVEL_ORDERS, "stop orders")
def order_stop_post(uid: str):
    """Stop an order; its remaining tasks are cancelled."""
    order = order_by_uid(uid)
    patient_uid = order.patient.uid
    _, error = commit_or_error(
        lambda: order_stop(order=order, user=current_user(), reason=request.form.get("reason")))
    if error and not is_htmx():
        return render_template("errors/error.html", status=409, title="Cannot stop",
                               message=error.message), 409
    return _sheet_response(patient_uid, message=error.message if error else None)


@bp.post("/orders/<uid>/give")
@login_required
def order_give(uid: str):
    """Record a dose of a PRN order now (or at the time given)."""
    order = order_by_uid(uid)
    data = form_data("value", "note", "at")

    completion, error = commit_or_error(lambda: order_give_prn(
        order=order, user=current_user(), at=_given_at(data), value=data.get("value"),
        note=data.get("note")))
    message = f"{order.name}: {error.message}" if error else None
    return _sheet_response(order.patient.uid, message=message,
                           day=_local_day(completion.done_at) if completion else None)


@bp.post("/patients/<uid>/notes")
@login_required
def note_post(uid: str):
    """Add a note to the patient's record."""
    patient = patient_by_uid(uid)
    data = form_data("text")
    _, error = commit_or_error(lambda: note_add(patient=patient, user=current_user(),
                                                text=data.get("text")))
    if error:
        sheet = sheet_for(patient_by_uid(uid))
        return make_response(render_template(
            "treatments/sheet.html", sheet=sheet, message=None, note_error=error,
            note_text=data.get("text", "")), 422)
    return redirect(url_for("treatments.sheet", uid=uid) + "#notes")
