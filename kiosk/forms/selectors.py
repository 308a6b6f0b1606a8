"""Reads of form templates and of patients' forms: the values as they stand, by field."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..core.errors import NotFound
from ..core.models import row_by_uid
from ..extensions import db
from .models import FORM_DRAFT, FormEntry, FormTemplate, FormVersion, PatientForm


def form_template_by_uid(uid: str) -> FormTemplate:
    """The template with this uid, or NotFound."""
    return row_by_uid(FormTemplate, uid, what="form template", field="template")


def form_templates_list(*, active_only: bool = True) -> list[FormTemplate]:
    """Templates by name, with their versions loaded (one query each)."""
    query = select(FormTemplate).options(selectinload(FormTemplate.versions)).order_by(
        FormTemplate.name, FormTemplate.id)
    if active_only:
        query = query.where(FormTemplate.active.is_(True))
    return list(db.session.scalars(query))


def form_version_of(template: FormTemplate, number: int) -> FormVersion:
    """Version `number` of the template, or NotFound naming `version`."""
    version = db.session.scalar(select(FormVersion).where(
        FormVersion.template_id == template.id, FormVersion.number == number))
    if version is None:
        raise NotFound(f"“{template.name}” has no version {number}.", field="version")
    return version


def patient_form_by_uid(uid: str) -> PatientForm:
    """The patient's form with this uid, or NotFound."""
    return row_by_uid(PatientForm, uid, what="form", field="form")


def forms_of(patient) -> list[PatientForm]:
    """The patient's forms, newest first, with their versions (two queries)."""
    return list(db.session.scalars(select(PatientForm).options(
        selectinload(PatientForm.version)).where(PatientForm.patient == patient).order_by(
        PatientForm.started_at.desc(), PatientForm.id.desc())))


def draft_forms_of(patients) -> list[PatientForm]:
    """The forms still being filled of these patients (one query)."""
    ids = [p.id for p in patients]
    if not ids:
        return []
    return list(db.session.scalars(select(PatientForm).where(
        PatientForm.patient_id.in_(ids), PatientForm.status == FORM_DRAFT)
        .order_by(PatientForm.id)))


def open_forms_by_patient(patient_ids: list[int]) -> dict[int, list[str]]:
    """The titles of the forms started and not finalised, by patient id (one query): what
    the discharge checks and the pending board list."""
    if not patient_ids:
        return {}
    out: dict[int, list[str]] = {}
    for patient_id, title in db.session.execute(select(
            PatientForm.patient_id, FormVersion.name).join(
            FormVersion, FormVersion.id == PatientForm.version_id).where(
            PatientForm.patient_id.in_(patient_ids), PatientForm.status == FORM_DRAFT)
            .order_by(PatientForm.started_at, PatientForm.id)):
        out.setdefault(patient_id, []).append(title)
    return out


def entries_of(form: PatientForm) -> list[FormEntry]:
    """Every entry of the form by the time it was given (then as recorded)."""
    return list(db.session.scalars(select(FormEntry).where(FormEntry.form == form).order_by(
        FormEntry.at, FormEntry.recorded_at, FormEntry.id)))


def form_values(form: PatientForm, entries=None) -> dict[str, FormEntry]:
    """The entry that stands for each field: the latest by time wins."""
    latest: dict[str, FormEntry] = {}
    for entry in entries if entries is not None else entries_of(form):
        latest[entry.key] = entry
    return latest


@dataclass
class FieldView:
    """One field of a form as a page and the PDF show it."""

    field: dict
    entry: FormEntry | None

    @property
    def value(self):
        """The field's value as it stands (None when empty)."""
        return self.entry.value if self.entry is not None else None


@dataclass
class FormView:
    """What the fill page and the PDF show of one form."""

    form: PatientForm
    fields: list[FieldView]
    entries: list[FormEntry]

    @property
    def values(self) -> dict:
        """key → value as it stands, for the page's script and inputs."""
        return {f.field["key"]: f.value for f in self.fields if f.field["type"] != "heading"}


def form_view(form: PatientForm) -> FormView:
    """The form on its own version's fields, each with the value that stands."""
    entries = entries_of(form)
    latest = form_values(form, entries)
    return FormView(form=form, entries=entries,
                    fields=[FieldView(f, latest.get(f["key"])) for f in form.version.fields])


def offline_form_paths(patients, url_for) -> list[str]:
    """The form pages a tablet keeps for these patients: each one's forms list, a new form
    of every active template, and the forms still being filled."""
    templates = form_templates_list()
    urls = []
    for patient in patients:
        urls.append(url_for("forms.patient_forms", uid=patient.uid))
        urls += [url_for("forms.new", uid=patient.uid, template_uid=t.uid)
                 for t in templates if t.versions]
    urls += [url_for("forms.fill_page", uid=form.uid) for form in draft_forms_of(patients)]
    return urls
