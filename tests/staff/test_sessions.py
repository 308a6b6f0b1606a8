"""The session cookie goes out only when the session changed, or once a day.

A browser keeps one cookie, and every response that sends it writes back the session its
request began with. A slow request (a tablet refreshing its cached pages) begun before a
sign-in or a tablet claim, answering after it, must not put the old session back.
"""

import time

from kiosk.core.auth import SESSION_REFRESHED
from kiosk.devices.services import device_provision
from kiosk.extensions import db
from tests import factories

DAY = 24 * 60 * 60


def sets_cookie(response) -> bool:
    return any(h.startswith("session=") for h in response.headers.getlist("Set-Cookie"))


def test_an_unchanged_session_is_not_sent_back(clinic, client):
    signed_in = client.post("/login", data={"username": "user4", "password": "password-4"})
    assert signed_in.status_code == 302 and sets_cookie(signed_in)
    client.get("/patients/")  # the first page adds the form token: a change
    page = client.get("/patients/")
    assert page.status_code == 200 and not sets_cookie(page)


def test_a_request_begun_before_a_tablet_claim_cannot_undo_it(app, clinic, client):
    patient = factories.patient_make(clinic, "Rex")
    _device, token = device_provision(name="Ward tablet", colour="blue", number=2)
    db.session.commit()
    client.post("/login", data={"username": "user4", "password": "password-4"})
    client.get("/patients/")
    before_claim = client.get_cookie("session").value
    claimed = client.post("/tablet/claim", headers={"Authorization": f"Bearer {token}"})
    assert claimed.status_code == 200 and sets_cookie(claimed)
    # A request that carried the cookie from before the claim answers now, sending none.
    slow = app.test_client()
    slow.set_cookie("session", before_claim)
    late = slow.get(f"/patients/{patient.uid}/sheet")
    assert late.status_code == 200 and not sets_cookie(late)
    page = client.get(f"/patients/{patient.uid}/sheet").get_data(as_text=True)
    assert 'data-tablet="d_1"' in page


def test_a_day_old_session_is_renewed(clinic, client):
    client.post("/login", data={"username": "user4", "password": "password-4"})
    client.get("/patients/")
    with client.session_transaction() as session:
        stamped = session[SESSION_REFRESHED]
        assert abs(stamped - time.time()) < 60
        session[SESSION_REFRESHED] = stamped - DAY
    renewed = client.get("/patients/")
    assert renewed.status_code == 200 and sets_cookie(renewed)
    with client.session_transaction() as session:
        assert session[SESSION_REFRESHED] >= stamped and session["user_id"]
    assert not sets_cookie(client.get("/patients/"))

