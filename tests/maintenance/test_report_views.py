"""The after-outage report's pages: who may read them and mark them reviewed, plain words
only, escaped names, the print view and its PDF, the part that refreshes itself, and the
poke that tells an open report something changed."""

import uuid
from datetime import timedelta

from flask import g, render_template
from sqlalchemy import select

from kiosk import create_app
from kiosk.core import clock
from kiosk.core.audit import AuditEntry
from kiosk.documents.worker import documents_work
from kiosk.extensions import db
from kiosk.maintenance.models import Outage
from kiosk.staff.models import User
from tests import factories
from tests.maintenance.test_report import (
    OP_NAME,
    USER_ID,
    ago,
    outage_after_offline_work,
    outage_of,
    post,
    tablet_numbered,
)


def person(level: int) -> User:
    """The clinic's user of that level, read afresh (sessions end with each request)."""
    return db.session.scalar(select(User).where(User.level == level))


def part_text(html: str) -> str:
    """The report's part of a page: what the person reads of the outage."""
    return html[html.index('id="outage-report"'):]


def test_the_report_says_everything_in_words_with_an_action_on_each_line(clinic, client,
                                                                          login, frozen_clock):
    w = outage_after_offline_work(clinic, client, frozen_clock)
    documents_work()
    login(person(4))
    page = client.get(f"/outages/{outage_of(w).uid}")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    text = part_text(page.text)
    for words in ("Red #2", "Green #1", "not heard from since", "Not all synced yet",
                  "Biscuit", "Maropitant", "ate half", "given on the sheet", "Level 3",
                  "Level 5", "Anaesthesia sheet", "Form: Anaesthesia consent", "PDF archived",
                  "Open the PDF", "Luna", "Discharge summary", "Pepper",
                  "Link to the practice system", "1 charge performed during the outage",
                  "12.50", "1 captured offline",
                  "The billing report for exactly this span", "Review it"):
        assert words in text, words
    assert "All synced" not in text
    assert not OP_NAME.search(text) and not USER_ID.search(text)
    assert f"/patients/{w.pepper_uid}/edit" in text
    assert "/billing/?from=" in text and "/devices/" in text and "/documents/" in text


def test_all_synced_shows_only_once_every_tablet_said_so(clinic, client, login, frozen_clock):
    w = outage_after_offline_work(clinic, client, frozen_clock)
    uid = outage_of(w).uid
    login(person(3))
    assert "All synced" not in client.get(f"/outages/{uid}/part").text
    frozen_clock.advance(minutes=1)
    post(w.green, [], pending=2)
    text = client.get(f"/outages/{uid}/part").text
    assert "All synced" not in text and "holds 2 unsent changes" in text
    post(w.green, [], pending=0)
    text = client.get(f"/outages/{uid}/part").text
    assert "All synced" in text and "Not all synced" not in text


def test_levels_read_and_review(clinic, client, login, frozen_clock):
    now = clock.utcnow()
    outage = Outage(cause="detected", started_at=now - timedelta(hours=1),
                    ended_at=now - timedelta(minutes=30))
    db.session.add(outage)
    db.session.commit()
    uid = outage.uid
    assert client.get(f"/outages/{uid}").status_code == 302  # to the sign-in page
    assert client.get("/outages/").status_code == 302
    login(person(2))
    assert client.get(f"/outages/{uid}").status_code == 403
    assert client.get("/outages/").status_code == 403
    login(person(3))
    page = client.get(f"/outages/{uid}")
    assert page.status_code == 200 and "The billing report needs level 4" in page.text
    assert "Mark reviewed" not in page.text
    listing = client.get("/outages/").text
    assert "found from the tablets" in listing and "not reviewed" in listing
    assert client.get("/outages/not-an-outage").status_code == 404
    login(person(5))
    assert client.post(f"/outages/{uid}/review").status_code == 403
    assert outage_of_uid(uid).reviewed_at is None
    login(person(6))
    assert "Mark reviewed" in client.get(f"/outages/{uid}").text
    answer = client.post(f"/outages/{uid}/review")
    assert answer.status_code == 302
    done = outage_of_uid(uid)
    assert done.reviewed_at == now and done.reviewed_by_id == person(6).id
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "outage.review"))
    again = client.post(f"/outages/{uid}/review")
    assert again.status_code == 409 and "already marked reviewed" in again.text
    assert outage_of_uid(uid).reviewed_at == now
    assert "reviewed" in client.get("/outages/").text


def outage_of_uid(uid: str) -> Outage:
    db.session.expire_all()
    return db.session.scalar(select(Outage).where(Outage.uid == uid))


def test_an_outage_under_way_cannot_be_marked_reviewed(clinic, client, login, frozen_clock):
    outage = Outage(cause="detected", started_at=clock.utcnow() - timedelta(minutes=10))
    db.session.add(outage)
    db.session.commit()
    uid = outage.uid
    login(person(6))
    answer = client.post(f"/outages/{uid}/review")
    assert answer.status_code == 409 and "not over yet" in answer.text
    assert outage_of_uid(uid).reviewed_at is None
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "outage.review")) \
        is None


def test_marking_reviewed_needs_the_csrf_token(tmp_path):
    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/csrf.db"})
    with app.app_context():
        db.create_all()
        manager = factories.clinic_make().user(6)
        now = clock.utcnow()
        outage = Outage(cause="detected", started_at=now - timedelta(hours=1),
                        ended_at=now - timedelta(minutes=5))
        db.session.add(outage)
        db.session.commit()
        uid = outage.uid
        guarded = app.test_client()
        from kiosk.core.auth import SESSION_KEY
        from kiosk.staff.sessions import staff_session_start

        key = staff_session_start(user=manager, auth="password")
        db.session.commit()
        with guarded.session_transaction() as session:
            session["user_id"], session["auth"], session[SESSION_KEY] = manager.id, "password", key
        assert guarded.post(f"/outages/{uid}/review").status_code == 400
        assert outage_of_uid(uid).reviewed_at is None
        page = guarded.get(f"/outages/{uid}").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert guarded.post(f"/outages/{uid}/review", data={"csrf_token": token}
                            ).status_code == 302
        assert outage_of_uid(uid).reviewed_at is not None
        db.session.remove()
        db.engine.dispose()


def test_names_are_escaped(clinic, client, login, frozen_clock):
    tablet = tablet_numbered(client, "Ward tablet", "red", 1)
    vet = type("Ref", (), {"public_id": person(5).public_id})
    post(tablet, [tablet.op("patient.create", {"patient": str(uuid.uuid4()),
                                               "name": "<script>alert(1)</script>",
                                               "species": "canine"}, vet, at=ago(20))])
    uid = db.session.scalars(select(Outage)).one().uid
    login(person(4))
    text = client.get(f"/outages/{uid}").text
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_the_print_view_and_its_pdf(clinic, client, login, frozen_clock):
    w = outage_after_offline_work(clinic, client, frozen_clock)
    documents_work()
    uid = outage_of(w).uid
    login(person(6))
    page = client.get(f"/outages/{uid}")
    assert "data-print" in page.text and f"/outages/{uid}/print" in page.text
    assert "css/outage-report.css" in page.text and "js/outage-report.js" in page.text
    printed = client.get(f"/outages/{uid}/print")
    assert printed.status_code == 200
    html = printed.text
    for absent in ("<nav", "<form", "<button", "topbar", "hx-get", "data-live"):
        assert absent not in html, absent
    assert "After the outage" in html and "Biscuit" in html and "Pepper" in html
    assert html.count('class="outage-section') == 7
    pdf = client.get(f"/outages/{uid}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Cache-Control"] == "no-store"
    login(person(2))
    assert client.get(f"/outages/{uid}/print").status_code == 403
    assert client.get(f"/outages/{uid}.pdf").status_code == 403


def test_the_live_part_renders_alone_and_a_sync_pokes_open_reports(clinic, client, login,
                                                                   socketio_client,
                                                                   frozen_clock):
    w = outage_after_offline_work(clinic, client, frozen_clock)
    uid = outage_of(w).uid
    login(person(3))
    part = client.get(f"/outages/{uid}/part")
    assert part.status_code == 200 and "<html" not in part.text
    assert 'id="outage-report"' in part.text and 'data-live-topic="outage"' in part.text
    assert f'hx-get="/outages/{uid}/part"' in part.text
    swapped = client.get(f"/outages/{uid}", headers={"HX-Request": "true"})
    assert "<html" not in swapped.text and 'id="outage-report"' in swapped.text
    page = client.get(f"/outages/{uid}").text
    assert "data-live-rooms='[\"devices\"]'" in page and "js/live.js" in page
    for key in ("user", "sign_in", "display", "tablet"):
        g.pop(key, None)
    sio = socketio_client()
    assert sio.emit("join", {"rooms": ["devices"]}, callback=True)["joined"] == ["devices"]
    sio.get_received()
    post(w.green, [], pending=0)
    topics = [evt["args"][0]["topic"] for evt in sio.get_received() if evt["name"] == "poke"]
    assert "outage" in topics


def test_the_staff_banner_points_at_the_outage_to_review(app, clinic, frozen_clock):
    now = clock.utcnow()
    outage = Outage(cause="detected", started_at=now - timedelta(hours=2),
                    ended_at=now - timedelta(hours=1))
    db.session.add(outage)
    db.session.commit()
    with app.test_request_context():
        g.user = person(3)
        html = render_template("maintenance/_outage_banner.html")
    assert "The server was out of reach from" in html and f"/outages/{outage.uid}" in html
    with app.test_request_context():
        g.user = person(2)
        assert "out of reach" not in render_template("maintenance/_outage_banner.html")
    outage.reviewed_at, outage.reviewed_by_id = now, person(6).id
    db.session.commit()
    with app.test_request_context():
        g.user = person(3)
        assert "out of reach" not in render_template("maintenance/_outage_banner.html")


def test_a_failed_pdf_says_so_and_offers_a_manager_the_retry(clinic, client, login,
                                                              frozen_clock, monkeypatch):
    from kiosk.documents import worker

    w = outage_after_offline_work(clinic, client, frozen_clock)
    uid = outage_of(w).uid
    monkeypatch.setattr(worker, "pdf_render", lambda doc: (_ for _ in ()).throw(
        OSError("no fonts")))
    for hours in range(0, 6):
        worker.documents_work(now=clock.utcnow() + timedelta(hours=hours))
    login(person(6))
    text = part_text(client.get(f"/outages/{uid}").text)
    assert text.count("PDF failed") == 3 and "Open the PDF" not in text
    assert text.count("Try the PDF again") == 3 and "/retry" in text
    printed = client.get(f"/outages/{uid}/print").text
    assert "PDF failed" in printed and "<form" not in printed and "<button" not in printed
    login(person(4))
    text = part_text(client.get(f"/outages/{uid}").text)
    assert "Try the PDF again" not in text and "Ask a manager to try it again" in text
