"""`kiosk documents work` run as a user runs it: the real command, its own process."""

import json
import os
import secrets
import subprocess
import time

import pytest

from kiosk import create_app
from kiosk.documents.models import DOC_QUEUED, DOC_READY, Document
from kiosk.documents.services import document_queue
from kiosk.extensions import db
from tests import factories
from tests.support.server import kiosk_executable, on_the_clock


def _kiosk(env, cwd, *args):
    return subprocess.run([kiosk_executable(), *args], env=on_the_clock(env), cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def _queued(tmp_path):
    """A migrated SQLite file with one queued document: (env, app, document uid)."""
    url = f"sqlite:///{tmp_path / 'kiosk.db'}"
    env = {**os.environ, "KIOSK_DATABASE_URL": url, "KIOSK_SECRET_KEY": secrets.token_urlsafe(32),
           "KIOSK_TIMEZONE": "UTC"}
    env.pop("KIOSK_REDIS_URL", None)
    upgraded = _kiosk(env, tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        clinic = factories.clinic_make()
        patient = factories.patient_make(clinic)
        uid = document_queue(patient=patient, kind="form", source_uid=None, title="A form",
                             html="<h1>A form</h1>").uid
        db.session.commit()
        db.session.remove()
    return env, app, uid


def _status(app, uid):
    with app.app_context():
        status = db.session.scalars(db.select(Document.status).filter_by(uid=uid)).one()
        db.session.remove()
        return status


def test_the_documents_work_command_renders_a_queued_document(tmp_path):
    env, app, uid = _queued(tmp_path)

    worked = _kiosk(env, tmp_path, "documents", "work")

    assert worked.returncode == 0, worked.stderr
    assert json.loads(worked.stdout.strip().splitlines()[-1])["rendered"] == 1
    with app.app_context():
        document = db.session.scalars(db.select(Document).filter_by(uid=uid)).one()
        assert document.status == DOC_READY and document.pdf.startswith(b"%PDF")
        assert db.session.scalars(db.select(Document).filter_by(status=DOC_QUEUED)).all() == []
        db.session.remove()


@pytest.mark.parametrize("command", [("worker",), ("documents", "work", "--loop")],
                         ids=["kiosk worker", "deprecated --loop"])
def test_the_separate_worker_keeps_working_the_queue(tmp_path, command):
    """`kiosk worker`, the documented separate worker (on the SQLite queue beside the
    database), makes the PDF; the old `kiosk documents work --loop` still runs it."""
    env, app, uid = _queued(tmp_path)
    worker = subprocess.Popen([kiosk_executable(), *command],
                              env=on_the_clock(env),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        deadline = time.monotonic() + 60
        while _status(app, uid) != DOC_READY and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stdout.read()
            time.sleep(0.5)
        assert _status(app, uid) == DOC_READY
        assert worker.poll() is None  # still there for the next document
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
