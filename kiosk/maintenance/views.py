"""Maintenance pages: a manager plans, cancels and ends windows; every screen reads the
banner (public: it says when, never anything clinical, like the status page)."""

from flask import Blueprint, current_app, flash, redirect, render_template, url_for

from ..core.auth import LEVEL_MANAGER, current_user, level_required
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.models import row_by_uid
from .banner import NOTICE_HOURS_DEFAULT, banner_now
from .models import MaintenanceWindow
from .selectors import window_current, windows_recent, windows_upcoming
from .services import prepare_lead, window_cancel, window_end_now, window_schedule, windows_marks

bp = Blueprint("maintenance", __name__, url_prefix="/maintenance")

FIELDS = ("starts_at", "ends_at", "message")


def _page(data: dict | None = None, error: DomainError | None = None, status: int = 200):
    current, recent = window_current(), windows_recent()
    return render_template(
        "maintenance/index.html", data=data or {}, error=error, current=current,
        upcoming=windows_upcoming(), recent=recent,
        marks=windows_marks([*recent, *([current] if current else [])]),
        notice_hours=current_app.config.get("KIOSK_MAINTENANCE_NOTICE_H", NOTICE_HOURS_DEFAULT),
        lead_minutes=max(1, round(prepare_lead().total_seconds() / 60))), status


def _window(uid: str) -> MaintenanceWindow:
    return row_by_uid(MaintenanceWindow, uid, what="maintenance window", field="window")


@bp.get("/")
@level_required(LEVEL_MANAGER, "plan maintenance")
def index():
    """The window under way, those planned, the last ones, and a form to plan one."""
    return _page()


@bp.post("/")
@level_required(LEVEL_MANAGER, "plan maintenance")
def schedule():
    """Plan a window; nothing is stored if a time is wrong or it overlaps another."""
    data = form_data(*FIELDS)
    _, error = commit_or_error(lambda: window_schedule(user=current_user(), data=data))
    if error:
        return _page(data, error, 422)
    flash("Maintenance planned: every board and tablet shows it from now on.")
    return redirect(url_for("maintenance.index"))


@bp.post("/<uid>/cancel")
@level_required(LEVEL_MANAGER, "cancel maintenance")
def cancel(uid: str):
    """Call off a planned window."""
    _, error = commit_or_error(lambda: window_cancel(user=current_user(), window=_window(uid)))
    if error:
        return _page(None, error, error.status if error.status != 400 else 422)
    flash("Maintenance cancelled.")
    return redirect(url_for("maintenance.index"))


@bp.post("/<uid>/end")
@level_required(LEVEL_MANAGER, "end maintenance")
def end(uid: str):
    """End a window under way now; what its start switched goes back."""
    _, error = commit_or_error(lambda: window_end_now(user=current_user(), window=_window(uid)))
    if error:
        return _page(None, error, error.status if error.status != 400 else 422)
    flash("Maintenance ended: settings are as they were before it.")
    return redirect(url_for("maintenance.index"))


@bp.get("/banner")
def banner():
    """The banner alone, for pages to refresh (public: times and the message only)."""
    response = render_template("maintenance/_banner.html", banner=banner_now())
    return response, 200, {"Cache-Control": "no-store"}
