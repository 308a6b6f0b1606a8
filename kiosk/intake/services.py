"""PIMS import: patients from a practice-system export (CSV or JSON), all or nothing.

Policy
------
- **The whole file or nothing.** Every row is validated first (with the same
  `patient_fields_clean` as the patient form); if any row has a problem the file is
  refused, every problem is reported (row number, field, reason) and nothing at all is
  stored. Only a clean file is applied, in one unit of work the caller commits.
- The file is also refused when it is empty, not UTF-8 (a BOM is fine), malformed CSV or
  JSON, JSON of another shape (a list of patient objects, or {"patients": [...]} is
  expected), larger than ``KIOSK_IMPORT_MAX_BYTES`` (checked before parsing), longer
  than `IMPORT_MAX_ROWS` patients, or gives the same pims_id on two rows.
- Rows are matched by ``pims_id`` (required on every row). An unknown id creates an
  admitted patient (origin "pims"); a known id updates that patient's details.
- **A patient created at the bedside is linked, not duplicated.** A row whose pims_id is
  unknown but whose file number and name (ignoring case and spacing) are those of exactly
  one admitted, unallocated patient created directly (on a tablet or the patient form)
  links that patient: it gets the row's pims_id and details, is no longer unallocated,
  and its held charges go to the practice system with the next send. A file number alone
  is not enough (a slip would send one animal's charges to another's account). With no
  file number on either side the row creates a patient as before. More than one such
  patient, or two rows naming the same one, refuse the file (a guess could bill the wrong
  client, and a second patient would take the pims_id the right one needs).
- **An import never erases.** An empty cell (or a JSON null, or a key left out) leaves
  the stored detail as it is; to clear a detail, edit the patient. A row that changes
  nothing is counted as unchanged and writes nothing.
- **A discharged patient stays discharged.** Its details are updated like any other,
  but its status is not changed: re-admission happens in the practice system and then
  on the patient's page, never as a side effect of a file.
- **Owners.** A row with an owner's name or id links its patient to an owner's record
  (kiosk.owners): the owner with that owner_id, else the patient's own owner, else a new
  one; rows with the same owner_id share one owner. Only the contact details the row
  gives change; consent changes only when the row says yes or no, and an opt-out is
  never cleared. An e-mail address that is not one, a phone number that does not
  normalise, a consent that is not yes or no, or a preferred channel without what it
  needs (an address, a phone, consent) is a problem of that row like any other.
- Needs level 4 (`LEVEL_ORDERS`). One audit row records the file (counts, ignored
  columns, its SHA-256); the patient services add their own row per patient.
"""

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..clinic.models import Ward
from ..core.audit import audit_record
from ..core.auth import LEVEL_ORDERS, permission_check
from ..core.errors import DomainError
from ..core.validate import text_required
from ..extensions import db
from ..owners.models import Owner
from ..owners.services import (
    owner_fields_clean,
    owner_import_fields,
    owner_import_find,
    owner_import_save,
    owner_link,
)
from ..patients.models import Patient
from ..patients.services import patient_create, patient_fields_clean, patient_update, ward_resolve
from .parsing import (
    ALIASES,
    COLUMNS,
    ImportRefused,
    ParsedFile,
    RowError,
    file_parse,
    format_guess,
    items_parse,
)

__all__ = ["ALIASES", "COLUMNS", "IMPORT_MAX_ROWS", "ImportRefused", "ImportSummary",
           "RowError", "patients_import"]

IMPORT_MAX_ROWS = 5000

ERR_PIMS_REQUIRED = "Practice-system id is required for an import."
ERR_PIMS_TWICE = "Practice-system id {pims_id} is also on row {first}."
ERR_BEDSIDE_TWICE = ("{count} admitted patients created at the bedside have file number "
                     "{number} and the name {name}: link the right one to the practice "
                     "system by hand (Edit patient), then import the file again.")
ERR_BEDSIDE_CLAIMED = ("{name}, created at the bedside, would also be linked by row {first}: "
                       "a patient is linked to one practice-system record.")
ERR_CONFLICT = "This patient was changed by someone else during the import; import the file again."
ERR_OWNER_NAME_NEEDED = ("An owner's e-mail, consent or preferred channel needs the owner's "
                         "name or id on the row.")

# Fields whose value is text even when a JSON export gives a number (ids, cages, phones).
TEXT_KEYS = ("pims_id", "name", "species", "breed", "owner_name", "owner_phone", "cage",
             "doctor", "alert_note", "file_number", "owner_id", "owner_email")
# The columns about the owner, and the owner's field each one gives (kiosk.owners).
OWNER_COLUMNS = {"owner_id": "pims_id", "owner_name": "name", "owner_phone": "phone",
                 "owner_email": "email", "sms_consent": "sms_consent",
                 "preferred_channel": "preferred_channel"}
COLUMN_OF_OWNER_FIELD = {name: column for column, name in OWNER_COLUMNS.items()}
# Columns only an owner's record holds (a patient keeps a copy of the name and phone).
OWNER_ONLY = ("owner_id", "owner_email", "sms_consent", "preferred_channel")
CHANNEL_WORDS = {"e-mail": "email", "mail": "email", "text": "sms", "phone": "voice",
                 "call": "voice"}
# How practice systems write the sex, in words → the codes patients use.
SEX_WORDS = {"male": "M", "entire male": "M", "male entire": "M", "female": "F",
             "entire female": "F", "female entire": "F", "male neutered": "MN",
             "neutered male": "MN", "male castrated": "MN", "castrated male": "MN", "mc": "MN",
             "female spayed": "FS", "spayed female": "FS", "female neutered": "FS",
             "neutered female": "FS", "fn": "FS", "unknown": "U"}
GRAMS = Decimal("0.001")


@dataclass
class ImportSummary:
    """What one import did."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    linked: int = 0
    owners_created: int = 0
    owners_updated: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    file_format: str | None = None

    def as_dict(self) -> dict:
        """The summary as a JSON-ready dict."""
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "linked": self.linked,
                "owners_created": self.owners_created, "owners_updated": self.owners_updated,
                "ignored_columns": self.ignored_columns,
                "format": self.file_format}


@dataclass
class _RowPlan:
    row: int
    data: dict
    patient: Patient | None
    changes: dict
    linked: bool = False
    owner: dict | None = None  # the row's owner columns, when it links an owner


def patients_import(*, user, content: bytes | None = None, file_format: str | None = None,
                    filename: str | None = None, rows: list[dict] | None = None,
                    device=None) -> ImportSummary:
    """Create or update patients by pims_id from a file or rows; refuse all of it on any error.

    Give `content` (the file's bytes) with `filename` and/or `file_format` ('csv', 'json'),
    or `rows` (dicts keyed like the columns). Raises ImportRefused listing every problem.
    """
    permission_check(user, LEVEL_ORDERS, "import patients")
    if rows is not None:
        parsed = items_parse(rows, max_rows=IMPORT_MAX_ROWS)
        digest = None
    else:
        file_format = format_guess(filename, file_format)
        parsed = file_parse(content or b"", file_format=file_format,
                            max_bytes=current_app.config["KIOSK_IMPORT_MAX_BYTES"],
                            max_rows=IMPORT_MAX_ROWS)
        digest = hashlib.sha256(content or b"").hexdigest()
    plans = _plans_make(parsed)
    summary = _plans_apply(plans, user=user, device=device)
    summary.ignored_columns = parsed.ignored_columns
    summary.file_format = file_format
    audit_record(action="patients.import", entity="import", entity_uid=digest, user=user,
                 device=device, detail={"filename": filename, **summary.as_dict()})
    return summary


def _plans_make(parsed: ParsedFile) -> list[_RowPlan]:
    """Validate every row, collecting all problems; raise ImportRefused if there is any."""
    errors = list(parsed.errors)
    values_by_row = [(row, _values_normal(raw)) for row, raw in parsed.rows]
    existing = _patients_by_pims_id({values.get("pims_id") for _, values in values_by_row})
    bedside = _bedside_by_file_number([
        values for _, values in values_by_row
        if not (isinstance(values.get("pims_id"), str) and values["pims_id"] in existing)])
    claimed: dict[int, int] = {}  # bedside patient id -> the row that links it
    wards: dict = {}
    first_row: dict[str, int] = {}
    owners = _OwnerRows.read(values_by_row)
    plans = []
    for row, values in values_by_row:
        pims_id = values.get("pims_id")
        if isinstance(pims_id, str) and pims_id in first_row:
            errors.append(RowError(row, "pims_id", ERR_PIMS_TWICE.format(
                pims_id=pims_id, first=first_row[pims_id])))
        elif isinstance(pims_id, str):
            first_row[pims_id] = row
        patient = existing.get(pims_id) if isinstance(pims_id, str) else None
        linked = None
        if patient is None and isinstance(pims_id, str):
            linked = patient = _bedside_match(row, values, bedside, claimed, errors)
        owner, values = owners.split(row, values, patient, errors)
        data, clean, row_errors = _row_check(row, values, creating=patient is None, wards=wards)
        errors.extend(row_errors)
        changes = {key: data[key] for key in clean
                   if patient is not None and _differs(patient, key, clean[key])}
        plans.append(_RowPlan(row=row, data=data, patient=patient, changes=changes,
                              linked=linked is not None, owner=owner))
    if errors:
        raise ImportRefused(errors)
    return plans


def _values_normal(raw: dict) -> dict:
    """Strip text, drop empty values, and turn export habits into what patients expect."""
    out: dict = {}
    for key, value in raw.items():
        if isinstance(value, int) and not isinstance(value, bool) and key in TEXT_KEYS:
            value = str(value)
        elif isinstance(value, str):
            value = _text_normal(key, value.strip())
        if isinstance(value, list):
            value = [item for item in value if not (isinstance(item, str) and not item.strip())]
        if value is None or value == "" or value == []:
            continue
        out[key] = value
    return out


def _text_normal(key: str, value: str):
    if key == "alerts":
        return re.split(r"[;|,]", value) if value else []
    if key == "sex":
        return SEX_WORDS.get(" ".join(value.lower().split()), value)
    if key == "colour":
        return value.lower().replace("gray", "grey")
    if key == "weight_kg" and value.lower().endswith("kg"):
        return value[:-2].strip()
    if key == "preferred_channel":
        return CHANNEL_WORDS.get(value.lower(), value.lower())
    return value


def _patients_by_pims_id(pims_ids: set) -> dict[str, Patient]:
    """Existing patients for these ids, a few hundred ids per query."""
    wanted = sorted(p for p in pims_ids if isinstance(p, str))
    found: dict[str, Patient] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for patient in db.session.scalars(select(Patient).where(Patient.pims_id.in_(chunk))
                                          .options(selectinload(Patient.owner))):
            found[patient.pims_id] = patient
    return found


def _number_key(value) -> str | None:
    """A file number as compared: without surrounding spaces, in any case (as SQL can)."""
    return (value.strip().lower() or None) if isinstance(value, str) else None


def _name_key(value) -> str | None:
    """A name as compared: any case, any spacing."""
    return (" ".join(value.split()).lower() or None) if isinstance(value, str) else None


def _bedside_by_file_number(rows: list[dict]) -> dict[str, list[Patient]]:
    """Admitted, unallocated patients created directly whose file number one of these rows
    gives, by that number (_number_key), a few hundred numbers per query."""
    wanted = sorted({key for key in (_number_key(values.get("file_number")) for values in rows)
                     if key})
    found: dict[str, list[Patient]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for patient in db.session.scalars(select(Patient).where(
                Patient.origin == "direct", Patient.unallocated.is_(True),
                Patient.status == "admitted",
                func.lower(func.trim(Patient.file_number)).in_(chunk)).order_by(Patient.id)):
            found.setdefault(_number_key(patient.file_number), []).append(patient)
    return found


@dataclass
class _OwnerRows:
    """What a file says of owners: the owners its owner ids name (read in one go), and the
    name each id is given on some row (a client's second pet may leave it out)."""

    known: dict[str, Owner]
    names: dict[str, str]

    @classmethod
    def read(cls, values_by_row: list[tuple[int, dict]]) -> "_OwnerRows":
        """The owners and names of the file's rows."""
        names: dict[str, str] = {}
        for _, values in values_by_row:
            owner_id, name = values.get("owner_id"), values.get("owner_name")
            if isinstance(owner_id, str) and isinstance(name, str):
                names.setdefault(owner_id, name)
        wanted = sorted({values["owner_id"] for _, values in values_by_row
                         if isinstance(values.get("owner_id"), str)})
        known: dict[str, Owner] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for owner in db.session.scalars(select(Owner).where(Owner.pims_id.in_(chunk))):
                known[owner.pims_id] = owner
        return cls(known=known, names=names)

    def split(self, row: int, values: dict, patient: Patient | None,
              errors: list[RowError]) -> tuple[dict | None, dict]:
        """The row's owner columns when it links an owner (checked, problems added to
        `errors`), and the values left for the patient. Without an owner's name or id, and
        no owner yet, the name and phone stay the patient's own details as before."""
        given = {key: values[key] for key in OWNER_COLUMNS if key in values}
        has_owner = patient is not None and patient.owner is not None
        if not ("owner_id" in given or "owner_name" in given or has_owner and given):
            if any(key in given for key in OWNER_ONLY):
                errors.append(RowError(row, "owner_name", ERR_OWNER_NAME_NEEDED))
            return None, {key: value for key, value in values.items()
                          if key not in OWNER_ONLY}
        rest = {key: value for key, value in values.items() if key not in OWNER_COLUMNS}
        owner_id = given.get("owner_id")
        if "owner_name" not in given and isinstance(owner_id, str) and owner_id in self.names:
            given["owner_name"] = self.names[owner_id]
        problems = self._check(row, given, patient)
        errors.extend(problems)
        return given, rest

    def _check(self, row: int, given: dict, patient: Patient | None) -> list[RowError]:
        """Each owner column on its own, then the owner they make together."""
        problems = []
        for column, value in given.items():
            try:
                if column == "owner_id":
                    text_required(value, column, "The owner's id", 64)
                else:
                    owner_fields_clean({OWNER_COLUMNS[column]: value}, partial=True)
            except DomainError as exc:
                problems.append(RowError(row, column, exc.message))
        if problems:
            return problems
        owner_id = given.get("owner_id")
        target = owner_import_find(pims_id=owner_id, known=self.known,
                                   owner=patient.owner if patient is not None else None,
                                   name=given.get("owner_name"))
        try:
            owner_import_fields(owner=target, pims_id=owner_id, name=given.get("owner_name"),
                                email=given.get("owner_email"), phone=given.get("owner_phone"),
                                sms_consent=given.get("sms_consent"),
                                preferred_channel=given.get("preferred_channel"))
        except DomainError as exc:
            column = COLUMN_OF_OWNER_FIELD.get(exc.field or "", "owner_name")
            problems.append(RowError(row, column, exc.message))
        return problems


def _bedside_match(row: int, values: dict, bedside: dict[str, list[Patient]],
                   claimed: dict[int, int], errors: list[RowError]) -> Patient | None:
    """The one bedside patient this row's file number and name name (None if none). More
    than one, or one another row of the file took: a problem added to `errors`, as a
    guess could send one animal's charges to another's account, and a second patient
    would take the pims_id a manager needs to link the right one by hand."""
    number, name = _number_key(values.get("file_number")), _name_key(values.get("name"))
    if not number or not name:
        return None
    candidates = [p for p in bedside.get(number, []) if _name_key(p.name) == name]
    if len(candidates) > 1:
        errors.append(RowError(row, "file_number", ERR_BEDSIDE_TWICE.format(
            count=len(candidates), number=values["file_number"], name=values["name"])))
        return None
    if not candidates:
        return None
    if candidates[0].id in claimed:
        errors.append(RowError(row, "file_number", ERR_BEDSIDE_CLAIMED.format(
            name=candidates[0].name, first=claimed[candidates[0].id])))
        return None
    claimed[candidates[0].id] = row
    return candidates[0]


def _row_check(row: int, values: dict, *, creating: bool, wards: dict
               ) -> tuple[dict, dict, list[RowError]]:
    """Check each field of one row on its own so that every problem is reported."""
    errors = []
    if "pims_id" not in values:
        errors.append(RowError(row, "pims_id", ERR_PIMS_REQUIRED))
    if creating:
        values = {"name": None, "species": None, **values}
    data, clean = {}, {}
    for key, value in values.items():
        try:
            if key == "ward":
                value = _ward_cached(value, wards)
            clean[key] = patient_fields_clean({key: value}, partial=True).get(key)
            data[key] = value
        except DomainError as exc:
            errors.append(RowError(row, exc.field or key, exc.message))
    return data, clean, errors


def _ward_cached(value, wards: dict):
    """ward_resolve once per distinct value in the file; names match in any case."""
    key = (type(value).__name__, str(value))
    if key not in wards:
        try:
            wards[key] = ward_resolve(value)
        except DomainError as exc:
            wards[key] = _ward_by_name_any_case(value) or exc
    if isinstance(wards[key], DomainError):
        raise wards[key]
    return wards[key]


def _ward_by_name_any_case(value) -> Ward | None:
    """The one ward whose name matches `value` ignoring case ('icu' for 'ICU'), if any."""
    if not isinstance(value, str):
        return None
    found = db.session.scalars(select(Ward).where(
        func.lower(Ward.name) == value.strip().lower())).all()
    return found[0] if len(found) == 1 else None


def _differs(patient: Patient, key: str, value) -> bool:
    """Whether the clean `value` would change the stored detail."""
    if key == "ward":
        return patient.ward_id != (value.id if value is not None else None)
    current = getattr(patient, key)
    if key == "weight_kg" and value is not None and current is not None:
        return Decimal(str(current)).quantize(GRAMS) != value.quantize(GRAMS)
    if key == "alerts":
        return list(current or []) != list(value or [])
    return current != value


def _plans_apply(plans: list[_RowPlan], *, user, device) -> ImportSummary:
    """Create or update each row's patient; any late refusal refuses the whole file."""
    summary = ImportSummary(rows=len(plans))
    # patient_create flushes each patient itself; autoflushing before its pims_id query
    # as well only doubles the round trips (the file's own ids were checked above).
    with db.session.no_autoflush:
        for plan in plans:
            _plan_apply(plan, summary, user=user, device=device)
    return summary


def _plan_apply(plan: _RowPlan, summary: ImportSummary, *, user, device) -> None:
    """Create, update or leave one row's patient, counting it in `summary`."""
    patient = plan.patient
    try:
        if plan.patient is None:
            patient = patient_create(user=user, data=plan.data, origin="pims", device=device)
            db.session.flush()  # a PIMS id another row took is caught here, for this row
            summary.created += 1
        elif plan.linked:
            # patient_update allocates it and records "patient.changed": sending follows.
            patient_update(patient=plan.patient, user=user, data=plan.changes,
                           device=device)
            summary.linked += 1
        elif plan.changes:
            patient_update(patient=plan.patient, user=user, data=plan.changes,
                           device=device)
            summary.updated += 1
        else:
            summary.unchanged += 1
        if plan.owner is not None:
            _owner_apply(plan.owner, patient, summary, user=user)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        field_name = exc.field
        if plan.owner is not None and exc.field in COLUMN_OF_OWNER_FIELD:
            field_name = COLUMN_OF_OWNER_FIELD[exc.field]
        raise ImportRefused([RowError(plan.row, field_name, exc.message)]) from exc
    except IntegrityError as exc:
        raise ImportRefused([RowError(plan.row, "pims_id", ERR_CONFLICT)]) from exc


def _owner_apply(given: dict, patient: Patient, summary: ImportSummary, *, user) -> None:
    """Create or update the row's owner and link the patient to them, counting the owner."""
    owner, done = owner_import_save(
        pims_id=given.get("owner_id"), name=given.get("owner_name"),
        email=given.get("owner_email"), phone=given.get("owner_phone"),
        sms_consent=given.get("sms_consent"), preferred_channel=given.get("preferred_channel"),
        owner=patient.owner, user=user)
    if owner is None:
        return
    owner_link(patient=patient, owner=owner, user=user)
    if done == "created":
        summary.owners_created += 1
    elif done == "updated":
        summary.owners_updated += 1
