"""The one job queue (kiosk.core.jobs): jobs registered, queued after commit, run, retried,
on SQLite storage and on Redis, by the server's threads or by `kiosk worker`."""

import json
import logging
import os
import secrets
import sqlite3
import stat
import subprocess
import time
from datetime import UTC, datetime

import pytest
from flask import current_app
from sqlalchemy import func, select

from kiosk import create_app
from kiosk.clinic.models import Ward
from kiosk.core import jobs
from kiosk.core.jobs import (
    job_enqueue,
    job_names,
    job_periodic,
    job_register,
    job_unregister,
    jobs_run_pending,
)
from kiosk.documents import worker
from kiosk.documents.models import DOC_QUEUED, DOC_READY, Document
from kiosk.documents.services import document_queue
from kiosk.extensions import db
from tests import factories
from tests.support.database import app_on_fresh_database
from tests.support.queues import redis_queue_settings
from tests.support.server import free_port, kiosk_executable, on_the_clock


@pytest.fixture
def redis_queue():
    """Settings for a queue on Redis of this test alone (its keys deleted afterwards)."""
    with redis_queue_settings("kiosk_jobs_test") as settings:
        yield settings


@pytest.fixture
def own_jobs():
    """Jobs a test registers are forgotten after it (the tests' own names: test.*)."""
    before = set(job_names())
    yield
    for name in set(job_names()) - before:
        job_unregister(name)
    assert set(job_names()) == before


@pytest.fixture
def queue_app(own_jobs, tmp_path, server_database):
    """make(**settings): an application built after the test registered its jobs."""
    made = []

    def make(**overrides):
        context = app_on_fresh_database(server_database, tmp_path / f"q{len(made)}.db",
                                        overrides)
        made.append(context)
        return context.__enter__()

    yield make
    for context in reversed(made):
        context.__exit__(None, None, None)


def _wards() -> list[str]:
    db.session.remove()
    return sorted(db.session.scalars(select(Ward.name)))


def _ward_add(name: str) -> str:
    """A job: adds a ward (a row another session can see once committed)."""
    db.session.add(Ward(name=name, code=name[:3].upper()))
    db.session.commit()
    return current_app.name


def test_a_registered_job_is_queued_and_run_in_an_app_context(queue_app):
    job_register("test.ward_add", _ward_add)
    app = queue_app()

    job_enqueue("test.ward_add", "Isolation")

    assert app.extensions["kiosk.jobs"].huey.pending_count() == 1
    assert _wards() == []  # queued, not run
    assert jobs_run_pending() == 1
    assert _wards() == ["Isolation"]
    assert jobs_run_pending() == 0


def test_a_job_that_fails_is_rolled_back_and_retried_until_it_succeeds(queue_app):
    tries = []

    def flaky(name):
        tries.append(name)
        db.session.add(Ward(name=f"{name} {len(tries)}", code=f"T{len(tries)}"))
        db.session.flush()
        if len(tries) < 3:
            raise OSError("not yet")
        db.session.commit()

    job_register("test.flaky", flaky, retries=3, retry_delay_s=0)
    queue_app()

    job_enqueue("test.flaky", "Ward")

    assert jobs_run_pending() == 3  # two failures, each queued again, then success
    assert _wards() == ["Ward 3"]  # the failed tries' rows were rolled back


def test_a_retry_waits_its_delay_on_the_clock(queue_app, frozen_clock):
    tries = []

    def once_broken():
        tries.append(1)
        if len(tries) == 1:
            raise OSError("not yet")

    job_register("test.once_broken", once_broken, retries=2, retry_delay_s=10)
    app = queue_app()
    job_enqueue("test.once_broken")

    assert jobs_run_pending() == 1 and len(tries) == 1
    assert app.extensions["kiosk.jobs"].huey.scheduled_count() == 1
    frozen_clock.advance(seconds=9)
    assert jobs_run_pending() == 0
    frozen_clock.advance(seconds=1)
    assert jobs_run_pending() == 1 and len(tries) == 2
    frozen_clock.advance(minutes=10)
    assert jobs_run_pending() == 0  # it succeeded: nothing more


def test_a_delayed_job_runs_when_its_time_comes(queue_app, frozen_clock):
    job_register("test.ward_add", _ward_add)
    queue_app()

    job_enqueue("test.ward_add", "Later", delay_s=30)

    assert jobs_run_pending() == 0
    frozen_clock.advance(seconds=30)
    assert jobs_run_pending() == 1
    assert _wards() == ["Later"]


def test_a_periodic_job_is_registered_with_huey_on_its_minutes(queue_app):
    job_periodic("test.every_quarter", lambda: None, every_minutes=15)
    app = queue_app()
    engine = app.extensions["kiosk.jobs"]

    assert "test.every_quarter" in engine.periodic
    [task] = [t for t in engine.huey._registry.periodic_tasks
              if type(t).__name__ == "test.every_quarter"]
    assert task.validate_datetime(datetime(2026, 11, 22, 12, 45))
    assert not task.validate_datetime(datetime(2026, 11, 22, 12, 46))
    # Core's upkeep and the documents sweep are periodic jobs of every application.
    assert {"upkeep", "documents.sweep"} <= set(engine.periodic)


def test_a_job_is_read_run_and_forgotten_by_its_name(own_jobs):
    job_periodic("test.every_quarter", lambda: "ran", every_minutes=15)
    job_register("test.echo", lambda text: text)
    assert {"test.every_quarter", "test.echo"} <= set(job_names())
    assert (jobs.job_every("test.every_quarter"), jobs.job_every("test.echo")) == (15, None)
    assert jobs.job_run_now("test.echo", "hello") == "hello"
    job_unregister("test.echo")
    assert "test.echo" not in job_names()
    before = job_names()
    for read in (jobs.job_every, jobs.job_run_now, job_unregister):
        with pytest.raises(LookupError, match="no job is registered as “test.echo”"):
            read("test.echo")
    assert job_names() == before


def test_a_period_crontab_cannot_keep_is_refused_at_registration(own_jobs):
    with pytest.raises(ValueError, match="every_minutes=7"):
        job_periodic("test.odd", lambda: None, every_minutes=7)
    assert "test.odd" not in job_names()


def test_enqueueing_a_job_nobody_registered_or_with_arguments_json_cannot_hold_fails(
        queue_app):
    job_register("test.ward_add", _ward_add)
    app = queue_app()

    with pytest.raises(LookupError, match="test.nobody"):
        job_enqueue("test.nobody")
    with pytest.raises(TypeError):
        job_enqueue("test.ward_add", object())
    assert app.extensions["kiosk.jobs"].huey.pending_count() == 0


def test_messages_are_json_not_pickle(queue_app, tmp_path):
    job_register("test.ward_add", _ward_add)
    queue_app()
    job_enqueue("test.ward_add", "Kennels")

    conn = sqlite3.connect(tmp_path / "q0-jobs.db")
    [(data,)] = conn.execute("select data from task").fetchall()
    conn.close()
    message = json.loads(bytes(data))
    assert message["$message"][1].endswith("test.ward_add")
    assert ["Kennels"] in message["$message"]


def test_an_unreachable_queue_never_fails_the_caller(queue_app, caplog):
    job_register("test.ward_add", _ward_add)
    dead = f"redis://:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there
    queue_app(KIOSK_REDIS_URL=dead)

    with caplog.at_level(logging.WARNING, logger="kiosk.core.jobs"):
        job_enqueue("test.ward_add", "Nowhere")  # no exception: the rows and sweeps remain

    assert "job test.ward_add not queued (ConnectionError)" in caplog.text
    assert "s3cret" not in caplog.text


def test_the_jobs_file_is_private(tmp_path):
    before = os.umask(0)
    try:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.db'}"})
    finally:
        os.umask(before)
    path = tmp_path / "k-jobs.db"
    assert jobs.jobs_file(app) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_mistyped_worker_setting_stops_the_start_naming_it(tmp_path):
    with pytest.raises(RuntimeError, match="KIOSK_WORKER"):
        create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.db'}",
                               "KIOSK_WORKER": "threads"})


def test_the_old_documents_worker_switch_still_means_separate(tmp_path):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.db'}",
                                 "KIOSK_DOCUMENTS_WORKER": "0"})
    assert jobs._worker_separate(app)
    assert not jobs._worker_separate(create_app("testing", {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'k.db'}"}))


# Documents on the queue ------------------------------------------------------------------

def _queue_document(clinic) -> int:
    patient = factories.patient_make(clinic)
    document = document_queue(patient=patient, kind="form", source_uid=None, title="A form",
                              html="<h1>A form</h1>")
    db.session.flush()
    return document.id


def _status(document_id: int) -> str:
    db.session.remove()
    return db.session.get(Document, document_id).status


def _queued_names(app) -> list[str]:
    return [type(task).__name__ for task in app.extensions["kiosk.jobs"].huey.pending()]


def _document_renders_through_the_queue(app, clinic):
    document_id = _queue_document(clinic)
    assert _queued_names(app) == []  # nothing before the commit
    db.session.commit()

    assert _queued_names(app) == ["documents.work"]
    assert _status(document_id) == DOC_QUEUED
    assert jobs_run_pending() == 1
    assert _status(document_id) == DOC_READY
    assert _queued_names(app) == []  # its own "document.ready" needed no second job


def test_a_queued_document_queues_its_job_after_commit_and_the_job_renders_it(app, clinic):
    _document_renders_through_the_queue(app, clinic)


def test_a_rolled_back_document_queues_no_job(app, clinic):
    _queue_document(clinic)
    db.session.rollback()

    assert _queued_names(app) == []
    assert db.session.scalar(select(func.count(Document.id))) == 0


def test_a_failed_pdf_is_tried_again_when_its_back_off_ends(app, clinic, frozen_clock,
                                                            monkeypatch):
    real = worker.pdf_render
    monkeypatch.setattr(worker, "pdf_render", lambda doc: (_ for _ in ()).throw(
        OSError("disk on fire")))
    document_id = _queue_document(clinic)
    db.session.commit()
    assert jobs_run_pending() == 1
    assert _status(document_id) == DOC_QUEUED  # failed once, backing off ten seconds
    monkeypatch.setattr(worker, "pdf_render", real)

    frozen_clock.advance(seconds=9)
    assert jobs_run_pending() == 0  # the job asked to run again when the row is due
    frozen_clock.advance(seconds=1)
    assert jobs_run_pending() == 1
    assert _status(document_id) == DOC_READY


def test_on_redis_a_queued_document_is_rendered_through_the_queue(queue_app, redis_queue):
    app = queue_app(**redis_queue)
    assert type(app.extensions["kiosk.jobs"].huey).__name__ == "_RedisQueue"
    _document_renders_through_the_queue(app, factories.clinic_make())


def test_on_redis_a_job_is_retried_until_it_succeeds(queue_app, redis_queue):
    tries = []

    def flaky():
        tries.append(1)
        if len(tries) < 2:
            raise OSError("not yet")

    job_register("test.flaky", flaky, retries=2, retry_delay_s=0)
    queue_app(**redis_queue)
    job_enqueue("test.flaky")

    assert jobs_run_pending() == 2 and len(tries) == 2


@pytest.mark.servers
def test_a_separate_kiosk_worker_renders_a_document_queued_on_redis(tmp_path, redis_queue):
    url = f"sqlite:///{tmp_path / 'kiosk.db'}"
    env = {**os.environ, "KIOSK_DATABASE_URL": url, "KIOSK_TIMEZONE": "UTC",
           "KIOSK_SECRET_KEY": secrets.token_urlsafe(32), **redis_queue}
    upgraded = subprocess.run([kiosk_executable(), "db", "upgrade"], env=on_the_clock(env),
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen([kiosk_executable(), "worker"], env=on_the_clock(env),
                               cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, **redis_queue})
    try:
        with app.app_context():
            clinic = factories.clinic_make()
            db.session.commit()
            document_id = _queue_document(clinic)
            db.session.commit()  # "documents.work" goes to Redis; the worker takes it
            deadline = time.monotonic() + 60
            while _status(document_id) != DOC_READY and time.monotonic() < deadline:
                assert process.poll() is None, (tmp_path / "worker.log").read_text()
                time.sleep(0.3)
            assert _status(document_id) == DOC_READY, (tmp_path / "worker.log").read_text()
            db.session.remove()
        assert process.poll() is None  # still there for the next job
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, (tmp_path / "worker.log").read_text()
    assert "worker of queue" in (tmp_path / "worker.log").read_text()


def test_the_clock_of_the_queue_is_kiosks(queue_app, frozen_clock):
    app = queue_app()
    stamp = app.extensions["kiosk.jobs"].huey._get_timestamp()
    assert stamp == datetime(2026, 11, 22, 12, 0, tzinfo=UTC).replace(tzinfo=None)


def test_kiosk_jobs_run_once_runs_what_is_queued(tmp_path):
    url = f"sqlite:///{tmp_path / 'kiosk.db'}"
    env = {**os.environ, "KIOSK_DATABASE_URL": url, "KIOSK_TIMEZONE": "UTC",
           "KIOSK_SECRET_KEY": secrets.token_urlsafe(32)}
    env.pop("KIOSK_REDIS_URL", None)

    def kiosk(*args):
        done = subprocess.run([kiosk_executable(), *args], env=on_the_clock(env), cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    kiosk("db", "upgrade")
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        document_id = _queue_document(factories.clinic_make())
        db.session.commit()
        db.session.remove()

    assert json.loads(kiosk("jobs", "run-once").splitlines()[-1]) == {"ran": 1}
    with app.app_context():
        assert _status(document_id) == DOC_READY
        db.session.remove()
    assert json.loads(kiosk("jobs", "run-once").splitlines()[-1]) == {"ran": 0}
