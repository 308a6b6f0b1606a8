"""Live updates in one process: who may connect and join, and which pokes follow a commit."""

from sqlalchemy import select

from kiosk.devices.services import device_provision, device_revoke, display_create
from kiosk.extensions import db
from kiosk.treatments.models import Task
from kiosk.treatments.services import order_stop, task_complete
from tests import factories


def pokes(sio) -> list[dict]:
    return [evt["args"][0] for evt in sio.get_received() if evt["name"] == "poke"]


def first_task(order) -> Task:
    return db.session.scalars(select(Task).where(Task.order_id == order.id)
                              .order_by(Task.due_at)).first()


def test_anonymous_clients_are_refused(clinic, socketio_client):
    sio = socketio_client()
    assert not sio.is_connected()
    sio = socketio_client(auth={"token": "x" * 43})
    assert not sio.is_connected()


def test_a_signed_in_user_joins_rooms_and_hears_a_completion(clinic, client, login,
                                                             socketio_client):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    login(clinic.user(2))
    sio = socketio_client()
    assert sio.is_connected()
    ack = sio.emit("join", {"rooms": [f"board:{clinic.board.id}", f"sheet:{patient.uid}"]},
                   callback=True)
    assert ack == {"joined": [f"board:{clinic.board.id}", f"sheet:{patient.uid}"],
                   "refused": []}
    response = client.post(f"/tasks/{first_task(order).uid}/complete", data={})
    assert response.status_code in (200, 302)
    received = pokes(sio)
    assert {"topic": "board", "board": clinic.board.id, "patient": patient.uid} in [
        {k: v for k, v in p.items() if k != "version"} for p in received]
    assert {"topic": "sheet", "patient": patient.uid} in [
        {k: v for k, v in p.items() if k != "version"} for p in received]
    assert all(set(p) <= {"topic", "board", "patient", "version"} for p in received)


def test_a_rolled_back_change_sends_nothing(clinic, client, login, socketio_client):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    login(clinic.user(2))
    sio = socketio_client()
    sio.emit("join", {"rooms": [f"sheet:{patient.uid}"]}, callback=True)
    task_complete(task=first_task(order), user=clinic.user(2))
    db.session.rollback()
    assert pokes(sio) == []
    assert first_task(order).status == "scheduled"


def test_a_burst_in_one_commit_is_one_poke_per_room(clinic, client, login, socketio_client):
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    other = factories.order_make(clinic, patient, name="Meloxicam")
    login(clinic.user(2))
    sio = socketio_client()
    sio.emit("join", {"rooms": [f"sheet:{patient.uid}", f"board:{clinic.board.id}"]},
             callback=True)
    order_stop(order=order, user=clinic.user(4))
    task_complete(task=first_task(other), user=clinic.user(4))
    db.session.commit()
    received = pokes(sio)
    assert sorted(p["topic"] for p in received) == ["board", "sheet"]


def test_a_move_between_wards_pokes_both_boards(clinic, client, login, socketio_client):
    from kiosk.clinic.models import Ward
    from kiosk.patients.services import patient_update
    from kiosk.whiteboards.models import Board

    surgery = Ward(name="Surgery")
    db.session.add(surgery)
    db.session.flush()
    board = Board(name="Surgery board", kind="ward", ward_id=surgery.id)
    db.session.add(board)
    db.session.commit()
    patient = factories.patient_make(clinic)
    login(clinic.user(6))
    sio = socketio_client()
    sio.emit("join", {"rooms": [f"board:{clinic.board.id}", f"board:{board.id}"]},
             callback=True)
    patient_update(patient=patient, user=clinic.user(4), data={"ward": "Surgery"})
    db.session.commit()
    assert sorted(p["board"] for p in pokes(sio)) == sorted([clinic.board.id, board.id])


def test_malformed_events_are_ignored_and_the_connection_survives(clinic, login,
                                                                  socketio_client, caplog):
    login(clinic.user(1))
    sio = socketio_client()
    for bad in (None, "board:1", {"rooms": "board:1"}, {"rooms": ["x" * 5000]},
                {"rooms": [1, {"a": 1}]}, {"rooms": ["board:1"] * 51}):
        ack = sio.emit("join", bad, callback=True)
        assert ack["joined"] == []
    sio.emit("no-such-event", {"x": 1})
    assert sio.is_connected()
    assert sio.emit("join", {"rooms": ["devices"]}, callback=True)["joined"] == ["devices"]
    assert "malformed join" in caplog.text


def test_a_display_hears_its_own_board_only(clinic, socketio_client):
    from kiosk.whiteboards.models import Board

    other = Board(name="Other", kind="list")
    db.session.add(other)
    db.session.flush()
    _, token = display_create(actor=clinic.user(6), name="ICU wall", board_id=clinic.board.id)
    db.session.commit()
    patient = factories.patient_make(clinic)
    order = factories.order_make(clinic, patient)
    sio = socketio_client(auth={"token": token})
    assert sio.is_connected()
    ack = sio.emit("join", {"rooms": [f"board:{other.id}", f"sheet:{patient.uid}", "devices",
                                      f"board:{clinic.board.id}"]}, callback=True)
    assert ack["refused"] == [f"board:{other.id}", f"sheet:{patient.uid}", "devices"]
    task_complete(task=first_task(order), user=clinic.user(2))
    db.session.commit()
    assert [p["topic"] for p in pokes(sio)] == ["board"]


def test_a_revoked_display_is_disconnected_and_refused(clinic, socketio_client):
    device, token = display_create(actor=clinic.user(6), name="Wall", board_id=clinic.board.id)
    db.session.commit()
    sio = socketio_client(auth={"token": token})
    assert sio.is_connected()
    device_revoke(actor=clinic.user(6), device=device)
    db.session.commit()
    assert not sio.is_connected()
    assert not socketio_client(auth={"token": token}).is_connected()


def test_a_tablet_token_connects(clinic, socketio_client):
    _, token = device_provision(name="Blue", colour="blue", number=1)
    db.session.commit()
    sio = socketio_client(auth={"token": token})
    assert sio.is_connected()
    assert sio.emit("join", {"rooms": ["devices"]}, callback=True)["refused"] == ["devices"]


def test_display_link_signs_a_screen_in_to_its_board_only(clinic, client):
    _, token = display_create(actor=clinic.user(6), name="Wall", board_id=clinic.board.id)
    db.session.commit()
    bad = client.post("/display/claim", json={"token": "nope" * 10})
    assert bad.status_code == 401 and "not valid" in bad.get_json()["message"]
    assert client.get(f"/boards/{clinic.board.id}").status_code == 302
    good = client.post("/display/claim", json={"token": token})
    assert good.get_json() == {"board_url": f"/boards/{clinic.board.id}"}
    assert client.get(f"/boards/{clinic.board.id}").status_code == 200
    assert client.get("/boards/999").status_code in (403, 404)
    assert client.get("/patients/").status_code == 302


def test_managers_add_and_revoke_displays(clinic, client, login):
    from kiosk.devices.models import Device

    login(clinic.user(5))
    assert client.get("/admin/displays").status_code == 403
    login(clinic.user(6))
    bad = client.post("/admin/displays", data={"name": "Wall", "board": ""})
    assert bad.status_code == 422 and "Choose the board" in bad.get_data(as_text=True)
    assert db.session.scalar(select(Device.id)) is None
    made = client.post("/admin/displays", data={"name": "Wall", "board": str(clinic.board.id)})
    html = made.get_data(as_text=True)
    assert made.status_code == 200 and "/display#" in html
    assert made.headers["Cache-Control"] == "no-store"
    device = db.session.scalar(select(Device))
    token = html.split("/display#")[1].split('"')[0]
    assert token not in device.token_hash
    assert client.post(f"/admin/displays/{device.id}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(Device, device.id).revoked_at is not None
    again = client.post(f"/admin/displays/{device.id}/revoke")
    assert again.status_code == 422 and "already revoked" in again.get_data(as_text=True)


def test_only_the_same_origin_may_open_a_socket(clinic, client, login):
    login(clinic.user(1))
    url = "/socket.io/?EIO=4&transport=polling"
    same = client.get(url, headers={"Origin": "http://localhost"})
    assert same.status_code == 200 and b'"sid"' in same.data
    foreign = client.get(url, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 400 and b'"sid"' not in foreign.data


def test_behind_a_proxy_the_forwarded_host_is_the_origin(clinic, tmp_path):
    from kiosk import create_app

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db.engine.url.render_as_string(
        hide_password=False), "KIOSK_PROXIES": 1})
    client = app.test_client()
    url = "/socket.io/?EIO=4&transport=polling"
    forwarded = {"X-Forwarded-Host": "vets.example", "X-Forwarded-Proto": "https",
                 "X-Forwarded-For": "10.1.2.3"}
    ok = client.get(url, headers={"Origin": "https://vets.example", **forwarded})
    assert ok.status_code == 200
    bad = client.get(url, headers={"Origin": "https://evil.example", **forwarded})
    assert bad.status_code == 400
