"""Building form templates (level 6) and filling forms per patient (level 3 and up)."""

import uuid
from datetime import datetime

from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_FORMS, LEVEL_MANAGER, permission_check
from ..core.clock import as_utc
from ..core.errors import DomainError
from ..core.events import event_record, fact_record
from ..core.models import new_uid, uid_check_free
from ..core.validate import text_required
from ..extensions import db
from .fields import fields_clean, same_value, value_clean, value_missing
from .models import FORM_DRAFT, FORM_FINALISED, FormEntry, FormTemplate, FormVersion, PatientForm
from .selectors import form_values, form_version_of

ERR_NOT_ADMITTED = "{name} is not admitted: a form is started for an admitted patient."
ERR_FINALISED = "This form was finalised already (by {who}, {at}); it cannot change."
ERR_UNCHANGED = "Nothing changed: the fields are those of version {n}."
ERR_UNKNOWN_FIELD = "This form has no field “{key}”."
ERR_REQUIRED = "“{label}” is required before the form is finalised."
ERR_RETIRED = "“{name}” is no longer in use: new forms cannot be started on it."
ERR_REQUIRED_CLIENT = "Please fill in “{label}”: it is needed."
ERR_VERSION = "This version is not one of this form's."


def form_template_create(*, user, name, fields) -> FormTemplate:
    """A new template with its first version; nothing is made if any field is wrong."""
    permission_check(user, LEVEL_MANAGER, "build forms")
    clean_name = text_required(name, "name", "The form's name", 120)
    clean = fields_clean(fields)
    template = FormTemplate(uid=new_uid(), name=clean_name, active=True,
                            created_by_id=user.id)
    db.session.add(template)
    version = FormVersion(uid=new_uid(), template=template, number=1, name=clean_name,
                          fields=clean, published_by_id=user.id, published_at=clock.utcnow())
    db.session.add(version)
    audit_record(action="form.template_create", entity="form_template",
                 entity_uid=template.uid, user=user, detail={"fields": len(clean)})
    return template


def form_template_publish(*, template: FormTemplate, user, fields, name=None) -> FormVersion:
    """Publish a change as a new version. Forms already started keep theirs."""
    permission_check(user, LEVEL_MANAGER, "build forms")
    clean_name = text_required(template.name if name is None else name, "name",
                               "The form's name", 120)
    clean = fields_clean(fields)
    current = template.current
    if clean == current.fields and clean_name == current.name:
        raise DomainError("unchanged", ERR_UNCHANGED.format(n=current.number), field="fields")
    template.name = clean_name
    version = FormVersion(uid=new_uid(), template=template, number=current.number + 1,
                          name=clean_name, fields=clean, published_by_id=user.id,
                          published_at=clock.utcnow())
    db.session.add(version)
    audit_record(action="form.template_publish", entity="form_template",
                 entity_uid=template.uid, user=user,
                 detail={"version": version.number, "fields": len(clean)})
    return version


def form_template_set_active(*, template: FormTemplate, user, active: bool) -> FormTemplate:
    """Retire a template (no new forms on it) or bring it back; forms filled stay."""
    permission_check(user, LEVEL_MANAGER, "build forms")
    template.active = bool(active)
    audit_record(action="form.template_active", entity="form_template",
                 entity_uid=template.uid, user=user, detail={"active": template.active})
    return template


def form_start(*, patient, template: FormTemplate, user, uid: str | None = None,
               version: int | None = None, device=None, at: datetime | None = None
               ) -> PatientForm:
    """Start a form for an admitted patient, pinned to the template's current version (or
    the version the tablet showed, when it names one)."""
    permission_check(user, LEVEL_FORMS, "fill forms")
    if not patient.admitted_when(at):
        raise DomainError("not_admitted", ERR_NOT_ADMITTED.format(name=patient.name))
    if uid is not None:
        uid_check_free(PatientForm, uid, field="form", what="form")
    if version is None:
        if not template.active:
            raise DomainError("retired", ERR_RETIRED.format(name=template.name),
                              field="template")
        pinned = template.current
    else:
        pinned = form_version_of(template, version)
    form = PatientForm(uid=uid or new_uid(), patient=patient, template=template,
                       version=pinned, status=FORM_DRAFT, started_at=as_utc(at) if at
                       else clock.utcnow(), started_by_id=user.id,
                       device_id=device.id if device else None)
    db.session.add(form)
    audit_record(action="form.start", entity="form", entity_uid=form.uid, user=user,
                 device=device, detail={"patient": patient.uid, "template": template.uid,
                                        "version": pinned.number})
    event_record(db.session, "form.changed", patient=patient.uid, form=form.uid)
    return form


def form_fill(*, form: PatientForm, user, values: dict, fill: str | None = None,
              device=None, at: datetime | None = None, now: datetime | None = None
              ) -> list[FormEntry]:
    """Append one entry per value that differs from the value standing; every value is
    checked first, so a bad one changes nothing. Entry uids are uuid5(fill, key) when the
    tablet names the fill, so a replay is recognised."""
    permission_check(user, LEVEL_FORMS, "fill forms")
    _not_finalised(form)
    clean = _values_clean(form.version, values)
    now = now or clock.utcnow()
    at = as_utc(at) if at else now
    standing = form_values(form)
    made = []
    for key, (field, value) in clean.items():
        was = standing.get(key)
        # A value the same as the one standing adds nothing. One older than it (from a
        # tablet that was offline) is kept all the same; the later one still stands.
        if (was is None or was.at <= at) and same_value(field, was.value if was else None,
                                                        value):
            continue
        uid = str(uuid.uuid5(uuid.UUID(fill), key)) if fill else new_uid()
        if fill:
            uid_check_free(FormEntry, uid, field="fill", what="form entry")
        made.append(FormEntry(uid=uid, form=form, key=key, value=value, at=at,
                              user_id=user.id, device_id=device.id if device else None,
                              recorded_at=now))
    db.session.add_all(made)
    if made:
        audit_record(action="form.fill", entity="form", entity_uid=form.uid, user=user,
                     device=device, detail={"keys": [e.key for e in made]})
        event_record(db.session, "form.changed", patient=form.patient.uid, form=form.uid)
    return made


def form_finalise(*, form: PatientForm, user, device=None, at: datetime | None = None
                  ) -> PatientForm:
    """Lock the form once every required field has its value, and archive it (its HTML
    kept, its PDF queued); nothing changes otherwise."""
    permission_check(user, LEVEL_FORMS, "finalise forms")
    _not_finalised(form)
    standing = form_values(form)
    _required_check(form.version, {key: entry.value for key, entry in standing.items()},
                    ERR_REQUIRED)
    form.status = FORM_FINALISED
    form.finalised_at = as_utc(at) if at else clock.utcnow()
    form.finalised_by = user
    audit_record(action="form.finalise", entity="form", entity_uid=form.uid, user=user,
                 device=device, detail={"patient": form.patient.uid})
    _finalised(form, user=user, device=device)
    return form


def form_submit_by_client(*, patient, template: FormTemplate, values: dict, owner_name: str,
                          version: FormVersion | None = None, at: datetime | None = None
                          ) -> PatientForm:
    """A form the owner filled and sent through the client portal: every value checked,
    then every required field, and only then stored, finalised at once (the owner has no
    draft to come back to), archived and announced like a form staff finalise. Nothing is
    stored when anything is wrong.

    No staff member and no admission are asked for: the portal's signed link is the
    owner's authority, and clients fill intake and follow-up forms before an admission or
    after a discharge. `version` is the one the owner was shown (else the current one).
    """
    pinned = version if version is not None else template.current
    if pinned.template_id != template.id:
        raise DomainError("bad_version", ERR_VERSION, field="version")
    clean = _values_clean(pinned, values)
    _required_check(pinned, {key: value for key, (_, value) in clean.items()},
                    ERR_REQUIRED_CLIENT)
    now = clock.utcnow()
    at = as_utc(at) if at else now
    name = (owner_name or "").strip()[:120]
    form = PatientForm(uid=new_uid(), patient=patient, template=template, version=pinned,
                       status=FORM_FINALISED, started_at=at, started_by_id=None,
                       filled_by_client=name, finalised_at=at, finalised_by_id=None)
    db.session.add(form)
    # An unticked box or an empty field adds nothing, as when staff save a form.
    db.session.add_all([FormEntry(uid=new_uid(), form=form, key=key, value=value, at=at,
                                  user_id=None, recorded_at=now)
                        for key, (field, value) in clean.items()
                        if not same_value(field, None, value)])
    audit_record(action="form.client_submit", entity="form", entity_uid=form.uid, user=None,
                 detail={"patient": patient.uid, "template": template.uid,
                         "version": pinned.number})
    _finalised(form, user=None, device=None)
    return form


def _values_clean(version: FormVersion, values) -> dict[str, tuple[dict, object]]:
    """key → (field, value as stored) for each value given; the first bad one raises."""
    if not isinstance(values, dict):
        raise DomainError("bad_args", "“values” must be an object of field keys and values.",
                          field="values")
    clean = {}
    for key, value in values.items():
        field = version.field(key) if isinstance(key, str) else None
        if field is None:
            raise DomainError("unknown_field", ERR_UNKNOWN_FIELD.format(key=str(key)[:40]),
                              field=str(key)[:40])
        clean[key] = (field, value_clean(field, value))
    return clean


def _required_check(version: FormVersion, values: dict, message: str) -> None:
    """DomainError naming the first required field of `version` still without its value
    (a required box must be ticked)."""
    for field in version.fields:
        if field["required"] and value_missing(field, values.get(field["key"])):
            raise DomainError("required", message.format(label=field["label"]),
                              field=field["key"])


def _finalised(form: PatientForm, *, user, device) -> None:
    """What follows any form's finalising, by staff or by the owner: the archive, the fact
    (a fee to charge), and the events (pages, flows waiting for "a form is finalised")."""
    _archive(form, user=user, device=device)
    fact_record("form.finalised", form=form, user=user, device=device, now=clock.utcnow())
    event_record(db.session, "form.changed", patient=form.patient.uid, form=form.uid)
    event_record(db.session, "form.finalised", patient=form.patient.uid, form=form.uid,
                 at=form.finalised_at)


def _archive(form: PatientForm, *, user, device) -> None:
    """Queue the form's PDF from what it holds now, in this unit of work: the archived
    record never changes, and a finalised form is never left without its document."""
    from ..documents.services import document_queue
    from .printing import form_html

    document_queue(patient=form.patient, kind="form", source_uid=form.uid,
                   title=form.version.name, html=form_html(form), user=user, device=device)


def _not_finalised(form: PatientForm) -> None:
    if form.is_finalised:
        who = form.finalised_by_text
        at = form.finalised_at.strftime("%Y-%m-%d %H:%M UTC") if form.finalised_at else ""
        raise DomainError("already_finalised", ERR_FINALISED.format(who=who, at=at))
