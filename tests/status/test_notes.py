"""Incident notes: a manager posts, changes and resolves them; plain text only."""

import pytest
from sqlalchemy import func, select

from kiosk import create_app
from kiosk.core.audit import AuditEntry
from kiosk.extensions import db
from kiosk.status.models import IncidentNote
from kiosk.status.services import ERR_MARKUP
from tests import factories


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_manager_posts_a_note_shown_on_the_status_page(clinic, client, login, frozen_clock):
    login(clinic.user(6))
    answer = client.post("/status/notes", data={"title": "Lab results slow", "severity": "minor",
                                                "body": "The lab link is down; 5 < 10 min."})
    assert answer.status_code == 302
    note = db.session.scalar(select(IncidentNote))
    assert (note.title, note.severity, note.posted_by_id) == ("Lab results slow", "minor",
                                                              clinic.user(6).id)
    page = client.get("/status").text
    assert "Minor: Lab results slow" in page and "5 &lt; 10 min." in page
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "incident.posted"))
    assert audit.entity_uid == note.uid and audit.user_id == clinic.user(6).id


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"title": "<script>alert(1)</script>", "severity": "info"}, "title",
     ERR_MARKUP.format(label="The title")),
    ({"title": "Slow", "body": "see <img src=x onerror=alert(1)>", "severity": "info"}, "body",
     ERR_MARKUP.format(label="The text")),
    ({"title": "Slow", "body": "<!-- hidden -->", "severity": "info"}, "body",
     ERR_MARKUP.format(label="The text")),
    ({"title": "", "severity": "info"}, "title", "The title is required."),
    ({"title": "x" * 121, "severity": "info"}, "title",
     "The title is longer than 120 characters."),
    ({"title": "Slow", "body": "y" * 2001, "severity": "info"}, "body",
     "The text is longer than 2000 characters."),
    ({"title": "Slow", "severity": "apocalyptic"}, "severity", None),
])
def test_a_bad_note_is_refused_naming_the_field_and_nothing_is_stored(
        clinic, client, login, data, field, message):
    login(clinic.user(6))
    answer = client.post("/status/notes", data=data)
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.text
    if message:
        assert message in answer.text
    assert "<script>alert" not in answer.text  # what was typed comes back escaped
    assert count(IncidentNote) == 0
    assert db.session.scalar(select(func.count()).where(
        AuditEntry.entity == "incident_note")) == 0


def test_update_and_resolve(clinic, client, login, frozen_clock):
    login(clinic.user(6))
    client.post("/status/notes", data={"title": "Slow", "severity": "info"})
    note = db.session.scalar(select(IncidentNote))
    frozen_clock.advance(minutes=5)
    answer = client.post(f"/status/notes/{note.uid}", data={"title": "Very slow",
                                                            "severity": "major", "body": ""})
    assert answer.status_code == 302
    bad = client.post(f"/status/notes/{note.uid}", data={"title": "<b>x</b>",
                                                         "severity": "major"})
    assert bad.status_code == 422
    db.session.expire_all()
    assert (note.title, note.severity) == ("Very slow", "major")
    frozen_clock.advance(minutes=5)
    assert client.post(f"/status/notes/{note.uid}/resolve").status_code == 302
    db.session.expire_all()
    assert note.resolved_at is not None and note.resolved_by_id == clinic.user(6).id
    again = client.post(f"/status/notes/{note.uid}/resolve")
    assert again.status_code == 422 and "resolved already" in again.text
    body = client.get("/status.json").json["incidents"]
    assert body["open"] == [] and body["resolved"][0]["title"] == "Very slow"
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity == "incident_note").order_by(AuditEntry.id)).all()
    assert actions == ["incident.posted", "incident.updated", "incident.resolved"]


def test_only_managers_signed_in_with_a_password_manage_notes(clinic, client, login):
    assert client.get("/status/notes").status_code == 302  # to the sign-in page
    assert client.post("/status/notes", data={"title": "x"}).status_code == 302
    login(clinic.user(5))
    assert client.get("/status/notes").status_code == 403
    assert client.post("/status/notes", data={"title": "x", "severity": "info"}
                       ).status_code == 403
    assert count(IncidentNote) == 0
    login(clinic.user(6))
    assert client.get("/status/notes").status_code == 200


def test_posting_a_note_needs_its_csrf_token(tmp_path):
    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "KIOSK_JOBS_FILE": str(tmp_path / "jobs.db"),
                                 "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/csrf.db"})
    with app.app_context():
        db.create_all()
        user = factories.clinic_make().user(6)
        guarded = app.test_client()
        from kiosk.core.auth import SESSION_KEY
        from kiosk.staff.sessions import staff_session_start

        key = staff_session_start(user=user, auth="password")
        db.session.commit()
        with guarded.session_transaction() as session:
            session["user_id"], session["auth"], session[SESSION_KEY] = user.id, "password", key
        data = {"title": "Slow", "severity": "info"}
        assert guarded.post("/status/notes", data=data).status_code == 400
        assert count(IncidentNote) == 0
        token = guarded.get("/status/notes").text.split('name="csrf_token" value="')[1] \
            .split('"')[0]
        assert guarded.post("/status/notes", data={**data, "csrf_token": token}
                            ).status_code == 302
        assert count(IncidentNote) == 1
        # The public pages answer without any token or session.
        assert guarded.get("/status").status_code == 200
        db.session.remove()
        db.engine.dispose()
