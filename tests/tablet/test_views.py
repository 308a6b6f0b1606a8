"""The tablet pages: set-up, the service worker, the pages to keep offline, the shell."""

import pytest

from kiosk.devices.services import device_provision
from kiosk.extensions import db
from kiosk.patients.services import patient_discharge
from tests import factories


@pytest.fixture
def app(app):
    """The application, with the tablet blueprint whether or not create_app registers it."""
    if "tablet" not in app.blueprints:
        from kiosk.tablet.views import bp

        app.register_blueprint(bp)
    return app


@pytest.fixture
def tablet_token(clinic):
    _device, token = device_provision(name="Ward tablet", colour="blue", number=2)
    db.session.commit()
    return token


def test_setup_page_is_open_and_reads_the_hash(client):
    response = client.get("/tablet")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "js/client/tablet.js" in page and "js/tablet-setup.js" in page


def test_service_worker_is_served_from_the_root(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "javascript" in response.headers["Content-Type"]
    assert "kiosk-pages-v" in response.get_data(as_text=True)


def test_offline_pages_need_a_caller(client, clinic):
    response = client.get("/tablet/offline-pages")
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_offline_pages_for_a_device(client, clinic, tablet_token):
    admitted = factories.patient_make(clinic, "Biscuit")
    gone = factories.patient_make(clinic, "Gone")
    patient_discharge(patient=gone, user=clinic.user(6))
    db.session.commit()
    response = client.get("/tablet/offline-pages",
                          headers={"Authorization": f"Bearer {tablet_token}"})
    assert response.status_code == 200
    urls = response.get_json()["urls"]
    assert f"/patients/{admitted.uid}/sheet" in urls
    assert f"/patients/{gone.uid}/sheet" not in urls
    assert f"/boards/{clinic.board.id}" in urls
    assert "/static/js/client/outbox.js" in urls and "/tablet/sheet-shell" in urls
    assert "/static/vendor/idb/idb.js" in urls  # modules import it: kept too


def test_offline_pages_refuse_a_wrong_token(client, clinic, tablet_token):
    response = client.get("/tablet/offline-pages", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_offline_pages_are_for_paired_tablets_only(client, clinic, login):
    login(clinic.user(1))
    response = client.get("/tablet/offline-pages")
    assert response.status_code == 401
    assert "paired tablet" in response.get_json()["message"]


def test_sheet_shell_needs_sign_in(client, clinic, login):
    assert client.get("/tablet/sheet-shell").status_code == 302
    login(clinic.user(4))
    page = client.get("/tablet/sheet-shell").get_data(as_text=True)
    assert 'data-outbox="order.create"' in page and 'data-outbox="note.add"' in page
    assert 'id="shell-wards"' in page and clinic.ward.name in page


def test_sheet_shell_hides_orders_below_level_four(client, clinic, login):
    login(clinic.user(2))
    page = client.get("/tablet/sheet-shell").get_data(as_text=True)
    assert 'data-outbox="order.create"' not in page


def test_offline_pages_keep_the_anaesthesia_pages_of_carried_patients(client, clinic,
                                                                      tablet_token):
    from kiosk.anaesthesia.services import anaesthesia_start
    from kiosk.core.models import new_uid

    patient = factories.patient_make(clinic, "Biscuit")
    other = factories.patient_make(clinic, "Pickle")
    gone = factories.patient_make(clinic, "Gone")
    first = anaesthesia_start(patient=patient, user=clinic.user(3))
    db.session.flush()
    second_uid = new_uid()
    joined = anaesthesia_start(patient=patient, user=clinic.user(3), uid=second_uid)
    old = anaesthesia_start(patient=gone, user=clinic.user(3))
    patient_discharge(patient=gone, user=clinic.user(6), override_reason="Sheet kept on paper")
    db.session.commit()
    assert joined is first  # the second start joined the open sheet
    urls = client.get("/tablet/offline-pages",
                      headers={"Authorization": f"Bearer {tablet_token}"}).get_json()["urls"]
    assert f"/patients/{patient.uid}/anaesthesia" in urls
    assert f"/patients/{other.uid}/anaesthesia" in urls
    assert f"/anaesthesia/{first.uid}" in urls
    assert f"/anaesthesia/{second_uid}" in urls  # it joined the first: the same page
    assert f"/patients/{gone.uid}/anaesthesia" not in urls and f"/anaesthesia/{old.uid}" not in urls
    assert "/tablet/anaesthesia-shell" in urls
    assert "/static/js/offline-anaesthesia.js" in urls and "/static/js/anaesthesia.js" in urls


def test_anaesthesia_shell_has_the_forms_and_the_usual_ranges(client, clinic, login):
    import json
    import re

    from kiosk.anaesthesia.entries import VITALS

    assert client.get("/tablet/anaesthesia-shell").status_code == 302
    login(clinic.user(3))
    page = client.get("/tablet/anaesthesia-shell").get_data(as_text=True)
    for kind in ("vitals", "drug", "event", "pre", "header", "note"):
        assert f'data-outbox="anaesthesia.record" data-kind="{kind}"' in page
    assert 'data-outbox="anaesthesia.finalise"' in page
    rules = json.loads(re.search(r'id="anaesthesia-rules">(.*?)</script>', page).group(1))
    assert [(m["key"], m["low"], m["high"]) for m in rules["vitals"]] == [
        (m.key, f"{m.low.normalize():f}", f"{m.high.normalize():f}") for m in VITALS]
    assert rules["vitals"][0] == {"key": "hr", "label": "HR", "unit": "bpm", "low": "20",
                                  "high": "300"}
