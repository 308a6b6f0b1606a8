"""The rules of a form's fields: what a template may hold, and what each field accepts."""

import base64
import binascii
import re

from ..core.errors import DomainError
from ..core.validate import day, decimal_optional, text_optional, text_required
from .models import FIELD_TYPES

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_FIELDS = 200
MAX_OPTIONS = 50
MAX_TEXT = 4000
PNG_PREFIX = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SIGNATURE_BYTES = 256 * 1024
TRUE_TEXT = {"1", "true", "on", "yes"}
FALSE_TEXT = {"", "0", "false", "off", "no"}

ERR_NO_FIELDS = "A form needs at least one field."
ERR_NO_LABEL = "Field {n} ({key}) needs a label."
ERR_BAD_KEY = ("Field {n}: the key “{key}” must start with a letter and hold only a–z, "
               "0–9 and _ (at most 40).")
ERR_DUPLICATE = "Field {n}: the key “{key}” is used twice; every field needs its own key."
ERR_TYPE = "Field {n} ({key}): “{type}” is not a field type (one of: {types})."
ERR_NO_OPTIONS = "Field {n} ({key}) is a choice and needs at least one option."
ERR_SIGNATURE = "{label}: the signature must be a PNG image drawn on the form ({why})."


def _name(n: int, raw: dict) -> str:
    key = raw.get("key") if isinstance(raw.get("key"), str) and raw.get("key") else None
    return key or f"field {n}"


def fields_clean(raw) -> list[dict]:
    """A template's fields checked and normalised; DomainError naming the first bad one.

    Each error's `field` is the key of the field at fault (or "field N" when it has no
    usable key), and the message says which field and why.
    """
    if not isinstance(raw, list) or not raw:
        raise DomainError("required", ERR_NO_FIELDS, field="fields")
    if len(raw) > MAX_FIELDS:
        raise DomainError("too_many", f"A form holds at most {MAX_FIELDS} fields.",
                          field="fields")
    seen: set[str] = set()
    out = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise DomainError("bad_type", f"Field {n} must be an object.", field=f"field {n}")
        out.append(_field_clean(n, item, seen))
    return out


def _field_clean(n: int, item: dict, seen: set[str]) -> dict:
    name = _name(n, item)
    key = item.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        raise DomainError("bad_key", ERR_BAD_KEY.format(n=n, key=key or ""), field=name)
    if key in seen:
        raise DomainError("duplicate_key", ERR_DUPLICATE.format(n=n, key=key), field=key)
    seen.add(key)
    kind = item.get("type")
    if kind not in FIELD_TYPES:
        raise DomainError("unknown_type", ERR_TYPE.format(n=n, key=key, type=kind,
                                                          types=", ".join(FIELD_TYPES)),
                          field=key)
    label = item.get("label")
    if not isinstance(label, str) or not label.strip():
        raise DomainError("required", ERR_NO_LABEL.format(n=n, key=key), field=key)
    label = text_required(label, key, f"Field {n} ({key}): the label", 300)
    field = {"key": key, "label": label, "type": kind,
             "required": bool(item.get("required")) and kind != "heading"}
    if kind == "choice":
        options = item.get("options")
        if isinstance(options, str):
            options = options.split("\n")
        if not isinstance(options, list):
            options = []
        clean = []
        for option in options:
            text = text_optional(option if isinstance(option, str) else None, key,
                                 f"Field {n} ({key}): an option", 200)
            if text and text not in clean:
                clean.append(text)
        if not clean:
            raise DomainError("no_options", ERR_NO_OPTIONS.format(n=n, key=key), field=key)
        if len(clean) > MAX_OPTIONS:
            raise DomainError("too_many", f"Field {n} ({key}) has more than {MAX_OPTIONS} "
                              "options.", field=key)
        field["options"] = clean
    return field


def value_clean(field: dict, value):
    """A value for `field` as stored (None: empty), or DomainError naming the field."""
    key, label, kind = field["key"], field["label"], field["type"]
    if kind == "heading":
        raise DomainError("no_value", f"“{label}” is a heading: it takes no value.", field=key)
    if value is None or (isinstance(value, str) and not value.strip() and kind != "checkbox"):
        return None
    if kind == "text":
        return text_optional(_text(value, key, label), key, label, MAX_TEXT)
    if kind == "number":
        number = decimal_optional(value, key, label, minimum=None)
        return None if number is None else format(number.normalize(), "f")
    if kind == "checkbox":
        return _boolean(value, key, label)
    if kind == "choice":
        text = _text(value, key, label).strip()
        if text not in field["options"]:
            raise DomainError("bad_choice", f"{label} must be one of: "
                              f"{', '.join(field['options'])}.", field=key)
        return text
    if kind == "date":
        return day(_text(value, key, label).strip(), key, label).isoformat()
    return signature_clean(value, key, label)


def _text(value, key: str, label: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DomainError("bad_type", f"{label} must be text.", field=key)
    return str(value)


def _boolean(value, key: str, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_TEXT | FALSE_TEXT:
        return value.strip().lower() in TRUE_TEXT
    raise DomainError("bad_type", f"{label} must be ticked or not (true or false).", field=key)


def signature_clean(value, key: str, label: str) -> str:
    """A PNG data URL that decodes to a PNG of at most 256 KiB, or DomainError."""
    def bad(why: str):
        return DomainError("bad_signature", ERR_SIGNATURE.format(label=label, why=why),
                           field=key)

    if not isinstance(value, str) or not value.startswith(PNG_PREFIX):
        raise bad("it is not a data:image/png;base64 URL")
    body = value[len(PNG_PREFIX):]
    if len(body) > (MAX_SIGNATURE_BYTES * 4) // 3 + 4:
        raise bad(f"larger than {MAX_SIGNATURE_BYTES // 1024} KB")
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise bad("it does not decode") from None
    if not data.startswith(PNG_MAGIC):
        raise bad("it is not a PNG")
    if len(data) > MAX_SIGNATURE_BYTES:
        raise bad(f"larger than {MAX_SIGNATURE_BYTES // 1024} KB")
    return value


def value_missing(field: dict, value) -> bool:
    """Whether a required field still lacks its value (a checkbox must be ticked)."""
    if field["type"] == "checkbox":
        return value is not True
    return value is None or value == ""


def same_value(field: dict, a, b) -> bool:
    """Whether two stored values mean the same (an unticked box is an empty one)."""
    if field["type"] == "checkbox":
        return bool(a) == bool(b)
    return a == b


def posted_values(fields: list[dict], form) -> dict:
    """The posted value of each field of a form version, from a request's form (a
    MultiDict): a checkbox is whether it came, a signature only when drawn, a heading
    nothing. The staff's form page and the client portal read a filled form the same way."""
    values = {}
    for field in fields:
        key, kind = field["key"], field["type"]
        if kind == "heading":
            continue
        if kind == "checkbox":
            values[key] = key in form
        elif kind == "signature":
            if form.get(key):
                values[key] = form[key]
        elif key in form:
            values[key] = form[key]
    return values
