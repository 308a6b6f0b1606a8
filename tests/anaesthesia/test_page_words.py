"""The words a tablet says about a wrong entry before it queues it are the server's own
constants, given to the page: the sheet and the offline shell carry them, the services say
them, and no page script holds a copy."""

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from kiosk.anaesthesia.entries import MESSAGES, VITALS, entry_clean
from kiosk.anaesthesia.models import SHEET_OPEN, AnaesthesiaSheet
from kiosk.anaesthesia.services import ERR_FINALISE_NEEDS, FINALISE_NEEDS
from kiosk.core.errors import DomainError
from kiosk.core.validate import ERR_NOT_A_NUMBER
from kiosk.extensions import db
from kiosk.forms.services import ERR_REQUIRED
from tests import factories

JS = Path(__file__).resolve().parents[2] / "static" / "js"


def rules_of(page: str) -> dict:
    return json.loads(re.search(r'id="anaesthesia-rules">(.*?)</script>', page, re.S).group(1))


def sheet_page(clinic, client, login) -> str:
    patient = factories.patient_make(clinic, "Biscuit")
    login(clinic.user(3))
    response = client.post(f"/patients/{patient.uid}/anaesthesia", data={"procedure": "Spay"})
    assert response.status_code == 302
    return client.get(response.headers["Location"]).get_data(as_text=True)


def shell_page(clinic, client, login) -> str:
    login(clinic.user(3))
    return client.get("/tablet/anaesthesia-shell").get_data(as_text=True)


@pytest.mark.parametrize("page", [sheet_page, shell_page], ids=["sheet", "shell"])
def test_the_page_carries_the_servers_words(clinic, client, login, page):
    rules = rules_of(page(clinic, client, login))
    assert rules["messages"] == MESSAGES | {"not_a_number": ERR_NOT_A_NUMBER,
                                            "finalise_needs": ERR_FINALISE_NEEDS}
    assert rules["finalise_needs"] == [[key, label] for key, label in FINALISE_NEEDS.items()]
    assert [key for key, _label in rules["finalise_needs"]] == ["procedure", "asa"]


def test_the_services_say_the_words_the_page_carries():
    cases = [("drug", {"dose": "1 mg"}, MESSAGES["drug_required"]),
             ("drug", {"drug": "Methadone"}, MESSAGES["dose_required"]),
             ("vitals", {"hr": "fast"}, ERR_NOT_A_NUMBER.format(label=VITALS[0].label))]
    for kind, data, message in cases:
        with pytest.raises(DomainError) as caught:
            entry_clean(kind, data)
        assert caught.value.message == message


def test_a_sheet_without_its_asa_status_is_refused_in_the_servers_words(clinic, client, login):
    page = sheet_page(clinic, client, login)
    uid = re.search(r'data-sheet="([0-9a-f-]{36})"', page).group(1)
    response = client.post(f"/anaesthesia/{uid}/finalise")
    assert response.status_code == 422
    said = ERR_FINALISE_NEEDS.format(label=FINALISE_NEEDS["asa"])
    assert said in response.get_data(as_text=True)
    sheet = db.session.scalar(select(AnaesthesiaSheet).where(AnaesthesiaSheet.uid == uid))
    assert sheet.status == SHEET_OPEN and sheet.finalised_at is None


def test_no_page_script_holds_a_copy_of_the_words():
    words = [*(m.split("{")[0] for m in MESSAGES.values()), ERR_NOT_A_NUMBER,
             ERR_FINALISE_NEEDS, ERR_REQUIRED]
    # The fixed part of each (a placeholder is filled in by the page).
    pieces = [piece.strip() for word in words for piece in re.split(r"\{\w+\}|[“”]", word)
              if len(piece.strip()) > 8]
    scripts = sorted(JS.glob("*.js")) + sorted((JS / "client").glob("*.js"))
    copies = [(path.name, piece) for path in scripts for piece in pieces
              if piece in path.read_text(encoding="utf-8")]
    assert len(pieces) >= 8
    assert copies == []
