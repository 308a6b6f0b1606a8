"""Reading PIMS exports: CSV or JSON bytes become numbered rows keyed by patient field.

Nothing here touches the database. A problem that makes the whole file unreadable
(empty, not UTF-8, malformed, wrong shape, too large, too many rows) raises
`ImportRefused` at once; problems of single rows are collected in `ParsedFile.errors`
so that every one of them can be reported together.

Row numbers are the ones people see: in a CSV the header is row 1 and the first
patient row 2 (as a spreadsheet numbers them; blank lines count but are skipped);
in JSON the first patient object is row 1.
"""

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from ..core.errors import DomainError

FORMATS = ("csv", "json")

ERR_REFUSED = ("Nothing was imported: the file has {count} problem{s}. Correct the file and "
               "import all of it again.")
ERR_EMPTY = "The file is empty."
ERR_NO_ROWS = "The file has no patients in it."
ERR_NOT_UTF8 = ("The file is not UTF-8 text (byte {position} cannot be read); export or save "
                "it as UTF-8 and try again.")
ERR_TOO_LARGE = "The file is larger than {limit}; split it into smaller files."
ERR_TOO_MANY_ROWS = "The file has more than {limit} patients; split it into smaller files."
ERR_FORMAT = "Choose a .csv or a .json file (or give the format: csv or json)."
ERR_BAD_CSV = "The CSV cannot be read at line {line}: {reason}."
ERR_BAD_JSON = "The JSON cannot be read at line {line}, column {column}: {reason}."
ERR_JSON_SHAPE = 'The JSON must be a list of patients, or an object {"patients": [...]}.'
ERR_JSON_DEEP = "The JSON is nested too deeply to be a list of patients."
ERR_NOT_OBJECT = "Each patient must be a JSON object with fields such as pims_id and name."
ERR_NO_PIMS_COLUMN = ("The file has no pims_id column (a header such as “pims_id”, "
                      "“Patient ID” or “PIMS ID”).")
ERR_SAME_FIELD = "“{first}” and “{second}” both give {field}; keep only one of them."
ERR_EXTRA_CELLS = "This row has {count} cells but the header has only {header}."

# Each patient field, what it holds (shown on the upload page), and the other names
# practice systems give it (compared after `column_key`).
COLUMNS = (
    ("pims_id", "The patient's id in the practice system (required).",
     ("patient_id", "patientid", "pims", "pms_id", "animal_id", "animal_code", "patient_code",
      "patient_number", "patient_no", "external_id", "id")),
    ("name", "The patient's name (required for a new patient).",
     ("patient_name", "patient", "animal_name", "pet_name", "animal")),
    ("species", "canine, feline … (required for a new patient).", ()),
    ("breed", "", ()),
    ("sex", "M, MN, F, FS or U (or words such as “female spayed”).", ("gender",)),
    ("weight_kg", "In kilograms, e.g. 12.5.",
     ("weight", "weight_kgs", "kg", "body_weight", "bodyweight")),
    ("date_of_birth", "YYYY-MM-DD.", ("dob", "birth_date", "birthdate", "birthday", "born")),
    ("owner_id", "The owner's (client's) id in the practice system: rows with the same id "
     "share one owner.", ("client_id", "owner_pims_id", "client_number")),
    ("owner_name", "The owner's name: links the patient to the owner's record (by owner_id, "
     "else the patient's own owner, else a new one).",
     ("owner", "client", "client_name", "owner_full_name")),
    ("owner_phone", "A mobile number with its country code (+44 7700 900123), or as dialled "
     "here (07700 900123).",
     ("phone", "owner_s_phone", "client_phone", "owner_mobile", "mobile", "telephone",
      "contact_number")),
    ("owner_email", "The owner's e-mail address.", ("email", "client_email")),
    ("sms_consent", "Whether the owner agreed to text messages: yes/no, true/false or 1/0 "
     "(left empty: as it was; a new owner: no).", ()),
    ("preferred_channel", "email, sms, voice or portal (a new owner without one: e-mail when "
     "there is an address, else SMS with consent, else the portal).", ()),
    ("ward", "The ward's name as set up in this clinic.", ("ward_name", "location")),
    ("cage", "", ("kennel", "cage_number", "cage_no", "run")),
    ("doctor", "The doctor on duty.",
     ("vet", "veterinarian", "attending_vet", "clinician", "doctor_on_duty")),
    ("colour", "The panel colour: red, orange, yellow, green, teal, blue, purple, pink, grey.",
     ("color", "panel_colour", "panel_color")),
    ("alerts", "caution, bites, dnr, isolation, allergies; several separated by ; or |.",
     ("alert", "warnings", "flags")),
    ("alert_note", "E.g. allergic to penicillin.", ("alert_notes", "caution_note")),
    ("file_number", "", ("file_no", "file", "record_number", "record_no")),
)
ALIASES = {alias: name for name, _, aliases in COLUMNS for alias in (name, *aliases)}


@dataclass(frozen=True)
class RowError:
    """One problem: the row (None for the whole file), the field when known, and why."""

    row: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict:
        """The problem as a JSON-ready dict."""
        return {"row": self.row, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        return f"{where}, {self.field or '—'}: {self.message}"


class ImportRefused(DomainError):
    """The file was refused whole; `errors` lists every problem found."""

    def __init__(self, errors: list[RowError]):
        count = len(errors)
        super().__init__("import_refused",
                         ERR_REFUSED.format(count=count, s="" if count == 1 else "s"),
                         status=422)
        self.errors = sorted(errors, key=lambda e: (e.row is not None, e.row or 0))

    def as_dict(self) -> dict:
        """The refusal as a JSON-ready dict, with every problem."""
        return {**super().as_dict(), "errors": [e.as_dict() for e in self.errors]}


@dataclass
class ParsedFile:
    """Rows as (row number, {field: raw value}), ignored column names, and row problems."""

    rows: list[tuple[int, dict]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def refuse(message: str, row: int | None = None, field_name: str | None = None):
    """Raise ImportRefused for a single problem that stops the whole file."""
    raise ImportRefused([RowError(row, field_name, message)])


def column_key(header: str) -> str:
    """A header reduced for matching: 'Patient ID' → 'patient_id', 'Weight (kg)' → 'weight_kg'."""
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def size_text(limit: int) -> str:
    """A byte count as people say it: 1 MiB, 512 KiB, 300 bytes."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def format_guess(filename: str | None, file_format: str | None = None) -> str:
    """'csv' or 'json': as given, else from the file name's extension."""
    chosen = (file_format or PurePath(filename or "").suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        refuse(ERR_FORMAT, field_name="file")
    return chosen


def file_parse(content: bytes, *, file_format: str, max_bytes: int, max_rows: int) -> ParsedFile:
    """Check size and encoding, then read the CSV or JSON into rows."""
    if len(content) > max_bytes:
        refuse(ERR_TOO_LARGE.format(limit=size_text(max_bytes)), field_name="file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        refuse(ERR_NOT_UTF8.format(position=exc.start + 1), field_name="file")
    if not text.strip():
        refuse(ERR_EMPTY, field_name="file")
    if file_format == "json":
        return json_parse(text, max_rows=max_rows)
    return csv_parse(text, max_rows=max_rows)


def csv_parse(text: str, *, max_rows: int) -> ParsedFile:
    """Rows of a CSV whose first row names the columns (',', ';' or tab separated)."""
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    parsed = ParsedFile()
    try:
        header = next(reader)
        fields = _header_map(header, parsed)
        for row, record in enumerate(reader, start=2):
            if any(cell.strip() for cell in record):
                if len(parsed.rows) >= max_rows:
                    refuse(ERR_TOO_MANY_ROWS.format(limit=max_rows), field_name="file")
                parsed.rows.append((row, _record_map(row, record, fields, len(header),
                                                     parsed)))
    except csv.Error as exc:
        refuse(ERR_BAD_CSV.format(line=reader.line_num, reason=exc), field_name="file")
    if not parsed.rows:
        refuse(ERR_NO_ROWS, field_name="file")
    return parsed


def _header_map(header: list[str], parsed: ParsedFile) -> dict[int, str]:
    """Column index → field; unknown headers go to `ignored_columns`."""
    fields: dict[int, str] = {}
    named: dict[str, str] = {}
    for index, title in enumerate(header):
        name = ALIASES.get(column_key(title))
        if name is None:
            parsed.ignored_columns.append(title.strip() or f"(column {index + 1}, no name)")
        elif name in named:
            refuse(ERR_SAME_FIELD.format(first=named[name], second=title.strip(), field=name),
                   row=1, field_name=name)
        else:
            fields[index] = name
            named[name] = title.strip()
    if "pims_id" not in named:
        refuse(ERR_NO_PIMS_COLUMN, row=1, field_name="pims_id")
    return fields


def _record_map(row: int, record: list[str], fields: dict[int, str], header_len: int,
                parsed: ParsedFile) -> dict:
    """One CSV record as {field: text}; cells missing at the end count as empty."""
    if len(record) > header_len and any(cell.strip() for cell in record[header_len:]):
        parsed.errors.append(RowError(row, None, ERR_EXTRA_CELLS.format(
            count=len(record), header=header_len)))
    return {name: record[index] if index < len(record) else ""
            for index, name in fields.items()}


def json_parse(text: str, *, max_rows: int) -> ParsedFile:
    """Rows of a JSON list of objects, or of an object whose "patients" is that list."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        refuse(ERR_BAD_JSON.format(line=exc.lineno, column=exc.colno, reason=exc.msg),
               field_name="file")
    except RecursionError:
        refuse(ERR_JSON_DEEP, field_name="file")
    items = data.get("patients") if isinstance(data, dict) else data
    return items_parse(items, max_rows=max_rows)


def items_parse(items, *, max_rows: int) -> ParsedFile:
    """Rows of a list of objects keyed like the columns (from JSON, or given directly)."""
    if not isinstance(items, list | tuple):
        refuse(ERR_JSON_SHAPE, field_name="file")
    if not items:
        refuse(ERR_NO_ROWS, field_name="file")
    if len(items) > max_rows:
        refuse(ERR_TOO_MANY_ROWS.format(limit=max_rows), field_name="file")
    parsed = ParsedFile()
    for row, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            parsed.errors.append(RowError(row, None, ERR_NOT_OBJECT))
            continue
        parsed.rows.append((row, _object_map(row, item, parsed)))
    return parsed


def _object_map(row: int, item: dict, parsed: ParsedFile) -> dict:
    """One JSON object as {field: value}; unknown keys go to `ignored_columns` once."""
    out: dict = {}
    named: dict[str, str] = {}
    for key, value in item.items():
        name = ALIASES.get(column_key(str(key)))
        if name is None:
            if key not in parsed.ignored_columns:
                parsed.ignored_columns.append(key)
        elif name in named:
            parsed.errors.append(RowError(row, name, ERR_SAME_FIELD.format(
                first=named[name], second=key, field=name)))
        else:
            out[name] = value
            named[name] = key
    return out
