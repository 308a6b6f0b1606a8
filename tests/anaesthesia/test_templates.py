"""The <template>s a tablet fills for entries still waiting to sync: rendered by the server
from the same macros as the sheet's own rows, on the sheet and on the offline shell, with
a slot for every column and none of the sheet's data."""

import pytest

from kiosk.anaesthesia.entries import VITALS
from kiosk.anaesthesia.models import KIND_LABELS
from tests import factories
from tests.support.templates import Elements

TEMPLATES = {"tpl-anaes-vitals", "tpl-anaes-drug", "tpl-anaes-event", "tpl-anaes-note",
             "tpl-anaes-pre", "tpl-anaes-finalised-status", "tpl-anaes-finalised",
             "tpl-anaes-confirm", "tpl-anaes-shell-title", "tpl-anaes-shell-meta",
             "tpl-anaes-shell-refused"} | {f"tpl-anaes-addendum-{kind}" for kind in KIND_LABELS}


def start(client, patient) -> str:
    """Start a sheet through its page; the sheet's URL."""
    response = client.post(f"/patients/{patient.uid}/anaesthesia",
                           data={"procedure": "Spay", "asa": "II"})
    assert response.status_code == 302
    return response.headers["Location"]


@pytest.fixture
def sheet_page(clinic, client, login):
    """A sheet with one vitals row and a drug, as the server renders it."""
    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(3))
    url = start(client, patient)
    uid = url.rsplit("/", 1)[-1]
    for data in ({"kind": "vitals", "hr": "92", "spo2": "98", "etco2": "41"},
                 {"kind": "drug", "drug": "Methadone", "dose": "0.2 mg/kg", "route": "IV"}):
        assert client.post(f"/anaesthesia/{uid}/record", data=data).status_code == 302
    return Elements(client.get(url).get_data(as_text=True))


def test_the_sheet_carries_a_template_for_everything_the_tablet_draws(sheet_page):
    assert TEMPLATES <= sheet_page.ids()


def test_a_waiting_vitals_row_has_the_columns_of_the_servers_rows(sheet_page):
    server_rows = [attrs for tag, attrs, inside in sheet_page.found
                   if tag == "tr" and "data-values" in attrs and inside is None]
    assert len(server_rows) == 1
    row = sheet_page.template("tpl-anaes-vitals")
    assert row[0][0] == "tr" and row[0][1]["class"] == "waiting"
    assert row[0][1]["data-slot-attr"] == "data-at:at data-values:values"
    cells = [attrs for tag, attrs in row if tag == "td"]
    # Time, every vital in the order of the table's columns, who.
    assert [c.get("data-slot") for c in cells[1:]] == [m.key for m in VITALS] + ["by"]
    server_cells = sheet_page.found.index(("tr", server_rows[0], None))
    following = [tag for tag, _a, _i in sheet_page.found[server_cells + 1:]]
    assert following[:following.index("tr")].count("td") == len(cells) == len(VITALS) + 2
    assert ("time", {"data-slot": "time"}) in row


def test_the_templates_hold_none_of_the_sheets_data(clinic, client, login):
    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(3))
    url = start(client, patient)
    uid = url.rsplit("/", 1)[-1]
    client.post(f"/anaesthesia/{uid}/record", data={"kind": "drug", "drug": "Methadone",
                                                    "dose": "0.2 mg/kg", "route": "IV"})
    page = client.get(url).get_data(as_text=True)
    templates = page[page.index('<div class="anaes-templates" hidden>'):]
    templates = templates[:templates.index("</div>\n")]
    assert "Methadone" in page and "Methadone" not in templates
    assert "Spay" in page and "Spay" not in templates


def test_an_addendum_template_names_its_kind_as_the_servers_addenda_do(sheet_page):
    for kind, label in KIND_LABELS.items():
        elements = sheet_page.template(f"tpl-anaes-addendum-{kind}")
        assert elements[0] == ("li", {"class": "waiting", "data-overlay": "1",
                                      "data-slot-attr": "data-at:at"})
        slots = {attrs.get("data-slot") for _tag, attrs in elements} - {None}
        assert {"time", "by"} <= slots, kind
        assert label in sheet_page.text[f"tpl-anaes-addendum-{kind}"]
        assert "Addendum — waiting to sync" in sheet_page.text[f"tpl-anaes-addendum-{kind}"]
    vitals = {attrs.get("data-if") for _tag, attrs in sheet_page.template(
        "tpl-anaes-addendum-vitals")}
    assert {m.key for m in VITALS} <= vitals  # each value shows only when it was recorded


def test_the_offline_shell_carries_the_same_templates(clinic, client, login):
    login(clinic.user(3))
    response = client.get("/tablet/anaesthesia-shell")
    assert response.status_code == 200
    shell = Elements(response.get_data(as_text=True))
    assert TEMPLATES <= shell.ids()
    sheet_row = shell.template("tpl-anaes-vitals")
    assert [a.get("data-slot") for t, a in sheet_row if t == "td"][1:] == \
        [m.key for m in VITALS] + ["by"]
