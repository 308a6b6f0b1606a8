"""Form templates and filled forms for the tests and bench/documents.py."""

import base64
import struct
import zlib
from datetime import UTC, datetime, timedelta

from kiosk.extensions import db
from kiosk.forms.services import form_fill, form_finalise, form_start, form_template_create

CONSENT_FIELDS = [
    {"key": "intro", "label": "Consent to anaesthesia", "type": "heading"},
    {"key": "owner_name", "label": "Owner's name", "type": "text", "required": True},
    {"key": "weight", "label": "Weight (kg)", "type": "number"},
    {"key": "procedure_date", "label": "Date of the procedure", "type": "date"},
    {"key": "cpr", "label": "If the heart stops", "type": "choice", "required": True,
     "options": ["Resuscitate", "Do not resuscitate"]},
    {"key": "agree", "label": "I understand the risks of anaesthesia", "type": "checkbox",
     "required": True},
    {"key": "signature", "label": "Owner's signature", "type": "signature", "required": True},
]


def png_data_url(width: int = 40, height: int = 12, *, noise: bool = False) -> str:
    """A real PNG (a dark stroke on white; pseudo-random pixels with `noise`) as a data URL."""
    rows = b""
    seed = 12345
    for y in range(height):
        row = bytearray([0])
        for _x in range(width):
            if noise:
                seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
                row += bytes([seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF])
            else:
                row += b"\x11\x11\x11" if abs(y - height // 2) <= 1 else b"\xff\xff\xff"
        rows += bytes(row)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                             8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows, 0 if noise else 9)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def consent_template(clinic, name: str = "Anaesthesia consent"):
    """The consent template, published (version 1)."""
    template = form_template_create(user=clinic.user(6), name=name, fields=CONSENT_FIELDS)
    db.session.commit()
    return template


def consent_values() -> dict:
    """Every field of the consent form filled."""
    return {"owner_name": "A. Client", "weight": "32.4", "procedure_date": "2026-11-23",
            "cpr": "Resuscitate", "agree": True, "signature": png_data_url()}


def long_form_fields(sections: int = 5, per_section: int = 12) -> list[dict]:
    """A long form: headed sections of text, number, date, choice and tick-box fields, and
    two signatures at the end (about three A4 pages once filled)."""
    kinds = ["text", "number", "date", "choice", "checkbox", "text", "text"]
    fields = []
    for s in range(sections):
        fields.append({"key": f"section_{s}", "label": f"Section {s + 1}", "type": "heading"})
        for n in range(per_section):
            kind = kinds[n % len(kinds)]
            field = {"key": f"s{s}_f{n}", "label": f"Question {s + 1}.{n + 1} ({kind})",
                     "type": kind, "required": n % 3 == 0}
            if kind == "choice":
                field["options"] = ["Yes", "No", "Not known"]
            fields.append(field)
    fields.append({"key": "owner_signature", "label": "Owner's signature", "type": "signature",
                   "required": True})
    fields.append({"key": "vet_signature", "label": "Veterinarian's signature",
                   "type": "signature"})
    return fields


def long_form(clinic, patient, *, finalise: bool = True):
    """A long form (long_form_fields) started, every field filled, finalised."""
    user = clinic.user(3)
    fields = long_form_fields()
    template = form_template_create(user=clinic.user(6), name="Discharge instructions",
                                    fields=fields)
    at = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    form = form_start(patient=patient, template=template, user=user, at=at)
    samples = {"text": "Rest for two weeks; short lead walks only, and keep the wound dry "
                       "and clean. Call the clinic if it swells.",
               "number": "12.5", "date": "2026-12-06", "choice": "Yes", "checkbox": True}
    values = {f["key"]: samples[f["type"]] for f in fields if f["type"] in samples}
    values["owner_signature"] = values["vet_signature"] = png_data_url(300, 90)
    form_fill(form=form, user=user, values=values, at=at + timedelta(minutes=5))
    if finalise:
        form_finalise(form=form, user=user, at=at + timedelta(minutes=10))
    db.session.commit()
    return form
