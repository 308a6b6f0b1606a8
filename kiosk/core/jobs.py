"""The one job queue for background work (PDFs, deliveries, sweeps, upkeep): huey.

The database stays the record of what must happen (a document row, a charge row); a job is
how it gets done, and a periodic sweep re-enqueues whatever a lost enqueue or a crashed
worker left behind, so a job is a nudge, never the only copy of the work.

Features register their jobs at start-up (`job_register`, `job_periodic` from their
hooks.install); `jobs_install` then builds the queue of that application: SQLite storage
in a file of its own (no server to run), or Redis when KIOSK_REDIS_URL joins a group of
processes. A consumer runs the jobs: threads inside `kiosk run` (`consumer_start`), or
`kiosk worker` as a process of its own (`consumer_run`) when KIOSK_WORKER=separate.

Messages are JSON, never pickle: whoever can write to the Redis server must not be able to
run code in the workers. huey reads the time through kiosk's clock, so delays, retries and
periodic jobs follow the same clock as everything else (and tests that hold it).
"""

import atexit
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, has_app_context
from huey import RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from huey.registry import Message
from huey.serializer import Serializer
from huey.storage import SqliteStorage
from sqlalchemy.engine import make_url

from ..extensions import db
from . import clock
from .files import file_private

log = logging.getLogger(__name__)

WORKER_MODES = ("in-process", "separate")
IN_PROCESS_WORKERS = 2  # a long PDF does not hold a quick delivery back
# An idle SQLite queue is polled; this caps the wait between a job queued and its start.
SQLITE_POLL_MAX_S = 1.0
SHUTDOWN_S = 5.0
REPEAT_S = 60.0
EXTENSION = "kiosk.jobs"


@dataclass(frozen=True)
class _Job:
    name: str
    fn: Callable[..., object]
    retries: int = 0
    retry_delay_s: int = 0
    every_minutes: int | None = None


# When this process started running the queue's jobs (`kiosk run`'s threads or `kiosk
# worker`): a job may ask whether the process doing it started after some moment (a
# maintenance window ends once the server is back). One-off runs (`kiosk jobs run-once`)
# start no consumer.
CONSUMER_STARTED = "kiosk_consumer_started_at"

# Name → job, registered at start-up by the features that own the work.
_jobs: dict[str, _Job] = {}
_last_engine = None  # the engine of the application installed last (no app context: scripts)


def job_register(name: str, fn: Callable[..., object], *, retries: int = 3,
                 retry_delay_s: int = 10) -> None:
    """Make `fn` the job called `name`: run in an app context, retried when it raises."""
    _jobs[name] = _Job(name, fn, retries=retries, retry_delay_s=retry_delay_s)


def job_periodic(name: str, fn: Callable[[], object], *, every_minutes: int) -> None:
    """Run `fn` as the job `name` every `every_minutes` minutes (and once when a consumer
    starts, which catches up on whatever waited while no consumer ran)."""
    _every(every_minutes)  # a period crontab cannot say fails at start-up, not at the hour
    _jobs[name] = _Job(name, fn, every_minutes=every_minutes)


def job_names() -> list[str]:
    """The names of every registered job, sorted."""
    return sorted(_jobs)


def job_every(name: str) -> int | None:
    """Minutes between runs of the periodic job `name`; None for a job run when queued."""
    return _job(name).every_minutes


def job_run_now(name: str, *args):
    """Run the job `name` here and now, in the caller's app context, without the queue
    (what a worker would run); its result is returned and its errors raised."""
    return _job(name).fn(*args)


def job_unregister(name: str) -> None:
    """Forget the job `name`; applications built afterwards have no task for it."""
    _job(name)
    del _jobs[name]


def _job(name: str) -> _Job:
    if name not in _jobs:
        raise LookupError(f"no job is registered as “{name}”")
    return _jobs[name]


def _every(minutes: int):
    """The crontab test for "every `minutes` minutes" (a divisor of an hour or of a day)."""
    if 1 <= minutes < 60 and 60 % minutes == 0:
        return crontab(minute=f"*/{minutes}")
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return crontab(minute="0", hour=f"*/{minutes // 60}")
    raise ValueError(f"every_minutes={minutes}: use a divisor of 60, or whole hours that "
                     "divide a day")


class _JsonSerializer(Serializer):
    """huey's messages as JSON: datetimes tagged, arguments kept JSON (never pickle)."""

    def _serialize(self, data) -> bytes:
        return json.dumps(_encode(data), separators=(",", ":")).encode()

    def _deserialize(self, data) -> object:
        return _decode(json.loads(bytes(data)))


def _encode(value):
    if isinstance(value, Message):
        return {"$message": [_encode(part) for part in value]}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, list | tuple):
        return [_encode(part) for part in value]
    if isinstance(value, dict):
        return {key: _encode(part) for key, part in value.items()}
    return value


def _decode(value):
    if isinstance(value, dict):
        if "$message" in value:
            parts = [_decode(part) for part in value["$message"]]
            message = Message(*parts)
            return message._replace(args=tuple(message.args or ()))
        if "$datetime" in value:
            return dt.datetime.fromisoformat(value["$datetime"])
        return {key: _decode(part) for key, part in value.items()}
    if isinstance(value, list):
        return [_decode(part) for part in value]
    return value


class _ClockTime:
    """huey's "now" (naive UTC, as huey keeps it) read from kiosk's clock."""

    def _get_timestamp(self) -> dt.datetime:
        return clock.utcnow_exact().replace(tzinfo=None)


class _ForkSafeSqliteStorage(SqliteStorage):
    """A connection per process: one opened before gunicorn forked its worker (a job
    queued by `kiosk run --demo`) stays the parent's, never shared across the fork."""

    _pid = None

    @property
    def conn(self):
        """This process's connection to the queue's file (opened on first use)."""
        if self._pid != os.getpid():
            self._conn, self._pid = None, os.getpid()
        return super().conn


class _SqliteQueue(_ClockTime, SqliteHuey):
    storage_class = _ForkSafeSqliteStorage


class _RedisQueue(_ClockTime, RedisHuey):
    pass


class _QuietConsumer(Consumer):
    """A consumer inside a server process: the server owns the signals, not the queue."""

    def _set_signal_handlers(self) -> None:
        pass


class _Engine:
    """One application's queue: huey, and the task of each registered job."""

    def __init__(self, app, huey):
        self.app = app
        self.huey = huey
        self.tasks = {}
        self.periodic = []
        for job in _jobs.values():
            run = _in_app_context(app, job.fn)
            if job.every_minutes is None:
                self.tasks[job.name] = huey.task(retries=job.retries,
                                                 retry_delay=job.retry_delay_s,
                                                 name=job.name)(run)
            else:
                self.periodic.append(job.name)
                self.tasks[job.name] = huey.periodic_task(_every(job.every_minutes),
                                                          name=job.name)(run)


def _in_app_context(app, fn: Callable[..., object]) -> Callable[..., object]:
    """`fn` run in an app context of `app` with a session of its own, removed afterwards
    (rolled back first when it raised, before huey retries it)."""

    def run(*args):
        with app.app_context():
            try:
                return fn(*args)
            except Exception:
                db.session.rollback()
                raise
            finally:
                db.session.remove()

    run.__name__ = getattr(fn, "__name__", "job")
    return run


def _worker_separate(app, *, warn: bool = False) -> bool:
    """Whether `kiosk worker` processes run the jobs instead of the server processes."""
    mode = str(app.config.get("KIOSK_WORKER") or "in-process").strip().lower()
    if mode not in WORKER_MODES:
        raise RuntimeError(f"KIOSK_WORKER is “{mode}”: it must be in-process or separate.")
    old = app.config.get("KIOSK_DOCUMENTS_WORKER")
    if mode == "in-process" and old is not None \
            and str(old).strip().lower() in ("0", "false", "no", "off", "none"):
        if warn:
            log.warning("KIOSK_DOCUMENTS_WORKER=0 is deprecated: set KIOSK_WORKER=separate")
        return True
    return mode == "separate"


def jobs_file(app) -> Path:
    """The SQLite file of the queue: KIOSK_JOBS_FILE, else beside an SQLite database
    (kiosk.db → kiosk-jobs.db: one queue per database, never shared by two), else
    jobs.db in the instance folder."""
    if app.config.get("KIOSK_JOBS_FILE"):
        return Path(app.config["KIOSK_JOBS_FILE"])
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not url.database.startswith("file:"):
        path = Path(url.database)
        return path.with_name(f"{path.stem}-jobs.db")
    return Path(app.instance_path) / "jobs.db"


def _huey(app):
    name = app.config.get("KIOSK_JOBS_NAME") or f"{app.config['KIOSK_REDIS_CHANNEL']}_jobs"
    options = {"results": False, "serializer": _JsonSerializer()}
    url = app.config.get("KIOSK_REDIS_URL")
    if url:
        from redis import ConnectionPool

        # Short timeouts: a job is queued from a request after its commit, and a Redis host
        # that vanished must cost that request a second, not the system's connect timeout.
        pool = ConnectionPool.from_url(url, socket_connect_timeout=1, socket_timeout=5)
        return _RedisQueue(name, connection_pool=pool, blocking=True, read_timeout=1,
                           **options)
    path = jobs_file(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    file_private(path)  # the jobs say which documents are made: the server user's only
    return _SqliteQueue(name, filename=str(path), **options)


def jobs_install(app) -> None:
    """Build `app`'s queue (Redis with KIOSK_REDIS_URL, else SQLite) and bind every job
    registered so far; called once by create_app after the features registered theirs."""
    global _last_engine

    _worker_separate(app)  # a mistyped KIOSK_WORKER stops the start, naming the setting
    engine = _Engine(app, _huey(app))
    app.extensions[EXTENSION] = engine
    _last_engine = engine


def _engine():
    if has_app_context() and EXTENSION in current_app.extensions:
        return current_app.extensions[EXTENSION]
    return _last_engine


def job_enqueue(name: str, *args, delay_s: float | None = None) -> None:
    """Queue the job `name` with JSON arguments (after a commit). A queue that cannot be
    reached is logged, not raised: the rows still say what to do and the sweep finds them."""
    if name not in _jobs:
        raise LookupError(f"no job is registered as “{name}”")
    json.dumps(args)  # arguments that are not JSON are the caller's bug: say so now
    engine = _engine()
    if engine is None or name not in engine.tasks:
        log.warning("job %s not queued: no queue is installed", name)
        return
    try:
        task = engine.tasks[name].s(*args)
        if delay_s:
            task.eta = engine.huey._get_timestamp() + dt.timedelta(seconds=delay_s)
            engine.huey.add_schedule(task)
        else:
            engine.huey.enqueue(task)
    except Exception as exc:  # noqa: BLE001 - the queue's trouble must not fail a commit's caller
        log.warning("job %s not queued (%s); the periodic sweep will do its work", name,
                    type(exc).__name__)


def jobs_run_pending(limit: int = 1000) -> int:
    """Run the jobs queued now (and delayed ones now due) in this thread; how many ran."""
    engine = _engine()
    if engine is None:
        raise RuntimeError("no job queue is installed")
    huey = engine.huey
    for task in huey.read_schedule(huey._get_timestamp()):
        huey.enqueue(task)
    ran = 0
    # The size first: a Redis dequeue blocks a second on an empty queue.
    while ran < limit and huey.pending_count():
        task = huey.dequeue()
        if task is None:
            break
        if not huey.ready_to_run(task):
            huey.add_schedule(task)
            continue
        huey.execute(task)  # huey logs a failure and queues its retry
        ran += 1
    return ran


def _consumer(app, workers: int, consumer_class=Consumer, **options):
    """A consumer of `app`'s queue (not started)."""
    engine = app.extensions[EXTENSION]
    for name in ("Worker", "Scheduler"):
        _quiet_repeats(logging.getLogger(f"huey.consumer.{name}"))
    return consumer_class(engine.huey, workers=workers, worker_type="thread",
                          periodic=True, max_delay=SQLITE_POLL_MAX_S, **options)


def _periodic_now(app) -> None:
    """Queue every periodic job once, as a consumer starts: upkeep, and sweeps of whatever
    waited while no consumer ran."""
    engine = app.extensions[EXTENSION]
    for name in engine.periodic:
        try:
            engine.huey.enqueue(engine.tasks[name].s())
        except Exception as exc:  # noqa: BLE001 - the schedule queues it again on time
            log.warning("job %s not queued at start (%s)", name, type(exc).__name__)


class _RepeatFilter(logging.Filter):
    """Lets one record of each message through per minute: a queue that is down (Redis
    restarting) is said once a minute, not by a traceback every second."""

    def __init__(self):
        super().__init__()
        self.last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self.last.get(record.msg, -REPEAT_S) < REPEAT_S:
            return False
        self.last[record.msg] = now
        return True


def _quiet_repeats(logger: logging.Logger) -> None:
    if not any(isinstance(f, _RepeatFilter) for f in logger.filters):
        logger.addFilter(_RepeatFilter())


def consumer_start(app) -> None:
    """Run the jobs in threads of this server process (a scheduler for delays and periodic
    jobs, IN_PROCESS_WORKERS workers), unless KIOSK_WORKER=separate; stops at exit."""
    if _worker_separate(app, warn=True):
        log.info("jobs: run by `kiosk worker` (KIOSK_WORKER=separate)")
        return
    app.extensions[CONSUMER_STARTED] = clock.utcnow()
    consumer = _consumer(app, IN_PROCESS_WORKERS, _QuietConsumer,
                         shutdown_timeout=SHUTDOWN_S)
    consumer.start()
    log.info("jobs: %d worker threads in this process, queue %s", IN_PROCESS_WORKERS,
             consumer.huey.name)
    threading.Thread(target=_watch, args=(app, consumer), name="jobs-watch",
                     daemon=True).start()
    atexit.register(consumer.stop, graceful=True)


def _watch(app, consumer) -> None:
    """Queue the periodic jobs of the start (here: a Redis that is down costs the server's
    start nothing), then replace a worker thread or the scheduler that died (huey's own
    loop does that in `kiosk worker`; the server's main thread is not ours to loop in)."""
    _periodic_now(app)
    while not consumer.stop_flag.wait(10):
        try:
            consumer.check_worker_health()
        except Exception:  # the watch outlives a bad moment as the workers do
            log.exception("jobs: checking the workers failed")


def consumer_run(app, workers: int = IN_PROCESS_WORKERS) -> None:
    """Run the jobs in this process until a signal stops it (`kiosk worker`): SIGTERM lets
    running jobs finish (up to a minute), SIGINT stops now, SIGHUP restarts."""
    consumer = _consumer(app, workers, graceful_signal="TERM", shutdown_timeout=60)
    app.extensions[CONSUMER_STARTED] = clock.utcnow()
    _periodic_now(app)
    log.info("jobs: worker of queue %s started (%d threads, periodic jobs on)",
             consumer.huey.name, workers)
    consumer.run()
