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
    assert "js/outbox.js" in page and "js/tablet-setup.js" in page


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
    assert "/static/js/outbox.js" in urls and "/tablet/sheet-shell" in urls


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
