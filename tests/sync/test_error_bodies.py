"""Every JSON error has one shape, made by one function (core.errors.error_body):
`{"error": code, "message": text}`, plus `field` when one input is to blame and the keys
SYNC.md adds (`last_seq`, `max_ops`), and is never cached."""

import json

from tests import factories


def assert_error(response, status: int, code: str, **extra):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"error", "message", "field", *extra}
    for key, value in extra.items():
        assert body[key] == value
    assert response.headers["Cache-Control"] == "no-store"
    return body


def post_sync(client, token, body, *, raw=None):
    return client.post("/api/sync", data=raw if raw is not None else json.dumps(body),
                       content_type="application/json",
                       headers={"Authorization": f"Bearer {token}"})


def test_the_sync_endpoints_refusals(client, clinic, tablet):
    assert_error(post_sync(client, "wrong", {}), 401, "unauthorized")
    assert_error(post_sync(client, tablet.token, None, raw=b"{"), 400, "bad_json")
    assert_error(post_sync(client, tablet.token, [1]), 400, "bad_request")
    body = {"device": tablet.id, "sent_at": "2026-11-22T10:20:00Z"}
    assert_error(post_sync(client, tablet.token, {**body, "ops": [{"seq": 1}] * 501}), 413,
                 "too_large", max_ops=500)
    op = tablet.op("note.add", {}, clinic.user(2))
    op["seq"] = 5
    assert_error(post_sync(client, tablet.token, {**body, "ops": [op]}), 409,
                 "sequence_gap", last_seq=0)


def test_the_api_reads_refusals(client, clinic, login):
    assert_error(client.get("/api/patients"), 401, "unauthorized")
    login(clinic.user(2))
    assert_error(client.get("/api/patients?status=gone"), 400, "bad_request")
    assert_error(client.get("/api/patients/no-such/tasks"), 404, "not_found")
    assert_error(client.get("/api/devices/d_999"), 404, "not_found")


def test_the_tablet_and_display_endpoints_refusals(client):
    assert_error(client.post("/tablet/claim"), 401, "unauthorized")
    assert_error(client.post("/display/claim", json={"token": "nope"}), 401,
                 "bad_display_token")
    response = client.post("/pair", json={"code": "12"})
    body = assert_error(response, 400, response.get_json()["error"])
    assert body["field"] == "code"


def test_a_domain_error_answered_as_json_names_its_field(client, clinic, login):
    """A DomainError raised in a view is answered through the same function, with its field."""
    patient = factories.patient_make(clinic)
    login(clinic.user(2))
    response = client.get(f"/anaesthesia/{patient.uid}", headers={"Accept": "application/json"})
    body = assert_error(response, 404, "not_found")
    assert body["field"] == "sheet"
