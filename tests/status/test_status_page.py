"""The public status page, /status.json and the health endpoints for load balancers."""

import json
from datetime import UTC, datetime, timedelta

from kiosk.extensions import db
from kiosk.maintenance.models import MaintenanceWindow
from kiosk.status.health import heartbeat_stamp
from kiosk.status.models import IncidentNote
from tests import factories

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_healthz_answers_ok_without_signing_in(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.data == b"ok\n"
    assert answer.headers["Cache-Control"] == "no-store"


def test_readyz_says_the_database_answers(client):
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.data
    assert answer.json["status"] == "ok" and answer.json["down"] == []
    assert answer.json["checks"]["database"]["state"] == "ok"
    assert "redis" not in answer.json["checks"]  # not configured, not checked
    assert answer.headers["Cache-Control"] == "no-store"


def test_status_json_has_its_stable_keys(client, clinic, frozen_clock):
    answer = client.get("/status.json")
    assert answer.status_code == 200, answer.data
    body = answer.json
    assert set(body) == {"status", "checked_at", "version", "checks", "clinic", "timezone",
                         "maintenance", "incidents"}
    assert set(body["checks"]) == {"database", "jobs", "disk"}
    for check in body["checks"].values():
        assert set(check) == {"name", "state", "reason", "essential", "ms"}
    assert body["checked_at"] == "2026-11-22T12:00:00Z"
    assert body["maintenance"] == {"current": None, "upcoming": []}
    assert body["incidents"] == {"open": [], "resolved": []}
    # No worker ran in this test: the queue is reachable, its workers have not reported.
    assert body["checks"]["jobs"]["state"] == "degraded"
    assert body["status"] == "degraded"
    assert answer.headers["Cache-Control"] == "no-store"


def test_the_job_queue_is_ok_while_its_heartbeat_is_fresh_then_stale(client, clinic,
                                                                        frozen_clock):
    heartbeat_stamp()
    jobs = client.get("/status.json").json["checks"]["jobs"]
    assert jobs["state"] == "ok" and "0 jobs waiting" in jobs["reason"]
    frozen_clock.advance(minutes=4)
    jobs = client.get("/status.json").json["checks"]["jobs"]
    assert jobs["state"] == "degraded" and "stale" in jobs["reason"]


def test_low_disk_is_degraded(app, client, clinic):
    app.config["KIOSK_STATUS_DISK_LOW_MB"] = 1e12  # more than any disk has free
    disk = client.get("/status.json").json["checks"]["disk"]
    assert disk["state"] == "down" or disk["state"] == "degraded"
    app.config["KIOSK_STATUS_DISK_LOW_MB"] = 1
    assert client.get("/status.json").json["checks"]["disk"]["state"] == "ok"


def _window(start, hours=2, state="scheduled", message="Database upgrade"):
    window = MaintenanceWindow(starts_at=start, ends_at=start + timedelta(hours=hours),
                               message=message, state=state)
    db.session.add(window)
    db.session.commit()
    return window


def test_the_page_shows_maintenance_and_notes_in_the_clinics_time(client, frozen_clock):
    factories.clinic_make(timezone="Europe/Berlin")
    _window(NOW - timedelta(minutes=30), state="under_way", message="Upgrading now")
    _window(NOW + timedelta(days=2), message="Next <b>upgrade</b>")
    db.session.add(IncidentNote(title="Printer queue slow", body="PDFs take a minute",
                                severity="minor", posted_at=NOW))
    db.session.commit()
    answer = client.get("/status")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="60">' in html
    assert "Maintenance under way" in html and "Upgrading now" in html
    # Berlin is an hour ahead of UTC in November: 11:30 UTC is 12:30 on the clinic's clock.
    assert "Sun 22 Nov 12:30" in html
    assert "Tue 24 Nov 13:00 to Tue 24 Nov 15:00" in html
    assert "Next &lt;b&gt;upgrade&lt;/b&gt;" in html  # escaped, never markup
    assert "Minor: Printer queue slow" in html and "PDFs take a minute" in html
    assert "<script" not in html  # works without JavaScript
    body = client.get("/status.json").json
    assert body["maintenance"]["current"]["message"] == "Upgrading now"
    assert body["maintenance"]["upcoming"][0]["starts_at"] == "2026-11-24T12:00:00Z"
    assert body["incidents"]["open"][0]["title"] == "Printer queue slow"
    assert body["timezone"] == "Europe/Berlin"


def test_nothing_clinical_is_shown(client, clinic, frozen_clock):
    factories.patient_make(clinic, name="Zanzibarquux")
    factories.patient_make(clinic, name="Quokkaflorp")
    for path in ("/status", "/status.json", "/readyz"):
        text = client.get(path).get_data(as_text=True)
        for word in ("Zanzibarquux", "Quokkaflorp", "Level 6", "Level 1", "patient"):
            assert word not in text, (path, word)
    body = client.get("/status.json").json
    assert "patients" not in json.dumps(body)


def test_the_public_endpoints_need_no_sign_in_and_keep_no_session(client, clinic):
    for path in ("/healthz", "/readyz", "/status", "/status.json"):
        answer = client.get(path)
        assert answer.status_code in (200, 503), path
        assert "Set-Cookie" not in answer.headers, path


def test_a_window_under_way_before_its_start_says_when_it_starts(client, app, clinic,
                                                                  frozen_clock):
    from datetime import timedelta

    from kiosk.core import clock
    from kiosk.extensions import db
    from kiosk.maintenance.models import MaintenanceWindow

    now = clock.utcnow()
    db.session.add(MaintenanceWindow(starts_at=now + timedelta(minutes=3),
                                     ends_at=now + timedelta(hours=1), state="under_way",
                                     started_at=now, message="Upgrade", restore={}))
    db.session.commit()
    page = client.get("/status").text
    assert "Maintenance starts at" in page and "under way</strong> since" not in page
    assert client.get("/status.json").get_json()["maintenance"]["current"]["started"] is False
    frozen_clock.advance(minutes=4)
    assert "Maintenance under way</strong> since" in client.get("/status").text
