"""A server killed (-9) in the middle of a sync batch loses nothing and applies nothing twice.

A real `kiosk run` on a demo clinic gets a batch of about 400 ops (completions and notes);
the process is killed while the request is being processed (before it answers), started
again on the same database, and the same batch is sent again: every op is then applied
exactly once.
"""

import json
import os
import signal
import threading
import time
import uuid

import pytest
import requests

from ..support.server import KioskServer, serving

pytestmark = pytest.mark.servers

BATCH = 400
ATTEMPTS = 6


def last_json(output: str) -> dict:
    """The JSON object a `kiosk` command printed as its last line."""
    return json.loads(output.strip().splitlines()[-1])


def open_tasks(server: KioskServer, token: str) -> list[dict]:
    """Scheduled tasks of the admitted demo patients, read through the API as a tablet does."""
    headers = {"Authorization": f"Bearer {token}"}
    patients = requests.get(f"{server.base_url}/api/patients", headers=headers, timeout=10)
    patients.raise_for_status()
    tasks = []
    for patient in patients.json():
        answer = requests.get(f"{server.base_url}/api/patients/{patient['uid']}/tasks",
                              headers=headers, timeout=10)
        answer.raise_for_status()
        tasks += [{**t, "patient": patient["uid"]} for t in answer.json()
                  if t["status"] == "scheduled"]
    return tasks


def batch_make(server: KioskServer, tasks: list[dict], patients: list[str], user: str,
               count: int) -> list[dict]:
    """`count` ops, seq 1…: mostly completions of distinct tasks, every fifth a note,
    stamped with the server's time."""
    ops, pending = [], list(tasks)
    for seq in range(1, count + 1):
        op_id = str(uuid.uuid4())
        if seq % 5 == 0 or not pending:
            name = "note.add"
            args = {"note": op_id, "patient": patients[seq % len(patients)],
                    "text": f"Observation #{seq}: resting comfortably."}
        else:
            task = pending.pop()
            name, args = "task.complete", {"task": task["uid"]}
            if task["kind"] == "observation":
                args["value"] = "38.4"
        ops.append({"id": op_id, "seq": seq, "name": name, "args": args, "at": server.now_z(),
                    "user": user})
    return ops


def post(server: KioskServer, device: dict, ops: list[dict], timeout: float = 120):
    """POST /api/sync for `device`."""
    return requests.post(f"{server.base_url}/api/sync", timeout=timeout,
                         headers={"Authorization": f"Bearer {device['token']}"},
                         json={"device": device["id"], "sent_at": server.now_z(), "ops": ops})


def records_of(server: KioskServer, device: dict) -> int:
    """How many op records the server's database holds for a device."""
    return server.query("SELECT count(*) FROM sync_ops WHERE device_id = ?",
                        int(device["id"][2:]))[0][0]


@pytest.fixture
def server(tmp_path):
    """A demo clinic served by `kiosk run` (stopped at the end)."""
    yield from serving(KioskServer(tmp_path, name="kill"))


def kill_during(server: KioskServer, device: dict, ops: list[dict], delay: float) -> dict:
    """Send the batch and kill -9 the server `delay` seconds later; what happened."""
    outcome: dict = {}

    def send():
        try:
            outcome["status"] = post(server, device, ops).status_code
        except requests.RequestException as exc:
            outcome["error"] = type(exc).__name__

    thread = threading.Thread(target=send)
    started = time.monotonic()
    thread.start()
    time.sleep(delay)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    outcome["killed_after_s"] = time.monotonic() - started
    thread.join(timeout=30)
    outcome["records"] = records_of(server, device)
    return outcome


def test_a_batch_killed_mid_flight_is_applied_exactly_once_after_a_restart(server):
    """kill -9 while a 400-op batch is processed; restart; resend: each op once."""
    user = last_json(server.kiosk("users", "add", "--name", "Night Tech", "--level", "3",
                                  "--pin", "4862"))["id"]
    probe = last_json(server.kiosk("devices", "add", "--name", "Probe", "--colour", "green"))
    tasks = open_tasks(server, probe["token"])
    patients = sorted({t["patient"] for t in tasks})
    assert len(tasks) >= 2 * BATCH, "the demo clinic has too few open tasks for this test"
    # How long a whole batch takes here, measured on other tasks with another tablet.
    started = time.monotonic()
    warm = post(server, probe, batch_make(server, tasks[BATCH:], patients, user, BATCH))
    full_batch_s = time.monotonic() - started
    assert warm.status_code == 200 and warm.json()["last_seq"] == BATCH

    tasks = tasks[:BATCH]
    attempts = []
    for attempt in range(ATTEMPTS):
        # An attempt that committed before the kill added its notes: count from here.
        notes_before = server.query("SELECT count(*) FROM notes")[0][0]
        device = last_json(server.kiosk("devices", "add", "--name", f"Tablet {attempt}",
                                        "--colour", "blue"))
        ops = batch_make(server, tasks, patients, user, BATCH)
        # Kill a quarter to a half of the way through (the request is in the server by then).
        delay = max(0.05, full_batch_s * (0.5 - 0.08 * attempt))
        outcome = kill_during(server, device, ops, delay)
        attempts.append(outcome)
        server.start()
        if "error" in outcome and outcome["records"] == 0 \
                and outcome["killed_after_s"] < full_batch_s * 0.9:
            break  # killed mid-batch: no answer, nothing committed, well before it could end
        # Committed before the kill (or never started): the resend must still be exact.
        again = post(server, device, ops)
        assert again.status_code == 200
        assert {r["status"] for r in again.json()["results"]} <= {"applied", "duplicate"}
        tasks = open_tasks(server, probe["token"])[:BATCH]
    else:
        pytest.fail(f"could not kill the server mid-batch: {attempts} (a full batch takes "
                    f"{full_batch_s:.2f} s)")

    print(f"full batch {full_batch_s:.2f} s; kill attempts: {attempts}")
    answer = post(server, device, ops)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["last_seq"] == BATCH
    assert [r["status"] for r in body["results"]] == ["applied"] * BATCH
    again = post(server, device, ops)
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * BATCH

    row = int(device["id"][2:])
    assert server.query("SELECT last_seq FROM devices WHERE id = ?", row)[0][0] == BATCH
    statuses = server.query("SELECT op_id, status FROM sync_ops WHERE device_id = ?", row)
    assert sorted(op_id for op_id, _ in statuses) == sorted(op["id"] for op in ops)
    assert {status for _, status in statuses} == {"applied"}
    notes = sum(op["name"] == "note.add" for op in ops)
    assert server.query("SELECT count(*) FROM notes")[0][0] == notes_before + notes
    completed = [op["args"]["task"] for op in ops if op["name"] == "task.complete"]
    marks = ",".join("?" * len(completed))
    rows = server.query(f"SELECT t.uid, t.status, count(c.id) FROM tasks t JOIN "
                        f"task_completions c ON c.task_id = t.id WHERE t.uid IN ({marks}) "
                        f"GROUP BY t.uid, t.status", *completed)
    assert sorted(rows) == sorted((uid, "done", 1) for uid in completed)
