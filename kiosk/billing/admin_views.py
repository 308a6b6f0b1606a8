"""Billing's manager pages: the practice-system connector (a webhook, its pause, charges
that fail to go), the item catalogue, and the CSV export of a shift's or a patient's charges."""

import re
from datetime import datetime

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ..clinic.selectors import settings_zone
from ..core.auth import LEVEL_MANAGER, current_user, level_required
from ..core.clock import to_local
from ..core.errors import DomainError
from ..core.forms import commit_or_error, form_data
from ..core.models import row_by_uid
from ..extensions import db
from ..patients.selectors import patient_by_uid
from .connectors import charges_csv
from .models import APPLIES_TO, BillingItem
from .selectors import Period, charges_in_period, connector_settings, period_of_query
from .sending import charges_failing, charges_send_now, patients_held, sending_counts
from .services import LEVEL_BILLING, connector_configure, connector_pause, item_save

bp = Blueprint("billing_admin", __name__, url_prefix="/billing/admin")

ITEM_FIELDS = ("code", "description", "unit_price", "applies_to", "match")
APPLIES_LABELS = {"manual": "Charged by hand", "order": "Orders (their own code and price)",
                  "anaesthesia_drug": "An anaesthesia drug of this name",
                  "form": "A finalised form of this name (a fee)"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# The connector

def own_hosts() -> tuple[str, ...]:
    """The names this server is reached by in this request (the host the browser used,
    and the address it listens on): a webhook there would send charges to ourselves."""
    environ = request.environ
    return (request.host, f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}")


def _settings_page(data: dict | None = None, error: DomainError | None = None,
                   status: int = 200):
    row = connector_settings()
    data = data or {"kind": row.kind if row else "none",
                    "webhook_url": (row.webhook_url if row else None) or ""}
    return render_template("billing/settings.html", data=data, error=error, connector=row,
                           counts=sending_counts(), failing=charges_failing(),
                           held=patients_held()), status


@bp.get("/")
@level_required(LEVEL_MANAGER, "manage billing")
def settings():
    """The connector, its pause, what waits to be sent, and the charges failing to go."""
    return _settings_page()


@bp.post("/")
@level_required(LEVEL_MANAGER, "manage billing")
def settings_save():
    """Choose the connector (none, or a webhook and its address); nothing changes if the
    address is wrong."""
    data = form_data("kind", "webhook_url")
    _, error = commit_or_error(lambda: connector_configure(
        user=current_user(), kind=data.get("kind"), webhook_url=data.get("webhook_url"),
        own_hosts=own_hosts()))
    if error:
        return _settings_page(data, error, 422)
    flash("Connector saved.")
    return redirect(url_for("billing_admin.settings"))


@bp.post("/pause")
@level_required(LEVEL_MANAGER, "manage billing")
def pause():
    """Pause sending (charges queue) or resume it (they go)."""
    paused = request.form.get("paused") == "1"
    _, error = commit_or_error(lambda: connector_pause(
        user=current_user(), paused=paused, reason=request.form.get("reason")))
    if error:
        return _settings_page(None, error, 422)
    flash("Sending paused: charges queue until you resume." if paused
          else "Sending resumed: queued charges go now.")
    return redirect(url_for("billing_admin.settings"))


@bp.post("/send-now")
@level_required(LEVEL_MANAGER, "manage billing")
def send_now():
    """Make every failing charge due now instead of at its next try."""
    count, _ = commit_or_error(lambda: charges_send_now(user=current_user()))
    flash(f"{count} failing charge{'s' if count != 1 else ''} will be sent now.")
    return redirect(url_for("billing_admin.settings"))


# The catalogue

def _items_page(data: dict | None = None, error: DomainError | None = None,
                item: BillingItem | None = None, status: int = 200):
    items = list(db.session.scalars(select(BillingItem).order_by(BillingItem.active.desc(),
                                                                 BillingItem.code)))
    if data is None:
        data = {"applies_to": "manual"} if item is None else {
            "code": item.code, "description": item.description,
            "unit_price": f"{item.unit_price:f}", "applies_to": item.applies_to,
            "match": item.match or "", "active": item.active}
    return render_template("billing/items.html", items=items, data=data, error=error,
                           item=item, labels=APPLIES_LABELS,
                           applies=[(k, APPLIES_LABELS[k]) for k in APPLIES_TO]), status


def _item(uid: str) -> BillingItem:
    return row_by_uid(BillingItem, uid, what="billing item", field="item")


@bp.get("/items")
@level_required(LEVEL_MANAGER, "change billing items")
def items():
    """The catalogue: every item, its code, price and what charges it; a form to add one."""
    return _items_page()


@bp.post("/items")
@level_required(LEVEL_MANAGER, "change billing items")
def item_add():
    """Add an item to the catalogue; nothing is stored if a field is wrong."""
    data = form_data(*ITEM_FIELDS)
    item, error = commit_or_error(lambda: item_save(user=current_user(), data=data))
    if error:
        return _items_page(data, error, status=422)
    flash(f"Item {item.code} added.")
    return redirect(url_for("billing_admin.items"))


@bp.get("/items/<uid>")
@level_required(LEVEL_MANAGER, "change billing items")
def item_edit(uid: str):
    """One item's form (its code stays; a price change applies to charges from now on)."""
    return _items_page(item=_item(uid))


@bp.post("/items/<uid>")
@level_required(LEVEL_MANAGER, "change billing items")
def item_update(uid: str):
    """Save an item's words, price, what charges it and whether it is in use."""
    item = _item(uid)
    data = form_data(*ITEM_FIELDS[1:])
    data["active"] = "1" if request.form.get("active") else "0"
    _, error = commit_or_error(lambda: item_save(user=current_user(), data=data, item=item))
    if error:
        return _items_page(data, error, _item(uid), status=422)
    flash(f"Item {item.code} saved.")
    return redirect(url_for("billing_admin.items"))


@bp.post("/items/<uid>/deactivate")
@level_required(LEVEL_MANAGER, "change billing items")
def item_deactivate(uid: str):
    """Take an item out of use (charges made with it stay as they are)."""
    item = _item(uid)
    data = {"description": item.description, "unit_price": item.unit_price,
            "applies_to": item.applies_to, "match": item.match, "active": "0"}
    _, error = commit_or_error(lambda: item_save(user=current_user(), data=data, item=item))
    if error:
        return _items_page(None, error, status=422)
    flash(f"Item {item.code} is no longer in use.")
    return redirect(url_for("billing_admin.items"))


# The CSV export

def _local_stamp(value: datetime | None, tz) -> str:
    return to_local(value, tz).strftime("%Y%m%d-%H%M") if value else "start"


def export_file_name(period: Period, tz, *, shift: str | None = None, patient=None) -> str:
    """The download's name: the period (a shift by its end, the current shift by its
    start, or dates) and the patient."""
    if period.mark is not None:
        name = f"charges-shift-to-{_local_stamp(period.mark.at, tz)}"
    elif shift == "current":
        name = f"charges-current-shift-from-{_local_stamp(period.start, tz)}"
    else:
        end = _local_stamp(period.end, tz) if period.end else "now"
        name = f"charges-{_local_stamp(period.start, tz)}-to-{end}"
    if patient is not None:
        label = _UNSAFE.sub("-", f"{patient.pims_id or patient.file_number or ''}-"
                                 f"{patient.name}").strip("-.")[:60]
        name += f"-{label or patient.uid[:8]}"
    return name + ".csv"


@bp.get("/export.csv")
@level_required(LEVEL_BILLING, "export charges")
def export_csv():
    """The charges of a shift or a period (all patients, or one) as a CSV to import."""
    tz = settings_zone()
    period = period_of_query(request.args, tz=tz)
    patient_uid = request.args.get("patient")
    patient = patient_by_uid(patient_uid) if patient_uid else None
    body = charges_csv(charges_in_period(period, patient=patient), tz=tz)
    name = export_file_name(period, tz, shift=request.args.get("shift"), patient=patient)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store"})
