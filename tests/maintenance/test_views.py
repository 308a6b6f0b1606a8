"""Maintenance pages: managers only, field errors with nothing stored, CSRF, and the
banner every screen carries (public: times and words only, escaped)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kiosk import create_app
from kiosk.core.auth import SESSION_KEY
from kiosk.core.jobs import CONSUMER_STARTED as BOOTED
from kiosk.extensions import db
from kiosk.maintenance.jobs import maintenance_tick
from kiosk.maintenance.models import MaintenanceWindow
from tests import factories

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOOD = {"starts_at": "2026-11-22T14:00", "ends_at": "2026-11-22T15:30",
        "message": "Server upgrade <b>tonight</b>"}


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(MaintenanceWindow))


@pytest.fixture
def manager(clinic, login, frozen_clock):
    return login(clinic.user(6))


def test_a_manager_plans_a_window_and_every_screen_shows_its_banner(manager, client, clinic):
    response = client.post("/maintenance/", data=GOOD)
    assert response.status_code == 302
    assert _count() == 1
    page = client.get("/maintenance/").text
    assert "Sun 22 Nov 14:00" in page
    board = client.get(f"/boards/{clinic.board.id}").text
    assert 'id="maintenance-banner"' in board and "starts in 2 h 00 min" in board
    # The message is plain words: markup shows as text, never as markup.
    assert "Server upgrade &lt;b&gt;tonight&lt;/b&gt;" in board
    assert "<b>tonight</b>" not in board


def test_the_banner_alone_is_public_and_says_nothing_clinical(manager, client, clinic):
    factories.patient_make(clinic, name="Zanzibar")
    client.post("/maintenance/", data=GOOD)
    anonymous = client.application.test_client()
    response = anonymous.get("/maintenance/banner")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "starts in 2 h 00 min" in response.text and "Zanzibar" not in response.text
    assert 'data-phase="notice"' in response.text


def test_no_banner_without_a_window_or_for_one_beyond_the_notice(manager, client):
    assert "hidden" in client.get("/maintenance/banner").text
    client.post("/maintenance/", data={"starts_at": "2026-11-25T14:00",
                                       "ends_at": "2026-11-25T15:00"})
    assert _count() == 1
    banner = client.get("/maintenance/banner").text
    assert "data-window" not in banner and "hidden" in banner


def test_the_banner_says_under_way_once_the_window_started(manager, client, app,
                                                          frozen_clock):
    app.extensions[BOOTED] = T0
    client.post("/maintenance/", data=GOOD)
    frozen_clock.set(T0 + timedelta(hours=1, minutes=57))
    maintenance_tick()
    assert 'data-phase="preparing"' in client.get("/maintenance/banner").text
    frozen_clock.set(T0 + timedelta(hours=2, minutes=1))
    banner = client.get("/maintenance/banner").text
    assert 'data-phase="under_way"' in banner
    assert "under way, expected to end at 15:30" in banner


@pytest.mark.parametrize("data, field, words", [
    ({**GOOD, "ends_at": "2026-11-22T13:00"}, "ends_at", "must end after it starts"),
    ({**GOOD, "starts_at": "soon"}, "starts_at", "Enter a date and time"),
])
def test_a_bad_window_is_shown_again_with_its_error_and_nothing_is_stored(
        manager, client, data, field, words):
    response = client.post("/maintenance/", data=data)
    assert response.status_code == 422
    assert words in response.text
    assert f'value="{data["starts_at"]}"' in response.text  # what was typed stays
    assert _count() == 0


def test_an_overlapping_window_is_refused(manager, client):
    client.post("/maintenance/", data=GOOD)
    response = client.post("/maintenance/", data={**GOOD, "starts_at": "2026-11-22T15:00",
                                                  "ends_at": "2026-11-22T16:00"})
    assert response.status_code == 422 and "overlaps" in response.text
    assert _count() == 1


def test_cancel_and_end_now(manager, client, app, frozen_clock):
    app.extensions[BOOTED] = T0
    client.post("/maintenance/", data=GOOD)
    window = db.session.scalars(select(MaintenanceWindow)).one()
    assert client.post(f"/maintenance/{window.uid}/end").status_code == 409
    assert client.post(f"/maintenance/{window.uid}/cancel").status_code == 302
    db.session.refresh(window)
    assert window.state == "cancelled"
    assert client.post("/maintenance/", data=GOOD).status_code == 302
    second = db.session.scalars(select(MaintenanceWindow).where(
        MaintenanceWindow.state == "scheduled")).one()
    frozen_clock.set(T0 + timedelta(hours=1, minutes=58))
    maintenance_tick()
    assert client.post(f"/maintenance/{second.uid}/end").status_code == 302
    db.session.refresh(second)
    assert second.state == "ended"
    assert client.post("/maintenance/nope/end").status_code == 404


def test_only_managers_with_a_password_open_the_page(clinic, login, client):
    login(clinic.user(5))
    assert client.get("/maintenance/").status_code == 403
    assert client.post("/maintenance/", data=GOOD).status_code == 403
    assert _count() == 0


def test_the_forms_need_their_csrf_token(tmp_path):
    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/csrf.db"})
    with app.app_context():
        db.create_all()
        user = factories.clinic_make().user(6)
        from kiosk.staff.sessions import staff_session_start

        key = staff_session_start(user=user, auth="password")
        db.session.commit()
        guarded = app.test_client()
        with guarded.session_transaction() as session:
            session["user_id"], session["auth"], session[SESSION_KEY] = user.id, "password", key
        far = {"starts_at": "2099-01-01T10:00", "ends_at": "2099-01-01T11:00"}
        assert guarded.post("/maintenance/", data=far).status_code == 400
        assert _count() == 0
        page = guarded.get("/maintenance/").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert guarded.post("/maintenance/", data={**far, "csrf_token": token}).status_code == 302
        assert _count() == 1
        db.session.remove()
