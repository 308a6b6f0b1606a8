"""`kiosk documents work` run as a user runs it: the real command, its own process."""

import json
import os
import secrets
import subprocess

from kiosk import create_app
from kiosk.documents.models import DOC_QUEUED, DOC_READY, Document
from kiosk.documents.services import document_queue
from kiosk.extensions import db
from tests import factories
from tests.e2e.server import kiosk_executable


def _kiosk(env, cwd, *args):
    return subprocess.run([kiosk_executable(), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_documents_work_command_renders_a_queued_document(tmp_path):
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

    worked = _kiosk(env, tmp_path, "documents", "work")

    assert worked.returncode == 0, worked.stderr
    assert json.loads(worked.stdout.strip().splitlines()[-1])["rendered"] == 1
    with app.app_context():
        document = db.session.scalars(db.select(Document).filter_by(uid=uid)).one()
        assert document.status == DOC_READY and document.pdf.startswith(b"%PDF")
        assert db.session.scalars(db.select(Document).filter_by(status=DOC_QUEUED)).all() == []
        db.session.remove()
