"""Writing charges, items, end-of-shift marks and the connector's settings.

A charge is captured from the fact that caused it (billing listens for facts the other
features record, kiosk.core.events.fact_record), in the same unit of work: the completion
and its charge commit together or not at all. Its key comes from the cause, so the same
cause never charges twice, whichever device, resend or replay brings it.
"""

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from ipaddress import ip_address
from urllib.parse import urlsplit

from sqlalchemy import func, select

from ..clinic.selectors import settings_zone
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_MANAGER, LEVEL_ORDERS, permission_check
from ..core.clock import as_utc, to_local
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.models import new_uid, uid_check_free
from ..core.validate import decimal_optional, text_optional, text_required, timestamp
from ..extensions import db
from .models import APPLIES_TO, CONNECTOR_KINDS, BillingConnector, BillingItem, Charge, ShiftMark

LEVEL_BILLING = LEVEL_ORDERS  # level 4: end of shift, the report, charges by hand
# An action that reached the server this long after it was performed (by the device's
# corrected clock) was recorded on a tablet that could not reach it: flagged "offline".
OFFLINE_AFTER = timedelta(seconds=60)
FUTURE_TOLERANCE = timedelta(minutes=5)
PRICE_MAX = Decimal("100000")  # one item at more than this is a typing slip
QUANTITY_MAX = Decimal("1000")
CENTS = Decimal("0.01")

ERR_UNKNOWN_ITEM = "There is no billing item with the code “{code}”."
ERR_INACTIVE_ITEM = "The billing item “{code}” is no longer in use."
ERR_MARK_OLDER = ("An end of shift was already marked at {at}; a new mark must be later than "
                  "that.")
ERR_MARK_FUTURE = "The end of shift cannot be in the future."
ERR_ALREADY_REVERSED = "This charge has already been reversed."
ERR_REVERSE_REVERSAL = "A reversal cannot itself be reversed; charge the item again instead."
ERR_CODE_TAKEN = "A billing item with the code “{code}” already exists."
ERR_WEBHOOK_SCHEME = "The webhook address must start with http:// or https://."
ERR_WEBHOOK_HOST = "The webhook address needs a host name."
ERR_WEBHOOK_SELF = "The webhook address points at this server itself; give the practice system's."


def _money(value, field: str, label: str, *, required: bool = True) -> Decimal | None:
    """A price: a number of at most two decimals, not negative, not absurd."""
    number = decimal_optional(value, field, label, minimum=Decimal(0), maximum=PRICE_MAX)
    if number is None:
        if required:
            raise DomainError("required", f"{label} is required.", field=field)
        return None
    if number != number.quantize(CENTS):
        raise DomainError("bad_money", f"{label} has more than two decimals.", field=field)
    return number.quantize(CENTS)


def _quantity(value) -> Decimal:
    number = decimal_optional(value, "quantity", "Quantity", minimum=Decimal("0.001"),
                              maximum=QUANTITY_MAX)
    if number is None:
        raise DomainError("required", "Quantity is required.", field="quantity")
    if number != number.quantize(Decimal("0.001")):
        raise DomainError("bad_quantity", "Quantity has more than three decimals.",
                          field="quantity")
    return number.quantize(Decimal("0.001"))


def _total(quantity: Decimal, unit_price: Decimal) -> Decimal:
    return (quantity * unit_price).quantize(CENTS, rounding=ROUND_HALF_UP)


def offline_after() -> timedelta:
    """How late an action through a device must reach the server to count as captured
    offline (KIOSK_BILLING_OFFLINE_AFTER_S, 60 s by default)."""
    from flask import current_app

    seconds = current_app.config.get("KIOSK_BILLING_OFFLINE_AFTER_S")
    return OFFLINE_AFTER if seconds in (None, "") else timedelta(seconds=float(seconds))


def _offline(device, performed_at: datetime, recorded_at: datetime) -> bool:
    return device is not None and recorded_at - performed_at > offline_after()


def _captured(key: str, *, stored: bool = True) -> bool:
    """Whether a charge of this key exists: pending in this unit of work (read from the
    session itself, so a rolled-back attempt leaves nothing behind), or (unless the caller
    knows it cannot be, `stored=False`) stored or flushed."""
    if any(isinstance(row, Charge) and row.key == key for row in db.session.new):
        return True
    return stored and db.session.scalar(select(Charge.id).where(Charge.key == key)) is not None


def charge_capture(*, key: str, cause: str, patient, item_code: str, description: str,
                   unit_price: Decimal, quantity: Decimal = Decimal(1), user=None, device=None,
                   performed_at: datetime, now: datetime | None = None,
                   reverses: Charge | None = None, reason: str | None = None,
                   stored: bool = True, uid: str | None = None) -> Charge | None:
    """Record a charge once per key; None when this key was charged already. The unique
    key is the last word: a second charge of a key never commits."""
    if _captured(key, stored=stored):
        return None
    now = now or clock.utcnow()
    performed_at = as_utc(performed_at)
    charge = Charge(uid=uid or new_uid(), key=key, cause=cause, patient=patient,
                    item_code=item_code, description=description[:200], quantity=quantity,
                    unit_price=unit_price,
                    total=_total(quantity, unit_price), user_id=user.id if user else None,
                    device_id=device.id if device else None, performed_at=performed_at,
                    recorded_at=now, offline=_offline(device, performed_at, now),
                    reverses=reverses, reason=reason, send_attempts=0, send_next_at=now)
    db.session.add(charge)
    event_record(db.session, "charge.captured", patient=patient.uid, charge=charge.uid)
    return charge


def charge_for_task(*, task, completion, user, device=None, now=None) -> Charge | None:
    """A completed task of a billable order: one charge, keyed by the task's uid."""
    order = task.order
    if not order.billable_code or order.price is None:
        return None
    # A task's completion stands once (any later one is a conflict, which is no fact), so
    # its key cannot be stored yet: no query for it, on the sync path's hottest op.
    return charge_capture(key=f"task:{task.uid}", cause="task", patient=order.patient,
                          item_code=order.billable_code, description=order.name,
                          unit_price=order.price, user=user, device=device,
                          performed_at=completion.done_at, now=now, stored=False)


def _matching_item(applies_to: str, name: str | None) -> BillingItem | None:
    if not name:
        return None
    return db.session.scalar(select(BillingItem).where(
        BillingItem.applies_to == applies_to, BillingItem.active.is_(True),
        func.lower(BillingItem.match) == name.strip().lower()).order_by(BillingItem.id))


def charge_for_anaesthesia_drug(*, entry, patient, user, device=None, now=None) -> Charge | None:
    """An anaesthesia drug given whose name is a billing item's: one charge per entry."""
    item = _matching_item("anaesthesia_drug", (entry.data or {}).get("drug"))
    if item is None:
        return None
    return charge_capture(key=f"anaesthesia_drug:{entry.uid}", cause="anaesthesia_drug",
                          patient=patient, item_code=item.code,
                          description=f"{item.description} (anaesthesia)",
                          unit_price=item.unit_price, user=user, device=device,
                          performed_at=entry.at, now=now)


def charge_for_form(*, form, user, device=None, now=None) -> Charge | None:
    """A finalised form whose name is a billing item's (a fee): one charge per form."""
    item = _matching_item("form", form.version.name if form.version else None)
    if item is None:
        return None
    return charge_capture(key=f"form:{form.uid}", cause="form", patient=form.patient,
                          item_code=item.code, description=item.description,
                          unit_price=item.unit_price, user=user, device=device,
                          performed_at=form.finalised_at, now=now)


def item_by_code(code, *, field: str = "item_code") -> BillingItem:
    """The active catalogue item of this code, or a clear error naming `field`."""
    code = text_required(code, field, "Item code", 40)
    item = db.session.scalar(select(BillingItem).where(BillingItem.code == code))
    if item is None:
        raise DomainError("unknown_item", ERR_UNKNOWN_ITEM.format(code=code), field=field)
    if not item.active:
        raise DomainError("inactive_item", ERR_INACTIVE_ITEM.format(code=code), field=field)
    return item


def charge_add(*, patient, user, data: dict, uid: str | None = None, device=None,
               now: datetime | None = None) -> Charge:
    """A charge entered by hand (an item from the catalogue, a quantity, the item's price
    unless another is given), keyed by its own uid so a resend never doubles it."""
    permission_check(user, LEVEL_BILLING, "add charges")
    item = item_by_code(data.get("item_code"))
    quantity = _quantity(data.get("quantity", "1"))
    unit_price = _money(data.get("unit_price"), "unit_price", "Unit price", required=False)
    reason = text_optional(data.get("reason"), "reason", "Reason", 200)
    now = now or clock.utcnow()
    performed_at = _performed_at(data.get("performed_at"), now)
    uid = uid or new_uid()
    uid_check_free(Charge, uid, field="charge", what="charge")
    charge = charge_capture(key=f"manual:{uid}", cause="manual", patient=patient,
                            item_code=item.code, description=item.description,
                            unit_price=item.unit_price if unit_price is None else unit_price,
                            quantity=quantity, user=user, device=device,
                            performed_at=performed_at, now=now, reason=reason, uid=uid)
    audit_record(action="charge.add", entity="patient", entity_uid=patient.uid, user=user,
                 device=device, detail={"charge": uid, "item": item.code,
                                        "quantity": str(quantity)})
    return charge


def _performed_at(value, now: datetime) -> datetime:
    if value is None or value == "":
        return now
    at = timestamp(value, "performed_at", "Performed at")
    if at > now + FUTURE_TOLERANCE:
        raise DomainError("bad_time", "A charge cannot be performed in the future.",
                          field="performed_at")
    return at


def charge_reverse(*, charge: Charge, user, reason, device=None,
                   now: datetime | None = None) -> Charge:
    """Undo a charge after the fact: a reversing charge of the opposite quantity, never an
    edit; a charge is reversed once at most."""
    permission_check(user, LEVEL_BILLING, "reverse charges")
    reason = text_required(reason, "reason", "Reason", 200)
    if charge.reverses_id is not None:
        raise DomainError("reversal", ERR_REVERSE_REVERSAL, field="charge")
    if _captured(f"reversal:{charge.uid}"):
        raise DomainError("already_reversed", ERR_ALREADY_REVERSED, field="charge")
    now = now or clock.utcnow()
    reversal = charge_capture(key=f"reversal:{charge.uid}", cause="reversal",
                              patient=charge.patient, item_code=charge.item_code,
                              description=f"Reversal: {charge.description}"[:200],
                              unit_price=charge.unit_price, quantity=-charge.quantity,
                              user=user, device=device, performed_at=now, now=now,
                              reverses=charge, reason=reason)
    audit_record(action="charge.reverse", entity="patient", entity_uid=charge.patient.uid,
                 user=user, device=device, detail={"charge": charge.uid, "reason": reason})
    return reversal


def item_save(*, user, data: dict, item: BillingItem | None = None) -> BillingItem:
    """Add a catalogue item, or change one (its code stays)."""
    permission_check(user, LEVEL_MANAGER, "change billing items")
    fields = {
        "description": text_required(data.get("description"), "description", "Description",
                                     120),
        "unit_price": _money(data.get("unit_price"), "unit_price", "Unit price"),
        "applies_to": (data.get("applies_to") or "manual").strip(),
        "match": text_optional(data.get("match"), "match", "Matches", 120),
    }
    if fields["applies_to"] not in APPLIES_TO:
        raise DomainError("bad_choice", "Applies to must be one of: " + ", ".join(APPLIES_TO)
                          + ".", field="applies_to")
    if fields["applies_to"] in ("anaesthesia_drug", "form") and not fields["match"]:
        raise DomainError("required", "Say which drug or form name this item charges for.",
                          field="match")
    if item is None:
        code = text_required(data.get("code"), "code", "Item code", 40)
        if db.session.scalar(select(BillingItem.id).where(BillingItem.code == code)):
            raise DomainError("code_taken", ERR_CODE_TAKEN.format(code=code), field="code")
        item = BillingItem(uid=new_uid(), code=code, active=True)
        db.session.add(item)
    for key, value in fields.items():
        setattr(item, key, value)
    if "active" in data:
        item.active = str(data["active"]).lower() in ("1", "true", "on", "yes")
    audit_record(action="billing.item", entity="billing_item", entity_uid=item.uid, user=user,
                 detail={"code": item.code, "price": str(item.unit_price)})
    return item


def shift_mark_latest() -> ShiftMark | None:
    """The most recent end-of-shift mark."""
    return db.session.scalar(select(ShiftMark).order_by(ShiftMark.at.desc(), ShiftMark.id.desc())
                             .limit(1))


def shift_end(*, user, at=None, uid: str | None = None, device=None, note=None,
              now: datetime | None = None) -> ShiftMark:
    """Mark the end of a shift (now, or when a tablet marked it); marks only go forward."""
    permission_check(user, LEVEL_BILLING, "mark the end of a shift")
    return shift_mark_record(user=user, at=at, uid=uid, device=device, note=note, now=now)


def shift_mark_record(*, user, at=None, uid: str | None = None, device=None, note=None,
                      now: datetime | None = None) -> ShiftMark:
    """The mark itself, for callers that checked who may make it (shift_end) or act for the
    clinic by themselves (a maintenance window, in the name of the manager who planned it)."""
    now = now or clock.utcnow()
    at = as_utc(at) if at else now
    if at > now + FUTURE_TOLERANCE:
        raise DomainError("bad_time", ERR_MARK_FUTURE, field="at")
    note = text_optional(note, "note", "Note", 200)
    latest = shift_mark_latest()
    if latest is not None and at <= latest.at:
        raise DomainError("mark_too_old", ERR_MARK_OLDER.format(
            at=to_local(latest.at, settings_zone()).strftime("%Y-%m-%d %H:%M:%S")), field="at")
    if uid is not None:
        uid_check_free(ShiftMark, uid, field="mark", what="end-of-shift mark")
    mark = ShiftMark(uid=uid or new_uid(), at=at, user_id=user.id,
                     device_id=device.id if device else None, recorded_at=now, note=note)
    db.session.add(mark)
    audit_record(action="billing.shift_end", entity="shift_mark", entity_uid=mark.uid,
                 user=user, device=device, detail={"at": at.isoformat()})
    event_record(db.session, "billing.shift_ended", mark=mark.uid)
    return mark


def connector_get() -> BillingConnector:
    """The clinic's connector row (made on first use: none configured, not paused)."""
    row = db.session.scalar(select(BillingConnector).order_by(BillingConnector.id).limit(1))
    if row is None:
        row = BillingConnector(kind="none", paused=False)
        db.session.add(row)
        db.session.flush()
    return row


def webhook_url_clean(value, *, own_hosts=()) -> str:
    """An http(s) address with a host that is not this server (`own_hosts`: host[:port]
    names it is reached by), or a clear error naming `webhook_url`."""
    url = text_required(value, "webhook_url", "Webhook address", 500)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DomainError("bad_url", ERR_WEBHOOK_SCHEME, field="webhook_url")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise DomainError("bad_url", "The webhook address has a bad port.",
                          field="webhook_url") from exc
    if not host or parts.username or parts.password:
        raise DomainError("bad_url", ERR_WEBHOOK_HOST, field="webhook_url")
    port = port or (443 if parts.scheme == "https" else 80)
    for own in own_hosts:
        own_parts = urlsplit(f"//{own}")
        own_port = own_parts.port or (443 if parts.scheme == "https" else 80)
        if _same_host(host, own_parts.hostname or "") and own_port == port:
            raise DomainError("webhook_self", ERR_WEBHOOK_SELF, field="webhook_url")
    return url


def _host_key(name: str) -> str:
    """A host as one canonical text: any loopback or unspecified address (in any spelling:
    ::ffff:127.0.0.1, 2130706433, localhost) is "local"."""
    name = name.lower().strip("[]").rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "local"
    try:
        ip = ip_address(int(name)) if name.isdigit() else ip_address(name)
    except ValueError:
        return name
    mapped = getattr(ip, "ipv4_mapped", None)
    ip = mapped or ip
    return "local" if ip.is_loopback or ip.is_unspecified else str(ip)


def _same_host(a: str, b: str) -> bool:
    return _host_key(a) == _host_key(b)


def connector_configure(*, user, kind, webhook_url=None, own_hosts=()) -> BillingConnector:
    """Choose the connector: none (the billing report and CSV export) or a webhook."""
    permission_check(user, LEVEL_MANAGER, "configure the practice-system connector")
    kind = (kind or "none").strip()
    if kind not in CONNECTOR_KINDS:
        raise DomainError("bad_choice", "The connector must be one of: "
                          + ", ".join(CONNECTOR_KINDS) + ".", field="kind")
    url = webhook_url_clean(webhook_url, own_hosts=own_hosts) if kind == "webhook" else None
    row = connector_get()
    row.kind, row.webhook_url = kind, url
    audit_record(action="billing.connector", entity="billing_connector", entity_uid=str(row.id),
                 user=user, detail={"kind": kind})  # not the address: it may hold a token
    event_record(db.session, "billing.connector_changed")
    return row


def connector_pause(*, user, paused: bool, reason=None) -> BillingConnector:
    """Pause sending (an outage, an upgrade): charges queue; resuming sends them."""
    permission_check(user, LEVEL_MANAGER, "pause or resume sending charges")
    return connector_pause_set(user=user, paused=paused, reason=reason)


def connector_pause_set(*, user, paused: bool, reason=None) -> BillingConnector:
    """The pause itself, for callers that checked who may set it (connector_pause) or act
    for the clinic by themselves (a maintenance window); `user` may be None."""
    reason = text_optional(reason, "reason", "Reason", 200)
    row = connector_get()
    row.paused = paused
    row.paused_at = clock.utcnow() if paused else None
    row.paused_by_id = user.id if paused and user is not None else None
    row.pause_reason = reason if paused else None
    audit_record(action="billing.pause" if paused else "billing.resume",
                 entity="billing_connector", entity_uid=str(row.id), user=user,
                 detail={"reason": reason})
    event_record(db.session, "billing.connector_changed")
    return row
