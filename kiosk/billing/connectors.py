"""Taking charges to the practice system: a CSV export it imports, and a webhook that
receives each charge as JSON.

A connector pushes one charge at a time (`send`), raising ConnectorError with a reason a
manager can read: never the address (it may carry a token), never the answer's body. The
CSV export is pulled instead: a manager downloads a shift's or a patient's charges and
imports the file.
"""

import csv
import io
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from ..clinic.selectors import settings_zone
from ..core.clock import format_iso_z, to_local
from .models import Charge

WEBHOOK_TIMEOUT_S = 10.0
CSV_HEADER = ("date", "time", "patient_pims_id", "file_number", "patient_name", "item_code",
              "description", "quantity", "unit_price", "total", "staff", "device", "offline",
              "charge_id", "reverses")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


class ConnectorError(Exception):
    """A charge the practice system did not take, and why (shown to a manager)."""


class Connector(Protocol):
    """What takes charges to the practice system, one at a time."""

    name: str

    def send(self, charge: Charge) -> None:
        """Hand `charge` over, or raise ConnectorError saying why it did not go."""


def decimal_plain(value: Decimal) -> str:
    """A decimal as plain digits with a dot, no exponent and no trailing zeros ("1", "0.5")."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "+0") else text


def money_plain(value: Decimal) -> str:
    """An amount with exactly two decimals ("12.50", "-6.40")."""
    return f"{value.quantize(Decimal('0.01')):f}"


def _cell(value: str) -> str:
    """Neutralise a text cell a spreadsheet would run as a formula (numbers stay numbers)."""
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_row(charge: Charge, tz: ZoneInfo) -> list[str]:
    local = to_local(charge.performed_at, tz)
    patient = charge.patient
    return [local.date().isoformat(), local.strftime("%H:%M:%S"), patient.pims_id or "",
            patient.file_number or "", patient.name, charge.item_code, charge.description,
            decimal_plain(charge.quantity), money_plain(charge.unit_price),
            money_plain(charge.total), charge.user.name if charge.user else "",
            charge.device.label if charge.device else "", "yes" if charge.offline else "no",
            charge.uid, charge.reverses.uid if charge.reverses else ""]


def charges_csv(charges: Iterable[Charge], *, tz: ZoneInfo | None = None) -> str:
    """The charges as a CSV practice systems import: a header row, then one row per charge
    (its date and time on the clinic's clock), every text cell safe to open in a spreadsheet."""
    tz = tz or settings_zone()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for charge in charges:
        writer.writerow([_cell(value) for value in _csv_row(charge, tz)])
    return out.getvalue()


def charge_payload(charge: Charge) -> dict:
    """The JSON a webhook receives for one charge: amounts as strings, times in UTC."""
    patient = charge.patient
    return {
        "uid": charge.uid,
        "key": charge.key,
        "patient": {"uid": patient.uid, "pims_id": patient.pims_id,
                    "file_number": patient.file_number, "name": patient.name},
        "item_code": charge.item_code,
        "description": charge.description,
        "quantity": decimal_plain(charge.quantity),
        "unit_price": money_plain(charge.unit_price),
        "total": money_plain(charge.total),
        "performed_at": format_iso_z(charge.performed_at),
        "recorded_at": format_iso_z(charge.recorded_at),
        "offline": bool(charge.offline),
        "by": charge.user.name if charge.user else None,
        "device": charge.device.label if charge.device else None,
        "reverses": charge.reverses.uid if charge.reverses else None,
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a 2xx: following it would turn the POST into a GET."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """Follow nothing."""
        return None


class WebhookConnector:
    """POSTs each charge as JSON with `Idempotency-Key: <charge uid>`; only a 2xx answer
    counts as sent, so a charge that arrived but whose answer was lost is sent again and
    the practice system drops the repeat by its key."""

    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float = WEBHOOK_TIMEOUT_S):
        self.url = url
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, charge: Charge) -> None:
        """POST the charge; ConnectorError unless the practice system answers 2xx in time."""
        self.post(charge.uid, charge_payload(charge))

    def post(self, key: str, payload: dict) -> None:
        """POST a prepared payload under its idempotency key (no database needed)."""
        if urlsplit(self.url).scheme not in ("http", "https"):
            # Checked when a manager saved it (services.webhook_url_clean); never file: etc.
            raise ConnectorError("The webhook address is not an http(s) address.")
        body = json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={  # noqa: S310
            "Content-Type": "application/json", "Idempotency-Key": key,
            "User-Agent": "kiosk-billing"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            raise ConnectorError(f"The practice system answered {exc.code} "
                                 f"{_reason(exc.reason)}.") from None
        except TimeoutError:
            raise ConnectorError(f"The practice system did not answer within "
                                 f"{self.timeout_s:g} s.") from None
        except urllib.error.URLError as exc:
            raise ConnectorError(_unreachable(exc.reason)) from None
        except OSError as exc:  # a connection reset or dropped mid-answer
            raise ConnectorError(f"The connection to the practice system failed: "
                                 f"{type(exc).__name__}.") from None
        if not 200 <= status < 300:
            raise ConnectorError(f"The practice system answered {status}.")


def _reason(reason) -> str:
    """An HTTP reason phrase, short and on one line."""
    return " ".join(str(reason or "").split())[:60]


def _unreachable(reason) -> str:
    if isinstance(reason, TimeoutError):
        return "The practice system did not answer in time."
    if isinstance(reason, socket.gaierror):
        return "The practice system's host name could not be found."
    if isinstance(reason, ConnectionRefusedError):
        return "The practice system refused the connection (is it running?)."
    if isinstance(reason, OSError):
        return f"The practice system could not be reached: {type(reason).__name__}."
    return "The practice system could not be reached."
