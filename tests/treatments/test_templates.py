"""The <template>s a tablet fills on the treatment sheet (static/js/sheet.js): the sheet and
the offline shell carry one for everything the script draws, once each, with the slots it
fills and none of the sheet's data."""

import re
from pathlib import Path

import pytest

from kiosk.extensions import db
from kiosk.patients.models import ALERT_LABELS
from kiosk.treatments.services import note_add
from tests import factories
from tests.support.templates import Elements

SHEET_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "sheet.js"
# What sheet.js gives each template (the keys of its fill() calls).
FILLED = {
    "tpl-task": {"task", "due", "time", "label"},
    "tpl-order-row": {"name", "order", "instructions", "dose", "schedule", "billable",
                      "billable_title", "give", "stop", "stop_confirm", "note_label"},
    "tpl-cell": set(),
    "tpl-stopped-tag": set(),
    "tpl-note": {"time", "user", "text"},
    "tpl-discharge-waiting": set(),
    "tpl-task-dialog": {"dialog_id", "name", "dose", "schedule", "instructions", "due",
                        "offline", "waiting", "done", "stopped", "open", "skippable", "task",
                        "order", "due_iso", "value_field", "value_units", "value_required",
                        "value_inputmode"},
    "tpl-shell-head": {"css", "name", "species", "breed", "weight", "ward", "cage", "owner",
                       "alerts"},
    "tpl-hour": {"hour", "start", "label"},
    "tpl-empty-row": {"colspan"},
}
SHELL_ONLY = {"tpl-shell-head"}  # a patient only this tablet knows: drawn in the shell


def keys_used(elements: list[tuple[str, dict]]) -> set[str]:
    """Every value key a template's slots, attribute slots and conditions read."""
    keys = set()
    for _tag, attrs in elements:
        keys |= {attrs[a] for a in ("data-slot", "data-if", "data-unless") if a in attrs}
        for pair in (attrs.get("data-slot-attr") or "").split():
            keys.add(pair.split(":", 1)[1])
    return keys


def test_the_script_fills_no_template_left_out_here():
    script = SHEET_JS.read_text(encoding="utf-8")
    filled = set(re.findall(r'fill\("(tpl-[a-z-]+)"', script))
    assert filled == set(FILLED)
    assert "`tpl-alert-${x}`" in script  # one per alert, below


@pytest.fixture
def sheet(clinic, client, login):
    """A patient's sheet with an order and a note, as the server renders it."""
    patient = factories.patient_make(clinic, "Biscuit")
    factories.order_make(clinic, patient, name="Meloxicam")
    note_add(patient=patient, user=clinic.user(3), text="Ate well")
    db.session.commit()
    login(clinic.user(4))
    response = client.get(f"/patients/{patient.uid}/sheet")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture
def shell(clinic, client, login):
    login(clinic.user(4))
    response = client.get("/tablet/sheet-shell")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_sheet_carries_a_template_for_everything_the_tablet_draws(sheet):
    page = Elements(sheet)
    for template_id in set(FILLED) - SHELL_ONLY:
        assert template_id in page.ids(), template_id
        assert keys_used(page.template(template_id)) <= FILLED[template_id], template_id
    assert len(re.findall(r'<template id="tpl-task-dialog">', sheet)) == 1


def test_the_offline_shell_carries_them_and_one_per_alert(shell):
    page = Elements(shell)
    assert set(FILLED) <= page.ids()
    for template_id, keys in FILLED.items():
        assert keys_used(page.template(template_id)) <= keys, template_id
    assert {f"tpl-alert-{key}" for key in ALERT_LABELS} <= page.ids()
    for key, label in ALERT_LABELS.items():
        assert page.text[f"tpl-alert-{key}"] == label


def test_the_templates_hold_what_the_script_fills_in(sheet):
    page = Elements(sheet)
    task = page.template("tpl-task")
    assert task[0][0] == "a" and "task" in task[0][1]["class"]
    assert keys_used(task) == FILLED["tpl-task"]
    row = page.template("tpl-order-row")
    assert row[0] == ("tr", {"class": "order-row pending", "data-overlay-row": "1"})
    assert {"name", "dose", "schedule", "stop_confirm"} <= keys_used(row)
    assert keys_used(page.template("tpl-note")) == FILLED["tpl-note"]
    dialog = keys_used(page.template("tpl-task-dialog"))
    assert {"task", "order", "due_iso", "value_field", "open", "skippable"} <= dialog


def test_the_templates_hold_none_of_the_sheets_data(sheet):
    outside = re.sub(r"<template .*?</template>", "", sheet, flags=re.S)
    inside = "".join(re.findall(r"<template .*?</template>", sheet, flags=re.S))
    for data in ("Biscuit", "Meloxicam", "Ate well"):
        assert data in outside and data not in inside, data
