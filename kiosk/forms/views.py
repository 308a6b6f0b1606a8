"""Form pages: the builder for managers (/admin/forms), and filling per patient. Tablets
send the same actions as ops (form.start, form.fill, form.finalise) through their outbox."""

import math
import re

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for

from ..core.auth import (
    LEVEL_FORMS,
    LEVEL_MANAGER,
    current_user,
    level_required,
    login_required,
)
from ..core.forms import commit_or_error
from ..core.pdf import pdf_response
from ..patients.selectors import patient_by_uid
from .fields import posted_values
from .models import FIELD_TYPES
from .selectors import (
    form_template_by_uid,
    form_templates_list,
    form_view,
    forms_of,
    patient_form_by_uid,
)
from .services import (
    ERR_REQUIRED,
    form_fill,
    form_finalise,
    form_start,
    form_template_create,
    form_template_publish,
    form_template_set_active,
)

bp = Blueprint("forms", __name__)

BLANK_ROWS = 3
MAX_ROWS = 200
TYPE_LABELS = {"text": "Text", "number": "Number", "checkbox": "Tick box",
               "choice": "Choice (one of a list)", "date": "Date",
               "signature": "Signature (drawn)", "heading": "Heading (no value)"}


# The builder (level 6)

def _key_from(label: str) -> str:
    """A key made from a label ("Owner's name" → owner_s_name) for a row left without one."""
    key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40]
    return key if key[:1].isalpha() else f"f_{key}"[:40]


def _rows_from_request() -> list[dict]:
    """The builder's rows in the order of their position (blank rows left out)."""
    rows = []
    posted = request.form.get("rows") or "0"
    # A hidden field, so only ever tampered with when absurd: ² is a digit int() refuses,
    # and int() of thousands of digits raises.
    count = min(int(posted), MAX_ROWS) if posted.isdecimal() and len(posted) <= 6 else 0
    for n in range(count):
        row = {name: (request.form.get(f"{name}-{n}") or "").strip()
               for name in ("key", "label", "type", "options", "position")}
        if request.form.get(f"remove-{n}"):
            continue
        key, label, options = row["key"], row["label"], row["options"]
        if not (key or label or options):
            continue
        if not key and label:
            key = _key_from(label)
        try:
            position = float(row["position"] or n)
        except ValueError:
            position = n
        if not math.isfinite(position):  # NaN would leave the order of the rows to chance
            position = n
        rows.append({"key": key, "label": label, "type": row["type"] or "text",
                     "required": bool(request.form.get(f"required-{n}")),
                     "options": [o for o in options.splitlines() if o.strip()],
                     "position": position})
    rows.sort(key=lambda r: r["position"])
    return [{k: v for k, v in r.items() if k != "position"} for r in rows]


def _builder(template=None, *, name="", rows=None, error=None, status=200):
    rows = list(rows if rows is not None else (template.current.fields if template else []))
    return make_response(render_template(
        "forms/builder.html", template=template, name=name, rows=rows,
        blank=BLANK_ROWS, types=[(t, TYPE_LABELS[t]) for t in FIELD_TYPES], error=error),
        status)


@bp.get("/admin/forms")
@level_required(LEVEL_MANAGER, "build forms")
def templates():
    """Every form template: its current version, how many fields, whether in use."""
    return render_template("forms/templates.html",
                           templates=form_templates_list(active_only=False))


@bp.get("/admin/forms/new")
@level_required(LEVEL_MANAGER, "build forms")
def template_new():
    """The builder with empty rows."""
    return _builder()


@bp.post("/admin/forms/new")
@level_required(LEVEL_MANAGER, "build forms")
def template_create():
    """Make the template and its version 1; nothing is made if a field is wrong."""
    name, rows = request.form.get("name", ""), _rows_from_request()
    template, error = commit_or_error(lambda: form_template_create(
        user=current_user(), name=name, fields=rows))
    if error:
        return _builder(name=name, rows=rows, error=error, status=422)
    flash(f"“{template.name}” published (version 1).")
    return redirect(url_for("forms.templates"))


@bp.get("/admin/forms/<uid>")
@level_required(LEVEL_MANAGER, "build forms")
def template_edit(uid: str):
    """The builder on the template's current version."""
    template = form_template_by_uid(uid)
    return _builder(template, name=template.name)


@bp.post("/admin/forms/<uid>")
@level_required(LEVEL_MANAGER, "build forms")
def template_publish(uid: str):
    """Publish the change as a new version; forms already started keep theirs."""
    template = form_template_by_uid(uid)
    name, rows = request.form.get("name", ""), _rows_from_request()
    version, error = commit_or_error(lambda: form_template_publish(
        template=template, user=current_user(), name=name, fields=rows))
    if error:
        return _builder(template, name=name, rows=rows, error=error, status=422)
    flash(f"“{template.name}” version {version.number} published.")
    return redirect(url_for("forms.templates"))


@bp.post("/admin/forms/<uid>/active")
@level_required(LEVEL_MANAGER, "build forms")
def template_active(uid: str):
    """Retire the template, or put it back in use."""
    template = form_template_by_uid(uid)
    active = request.form.get("active") == "1"
    _, error = commit_or_error(lambda: form_template_set_active(
        template=template, user=current_user(), active=active))
    if error:
        flash(error.message)
    else:
        flash(f"“{template.name}” is {'in use' if active else 'retired'}.")
    return redirect(url_for("forms.templates"))


# Filling (level 3)

@bp.get("/patients/<uid>/forms")
@login_required
def patient_forms(uid: str, error=None, status=200):
    """The patient's forms, and the templates to start one from."""
    patient = patient_by_uid(uid)
    return make_response(render_template(
        "forms/patient_forms.html", patient=patient, forms=forms_of(patient),
        templates=[t for t in form_templates_list() if t.versions], error=error), status)


@bp.post("/patients/<uid>/forms")
@level_required(LEVEL_FORMS, "fill forms")
def start(uid: str):
    """Start a form on the template's current version, then fill it."""
    patient = patient_by_uid(uid)
    template = form_template_by_uid(request.form.get("template", ""))
    form, error = commit_or_error(lambda: form_start(patient=patient, template=template,
                                                     user=current_user()))
    if error:
        return patient_forms(uid, error=error, status=422)
    return redirect(url_for("forms.fill_page", uid=form.uid))


@bp.get("/patients/<uid>/forms/new/<template_uid>")
@level_required(LEVEL_FORMS, "fill forms", tablet=True)
def new(uid: str, template_uid: str):
    """A blank form of the template's current version, for a tablet: it sends form.start
    with a uid of its own at the first save (online or offline alike)."""
    patient = patient_by_uid(uid)
    template = form_template_by_uid(template_uid)
    return render_template("forms/fill.html", patient=patient, view=None,
                           template=template, version=template.current, error=None,
                           values={}, required_message=ERR_REQUIRED)


def _fill_page(form, *, error=None, values=None, status=200):
    view = form_view(form)
    shown = dict(view.values)
    shown.update(values or {})
    return make_response(render_template(
        "forms/fill.html", patient=form.patient, view=view, template=form.template,
        version=form.version, error=error, values=shown, required_message=ERR_REQUIRED),
        status)


@bp.get("/forms/<uid>")
@login_required
def fill_page(uid: str):
    """One form: its fields with their values, to fill and finalise (read-only once
    finalised)."""
    return _fill_page(patient_form_by_uid(uid))


def _posted_values(version) -> dict:
    """The posted value of each field of the version (a signature only when drawn)."""
    return posted_values(version.fields, request.form)


@bp.post("/forms/<uid>/fill")
@level_required(LEVEL_FORMS, "fill forms")
def fill(uid: str):
    """Save what changed; with action=finalise, then finalise (which may still refuse)."""
    form = patient_form_by_uid(uid)
    values = _posted_values(form.version)
    _, error = commit_or_error(lambda: form_fill(form=form, user=current_user(),
                                                 values=values))
    if error:
        return _fill_page(form, error=error, values=values, status=422)
    if request.form.get("action") == "finalise":
        _, error = commit_or_error(lambda: form_finalise(form=form, user=current_user()))
        if error:
            return _fill_page(form, error=error, status=422)
        flash("Form finalised.")
    else:
        flash("Saved.")
    return redirect(url_for("forms.fill_page", uid=form.uid))


@bp.get("/forms/<uid>/form.pdf")
@login_required
def pdf(uid: str):
    """The form as a PDF, as it stands (a preview until it is finalised)."""
    from .printing import form_pdf

    form = patient_form_by_uid(uid)
    return pdf_response(form_pdf(form), f"form-{uid}.pdf")

