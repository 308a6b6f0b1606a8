"""`kiosk db upgrade` on a live database while a tablet holds unsent work: the running
server keeps answering on the newer schema, and after the restart the tablet's held batch
is applied once (SQLite, and PostgreSQL when a server is reachable)."""

import json
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text

from ..support.migrations import (
    NEWER_REVISION,
    database_revision,
    newer_migrations,
    newer_schema_present,
    server_db_upgrade,
)
from ..support.server import KioskServer

pytestmark = pytest.mark.servers  # real server processes on databases of their own


def one(url: str, sql: str, **params):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).first()
    finally:
        engine.dispose()


class Tablet:
    """A paired tablet posting SYNC.md batches to a real server."""

    def __init__(self, server: KioskServer, user: str):
        out = server.kiosk("devices", "add", "--name", "Ward tablet", "--colour", "blue")
        device = json.loads(out.strip().splitlines()[-1])
        self.server, self.user = server, user
        self.id, self.token, self.seq = device["id"], device["token"], 0

    def op(self, name: str, args: dict) -> dict:
        self.seq += 1
        return {"id": str(uuid.uuid4()), "seq": self.seq, "name": name, "args": args,
                "at": self.server.now_z(), "user": self.user}

    def send(self, ops: list[dict]) -> dict:
        response = requests.post(
            f"{self.server.base_url}/api/sync", timeout=30,
            headers={"Authorization": f"Bearer {self.token}"},
            json={"device": self.id, "sent_at": self.server.now_z(),
                  "outbox": {"pending": len(ops)}, "ops": ops})
        assert response.status_code == 200, response.text
        return response.json()


def test_an_upgrade_under_a_running_server_loses_no_tablet_work(tmp_path, fresh_database_url):
    url = fresh_database_url
    server = KioskServer(tmp_path, env={"KIOSK_DATABASE_URL": url})
    newer = newer_migrations(tmp_path)
    server.prepare()
    server.start()
    try:
        user = f"u_{one(url, 'SELECT id FROM users WHERE username = :n', n='vet')[0]}"
        # A task done with a tick (one that records a value would need it).
        patient, task = one(url, "SELECT p.uid, t.uid FROM tasks t JOIN patients p ON "
                            "p.id = t.patient_id JOIN orders o ON o.id = t.order_id "
                            "WHERE p.status = 'admitted' AND t.status = 'scheduled' "
                            "AND o.value_type = 'none' ORDER BY t.due_at, t.id")
        tablet = Tablet(server, user)
        first = tablet.send([tablet.op("task.complete", {"task": task, "note": "before"})])
        assert [r["status"] for r in first["results"]] == ["applied"], first
        # Done offline, not sent yet: the tablet holds these through the upgrade.
        held = [tablet.op("note.add", {"note": str(uuid.uuid4()), "patient": patient,
                                       "text": "Written while the server was upgraded"}),
                tablet.op("patient.create", {"patient": str(uuid.uuid4()),
                                             "name": "Upgrade Ursula", "species": "feline"})]

        server_db_upgrade(server, newer)  # while the server runs
        assert database_revision(url) == NEWER_REVISION and newer_schema_present(url)
        # The old process still works on the newer schema (a column added, nothing removed).
        heartbeat = tablet.send([])
        assert heartbeat["last_seq"] == 1

        server.stop()
        server.start()  # the newer release's processes
        answer = tablet.send(held)
        again = tablet.send(held)  # the answer lost: the tablet sends the same batch again
    finally:
        server.stop()

    assert [r["status"] for r in answer["results"]] == ["applied", "applied"], answer
    assert answer["last_seq"] == 3
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert one(url, "SELECT count(*) FROM notes WHERE text = :t",
               t="Written while the server was upgraded")[0] == 1
    assert one(url, "SELECT count(*) FROM patients WHERE name = 'Upgrade Ursula'")[0] == 1
    assert one(url, "SELECT status FROM tasks WHERE uid = :u", u=task)[0] == "done"
    assert one(url, "SELECT count(*) FROM sync_ops WHERE status = 'applied'")[0] == 3
